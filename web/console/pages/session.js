// One session, for the support desk: what it is (header, time in each
// step), what it waits on now with a live countdown, its provider sessions,
// its timeline (events, calls with attempts and durations, rule evaluations
// with the values they read and the branch taken, signals), the workflow
// graph with the path it took and its current step, its child sessions, its
// deliveries to the customer's backend (redeliver), and cancel. Live: the
// change stream (live.js) reloads it as the session moves. Everything comes
// from the documented API, whose timeline is redacted: no secret reaches
// this page.

import { el, badge, time, ago, duration, header, toast, errorText, tableWrap } from '../ui.js';
import { drawGraph, sessionPath } from '../graph.js';
import { follow } from '../live.js';
import { timelineTable, stepTimes, children } from './session_timeline.js';

export const title = 'Session';

function facts(pairs) {
  return el('dl', { class: 'facts' }, pairs.filter(Boolean).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function workflowLink(s) {
  return el('a', { href: `/console/workflows/${encodeURIComponent(s.workflow)}?version=${s.version}` }, `${s.workflow} v${s.version}`);
}

function waitingCard(s, clock) {
  const w = s.waiting_on;
  if (!w) return null;
  const countdown = el('strong', { class: 'countdown', id: 'countdown' });
  const tick = () => {
    const left = new Date(w.deadline).getTime() - Date.now();
    countdown.textContent = left > 0 ? duration(left) : 'due now';
    countdown.classList.toggle('late', left <= 0);
  };
  tick();
  clock.push(setInterval(tick, 1000));
  const on = w.review
    ? `a reviewer${w.review.group ? ` (group ${w.review.group})` : ''}`
    : w.session ? 'its child session' : (w.events.length ? w.events.join(', ') : 'its deadline');
  return el('section', { class: 'card waiting', 'aria-labelledby': 'waiting-h' },
    el('h2', { id: 'waiting-h' }, 'Waiting'),
    facts([
      ['On', on],
      w.session && ['Child session', el('a', { href: `/console/sessions/${encodeURIComponent(w.session)}`, class: 'mono' }, w.session)],
      w.review && ['Review', el('a', { href: '/console/reviews' }, 'in the review queue')],
      ['Since', el('span', {}, time(w.since), ' ', el('span', { class: 'muted' }, `(${ago(w.since)})`))],
      ['Deadline', el('span', {}, time(w.deadline), ' · ', countdown, el('span', { class: 'muted' }, ' left'))],
    ]));
}

function providersCard(s) {
  const list = s.providers || [];
  if (!list.length) return null;
  return el('section', { class: 'card', 'aria-labelledby': 'providers-h' },
    el('h2', { id: 'providers-h' }, 'Provider sessions'),
    el('ul', { class: 'plain', id: 'providers' }, list.map((p) => el('li', {},
      el('strong', {}, p.connector), ': ', el('span', { class: 'mono' }, p.provider_session_id)))));
}

function deliveriesCard(list, ctx, reload) {
  const canRedeliver = ctx.can('sessions:write');
  const rows = list.map((d) => el('tr', {},
    el('td', { class: 'mono' }, d.id),
    el('td', {}, d.event_type),
    el('td', {}, badge(d.status)),
    el('td', { class: 'num' }, d.attempts),
    el('td', {}, d.attempt_log.length
      ? el('ol', { class: 'attempts' }, d.attempt_log.map((a) => el('li', {},
        `${time(a.at)}: `, a.status_code ? `HTTP ${a.status_code}` : (a.error || 'no answer'),
        ` in ${duration(a.duration_ms)}`)))
      : (d.next_attempt_at ? `next at ${time(d.next_attempt_at)}` : '—')),
    el('td', {}, canRedeliver ? el('button', {
      type: 'button', class: 'secondary', 'data-delivery': d.id,
      onclick: async (e) => {
        e.target.disabled = true;
        try {
          await ctx.api(`/v1/deliveries/${encodeURIComponent(d.id)}/redeliver`, { method: 'POST' });
          toast(`Delivery ${d.id} sent again`);
          reload();
        } catch (err) {
          toast(`Redelivery failed: ${errorText(err)}`, 'error');
          e.target.disabled = false;
        }
      },
    }, 'Redeliver') : null)));
  return el('section', { 'aria-labelledby': 'deliveries-h' },
    el('h2', { id: 'deliveries-h' }, 'Deliveries to your backend'),
    list.length
      ? tableWrap('Deliveries', el('table', {},
        el('thead', {}, el('tr', {}, ['Id', 'Event', 'Status', 'Attempts', 'Results', ''].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, rows)))
      : el('p', { class: 'muted' }, 'None yet.'));
}

function cancelDialog(s, ctx, reload) {
  const reason = el('textarea', { id: 'cancel-reason', rows: 2, maxlength: 1000 });
  const dialog = el('dialog', { id: 'cancel-dialog', 'aria-labelledby': 'cancel-h' },
    el('form', { method: 'dialog' },
      el('h2', { id: 'cancel-h' }, `Cancel ${s.id}?`),
      el('p', {}, 'The session ends canceled; your backend is notified. This cannot be undone.'),
      el('label', { for: 'cancel-reason' }, 'Reason (optional)'), reason,
      el('div', { class: 'actions' },
        el('button', { type: 'submit', value: 'confirm', class: 'danger', id: 'cancel-confirm' }, 'Cancel the session'),
        el('button', { type: 'submit', value: 'keep', class: 'secondary' }, 'Keep it'))));
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'confirm') return;
    try {
      const body = reason.value.trim() ? { reason: reason.value.trim() } : {};
      await ctx.api(`/v1/sessions/${encodeURIComponent(s.id)}/cancel`, { method: 'POST', body });
      toast('Session canceled');
      reload();
    } catch (err) {
      toast(`Cancel failed: ${errorText(err)}`, 'error');
    }
  });
  const open = el('button', { type: 'button', class: 'danger', id: 'cancel', onclick: () => { dialog.returnValue = ''; dialog.showModal(); } }, 'Cancel session');
  return [open, dialog];
}

