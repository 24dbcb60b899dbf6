// Sessions: search by id, reference, workflow, status, outcome and created
// time; keyset pages (`next_cursor`, never an offset) newest first; live:
// the server pushes changed sessions (GET /v1/sessions/changes, SSE), new
// ones appear at the top, changed ones are updated in place, and those that
// no longer match the filters leave. The filters live in the URL, so a
// search can be linked (the workflow page links `?workflow=`).

import { el, badge, time, ago, header, errorText, tableWrap } from '../ui.js';
import { follow } from '../live.js';

export const title = 'Sessions';

const STATUSES = ['running', 'waiting', 'ended'];
const OUTCOMES = ['approved', 'declined', 'review', 'failed', 'canceled', 'expired'];
const FIELDS = ['id', 'reference', 'workflow', 'status', 'outcome', 'created_since', 'created_until'];
const PAGE = 50;

/** `datetime-local` value (local time) <-> RFC 3339. */
function toRfc3339(local) {
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}
function toLocal(rfc) {
  const d = new Date(rfc);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Whether a session (as the API shows it) matches the filters. */
export function matches(s, f) {
  if (f.id && s.id !== f.id) return false;
  if (f.reference && s.reference !== f.reference) return false;
  if (f.workflow && s.workflow !== f.workflow) return false;
  if (f.status && s.status !== f.status) return false;
  if (f.outcome && s.outcome !== f.outcome) return false;
  const created = new Date(s.created_at).getTime();
  if (f.created_since && created < new Date(f.created_since).getTime()) return false;
  if (f.created_until && created >= new Date(f.created_until).getTime()) return false;
  return true;
}

function row(s) {
  const href = `/console/sessions/${encodeURIComponent(s.id)}`;
  return el('tr', { 'data-id': s.id },
    el('td', {}, el('a', { href, class: 'mono' }, s.id)),
    el('td', {}, `${s.workflow} `, el('span', { class: 'muted' }, `v${s.version}`)),
    el('td', {}, badge(s.status)),
    el('td', { class: 'mono' }, s.step || '—'),
    el('td', {}, s.outcome ? badge(s.outcome) : '—'),
    el('td', { class: 'hide-narrow' }, s.reference || '—'),
    el('td', { class: 'hide-narrow' }, el('time', { datetime: s.created_at, title: time(s.created_at) }, ago(s.created_at))),
    el('td', { class: 'hide-narrow' }, el('time', { datetime: s.updated_at, title: time(s.updated_at) }, ago(s.updated_at))));
}

export async function render(root, ctx) {
  const params = new URLSearchParams(location.search);
  const filters = Object.fromEntries(FIELDS.map((k) => [k, params.get(k) || '']));
  const workflows = await ctx.api('/v1/workflows').catch(() => ({ data: [] }));
  if (!ctx.isCurrent()) return undefined;

  const input = (name, label, attrs = {}) => el('label', { for: `f-${name}` }, label,
    el('input', { id: `f-${name}`, name, value: filters[name], ...attrs }));
  const select = (name, label, values) => el('label', { for: `f-${name}` }, label,
    el('select', { id: `f-${name}`, name }, el('option', { value: '' }, 'any'),
      values.map((v) => el('option', { value: v, selected: filters[name] === v }, v))));
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Search sessions' },
    input('id', 'Session id', { placeholder: 'ses_…', size: 20, autocomplete: 'off' }),
    input('reference', 'Reference', { size: 14, autocomplete: 'off' }),
    select('workflow', 'Workflow', workflows.data.map((w) => w.id)),
    select('status', 'Status', STATUSES),
    select('outcome', 'Outcome', OUTCOMES),
    el('label', { for: 'f-created_since' }, 'Created from',
      el('input', { id: 'f-created_since', name: 'created_since', type: 'datetime-local', value: filters.created_since ? toLocal(filters.created_since) : '' })),
    el('label', { for: 'f-created_until' }, 'Created before',
      el('input', { id: 'f-created_until', name: 'created_until', type: 'datetime-local', value: filters.created_until ? toLocal(filters.created_until) : '' })),
    el('div', { class: 'actions' },
      el('button', { type: 'submit' }, 'Search'),
      el('button', { type: 'button', class: 'secondary', id: 'clear-filters' }, 'Clear')));

  const live = el('span', { class: 'live', id: 'live-state' }, 'connecting…');
  const announce = el('div', { class: 'visually-hidden', 'aria-live': 'polite', id: 'sessions-announce' });
  const tbody = el('tbody', { id: 'sessions-body' });
  const more = el('button', { type: 'button', class: 'secondary', id: 'more', hidden: true }, 'Older sessions');
  const status = el('p', { class: 'muted', id: 'sessions-status' });
  root.append(header('Sessions', live), form, announce,
    tableWrap('Sessions', el('table', { id: 'sessions-table' },
      el('caption', { class: 'visually-hidden' }, 'Sessions, newest first'),
      el('thead', {}, el('tr', {},
        ['Session', 'Workflow', 'Status', 'Step', 'Outcome'].map((h) => el('th', { scope: 'col' }, h)),
        ['Reference', 'Created', 'Updated'].map((h) => el('th', { scope: 'col', class: 'hide-narrow' }, h)))),
      tbody)),
    status, el('div', { class: 'actions pager' }, more));

  let cursor = null;
  let loading = 0;
  const shown = new Map();

  async function load(reset) {
    const ticket = ++loading;
    if (reset) cursor = null;
    more.disabled = true;
    try {
      let page;
      if (filters.id) {
        // An id names one session: ask for it, not for a page.
        const one = await ctx.api(`/v1/sessions/${encodeURIComponent(filters.id)}`).catch((err) => {
          if (err.status === 404 || err.status === 422) return null;
          throw err;
        });
        page = { data: one && matches(one, filters) ? [one] : [], next_cursor: null };
      } else {
        const query = { limit: PAGE, cursor };
        for (const k of ['reference', 'workflow', 'status', 'outcome', 'created_since', 'created_until']) query[k] = filters[k];
        page = await ctx.api('/v1/sessions', { query });
      }
      if (ticket !== loading || !ctx.isCurrent()) return;
      if (reset) {
        tbody.replaceChildren();
        shown.clear();
      }
      for (const s of page.data) {
        if (shown.has(s.id)) continue;
        const tr = row(s);
        shown.set(s.id, tr);
        tbody.append(tr);
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.textContent = shown.size ? `${shown.size} session${shown.size === 1 ? '' : 's'} shown${cursor ? '; older ones below' : ''}.` : 'No session matches.';
    } catch (err) {
      if (ticket === loading) status.textContent = errorText(err);
    } finally {
      more.disabled = false;
    }
  }

  // A pushed session: updated in place, new at the top, or gone when it
  // no longer matches.
  function changed(s) {
    const old = shown.get(s.id);
    if (!matches(s, filters)) {
      if (old) {
        old.remove();
        shown.delete(s.id);
      }
      return;
    }
    const tr = row(s);
    if (old) {
      old.replaceWith(tr);
      tr.classList.add('changed');
    } else {
      // Only sessions newer than the newest shown enter at the top; an older
      // one belongs to a later page.
      const first = tbody.firstElementChild;
      if (first && s.id < first.dataset.id) return;
      tbody.prepend(tr);
      tr.classList.add('arrived');
      announce.textContent = `New session ${s.id} (${s.workflow}, ${s.status})`;
    }
    shown.set(s.id, tr);
    status.textContent = `${shown.size} session${shown.size === 1 ? '' : 's'} shown${cursor ? '; older ones below' : ''}.`;
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(form);
    for (const k of FIELDS) {
      const v = String(data.get(k) || '').trim();
      filters[k] = k.startsWith('created_') && v ? toRfc3339(v) : v;
    }
    const qs = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
    history.replaceState(null, '', `${location.pathname}${qs ? `?${qs}` : ''}`);
    load(true);
  });
  form.querySelector('#clear-filters').addEventListener('click', () => {
    for (const k of FIELDS) filters[k] = '';
    form.reset();
    for (const f of form.querySelectorAll('input')) f.value = '';
    for (const f of form.querySelectorAll('select')) f.value = '';
    history.replaceState(null, '', location.pathname);
    load(true);
  });
  more.addEventListener('click', () => load(false));

  // The list now, and again each time the stream is (re)subscribed:
  // nothing created before the subscription is missed.
  await load(true);
  const stop = follow({
    onReady: () => { live.textContent = 'live'; live.classList.add('on'); load(true); },
    onSession: changed,
    onResync: () => load(true),
    onDown: () => { live.textContent = 'reconnecting…'; live.classList.remove('on'); },
  });
  return stop;
}
