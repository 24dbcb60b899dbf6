// A workflow graph (the `graph` of GET /v1/workflows/{id}/versions/{v} or
// of the studio's validation) laid out top-down in layers and drawn as SVG,
// with no library: a Sugiyama-style layout small enough to read.
//
// 1. Layers: edges that close a cycle (found by a depth-first walk from the
//    start step) are set aside; every other node goes one layer below the
//    lowest of its predecessors (longest path); outcomes share the last layer.
// 2. An edge spanning several layers gets a virtual point in each layer it
//    crosses, so it is routed between nodes instead of through them.
// 3. Order within a layer: a few sweeps of the barycenter heuristic (each
//    node moves towards the mean position of its neighbours in the layer
//    above, then below), which removes most crossings of graphs this size.
// 4. Coordinates: layers stacked, each centred; cycle edges drawn on the
//    right as arcs going back up.
//
// `layout(graph)` is pure (no DOM: tests run it in node); `drawGraph`
// builds the SVG, highlighting a session's path and its current step.

import { svg } from './ui.js';

const NODE_W = 168;
const NODE_H = 46;
const POINT_W = 16;
const GAP_X = 28;
const GAP_Y = 62;
const PAD = 16;
const LABEL_MAX = 18;

/** The layered layout: positioned nodes, edges as point lists, the size. */
export function layout(graph) {
  const nodes = graph.nodes.map((n) => ({ ...n }));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const edges = graph.edges.filter((e) => byId.has(e.from) && byId.has(e.to));
  const out = new Map(nodes.map((n) => [n.id, []]));
  for (const e of edges) out.get(e.from).push(e);

  // 1. Back edges: those reaching a node still on the walk's stack.
  const back = new Set();
  const state = new Map();
  const start = nodes.find((n) => n.start) || nodes[0];
  const roots = start ? [start, ...nodes.filter((n) => n !== start)] : [];
  for (const root of roots) {
    if (state.has(root.id)) continue;
    const stack = [[root.id, 0]];
    state.set(root.id, 'open');
    while (stack.length) {
      const top = stack[stack.length - 1];
      const list = out.get(top[0]);
      if (top[1] >= list.length) {
        state.set(top[0], 'done');
        stack.pop();
        continue;
      }
      const e = list[top[1]++];
      const s = state.get(e.to);
      if (s === 'open') back.add(e);
      else if (!s) {
        state.set(e.to, 'open');
        stack.push([e.to, 0]);
      }
    }
  }
  const forward = edges.filter((e) => !back.has(e) && e.from !== e.to);

  // Longest path over the forward edges (they form a DAG), in topological order.
  const indeg = new Map(nodes.map((n) => [n.id, 0]));
  for (const e of forward) indeg.set(e.to, indeg.get(e.to) + 1);
  const layer = new Map(nodes.map((n) => [n.id, 0]));
  const queue = nodes.filter((n) => indeg.get(n.id) === 0).map((n) => n.id);
  while (queue.length) {
    const id = queue.shift();
    for (const e of forward) {
      if (e.from !== id) continue;
      layer.set(e.to, Math.max(layer.get(e.to), layer.get(id) + 1));
      indeg.set(e.to, indeg.get(e.to) - 1);
      if (indeg.get(e.to) === 0) queue.push(e.to);
    }
  }
  const steps = nodes.filter((n) => n.kind !== 'outcome');
  const last = Math.max(0, ...steps.map((n) => layer.get(n.id))) + 1;
  for (const n of nodes) if (n.kind === 'outcome') layer.set(n.id, last);

  // 2. Layers with virtual points on long edges.
  const layers = [];
  const put = (item, l) => { (layers[l] ||= []).push(item); item.layer = l; };
  for (const n of nodes) put(n, layer.get(n.id));
  const routes = [];
  for (const e of edges) {
    const a = byId.get(e.from);
    const b = byId.get(e.to);
    const chain = [a];
    if (!back.has(e) && e.from !== e.to) {
      for (let l = a.layer + 1; l < b.layer; l += 1) {
        const p = { id: `${e.from}->${e.to}#${l}`, point: true };
        put(p, l);
        chain.push(p);
      }
    }
    chain.push(b);
    routes.push({ edge: e, chain, back: back.has(e) || e.from === e.to });
  }

  // 3. Barycenter sweeps over the links between adjacent layers.
  const up = new Map();
  const down = new Map();
  const link = (x, y) => {
    (down.get(x) || down.set(x, []).get(x)).push(y);
    (up.get(y) || up.set(y, []).get(y)).push(x);
  };
  for (const r of routes) if (!r.back) for (let i = 1; i < r.chain.length; i += 1) link(r.chain[i - 1], r.chain[i]);
  const order = () => layers.forEach((row) => row && row.forEach((it, i) => { it.order = i; }));
  order();
  const sweep = (row, neighbours) => {
    const key = new Map(row.map((it) => {
      const ns = neighbours.get(it) || [];
      return [it, ns.length ? ns.reduce((s, n) => s + n.order, 0) / ns.length : it.order];
    }));
    row.sort((p, q) => key.get(p) - key.get(q));
    row.forEach((it, i) => { it.order = i; });
  };
  for (let pass = 0; pass < 6; pass += 1) {
    for (let l = 1; l < layers.length; l += 1) if (layers[l]) sweep(layers[l], up);
    for (let l = layers.length - 2; l >= 0; l -= 1) if (layers[l]) sweep(layers[l], down);
  }

  // 4. Coordinates: each layer centred on the widest.
  const widthOf = (it) => (it.point ? POINT_W : NODE_W);
  const rowWidth = (row) => row.reduce((s, it) => s + widthOf(it), 0) + GAP_X * Math.max(0, row.length - 1);
  const widest = Math.max(NODE_W, ...layers.map((row) => (row ? rowWidth(row) : 0)));
  const hasBack = routes.some((r) => r.back);
  layers.forEach((row, l) => {
    if (!row) return;
    let x = PAD + (widest - rowWidth(row)) / 2;
    for (const it of row) {
      it.w = widthOf(it);
      it.h = it.point ? 0 : NODE_H;
      it.x = x;
      it.y = PAD + l * (NODE_H + GAP_Y) + (it.point ? NODE_H / 2 : 0);
      x += it.w + GAP_X;
    }
  });
  const width = widest + PAD * 2 + (hasBack ? 60 : 0);
  const height = PAD * 2 + layers.length * NODE_H + Math.max(0, layers.length - 1) * GAP_Y;
  const right = PAD + widest;
  const paths = routes.map((r, i) => ({
    edge: r.edge,
    back: r.back,
    points: r.back ? backRoute(r.chain[0], r.chain[r.chain.length - 1], right, i) : route(r.chain),
  }));
  return { nodes, edges: paths, width, height };
}

