// One workflow: per version its YAML source, its graph (computed by the
// server from the parsed workflow, drawn by graph.js) and its sessions by
// status and outcome. Choosing a node in the graph shows its line in the
// source. `?version=N` picks the version (the latest by default).

import { el, header, tableWrap } from '../ui.js';
import { drawGraph } from '../graph.js';
import { countCells, countHead } from './workflows.js';

export const title = 'Workflow';

function sourceView(source) {
  const lines = source.split('\n');
  const body = el('tbody', {}, lines.map((text, i) => el('tr', { id: `src-line-${i + 1}` },
    el('td', { class: 'line-no' }, i + 1),
    el('td', {}, el('code', {}, text || ' ')))));
  return el('div', { class: 'source-view', tabindex: '0', role: 'region', 'aria-label': 'YAML source' },
    el('table', { class: 'source' }, body));
}

export async function render(root, ctx, [id]) {
  const list = await ctx.api('/v1/workflows');
  if (!ctx.isCurrent()) return;
  const wf = list.data.find((w) => w.id === id);
  root.append(header(`Workflow ${id}`, el('a', { class: 'button secondary', href: `/console/sessions?workflow=${encodeURIComponent(id)}` }, 'Its sessions')));
  if (!wf) {
    root.append(el('p', { class: 'error', role: 'alert' }, `No workflow ${id} is loaded.`), el('a', { href: '/console/workflows' }, 'All workflows'));
    return;
  }
  if (wf.description) root.append(el('p', { class: 'muted' }, wf.description));
  const wanted = Number(new URLSearchParams(location.search).get('version'));
  let version = wf.versions.includes(wanted) ? wanted : wf.version;

  const picker = el('select', { id: 'version-pick' },
    [...wf.versions].reverse().map((v) => el('option', { value: v, selected: v === version }, `v${v}${v === wf.version ? ' (latest)' : ''}`)));
  const body = el('div', { id: 'workflow-version' });
  root.append(el('div', { class: 'filters' }, el('label', { for: 'version-pick' }, 'Version', picker)), body);

  async function show() {
    const v = await ctx.api(`/v1/workflows/${encodeURIComponent(id)}/versions/${version}`);
    if (!ctx.isCurrent()) return;
    const src = sourceView(v.source);
    let marked = null;
    const select = (node) => {
      if (!node.line) return;
      if (marked) marked.classList.remove('marked');
      marked = src.querySelector(`#src-line-${node.line}`);
      if (marked) {
        marked.classList.add('marked');
        marked.scrollIntoView({ block: 'center', behavior: 'smooth' });
      }
    };
    body.replaceChildren(
      el('h2', {}, `Sessions of v${v.version}`),
      tableWrap(`Sessions of v${v.version}`, el('table', { class: 'counts' }, countHead('version'),
        el('tbody', {}, el('tr', {}, el('th', { scope: 'row' }, `v${v.version}`), ...countCells(v.counts))))),
      el('div', { class: 'workflow-split' },
        el('section', { 'aria-labelledby': 'graph-h' }, el('h2', { id: 'graph-h' }, 'Graph'),
          el('p', { class: 'muted small' }, 'Choose a step to see it in the source.'),
          el('div', { class: 'graph-wrap', tabindex: '0', role: 'region', 'aria-label': 'Graph' }, drawGraph(v.graph, { title: `Graph of ${v.id} v${v.version}`, onSelect: select }))),
        el('section', { 'aria-labelledby': 'source-h' }, el('h2', { id: 'source-h' }, 'Source'), src)));
  }
  picker.addEventListener('change', () => {
    version = Number(picker.value);
    history.replaceState(null, '', `${location.pathname}?version=${version}`);
    show().catch((err) => body.replaceChildren(el('p', { class: 'error', role: 'alert' }, err.message)));
  });
  await show();
}
