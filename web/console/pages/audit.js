// The audit log (admins): who did what, newest first, filtered by action,
// actor, session or target and time; pages by keyset (`next_cursor`), and
// the same filters exported as JSON lines through the API.
import { el, time, errorText, header } from '../ui.js';

export const title = 'Audit log';

const ACTIONS = [
  'session.created', 'session.canceled', 'session.erased', 'review.claimed', 'review.decided',
  'delivery.redelivered', 'secrets.read', 'api_key.created', 'api_key.revoked', 'api_key.rotated',
  'operator.created', 'operator.disabled', 'operator.password_set', 'operator.signed_in',
  'operator.sign_in_failed', 'operator.signed_out', 'server.started',
];

function actorLink(actor) {
  return el('code', {}, actor);
}

export async function render(root, ctx) {
  const params = new URLSearchParams(location.search);
  const field = (name, label, input) => el('label', {}, label, input);
  const action = el('select', { name: 'action', id: 'audit-action' },
    el('option', { value: '' }, 'Any action'),
    ACTIONS.map((a) => el('option', { value: a, selected: params.get('action') === a }, a)));
  const actor = el('input', { name: 'actor', id: 'audit-actor', placeholder: 'operator:op_… or api_key:key_…', value: params.get('actor') || '' });
  const session = el('input', { name: 'session_id', id: 'audit-session', placeholder: 'ses_…', value: params.get('session_id') || '' });
  const since = el('input', { name: 'since', id: 'audit-since', type: 'datetime-local', value: params.get('since') || '' });
  const form = el('form', { class: 'filters', role: 'search' },
    field('action', 'Action', action), field('actor', 'Actor', actor), field('session', 'Session', session),
    field('since', 'Since', since), el('button', { type: 'submit' }, 'Filter'));
  const exportLink = el('a', { class: 'button secondary', href: '#', id: 'audit-export' }, 'Export (JSON lines)');
  const body = el('tbody');
  const more = el('button', { type: 'button', class: 'secondary', hidden: true }, 'Older entries');
  const status = el('p', { class: 'muted', role: 'status' });
  root.append(
    header('Audit log', exportLink),
    el('p', { class: 'muted' }, 'Every security-relevant action, with who did it. The log is append-only.'),
    form,
    el('div', { class: 'table-wrap' }, el('table', {},
      el('caption', { class: 'muted' }, 'Newest first'),
      el('thead', {}, el('tr', {}, ['Time', 'Action', 'Actor', 'Session', 'Target', 'Details'].map((h) => el('th', { scope: 'col' }, h)))),
      body)),
    status, more);

  const query = () => {
    const q = {
      action: action.value, actor: actor.value.trim(), session_id: session.value.trim(),
      since: since.value ? new Date(since.value).toISOString() : '',
    };
    return q;
  };
  let cursor = null;
  async function load(reset) {
    if (reset) { body.replaceChildren(); cursor = null; }
    status.textContent = 'Loading…';
    try {
      const page = await ctx.api('/v1/admin/audit', { query: { ...query(), cursor, limit: 100 } });
      if (!ctx.isCurrent()) return;
      for (const e of page.data) {
        body.append(el('tr', {},
          el('td', {}, time(e.at)),
          el('td', {}, el('code', {}, e.action)),
          el('td', {}, actorLink(e.actor)),
          el('td', {}, e.session_id ? el('a', { href: `/console/sessions/${encodeURIComponent(e.session_id)}` }, e.session_id) : '—'),
          el('td', {}, e.target || '—'),
          el('td', { class: 'mono' }, JSON.stringify(e.data))));
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.textContent = body.children.length ? `${body.children.length} entries shown` : 'No entries match.';
    } catch (err) {
      status.textContent = errorText(err);
    }
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams(Object.entries(query()).filter(([, v]) => v));
    history.replaceState(null, '', `/console/audit${q.toString() ? `?${q}` : ''}`);
    load(true);
  });
  more.addEventListener('click', () => load(false));
  exportLink.addEventListener('click', async (e) => {
    e.preventDefault();
    try {
      const text = await ctx.api('/v1/admin/audit/export', { query: query() });
      const url = URL.createObjectURL(new Blob([text], { type: 'application/jsonl' }));
      const a = el('a', { href: url, download: 'gangway-audit.jsonl' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      status.textContent = errorText(err);
    }
  });
  await load(true);
}