/** Points of a forward edge: bottom of its source, through its virtual points, top of its target. */
function route(chain) {
  const pts = [];
  chain.forEach((it, i) => {
    const cx = it.x + it.w / 2;
    if (i === 0) pts.push([cx, it.y + it.h]);
    else if (i === chain.length - 1) pts.push([cx, it.y]);
    else pts.push([cx, it.y]);
  });
  return pts;
}

/** A cycle's edge: out of the source's right side, up the right margin, into the target's right side. */
function backRoute(a, b, right, i) {
  const lane = right + 14 + (i % 4) * 10;
  if (a === b) return [[a.x + a.w, a.y + 12], [lane, a.y + 12], [lane, a.y + a.h - 12], [a.x + a.w, a.y + a.h - 12]];
  return [[a.x + a.w, a.y + a.h / 2], [lane, a.y + a.h / 2], [lane, b.y + b.h / 2], [b.x + b.w, b.y + b.h / 2]];
}

function pathData(points, back) {
  if (back) return `M${points.map((p) => p.join(',')).join(' L')}`;
  let d = `M${points[0][0]},${points[0][1]}`;
  for (let i = 1; i < points.length; i += 1) {
    const [x0, y0] = points[i - 1];
    const [x1, y1] = points[i];
    const my = (y0 + y1) / 2;
    d += ` C${x0},${my} ${x1},${my} ${x1},${y1}`;
  }
  return d;
}

function short(text, max = LABEL_MAX) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

let drawn = 0;

/**
 * The graph as an <svg>. Options: `path` (step ids a session went through,
 * in order: their nodes and the edges between consecutive ones are marked),
 * `current` (the step it is in now), `title` (its accessible name),
 * `onSelect(node)` (nodes become buttons: the studio jumps to the line).
 */
