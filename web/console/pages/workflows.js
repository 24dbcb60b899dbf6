// Workflows: every loaded workflow with its versions, and per version how
// many sessions run, wait, and ended with each outcome (GET /v1/workflows
// and GET /v1/workflows/counts: one GROUP BY on the server).

import { el, header, tableWrap } from '../ui.js';

export const title = 'Workflows';

const OUTCOMES = ['approved', 'declined', 'review', 'failed', 'canceled', 'expired'];

export function countCells(counts) {
  const c = counts || { running: 0, waiting: 0, ended: {}, total: 0 };
  return [
    el('td', { class: 'num' }, c.running),
    el('td', { class: 'num' }, c.waiting),
    ...OUTCOMES.map((o) => el('td', { class: 'num' }, (c.ended && c.ended[o]) || 0)),
    el('td', { class: 'num total' }, c.total),
  ];
}

export function countHead(first) {
  return el('thead', {}, el('tr', {},
    el('th', { scope: 'col' }, first),
    el('th', { scope: 'col', class: 'num' }, 'running'),
    el('th', { scope: 'col', class: 'num' }, 'waiting'),
    ...OUTCOMES.map((o) => el('th', { scope: 'col', class: 'num' }, o)),
    el('th', { scope: 'col', class: 'num' }, 'total')));
}

export async function render(root, ctx) {
  root.append(header('Workflows'));
  const [list, counts] = await Promise.all([ctx.api('/v1/workflows'), ctx.api('/v1/workflows/counts')]);
  if (!ctx.isCurrent()) return;
  const byVersion = new Map(counts.data.map((r) => [`${r.workflow}\u0000${r.version}`, r.counts]));
  if (!list.data.length) {
    root.append(el('p', { class: 'muted' }, 'No workflows are loaded.'));
    return;
  }
  for (const wf of list.data) {
    const href = `/console/workflows/${encodeURIComponent(wf.id)}`;
    const rows = [...wf.versions].reverse().map((v) => el('tr', {},
      el('th', { scope: 'row' },
        el('a', { href: `${href}?version=${v}` }, `v${v}`),
        v === wf.version ? el('span', { class: 'badge badge-running latest' }, 'latest') : null),
      ...countCells(byVersion.get(`${wf.id}\u0000${v}`))));
    root.append(el('section', { class: 'card workflow-card', 'aria-labelledby': `wf-${wf.id}` },
      el('h2', { id: `wf-${wf.id}` }, el('a', { href }, wf.id)),
      wf.description ? el('p', { class: 'muted' }, wf.description) : null,
      tableWrap(`Sessions of ${wf.id} by version`, el('table', { class: 'counts' },
        el('caption', { class: 'visually-hidden' }, `Sessions of ${wf.id} by version`),
        countHead('version'),
        el('tbody', {}, rows)))));
  }
}
