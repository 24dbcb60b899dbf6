// Unit tests of the SDK's logic (no browser): event-stream parsing, the
// reconnecting stream client, backoff, renderer selection, URL checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EventStreamParser,
  EventStreamClient,
  backoff,
  selectRenderer,
  registerRenderer,
  safeUrl,
} from "../../web/sdk/gangway.js";

test("parser: events with id, type and multi-line data; comments ignored", () => {
  const p = new EventStreamParser();
  const got = p.push(": keep-alive\n\nid: 1\nevent: step\ndata: {\"a\":\ndata: 1}\n\nid: 2\nevent: ended\ndata: {}\n\n");
  assert.deepEqual(got, [
    { id: "1", event: "step", data: "{\"a\":\n1}" },
    { id: "2", event: "ended", data: "{}" },
  ]);
});

test("parser: any chunking gives the same events, CRLF split across chunks included", () => {
  const text = "\ufeffid: 7\r\nevent: step\r\ndata: x\r\n\r\n:c\rid: 8\revent: ended\rdata:y\r\r";
  const whole = new EventStreamParser().push(text);
  assert.deepEqual(whole, [
    { id: "7", event: "step", data: "x" },
    { id: "8", event: "ended", data: "y" },
  ]);
  for (let size = 1; size <= 5; size++) {
    const p = new EventStreamParser();
    const got = [];
    for (let i = 0; i < text.length; i += size) got.push(...p.push(text.slice(i, i + size)));
    assert.deepEqual(got, whole, `chunks of ${size}`);
  }
});

test("parser: id persists, retry is read, blank data dispatches nothing, default type is message", () => {
  const p = new EventStreamParser();
  assert.deepEqual(p.push("id: 3\n\n"), []);
  assert.equal(p.lastEventId, "3");
  assert.deepEqual(p.push("retry: 500\nevent: reconnect\ndata: {}\n\n"), [{ id: "3", event: "reconnect", data: "{}" }]);
  assert.equal(p.retry, 500);
  p.push("retry: soon\n\n");
  assert.equal(p.retry, 500, "a non-numeric retry is ignored");
  assert.deepEqual(p.push("event: step\n\n"), [], "an event without data is not dispatched");
  assert.deepEqual(p.push("data\n\n"), [{ id: "3", event: "message", data: "" }], "an empty data line is");
  assert.deepEqual(p.push("data: hi\n\n"), [{ id: "3", event: "message", data: "hi" }]);
});

test("backoff: exponential, capped, with jitter in [cap/2, cap]", () => {
  const lo = (a) => backoff(a, { base: 500, max: 8000, random: () => 0 });
  const hi = (a) => backoff(a, { base: 500, max: 8000, random: () => 1 });
  assert.deepEqual([0, 1, 2, 3, 4, 10].map(hi), [500, 1000, 2000, 4000, 8000, 8000]);
  assert.deepEqual([0, 1, 2, 3, 4, 10].map(lo), [250, 500, 1000, 2000, 4000, 4000]);
  assert.ok(Number.isFinite(backoff(5000)));
});

test("renderer selection: states, known kinds, unknown kinds, plug-ins", () => {
  const view = (status, present) => ({ id: "s", status, step: { name: "x", present }, outcome: null });
  assert.equal(selectRenderer(null), "connecting");
  assert.equal(selectRenderer(view("running", null)), "working");
  assert.equal(selectRenderer(view("waiting", { kind: "iframe", url: "https://a" })), "iframe");
  assert.equal(selectRenderer(view("waiting", { kind: "qr", svg: "<svg/>" })), "qr");
  assert.equal(selectRenderer(view("waiting", { kind: "popup", url: "https://a" })), "popup");
  assert.equal(selectRenderer(view("waiting", { kind: "chat" })), "chat");
  assert.equal(selectRenderer({ ...view("ended", { kind: "iframe" }), outcome: "approved" }), "ended");
  assert.equal(selectRenderer(view("waiting", { kind: "hologram" })), "unsupported");
  registerRenderer("hologram", () => ({ destroy() {} }));
  assert.equal(selectRenderer(view("waiting", { kind: "hologram" })), "hologram");
  assert.throws(() => registerRenderer("x", "not a function"), TypeError);
});

test("safeUrl: only absolute http(s) URLs", () => {
  assert.equal(safeUrl("https://id.example/flow/1"), "https://id.example/flow/1");
  assert.equal(safeUrl("http://127.0.0.1:8080/sim/incode/flow/1"), "http://127.0.0.1:8080/sim/incode/flow/1");
  for (const bad of ["javascript:alert(1)", "data:text/html,x", "", null, 42, "not a url"]) {
    assert.equal(safeUrl(bad), null, String(bad));
  }
});

