// The console's shell: who is signed in, the navigation, and the router
// that loads one page module per view (pages/<name>.js, each exporting
// `render(root, ctx, params)`, which may return a function run when the
// operator leaves the page). Links inside /console navigate without reloads.

import { api, setCsrfToken, ApiError } from './api.js';
import { el, errorText } from './ui.js';

const ROUTES = [
  [/^\/console\/?$/, 'dashboard'],
  [/^\/console\/sessions\/?$/, 'sessions'],
  [/^\/console\/sessions\/([^/]+)$/, 'session'],
  [/^\/console\/reviews\/?$/, 'reviews'],
  [/^\/console\/deliveries\/?$/, 'deliveries'],
  [/^\/console\/workflows\/?$/, 'workflows'],
  [/^\/console\/workflows\/([^/]+)$/, 'workflow'],
  [/^\/console\/studio\/?$/, 'studio'],
  [/^\/console\/audit\/?$/, 'audit'],
];

let me = null;
let leave = null;
let rendering = 0;

function can(scope) {
  return !!me && me.scopes.includes(scope);
}

function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  route();
}

async function route() {
  const main = document.getElementById('main');
  const path = location.pathname;
  const found = ROUTES.map(([re, name]) => [path.match(re), name]).find(([m]) => m);
  if (typeof leave === 'function') {
    try { leave(); } catch { /* a page's cleanup must not stop the next */ }
  }
  leave = null;
  const ticket = ++rendering;
  for (const a of document.querySelectorAll('#nav a')) {
    const active = found && (a.dataset.nav === found[1] || `${a.dataset.nav}s` === found[1]
      || (a.dataset.nav === 'sessions' && found[1] === 'session')
      || (a.dataset.nav === 'workflows' && found[1] === 'workflow'));
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  if (!found) {
    main.append(el('h1', {}, 'Not found'), el('p', {}, 'No console page lives here. '), el('a', { href: '/console' }, 'Back to the dashboard'));
    return;
  }
  const [match, name] = found;
  const params = match.slice(1).map(decodeURIComponent);
  try {
    const page = await import(`./pages/${name}.js`);
    if (ticket !== rendering) return;
    document.title = `${page.title || name} · Gangway console`;
    const ctx = { api, me, can, navigate, isCurrent: () => ticket === rendering };
    leave = await page.render(main, ctx, params);
    if (ticket !== rendering && typeof leave === 'function') leave();
  } catch (err) {
    if (ticket !== rendering) return;
    const text = err instanceof ApiError && err.status === 403
      ? `Your role (${me.operator.role}) may not see this: ${errorText(err)}`
      : errorText(err);
    main.replaceChildren(el('h1', {}, 'Something went wrong'), el('p', { class: 'error', role: 'alert' }, text));
  }
}

async function logout() {
  try {
    await api('/console/logout', { method: 'POST' });
  } finally {
    location.assign('/console/login');
  }
}

async function start() {
  me = await api('/v1/console/me');
  setCsrfToken(me.csrf_token);
  for (const a of document.querySelectorAll('#nav a[data-role]')) {
    if (me.operator.role !== a.dataset.role) a.remove();
  }
  document.getElementById('who').replaceChildren(
    el('span', { class: 'email' }, me.operator.email),
    el('span', { class: 'role' }, me.operator.role),
    el('button', { type: 'button', class: 'link', id: 'logout', onclick: logout }, 'Sign out'),
  );
  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[href]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith('/console')) return;
    if (url.pathname.startsWith('/console/login') || url.pathname.startsWith('/console/assets')) return;
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', route);
  await route();
}

start().catch((err) => {
  document.getElementById('main').replaceChildren(el('p', { class: 'error', role: 'alert' }, errorText(err)));
});
