// The SDK's renderers in real Chromium, fed by a scripted event stream: what
// each shows, what the user can do with it, and what it refuses, without a
// provider (dialog360.test.mjs drives the popup with the real simulator).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startDemo, until } from "./lib/demo.mjs";

let demo;
let browser;

before(async () => {
  demo = await startDemo();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
});

after(async () => {
  await browser?.close();
  await demo?.stop();
});

/** A page on Gangway's origin with the SDK mounted on a scripted stream: `push(view)` sends the next event. */
async function mounted() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  await page.goto(`${demo.url}/demo`);
  await page.evaluate(async () => {
    const { Gangway } = await import("/sdk/gangway.js");
    let controller;
    let seq = 0;
    const enc = new TextEncoder();
    window.__signals = [];
    window.__errors = [];
    window.__push = (view) => {
      seq++;
      controller.enqueue(enc.encode(`id: ${seq}\nevent: ${view.status === "ended" ? "ended" : "step"}\ndata: ${JSON.stringify(view)}\n\n`));
    };
    const fetch = async (url, init) => {
      if (url.endsWith("/events")) {
        const body = new ReadableStream({ start: (c) => (controller = c) });
        init.signal.addEventListener("abort", () => (window.__aborted = true));
        return new Response(body, { status: 200 });
      }
      window.__signals.push(JSON.parse(init.body));
      return new Response(JSON.stringify({ accepted: true, duplicate: false }), { status: 200 });
    };
    const el = document.createElement("div");
    el.id = "flow";
    document.body.replaceChildren(el);
    window.__flow = Gangway.mount(el, { sessionId: "ses_test", clientSecret: "gwcs_test", fetch });
    window.__flow.on("error", (e) => window.__errors.push(e));
  });
  await page.locator('#flow[data-gangway-state="live"]').waitFor();
  const push = (present, extra = {}) =>
    page.evaluate((v) => window.__push(v), { id: "ses_test", status: "waiting", step: { name: "s", present }, outcome: null, reason: null, deadline: null, ...extra });
  return { context, page, push };
}

test("qr: the server's SVG is shown reduced to plain shapes, with the phone link; updates in place", async () => {
  const { context, page, push } = await mounted();
  const evil =
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" onload="window.__pwned=1">' +
    '<script>window.__pwned=1</script><style>*{display:none}</style>' +
    '<rect width="10" height="10" fill="#fff"/><a href="javascript:alert(1)"><path d="M1 1h2v2H1z"/></a><path d="M4 4h2v2H4z" fill="#000"/></svg>';
  await push({ kind: "qr", svg: evil, link: "https://app.example/s/1" });
  const svg = page.locator("#flow figure.gw-qr svg");
  await svg.waitFor();
  assert.equal(await page.locator("#flow svg script, #flow svg style, #flow svg a, #flow svg [onload]").count(), 0);
  assert.equal(await svg.locator("rect, path").count(), 2);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator("#flow .gw-qr a").getAttribute("href"), "https://app.example/s/1");
  const figure = await page.locator("#flow figure.gw-qr").elementHandle();
  await push({ kind: "qr", svg: '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 4"><path d="M0 0h1v1H0z"/></svg>', link: "javascript:alert(1)" });
  await until("the new code", async () => (await svg.getAttribute("viewBox")) === "0 0 4 4");
  assert.ok(await figure.evaluate((f) => f.isConnected), "updated in place");
  assert.equal(await page.locator("#flow .gw-qr a").count(), 0, "a javascript: link is dropped");
  await context.close();
});