// --- the stream client, against a scripted fetch -------------------------

/** A Response whose body yields `chunks`, then ends (or errors with `fail`). */
function streamResponse(chunks, { status = 200, fail = false } = {}) {
  const enc = new TextEncoder();
  const queue = [...chunks];
  const body = new ReadableStream({
    pull(c) {
      if (queue.length) c.enqueue(enc.encode(queue.shift()));
      else if (fail) c.error(new TypeError("network error"));
      else c.close();
    },
  });
  return new Response(body, { status, headers: { "content-type": "text/event-stream" } });
}

function scripted(answers, probeAnswer = () => problem(401, "unauthorized")) {
  const calls = [];
  const probes = [];
  const fetch = async (url, init) => {
    // A request without the secret is the probe after a failed request.
    if (!init.headers?.Authorization) {
      probes.push({ url, init });
      return probeAnswer();
    }
    calls.push({ url, headers: { ...init.headers } });
    const next = answers.shift();
    if (!next) return new Promise(() => {}); // hang: nothing more scripted
    if (next instanceof Error) throw next;
    return next();
  };
  return { fetch, calls, probes };
}

/** A problem JSON response with the `type` slug the server sends. */
function problem(status, slug, detail = slug) {
  return new Response(JSON.stringify({ type: `https://gangway.dev/problems/${slug}`, status, detail }), {
    status,
    headers: { "content-type": "application/problem+json" },
  });
}

/** Runs a client until it closes or fails; timers fire at once but delays are recorded. */
function run(answers, extra = {}, probeAnswer = undefined) {
  const { fetch, calls, probes } = scripted(answers, probeAnswer);
  const delays = [];
  const events = [];
  const states = [];
  return new Promise((resolve) => {
    const client = new EventStreamClient({
      url: "https://gw.example/v1/client/sessions/ses_1/events",
      secret: "gwcs_secret",
      fetch,
      setTimeout: (f, ms) => {
        if (ms < 1000 * 30) delays.push(ms);
        return ms >= 1000 * 30 ? 0 : setImmediate(f);
      },
      clearTimeout: (t) => t && clearImmediate(t),
      idleTimeoutMs: 60000,
      backoff: { base: 100, max: 1000 },
      onEvent: (ev) => {
        events.push(ev);
        return ev.event === "ended";
      },
      onState: (s) => {
        states.push(s);
        if (s === "closed" || s === "failed") resolve({ client, calls, probes, delays, events, states });
      },
      onFatal: (err) => states.push(`fatal ${err.status} ${err.code} ${err.message}`),
      ...extra,
    });
    client.start();
  });
}

test("client: the secret goes in the Authorization header only, never in the URL", async () => {
  const { calls, events, states } = await run([() => streamResponse(["id: 1\nevent: ended\ndata: {}\n\n"])]);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].headers.Authorization, "Bearer gwcs_secret");
  assert.ok(!calls[0].url.includes("gwcs_secret"));
  assert.equal(calls[0].headers["Last-Event-ID"], undefined);
  assert.deepEqual(events.map((e) => e.id), ["1"]);
  assert.deepEqual(states, ["connecting", "live", "closed"]);
});

test("client: after a dropped stream it reconnects with Last-Event-ID and misses nothing", async () => {
  const { calls, events, delays } = await run([
    () => streamResponse(["id: 1\nevent: step\ndata: {}\n\nid: 2\nevent: st", "ep\ndata: {}\n\n"], { fail: true }),
    new TypeError("Failed to fetch"),
    () => streamResponse([], { status: 503 }),
    () => streamResponse(["id: 3\nevent: step\ndata: {}\n\n"]),
    () => streamResponse(["id: 4\nevent: ended\ndata: {}\n\n"]),
  ]);
  assert.deepEqual(events.map((e) => e.id), ["1", "2", "3", "4"]);
  assert.deepEqual(
    calls.map((c) => c.headers["Last-Event-ID"]),
    [undefined, "2", "2", "2", "3"],
  );
  // Backoff grows while failing and starts over after a good connection.
  const reconnectDelays = delays.filter((d) => d !== 60000);
  assert.equal(reconnectDelays.length, 4);
  assert.ok(reconnectDelays[0] <= 100 && reconnectDelays[1] > 100 && reconnectDelays[2] > 200, String(reconnectDelays));
  assert.ok(reconnectDelays[3] <= 100, "reset after a good connection");
});

