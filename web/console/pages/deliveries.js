// Deliveries: customer webhooks across sessions (GET /v1/deliveries), failed
// ones first, filtered by status, endpoint and event type, each with the
// result of every attempt. An operator with sessions:write sends one again
// (same webhook-id) or, after an outage, every failed one since a time,
// once confirmed. Redelivered rows are re-read until their attempt is in.

import { el, time, ago, duration, badge, toast, errorText, header } from '../ui.js';

export const title = 'Deliveries';

const EVENT_TYPES = ['session.updated', 'session.ended', 'session.erased'];
const STATUSES = [['failed', 'Failed'], ['pending', 'Pending'], ['delivered', 'Delivered'], ['', 'Any status']];
const PAGE = 50;

/** `datetime-local` value (local time, minutes) for a Date. */
function localInput(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function attemptList(d) {
  if (!d.attempt_log.length) return el('p', { class: 'muted' }, 'No attempt yet.');
  return el('ol', { class: 'attempts' }, d.attempt_log.map((a) => el('li', {},
    el('span', { class: a.error ? 'error' : 'ok' }, a.error ? `✗ ${a.error}` : `✓ HTTP ${a.status_code}`),
    ' ', el('span', { class: 'muted' }, `attempt ${a.attempt} · ${time(a.at)} · ${duration(a.duration_ms)}`),
    a.error && a.status_code && !a.error.includes(String(a.status_code))
      ? el('span', { class: 'muted' }, ` · HTTP ${a.status_code}`) : null)));
}

export async function render(root, ctx) {
  const canWrite = ctx.can('sessions:write');
  const params = new URLSearchParams(location.search);
  const status = el('select', { id: 'f-status', name: 'status' },
    STATUSES.map(([v, label]) => el('option', { value: v, selected: (params.get('status') ?? 'failed') === v }, label)));
  const endpoint = el('input', { id: 'f-endpoint', name: 'endpoint', type: 'url', list: 'endpoints', placeholder: 'https://…', value: params.get('endpoint') || '' });
  const endpoints = el('datalist', { id: 'endpoints' });
  const eventType = el('select', { id: 'f-event', name: 'event_type' },
    el('option', { value: '' }, 'Any event'),
    EVENT_TYPES.map((t) => el('option', { value: t, selected: params.get('event_type') === t }, t)));
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter deliveries' },
    el('label', { for: 'f-status' }, 'Status', status),
    el('label', { for: 'f-endpoint' }, 'Endpoint', endpoint),
    el('label', { for: 'f-event' }, 'Event type', eventType),
    el('button', { type: 'submit' }, 'Filter'), endpoints);
  const body = el('tbody');
  const table = el('div', { class: 'table-wrap' }, el('table', { class: 'deliveries' },
    el('caption', { class: 'sr-only' }, 'Customer webhook deliveries, newest first'),
    el('thead', {}, el('tr', {},
      el('th', { scope: 'col' }, 'Created'), el('th', { scope: 'col' }, 'Event'),
      el('th', { scope: 'col' }, 'Session'), el('th', { scope: 'col', class: 'hide-narrow' }, 'Endpoint'),
      el('th', { scope: 'col' }, 'Status'), el('th', { scope: 'col' }, 'Attempts'),
      el('th', { scope: 'col' }, canWrite ? 'Action' : el('span', { class: 'sr-only' }, 'Action')))),
    body));
  const more = el('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const summary = el('p', { class: 'muted', role: 'status', 'aria-live': 'polite' });

  const timers = new Set();
  const seenEndpoints = new Set();
  let cursor = null;

  function filters() {
    return { status: status.value, endpoint: endpoint.value.trim(), event_type: eventType.value };
  }

  function row(d) {
    const cells = [
      el('td', {}, el('span', { title: time(d.created_at) }, ago(d.created_at))),
      el('td', {}, el('code', {}, d.event_type)),
      el('td', {}, el('a', { href: `/console/sessions/${encodeURIComponent(d.session_id)}` }, el('code', {}, d.session_id))),
      el('td', { class: 'hide-narrow endpoint' }, d.endpoint),
      el('td', {}, badge(d.status), d.status === 'pending' && d.next_attempt_at
        ? el('div', { class: 'muted small' }, `next ${ago(d.next_attempt_at)}`) : null),
      el('td', {}, el('details', {}, el('summary', {}, `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`),
        el('p', { class: 'muted small' }, 'webhook-id ', el('code', {}, d.id)), attemptList(d))),
      el('td', {}, canWrite
        ? el('button', { type: 'button', class: 'secondary redeliver', 'aria-label': `Redeliver ${d.id}`, onclick: () => redeliver(d) }, 'Redeliver')
        : null),
    ];
    const tr = el('tr', { dataset: { id: d.id, status: d.status } }, cells);
    if (!seenEndpoints.has(d.endpoint)) {
      seenEndpoints.add(d.endpoint);
      endpoints.append(el('option', { value: d.endpoint }));
    }
    return tr;
  }

  function replaceRow(d) {
    const old = body.querySelector(`tr[data-id="${CSS.escape(d.id)}"]`);
    if (old) old.replaceWith(row(d));
  }

  /** Re-reads a redelivered delivery until its new attempt is recorded. */
  function follow(id, attempts) {
    const started = Date.now();
    const tick = async () => {
      timers.delete(timer);
      if (!ctx.isCurrent()) return;
      try {
        const d = await ctx.api(`/v1/deliveries/${encodeURIComponent(id)}`);
        replaceRow(d);
        if (d.status === 'pending' && d.attempts <= attempts && Date.now() - started < 60000) {
          timer = setTimeout(tick, 1000);
          timers.add(timer);
        } else {
          toast(d.status === 'delivered' ? `Delivered ${id}` : `${id}: ${d.status}`, d.status === 'delivered' ? 'info' : 'error');
        }
      } catch (err) {
        toast(errorText(err), 'error');
      }
    };
    let timer = setTimeout(tick, 500);
    timers.add(timer);
  }

  async function redeliver(d) {
    try {
      const now = await ctx.api(`/v1/deliveries/${encodeURIComponent(d.id)}/redeliver`, { method: 'POST' });
      replaceRow(now);
      toast(`Sending ${d.id} again`);
      follow(d.id, d.attempts);
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  async function load(reset) {
    if (reset) {
      cursor = null;
      body.replaceChildren();
    }
    const f = filters();
    try {
      const page = await ctx.api('/v1/deliveries', { query: { ...f, cursor, limit: PAGE } });
      if (!ctx.isCurrent()) return;
      body.append(...page.data.map(row));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      const n = body.children.length;
      summary.textContent = n === 0
        ? `No ${f.status || ''} deliveries${f.endpoint ? ` to ${f.endpoint}` : ''}${f.event_type ? ` of ${f.event_type}` : ''}.`
        : `${n}${cursor ? '+' : ''} ${f.status || ''} deliver${n === 1 ? 'y' : 'ies'} shown, newest first.`;
    } catch (err) {
      summary.textContent = errorText(err);
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams(Object.entries(filters()).filter(([, v]) => v));
    history.replaceState(null, '', `/console/deliveries${q.toString() ? `?${q}` : ''}`);
    load(true);
  });
  more.addEventListener('click', () => load(false));

  root.append(header('Deliveries'), el('p', { class: 'muted' },
    'Signed webhooks to your backend. A redelivery is one new attempt with the same webhook-id, so your receiver can deduplicate it.'));
  if (canWrite) root.append(bulkCard(ctx, filters, () => load(true)));
  root.append(form, summary, table, more);
  await load(true);
  return () => { for (const t of timers) clearTimeout(t); };
}

/** "Redeliver all failed since …", confirmed in a dialog first. */
function bulkCard(ctx, filters, reload) {
  const since = el('input', { id: 'bulk-since', type: 'datetime-local', required: true,
    value: localInput(new Date(Date.now() - 3600000)) });
  const what = el('p', { id: 'bulk-what' });
  const confirm = el('button', { type: 'button', class: 'danger', id: 'bulk-confirm' }, 'Redeliver them');
  const cancel = el('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const dialog = el('dialog', { 'aria-labelledby': 'bulk-title', 'aria-describedby': 'bulk-what' },
    el('h2', { id: 'bulk-title' }, 'Redeliver failed deliveries?'), what,
    el('div', { class: 'actions' }, confirm, cancel));
  cancel.addEventListener('click', () => dialog.close());
  let request = null;
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    try {
      const r = await ctx.api('/v1/deliveries/redeliver', { method: 'POST', body: request });
      toast(`${r.queued} deliver${r.queued === 1 ? 'y' : 'ies'} queued${r.more ? '; more remain: run it again' : ''}`);
      dialog.close();
      reload();
    } catch (err) {
      toast(errorText(err), 'error');
    } finally {
      confirm.disabled = false;
    }
  });
  const open = el('button', { type: 'button', id: 'bulk-open' }, 'Redeliver all failed since…');
  open.addEventListener('click', () => {
    const at = new Date(since.value);
    if (Number.isNaN(at.getTime())) {
      toast('Choose a time first', 'error');
      return;
    }
    const f = filters();
    request = { status: 'failed', since: at.toISOString() };
    if (f.endpoint) request.endpoint = f.endpoint;
    if (f.event_type) request.event_type = f.event_type;
    what.textContent = `Every failed delivery created since ${at.toLocaleString()}`
      + `${f.endpoint ? ` to ${f.endpoint}` : ''}${f.event_type ? ` of ${f.event_type}` : ''}`
      + ' will be sent once more now, each with its own webhook-id.';
    dialog.showModal();
  });
  return el('section', { class: 'card bulk', 'aria-labelledby': 'bulk-head' },
    el('h2', { id: 'bulk-head' }, 'Replay after an outage'),
    el('div', { class: 'filters' }, el('label', { for: 'bulk-since' }, 'Failed since', since), open,
      el('span', { class: 'muted' }, 'Uses the endpoint and event type filters below.')),
    dialog);
}