test("popup: opened from a click; only a message from that window, on Gangway's origin, of our type and with the step's state, becomes the signal", async () => {
  const { context, page, push } = await mounted();
  await page.evaluate(() => {
    // The "popup" is a frame's window: a real Window, so it can be a message's source.
    const frame = document.createElement("iframe");
    document.body.append(frame);
    window.open = (url, name, features) => {
      window.__opened = { url, name, features };
      return (window.__popup = frame.contentWindow);
    };
    window.__post = (data, { origin = location.origin, fromPopup = true } = {}) =>
      window.dispatchEvent(new MessageEvent("message", { data, origin, source: fromPopup ? window.__popup : window }));
  });
  await push({ kind: "popup", provider: "360dialog", label: "Connect WhatsApp", url: "https://hub.example/permissions?partner=p1", state: "st_1", features: "popup,width=600,height=900" });
  await page.getByRole("button", { name: "Connect WhatsApp" }).click();
  assert.deepEqual(await page.evaluate(() => window.__opened), { url: "https://hub.example/permissions?partner=p1", name: "gangway_popup", features: "popup,width=600,height=900" });
  await page.locator('#flow .gw-popup[data-phase="open"]', { hasText: "Waiting for you" }).waitFor();
  const good = { type: "gangway:360dialog", state: "st_1", query: "?client=c1&channels=[ch1]&state=st_1" };
  for (const [data, opts] of [
    [good, { origin: "https://evil.example" }],
    [good, { fromPopup: false }],
    [{ ...good, type: "other" }, {}],
    [{ ...good, state: "st_2" }, {}],
    [{ ...good, query: { client: "c1" } }, {}],
    ["?client=c1&channels=[ch1]", {}],
  ]) {
    await page.evaluate(([d, o]) => window.__post(d, o), [data, opts]);
  }
  assert.deepEqual(await page.evaluate(() => window.__signals), [], "all ignored");
  await page.evaluate((d) => window.__post(d), good);
  await until("the redirect signal", () => page.evaluate(() => window.__signals.length === 1));
  const [signal] = await page.evaluate(() => window.__signals);
  assert.equal(signal.name, "dialog360_redirect");
  assert.deepEqual(signal.data, { state: "st_1", query: good.query });
  assert.match(signal.id, /^dialog360_redirect:[0-9a-f]{16}$/);
  await page.locator('#flow .gw-popup[data-phase="finishing"]').waitFor();
  // One answer per opening: a repeat is ignored.
  await page.evaluate((d) => window.__post(d), good);
  assert.equal(await page.evaluate(() => window.__signals.length), 1);
  await context.close();
});

test("popup: closed without a message sends popup_closed once per opening and offers Try again and Cancel; a blocked popup falls back to a same-tab link", async () => {
  const { context, page, push } = await mounted();
  await page.evaluate(() => {
    window.__opens = 0;
    window.open = () => (window.__opens++, (window.__popup = { closed: false, focus() {} }));
  });
  await push({ kind: "popup", provider: "360dialog", url: "https://hub.example/permissions?partner=p1", state: "st_1" });
  await page.getByRole("button", { name: "Continue" }).click();
  await page.evaluate(() => (window.__popup.closed = true));
  await page.locator("#flow .gw-popup", { hasText: "The 360dialog window was closed." }).waitFor();
  await until("the popup_closed signal", () => page.evaluate(() => window.__signals.length === 1));
  await page.getByRole("button", { name: "Try again" }).click();
  assert.equal(await page.evaluate(() => window.__opens), 2);
  await page.locator('#flow .gw-popup[data-phase="open"]').waitFor();
  await page.evaluate(() => (window.__popup.closed = true));
  await until("the second popup_closed signal", () => page.evaluate(() => window.__signals.length === 2));
  const closes = await page.evaluate(() => window.__signals);
  for (const s of closes) {
    assert.equal(s.name, "popup_closed");
    assert.match(s.id, /^popup_closed:[0-9a-f]{16}$/);
  }
  assert.notEqual(closes[0].id, closes[1].id, "each opening is its own signal");
  await page.getByRole("button", { name: "Cancel" }).click();
  await until("the cancel signal", () => page.evaluate(() => window.__signals.length === 3));
  assert.deepEqual((await page.evaluate(() => window.__signals))[2], { name: "cancel", data: {}, id: "cancel:st_1" });

  // The workflow's popup_closed step (e.g. after a reload) shows the offer at once.
  await push({ kind: "popup", provider: "360dialog", url: "https://hub.example/permissions?partner=p2", state: "st_2", closed: true });
  await page.locator('#flow .gw-popup[data-phase="closed"]', { hasText: "The 360dialog window was closed." }).waitFor();

  // Blocked: a link to the same URL, in this tab.
  await page.evaluate(() => (window.open = () => null));
  await page.getByRole("button", { name: "Try again" }).click();
  const link = page.locator("#flow .gw-popup a[data-gangway-fallback]");
  await link.waitFor();
  assert.equal(await link.getAttribute("href"), "https://hub.example/permissions?partner=p2");
  assert.equal(await link.getAttribute("target"), null);
  assert.equal(await page.evaluate(() => window.__signals.length), 3, "a blocked popup signals nothing");
  await context.close();
});

