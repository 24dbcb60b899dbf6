// Lists what the demo backend received (its own endpoint, not a provider),
// newest first, refreshed every two seconds while the page is visible.
const list = document.getElementById("hooks");
const summary = document.getElementById("summary");
let shown = "";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function item(w) {
  const li = el("li", `hook ${w.verified ? "ok" : "bad"}`);
  const head = el("div", "hook-head");
  head.append(
    el("span", `badge ${w.verified ? "ok" : "bad"}`, w.verified ? "✓ Signature verified" : "✕ Signature invalid"),
    el("code", "hook-type", w.event_type || "unreadable body"),
    el("time", "hook-time", new Date(w.received_at).toLocaleTimeString()),
  );
  const facts = el("dl", "hook-facts");
  const fact = (k, v) => {
    if (!v) return;
    facts.append(el("dt", "", k), el("dd", "", v));
  };
  fact("Session", w.session_id);
  fact("Status", w.status);
  fact("Outcome", w.outcome);
  fact("webhook-id", w.webhook_id);
  fact("Refused because", w.error);
  const body = el("details", "hook-body");
  body.append(el("summary", "", "Body"), el("pre", "", JSON.stringify(w.body, null, 2)));
  li.append(head, facts, body);
  return li;
}

async function refresh() {
  try {
    const res = await fetch("/demo/api/webhooks", { cache: "no-store" });
    const { data } = await res.json();
    const key = JSON.stringify(data.map((w) => w.webhook_id + w.received_at));
    if (key === shown) return;
    shown = key;
    const verified = data.filter((w) => w.verified).length;
    summary.textContent = data.length
      ? `${data.length} received, ${verified} verified.`
      : "No webhooks yet. Start a flow on the onboarding page: the backend hears about every change.";
    list.replaceChildren(...data.map(item));
  } catch (e) {
    summary.textContent = `Could not load the webhooks (${e.message}).`;
  }
}

refresh();
setInterval(() => {
  if (document.visibilityState === "visible") refresh();
}, 2000);