test("client: a refused secret is fatal (no retry)", async () => {
  const problem = new Response(JSON.stringify({ status: 401, detail: "client secret expired" }), { status: 401 });
  const { calls, states } = await run([() => problem]);
  assert.equal(calls.length, 1);
  assert.deepEqual(states, ["connecting", "failed", "fatal 401 http_401 client secret expired"]);
});

test("client: an expired or refused secret is fatal with its code", async () => {
  for (const [slug, code, words] of [
    ["client-secret-expired", "secret_expired", "has expired"],
    ["unauthorized", "secret_refused", "a newer one replaced it"],
  ]) {
    const { calls, probes, states } = await run([() => problem(401, slug)]);
    assert.equal(calls.length, 1);
    assert.equal(probes.length, 0);
    assert.equal(states.length, 3, String(states));
    assert.ok(states[2].startsWith(`fatal 401 ${code} `) && states[2].includes(words), states[2]);
  }
});

test("client: a request failing CORS is explained by the probe's 403 and not retried", async () => {
  const { calls, probes, states, delays } = await run(
    [new TypeError("Failed to fetch"), new TypeError("Failed to fetch")],
    {},
    () => problem(403, "origin-not-allowed"),
  );
  assert.equal(calls.length, 1, "no retry");
  assert.equal(probes.length, 1);
  // The probe is a CORS simple request: no headers, no credentials, no secret.
  assert.equal(probes[0].init.headers, undefined);
  assert.equal(probes[0].init.credentials, "omit");
  assert.equal(probes[0].url, "https://gw.example/v1/client/sessions/ses_1/events");
  assert.deepEqual(delays.filter((d) => d !== 60000), []);
  assert.deepEqual(states.slice(0, 2), ["connecting", "failed"]);
  assert.match(states[2], /^fatal 403 origin_not_allowed .*client\.allowed_origins/);
});

test("client: a network failure whose probe fails too (or gets 401) keeps retrying", async () => {
  let probe = 0;
  const { calls, probes, events } = await run(
    [new TypeError("down"), new TypeError("down"), () => streamResponse(["id: 1\nevent: ended\ndata: {}\n\n"])],
    {},
    () => (probe++ === 0 ? Promise.reject(new TypeError("down")) : problem(401, "unauthorized")),
  );
  assert.equal(calls.length, 3);
  assert.equal(probes.length, 2);
  assert.deepEqual(events.map((e) => e.id), ["1"]);
});

test("client: the server's reconnect event is honoured with its retry delay", async () => {
  const { calls, delays, events } = await run([
    () => streamResponse(["id: 5\nevent: step\ndata: {}\n\nretry: 500\nevent: reconnect\ndata: {}\n\n"]),
    () => streamResponse(["id: 6\nevent: ended\ndata: {}\n\n"]),
  ]);
  assert.ok(delays.includes(500), String(delays));
  assert.equal(calls[1].headers["Last-Event-ID"], "5");
  assert.deepEqual(events.map((e) => `${e.id}:${e.event}`), ["5:step", "6:ended"]);
});

test("client: stop() ends a pending reconnect", async () => {
  const { fetch, calls } = scripted([new TypeError("down")]);
  const states = [];
  const client = new EventStreamClient({
    url: "https://gw.example/e",
    secret: "s",
    fetch,
    onEvent: () => false,
    onState: (s) => states.push(s),
    backoff: { base: 60000, max: 60000 },
  });
  client.start();
  while (!states.includes("reconnecting")) await new Promise((r) => setImmediate(r));
  client.stop();
  await new Promise((r) => setImmediate(r));
  assert.equal(calls.length, 1);
});

test("docs/sdk.md shows the demo's embed script verbatim, and it is under 20 lines with its HTML", async () => {
  const { readFileSync } = await import("node:fs");
  const root = new URL("../../", import.meta.url);
  const embed = readFileSync(new URL("web/demo/embed.js", root), "utf8");
  const doc = readFileSync(new URL("docs/sdk.md", root), "utf8");
  assert.ok(doc.includes("```js\n" + embed + "```"), "docs/sdk.md must contain web/demo/embed.js as is");
  const html = doc.match(/```html\n([\s\S]*?)```/)[1];
  const lines = (html + embed).split("\n").filter((l) => l.trim() !== "");
  assert.ok(lines.length < 20, `${lines.length} lines`);
  const flowPage = readFileSync(new URL("web/demo/flow.html", root), "utf8");
  assert.ok(flowPage.includes('<script type="module" src="/demo/assets/embed.js"></script>'));
});
