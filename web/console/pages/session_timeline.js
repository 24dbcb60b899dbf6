// The session page's reading of its timeline (GET /v1/sessions/{id}/timeline,
// redacted by the server): each entry as a row a person can read (calls
// with their attempts and durations, rules with the values they read and
// the branch taken, events and signals), the time spent in each step, and
// the child sessions `run` steps started. Kinds: docs/workflows.md#the-timeline.

import { el, time, duration, tableWrap } from '../ui.js';

function json(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function attempts(list) {
  if (!Array.isArray(list) || !list.length) return null;
  return el('ol', { class: 'attempts' }, list.map((a) => {
    const bits = [];
    if (a && a.call) bits.push(a.call);
    else if (a && a.method) bits.push(`${a.method} ${a.path || a.url || ''}`.trim());
    if (a && a.status !== undefined) bits.push(`HTTP ${a.status}`);
    if (a && a.error) bits.push(`error: ${json(a.error)}`);
    if (a && a.duration_ms !== undefined) bits.push(duration(Number(a.duration_ms)));
    return el('li', {}, bits.length ? bits.join(' · ') : json(a));
  }));
}

function rule(d) {
  const inputs = d.inputs && typeof d.inputs === 'object' ? Object.entries(d.inputs) : [];
  return el('div', { class: 'rule' },
    el('code', {}, d.when || `rule ${d.rule}`),
    ' → ', el('strong', {}, d.result === true ? 'true' : d.result === false ? 'false' : json(d.result)),
    d.next ? el('span', {}, ', takes ', el('code', {}, d.next)) : null,
    d.error ? el('span', { class: 'error' }, ` error: ${json(d.error)}`) : null,
    inputs.length ? el('dl', { class: 'facts reads' }, inputs.flatMap(([k, v]) => [el('dt', {}, el('code', {}, k)), el('dd', {}, el('code', {}, json(v)))])) : null);
}

/** What one entry says, for people; the raw data stays a click away. */
function detail(e) {
  const d = e.data || {};
  switch (e.kind) {
    case 'provider.call':
    case 'provider.canceled':
    case 'provider.cancel_failed':
      return el('div', {}, el('code', {}, d.action || d.connector || ''), d.error ? el('span', { class: 'error' }, ` ${json(d.error)}`) : null, attempts(d.attempts));
    case 'rule.evaluated':
    case 'rule.error':
      return rule(d);
    case 'rule.default':
      return el('span', {}, 'no rule held: default ', el('code', {}, d.next));
    case 'event.received':
    case 'event.accepted':
    case 'event.replayed':
      return el('span', {}, el('code', {}, d.event), d.source ? ` from ${d.source}` : '');
    case 'wait.started':
      return el('span', {}, `waits for ${(d.events || []).join(', ') || 'its deadline'}`, d.deadline_ms ? ` until ${time(d.deadline_ms)}` : '');
    case 'session.ended':
      return el('span', {}, el('strong', {}, d.outcome), d.reason ? `: ${d.reason}` : '');
    case 'review.decided':
      return el('span', {}, el('strong', {}, d.decision), d.by ? ` by ${d.by.kind}:${d.by.id}` : '', d.note ? ` — ${d.note}` : '');
    case 'child.started':
    case 'child.created':
      return d.session_id ? el('span', {}, 'child ', el('a', { href: `/console/sessions/${encodeURIComponent(d.session_id)}`, class: 'mono' }, d.session_id), d.workflow ? ` (${d.workflow})` : '') : json(d);
    default: {
      const text = json(d);
      return text === '{}' ? '' : el('code', { class: 'raw' }, text.length > 300 ? `${text.slice(0, 299)}…` : text);
    }
  }
}

export function timelineTable(entries) {
  if (!entries.length) return el('p', { class: 'muted' }, 'Nothing recorded yet.');
  return tableWrap('Timeline', el('table', { class: 'timeline', id: 'timeline' },
    el('thead', {}, el('tr', {},
      el('th', { scope: 'col' }, 'At'), el('th', { scope: 'col' }, '+'), el('th', { scope: 'col' }, 'Step'),
      el('th', { scope: 'col' }, 'What'), el('th', { scope: 'col' }, 'Details'))),
    el('tbody', {}, entries.map((e) => el('tr', { class: `kind-${e.kind.replace(/[^a-z0-9]+/g, '-')}` },
      el('td', {}, el('time', { datetime: e.at }, time(e.at))),
      el('td', { class: 'num muted' }, duration(e.since_previous_ms)),
      el('td', { class: 'mono' }, e.step || ''),
      el('td', { class: 'mono' }, e.kind),
      el('td', {}, detail(e)))))));
}

/**
 * `[step, ms]` in the order first entered: from a step's first entry to the
 * next step's first (or, for the step it is in now, to now or its end).
 */
export function stepTimes(entries, session) {
  const out = new Map();
  let current = null;
  let since = 0;
  for (const e of entries) {
    if (!e.step || e.step === current) continue;
    const at = new Date(e.at).getTime();
    if (current) out.set(current, (out.get(current) || 0) + (at - since));
    current = e.step;
    since = at;
  }
  if (current) {
    const end = session.ended_at ? new Date(session.ended_at).getTime() : Date.now();
    out.set(current, (out.get(current) || 0) + Math.max(0, end - since));
  }
  return [...out.entries()];
}

/** The child sessions `run` steps started: `{id, workflow, step}`. */
export function children(entries) {
  const seen = new Map();
  for (const e of entries) {
    if ((e.kind === 'child.started' || e.kind === 'child.created' || e.kind === 'chat.run_started') && e.data) {
      const id = e.data.session_id || e.data.run;
      if (id && !seen.has(id)) seen.set(id, { id, workflow: e.data.workflow, step: e.step });
    }
  }
  return [...seen.values()];
}