/**
 * The graph as this session saw it: a session canceled, or one whose run
 * ended it with its child's outcome, ended in an outcome no `end` step
 * names; it is added, reached from the step the session was in.
 */
function withEnding(graph, s, path) {
  const node = `outcome:${s.outcome}`;
  if (s.status !== 'ended' || !s.outcome || graph.nodes.some((n) => n.id === node)) return graph;
  const from = path[path.length - 2];
  return {
    nodes: [...graph.nodes, { id: node, kind: 'outcome', label: s.outcome, detail: '', line: null, start: false }],
    edges: from ? [...graph.edges, { from, to: node, label: s.outcome, implicit: true }] : graph.edges,
  };
}

export async function render(root, ctx, [id]) {
  const clock = [];
  let graphOf = null;
  let loading = null;
  let again = false;

  async function draw() {
    const [tl, deliveries] = await Promise.all([
      ctx.api(`/v1/sessions/${encodeURIComponent(id)}/timeline`),
      ctx.api(`/v1/sessions/${encodeURIComponent(id)}/deliveries`).catch(() => ({ data: [] })),
    ]);
    const s = tl.session;
    if (!graphOf || graphOf.key !== `${s.workflow}@${s.version}`) {
      const v = await ctx.api(`/v1/workflows/${encodeURIComponent(s.workflow)}/versions/${s.version}`).catch(() => null);
      graphOf = { key: `${s.workflow}@${s.version}`, graph: v && v.graph };
    }
    if (!ctx.isCurrent()) return;
    clock.splice(0).forEach(clearInterval);
    const ended = s.status === 'ended';
    const actions = [];
    if (!ended && ctx.can('sessions:write')) actions.push(...cancelDialog(s, ctx, reload));
    const path = sessionPath(tl.entries, s);
    const times = stepTimes(tl.entries, s);
    const kids = children(tl.entries);
    root.replaceChildren(...[
      header(`Session ${s.id}`, ...actions),
      el('section', { class: 'card', 'aria-label': 'Summary' }, facts([
        ['Workflow', workflowLink(s)],
        ['Status', el('span', { id: 'session-status' }, badge(s.status))],
        ['Step', el('span', { class: 'mono', id: 'session-step' }, s.step || '—')],
        ['Outcome', s.outcome ? badge(s.outcome) : '—'],
        s.reason && ['Reason', s.reason],
        ['Reference', s.reference || '—'],
        ['Created', time(s.created_at)],
        ['Ended', s.ended_at ? time(s.ended_at) : '—'],
        s.erased_at && ['Erased', time(s.erased_at)],
        times.length && ['Time per step', el('ul', { class: 'plain step-times' },
          times.map(([step, ms]) => el('li', {}, el('span', { class: 'mono' }, step), `: ${duration(ms)}`)))],
      ])),
      waitingCard(s, clock),
      providersCard(s),
      el('section', { 'aria-labelledby': 'graph-h' },
        el('h2', { id: 'graph-h' }, 'Path through the workflow'),
        graphOf.graph
          ? el('div', { class: 'graph-wrap', id: 'session-graph', tabindex: '0', role: 'region', 'aria-label': 'Workflow graph' }, drawGraph(withEnding(graphOf.graph, s, path), {
            path, current: ended ? null : s.step, title: `Graph of ${s.workflow} v${s.version}: the steps this session took${ended ? '' : `, now in ${s.step}`}`,
          }))
          : el('p', { class: 'muted' }, 'The graph is not available.')),
      kids.length ? el('section', { 'aria-labelledby': 'children-h' },
        el('h2', { id: 'children-h' }, 'Child sessions'),
        el('ul', { class: 'plain' }, kids.map((k) => el('li', {},
          el('a', { href: `/console/sessions/${encodeURIComponent(k.id)}`, class: 'mono' }, k.id),
          ` (${k.workflow || 'workflow'}${k.step ? `, from step ${k.step}` : ''})`)))) : null,
      el('section', { 'aria-labelledby': 'timeline-h' },
        el('h2', { id: 'timeline-h' }, 'Timeline'),
        timelineTable(tl.entries)),
      deliveriesCard(deliveries.data, ctx, reload),
    ].filter(Boolean));
  }

  // One load at a time; a change during a load loads once more after it.
  function reload() {
    if (loading) {
      again = true;
      return loading;
    }
    loading = draw().catch((err) => {
      if (ctx.isCurrent()) toast(errorText(err), 'error');
    }).finally(() => {
      loading = null;
      if (again) {
        again = false;
        reload();
      }
    });
    return loading;
  }

  await draw();
  const stop = follow({
    onReady: reload,
    onSession: (s) => { if (s.id === id) reload(); },
    onResync: reload,
  });
  return () => {
    stop();
    clock.splice(0).forEach(clearInterval);
  };
}