test("chat: hello with the secret, messages rendered as text, results as fields, a link opens a popup, lines resent after a drop", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  await page.goto(`${demo.url}/demo`);
  await page.evaluate(async () => {
    const { Gangway } = await import("/sdk/gangway.js");
    // A scripted socket: records what the SDK sends, lets the test answer.
    window.__sockets = [];
    class FakeSocket {
      constructor(url) {
        this.url = url;
        this.sent = [];
        window.__sockets.push(this);
        setTimeout(() => this.onopen && this.onopen(), 0);
      }
      send(data) {
        this.sent.push(JSON.parse(data));
      }
      close(code = 1000) {
        this.onclose && this.onclose({ code, reason: "" });
      }
      frame(v) {
        this.onmessage && this.onmessage({ data: JSON.stringify(v) });
      }
    }
    let controller;
    const enc = new TextEncoder();
    const fetch = async (url, init) => {
      const body = new ReadableStream({ start: (c) => (controller = c) });
      return new Response(body, { status: 200 });
    };
    window.__opened = [];
    window.open = (url, name, features) => (window.__opened.push({ url, name, features }), {});
    const el = document.createElement("div");
    el.id = "flow";
    document.body.replaceChildren(el);
    Gangway.mount(el, { sessionId: "ses_chat", clientSecret: "gwcs_chat", fetch, WebSocket: FakeSocket, backoff: { base: 1, max: 2 } });
    window.__view = (present) =>
      controller.enqueue(enc.encode(`id: 1\nevent: step\ndata: ${JSON.stringify({ id: "ses_chat", status: "waiting", step: { name: "chat", present } })}\n\n`));
  });
  await until("the stream", () => page.evaluate(() => typeof window.__view === "function"));
  await page.evaluate(() => window.__view({ kind: "chat", title: "Assistant", greeting: "Hi! Type /help" }));
  await until("the socket", () => page.evaluate(() => window.__sockets.length === 1 && window.__sockets[0].sent.length === 1));
  const hello = await page.evaluate(() => window.__sockets[0].sent[0]);
  assert.deepEqual(hello, { type: "hello", secret: "gwcs_chat", last_id: 0 });
  assert.match(await page.evaluate(() => window.__sockets[0].url), /^ws:\/\/.+\/v1\/client\/sessions\/ses_chat\/chat$/);
  assert.ok(!(await page.evaluate(() => window.__sockets[0].url)).includes("gwcs_chat"), "the secret is never in the URL");
  await page.evaluate(() => window.__sockets[0].frame({ type: "ready", last_id: 0 }));
  await page.locator('#flow .gw-chat[data-chat-state="live"]').waitFor();
  await page.locator("#flow .gw-chat-log li", { hasText: "Hi! Type /help" }).waitFor();

  await page.fill("#flow .gw-chat-input", "/run-flow lookup-customer");
  await page.press("#flow .gw-chat-input", "Enter");
  const say = await page.evaluate(() => window.__sockets[0].sent[1]);
  assert.equal(say.type, "say");
  assert.equal(say.text, "/run-flow lookup-customer");
  await page.evaluate((cid) => {
    const s = window.__sockets[0];
    s.frame({ type: "message", id: 1, message: { role: "user", text: "/run-flow lookup-customer", client_id: cid } });
    s.frame({ type: "ack", client_id: cid, id: 1 });
    s.frame({ type: "message", id: 2, message: { role: "run", run: "ses_chat-1", reply_to: 1, command: "run-flow", state: "started" } });
    s.frame({ type: "message", id: 3, message: { role: "run", run: "ses_chat-1", reply_to: 1, command: "run-flow", state: "progress", present: { kind: "popup", message: "Sign in to continue", url: "https://idp.example/authorize?x=1", label: "Sign in" } } });
    s.frame({ type: "message", id: 4, message: { role: "assistant", text: "<b>bold?</b>", reply_to: 1 } });
    s.frame({ type: "message", id: 5, message: { role: "run", run: "ses_chat-1", reply_to: 1, command: "run-flow", state: "ended", outcome: "approved", reason: "Found customer Ada", output: { customer: { displayName: "Ada Lovelace", open_orders: 2 } } } });
  }, say.client_id);
  await page.locator('#flow li[data-run="ses_chat-1"][data-outcome="approved"]').waitFor();
  assert.equal(await page.locator("#flow .gw-chat-log li[data-role=user]").count(), 1, "the line shows once");
  assert.equal(await page.locator("#flow .gw-chat-log b").count(), 0, "text, never markup");
  const fields = await page.locator('#flow li[data-run="ses_chat-1"] dl dt').allTextContents();
  assert.deepEqual(fields, ["Customer", "Display name", "Open orders"]);
  await page.locator('#flow li[data-run="ses_chat-1"] button[data-open-url]').isDisabled();

  // A link of a run still in progress opens in a popup from the click.
  await page.evaluate(() => window.__sockets[0].frame({ type: "message", id: 6, message: { role: "run", run: "ses_chat-6", reply_to: 6, command: "auth", state: "progress", present: { kind: "popup", message: "Sign in", url: "https://idp.example/authorize?y=2", label: "Sign in" } } }));
  await page.locator('#flow li[data-run="ses_chat-6"] button[data-open-url]').click();
  assert.deepEqual((await page.evaluate(() => window.__opened)).map((o) => o.url), ["https://idp.example/authorize?y=2"]);

  // The socket drops with a line unacknowledged: the SDK reconnects from id 6
  // and sends the line again with the same client id.
  await page.fill("#flow .gw-chat-input", "/status");
  await page.press("#flow .gw-chat-input", "Enter");
  const pending = await page.evaluate(() => window.__sockets[0].sent.at(-1));
  await page.evaluate(() => window.__sockets[0].close(1006));
  await until("a new socket", () => page.evaluate(() => window.__sockets.length === 2 && window.__sockets[1].sent.length === 1));
  assert.deepEqual(await page.evaluate(() => window.__sockets[1].sent[0]), { type: "hello", secret: "gwcs_chat", last_id: 6 });
  await page.evaluate(() => window.__sockets[1].frame({ type: "ready", last_id: 6 }));
  await until("the resend", () => page.evaluate(() => window.__sockets[1].sent.length === 2));
  const resent = await page.evaluate(() => window.__sockets[1].sent[1]);
  assert.equal(resent.client_id, pending.client_id);
  assert.equal(resent.text, "/status");
  await context.close();
});