export function drawGraph(graph, { path = [], current = null, title = 'Workflow graph', onSelect = null } = {}) {
  const lay = layout(graph);
  const id = `g${(drawn += 1)}`;
  const visited = new Set(path);
  const taken = new Set();
  for (let i = 1; i < path.length; i += 1) taken.add(`${path[i - 1]}\u0000${path[i]}`);
  const root = svg('svg', {
    class: 'graph', viewBox: `0 0 ${lay.width} ${lay.height}`, width: lay.width, height: lay.height,
    role: 'img', 'aria-labelledby': `${id}-title`,
  });
  root.append(svg('title', { id: `${id}-title` }, title));
  root.append(svg('defs', {},
    svg('marker', { id: `${id}-arrow`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' },
      svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' })),
    svg('marker', { id: `${id}-arrow-on`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' },
      svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow on-path' }))));
  const edgeLayer = svg('g', { class: 'edges' });
  const labelLayer = svg('g', { class: 'edge-labels' });
  for (const p of lay.edges) {
    const on = taken.has(`${p.edge.from}\u0000${p.edge.to}`);
    const cls = ['edge', p.back && 'back', p.edge.implicit && 'implicit', on && 'on-path'].filter(Boolean).join(' ');
    edgeLayer.append(svg('path', {
      class: cls, d: pathData(p.points, p.back), 'marker-end': `url(#${id}-arrow${on ? '-on' : ''})`,
      'data-from': p.edge.from, 'data-to': p.edge.to,
    }));
    if (p.edge.label) {
      // Halfway along the first segment: a node's edges fan out towards
      // their targets, so their labels spread out with them.
      const [a, b] = p.points;
      const x = p.back ? b[0] - 4 : a[0] + (b[0] - a[0]) * 0.5;
      const y = p.back ? (b[1] + p.points[2][1]) / 2 : a[1] + (b[1] - a[1]) * 0.5;
      const text = short(p.edge.label);
      labelLayer.append(svg('g', { class: `edge-label${on ? ' on-path' : ''}`, transform: `translate(${x},${y})` },
        svg('title', {}, p.edge.label),
        svg('rect', { x: -(text.length * 3.2) - 4, y: -8, width: text.length * 6.4 + 8, height: 16, rx: 3 }),
        svg('text', { 'text-anchor': 'middle', y: 4 }, text)));
    }
  }
  const nodeLayer = svg('g', { class: 'nodes' });
  for (const n of lay.nodes) {
    const cls = ['node', `node-${n.kind}`, visited.has(n.id) && 'on-path', n.id === current && 'current', n.start && 'start']
      .filter(Boolean).join(' ');
    const g = svg('g', { class: cls, transform: `translate(${n.x},${n.y})`, 'data-id': n.id });
    const what = n.kind === 'outcome' ? `outcome ${n.label}` : `${n.kind} step ${n.label}${n.detail ? `, ${n.detail}` : ''}`;
    // As a button (the studio) the node is named by aria-label below; a
    // <title> would count as its visible text and no longer match it.
    if (!onSelect) g.append(svg('title', {}, `${what}${n.line ? ` (line ${n.line})` : ''}${n.id === current ? ', current step' : ''}`));
    g.append(svg('rect', { width: n.w, height: n.h, rx: n.kind === 'outcome' ? n.h / 2 : 6 }));
    const shown = [short(n.label, 22)];
    // The trailing space (not drawn) keeps the two lines two words for
    // assistive technology, which reads the <text> elements run together.
    g.append(svg('text', { class: 'node-label', x: n.w / 2, y: n.detail ? 19 : 28, 'text-anchor': 'middle' }, `${shown[0]} `));
    if (n.detail || n.kind !== 'outcome') {
      shown.push(short(n.detail ? `${n.kind} · ${n.detail}` : n.kind, 28));
      g.append(svg('text', { class: 'node-detail', x: n.w / 2, y: 36, 'text-anchor': 'middle' }, shown[1]));
    }
    if (onSelect) {
      g.setAttribute('tabindex', '0');
      g.setAttribute('role', 'button');
      // A button's name starts with the text it shows (WCAG 2.5.3, label in name).
      g.setAttribute('aria-label', `${shown.join(' ')}${n.line ? `, line ${n.line}` : ''}${n.id === current ? ', current step' : ''}`);
      g.addEventListener('click', () => onSelect(n));
      g.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          onSelect(n);
        }
      });
    }
    nodeLayer.append(g);
  }
  if (onSelect) root.setAttribute('role', 'group');
  root.append(edgeLayer, nodeLayer, labelLayer);
  return root;
}

/**
 * The steps a session went through, in order, from its timeline entries
 * (each names the step it happened in), ending with its outcome's node
 * when it ended.
 */
export function sessionPath(entries, session) {
  const path = [];
  for (const e of entries || []) {
    if (e.step && path[path.length - 1] !== e.step) path.push(e.step);
  }
  if (session && session.step && path[path.length - 1] !== session.step) path.push(session.step);
  if (session && session.status === 'ended' && session.outcome) path.push(`outcome:${session.outcome}`);
  return path;
}
