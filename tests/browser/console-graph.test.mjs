// The console's graph layout (web/console/graph.js `layout`, pure: no DOM)
// and a session's path from its timeline, in node: layers go down along
// every edge that does not close a cycle, outcomes share the last layer,
// nodes of a layer never overlap, long edges are routed through a point in
// each layer they cross, cycle edges are set aside and drawn on the right.
import { test } from "node:test";
import assert from "node:assert/strict";
import { layout, sessionPath } from "../../web/console/graph.js";

const node = (id, kind = "call", start = false) => ({ id, kind, label: id, detail: "", line: 1, start });
const edge = (from, to, label = "") => ({ from, to, label, implicit: false });

const GRAPH = {
  nodes: [
    node("start", "call", true), node("wait", "wait"), node("decide", "decide"), node("retry", "call"),
    node("ok", "end"), node("late", "end"), node("outcome:approved", "outcome"), node("outcome:expired", "outcome"),
    node("outcome:failed", "outcome"),
  ],
  edges: [
    edge("start", "wait", "ok"), edge("start", "outcome:failed", "error"), edge("wait", "decide", "score.completed"),
    edge("wait", "late", "timeout"), edge("decide", "ok", "state.score >= 50"), edge("decide", "retry", "default"),
    edge("retry", "wait", "ok"), edge("ok", "outcome:approved"), edge("late", "outcome:expired"),
  ],
};

test("layers follow the edges, outcomes are last, a cycle is drawn back up", () => {
  const lay = layout(GRAPH);
  const at = Object.fromEntries(lay.nodes.map((n) => [n.id, n]));
  assert.equal(at.start.layer, 0);
  const last = Math.max(...lay.nodes.map((n) => n.layer));
  for (const n of lay.nodes) if (n.kind === "outcome") assert.equal(n.layer, last, n.id);
  for (const p of lay.edges) {
    const [from, to] = [at[p.edge.from], at[p.edge.to]];
    if (p.back) {
      // retry -> wait closes the cycle wait -> decide -> retry.
      assert.deepEqual([p.edge.from, p.edge.to], ["retry", "wait"]);
      assert.ok(p.points.every(([x]) => x >= Math.min(from.x + from.w, to.x + to.w)), "drawn on the right");
    } else {
      assert.ok(to.layer > from.layer, `${p.edge.from} -> ${p.edge.to}`);
      // One point per layer crossed, each lower than the one before.
      assert.equal(p.points.length, to.layer - from.layer + 1, `${p.edge.from} -> ${p.edge.to}`);
      for (let i = 1; i < p.points.length; i += 1) assert.ok(p.points[i][1] > p.points[i - 1][1]);
    }
  }
  assert.equal(lay.edges.filter((p) => p.back).length, 1);
  // No two nodes of a layer overlap, and all fit in the drawing.
  for (const a of lay.nodes) {
    assert.ok(a.x >= 0 && a.x + a.w <= lay.width && a.y + a.h <= lay.height, a.id);
    for (const b of lay.nodes) {
      if (a !== b && a.layer === b.layer) assert.ok(a.x + a.w <= b.x || b.x + b.w <= a.x, `${a.id} overlaps ${b.id}`);
    }
  }
});

test("a session's path: its steps in order, then its outcome once ended", () => {
  const entries = [
    { kind: "session.created", step: null }, { kind: "step.entered", step: "start" }, { kind: "provider.call", step: "start" },
    { kind: "step.entered", step: "wait" }, { kind: "event.accepted", step: "wait" }, { kind: "step.entered", step: "decide" },
  ];
  assert.deepEqual(sessionPath(entries, { status: "waiting", step: "decide" }), ["start", "wait", "decide"]);
  assert.deepEqual(sessionPath(entries, { status: "ended", step: "ok", outcome: "approved" }),
    ["start", "wait", "decide", "ok", "outcome:approved"]);
});