test("a javascript: iframe and an unknown kind are refused; the end removes the iframe; unmount cleans up", async () => {
  const { context, page, push } = await mounted();
  await push({ kind: "iframe", url: "javascript:alert(1)" });
  await page.locator("#flow .gw-message", { hasText: "cannot be shown" }).waitFor();
  assert.equal(await page.locator("#flow iframe").count(), 0);
  assert.equal((await page.evaluate(() => window.__errors))[0].fatal, false);
  await push({ kind: "hologram" });
  await page.locator("#flow .gw-message", { hasText: 'Unknown presentation kind "hologram"' }).waitFor();
  await push({ kind: "iframe", url: "https://id.example/flow/1" });
  await page.locator('#flow iframe[src="https://id.example/flow/1"]').waitFor();
  await push(null, { status: "ended", outcome: "expired", reason: "too late" });
  await page.locator('#flow[data-gangway-outcome="expired"] .gw-final', { hasText: "too late" }).waitFor();
  assert.equal(await page.locator("#flow iframe").count(), 0);
  await page.evaluate(() => window.__flow.unmount());
  assert.equal(await page.evaluate(() => document.getElementById("flow").outerHTML), '<div id="flow" class=""></div>');
  await context.close();
});

test("redirect: a same-tab link to the provider's page; a javascript: URL is refused; updates in place", async () => {
  const { context, page, push } = await mounted();
  await push({ kind: "redirect", label: "Verify with Stripe", title: "Verify your identity", url: "https://verify.example/start/test_1" });
  const link = page.locator("#flow .gw-redirect a[data-gangway-redirect]");
  await link.waitFor();
  assert.equal(await link.getAttribute("href"), "https://verify.example/start/test_1");
  assert.equal(await link.getAttribute("target"), null, "the same tab");
  assert.equal(await link.textContent(), "Verify with Stripe");
  assert.equal(await page.locator("#flow .gw-redirect .gw-title").textContent(), "Verify your identity");
  const box = await page.locator("#flow .gw-redirect").elementHandle();
  await push({ kind: "redirect", label: "Verify with Stripe", title: "Verify your identity", url: "https://verify.example/start/test_1" });
  assert.ok(await box.evaluate((b) => b.isConnected), "the same presentation keeps its element");
  await push({ kind: "redirect", url: "javascript:alert(1)" });
  await page.locator("#flow .gw-message", { hasText: "This step cannot be shown" }).waitFor();
  assert.equal(await page.locator("#flow a[data-gangway-redirect]").count(), 0);
  assert.equal(await page.evaluate(() => window.__signals.length), 0, "nothing is sent");
  await context.close();
});
