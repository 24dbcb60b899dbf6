// The studio's graph: the valid draft drawn by the console's graph module
// (graph.js, the same drawing as a workflow's page), redrawn on each valid
// check; while the draft has problems the last valid graph stays, marked
// as not current. A node is a button that puts the caret on its step's
// line; a dry run being stepped through marks the path so far.

import { el } from '../ui.js';
import { drawGraph } from '../graph.js';

export function graphPane({ onSelect } = {}) {
  const status = el('p', { class: 'muted', role: 'status' }, 'The graph appears once the draft is valid.');
  const holder = el('div', { class: 'graph-holder' });
  const root = el('div', { class: 'graph-pane' }, status, holder);
  let graph = null;
  let name = '';
  let path = [];
  let current = null;

  function redraw() {
    if (!graph) return;
    holder.replaceChildren(drawGraph(graph, {
      path, current, title: `Graph of ${name}`, onSelect,
    }));
  }

  return {
    root,
    draw(g, workflow) {
      graph = g;
      name = workflow ? `${workflow.id} v${workflow.version}` : 'the draft';
      root.classList.remove('stale');
      status.textContent = `${name}: ${g.nodes.length} nodes, ${g.edges.length} edges.`;
      redraw();
    },
    stale() {
      if (!graph) return;
      root.classList.add('stale');
      status.textContent = `The draft has problems: the graph shows the last valid draft (${name}).`;
    },
    /** Marks the dry run's path so far and the step it is in. */
    highlight(step, soFar = []) {
      current = step;
      path = soFar;
      redraw();
    },
  };
}
