// The "Connect WhatsApp (360dialog)" card in headless Chromium, against the
// real `gangway demo` binary and its 360dialog simulator: the permissions
// page in a popup, a blocked popup (the same-tab fallback), a popup closed
// by the user (retry or cancel), and forged postMessages that must not
// advance the session. Screenshots go to target/browser-screenshots/, or to
// docs/screenshots/ with UPDATE_SCREENSHOTS=1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startDemo, until, ROOT } from "./lib/demo.mjs";

const SHOTS = process.env.UPDATE_SCREENSHOTS ? join(ROOT, "docs/screenshots") : join(ROOT, "target/browser-screenshots");
const FLOW = "whatsapp-360dialog";
/** The simulated hub's partner id (sim/setup.rs). */
const PARTNER = "gangway-partner";
const HUB_PAGE = new RegExp(`/sim/360dialog/dashboard/app/${PARTNER}/permissions\\?redirect_url=`);

// Partner API keys and the webhook token (sim/setup.rs), channel API keys
// (the simulator's), the demo's customer API key and client secrets.
const SECRET_PATTERNS = [/\bd360(?:key|direct|wh)_[0-9a-f]{16,}/, /\bd360ck_[A-Za-z0-9]{8,}/, /\bgw_demo_[0-9a-f]{16,}/, /\bwhsec_[A-Za-z0-9+/=]{16,}/];

let demo;
let browser;
let other; // a server on another origin

/** A site on another origin: `/forge#<JSON list>` posts each message to its opener. */
async function startOtherOrigin() {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><meta charset="utf-8"><title>another site</title><p>Another site.</p>
<script>
  for (const m of JSON.parse(decodeURIComponent(location.hash.slice(1)))) window.opener.postMessage(m, "*");
  document.title = "posted";
</script>`);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  other = await startOtherOrigin();
  demo = await startDemo();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  other?.server.close();
});

/** A page that records every response of its context (popups included) and every signal the SDK sends. */
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  const responses = [];
  context.on("response", (r) => responses.push(r));
  const signals = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && r.url().endsWith("/signal")) signals.push(JSON.parse(r.postData() || "null"));
  });
  return { context, page, problems, responses, signals };
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Opens /demo and starts the WhatsApp card; returns the session the demo backend created. */
async function startWhatsApp(page) {
  await page.goto(`${demo.url}/demo`);
  const created = page.waitForResponse((r) => r.url().endsWith("/demo/api/sessions"));
  await page.click(`a[data-flow="${FLOW}"]`);
  const session = await (await created).json();
  await page.locator('#verify .gw-popup[data-phase="ready"]').waitFor();
  await page.locator('#verify[data-gangway-state="live"]').waitFor();
  return session;
}

/** Clicks `name` on the page and returns the popup that click opened, on the hub's page. */
async function openPopup(page, name) {
  const opened = page.waitForEvent("popup");
  await page.getByRole("button", { name }).click();
  const popup = await opened;
  await popup.locator("h1", { hasText: "Connect your WhatsApp number" }).waitFor();
  assert.match(popup.url(), HUB_PAGE);
  await page.locator('#verify .gw-popup[data-phase="open"]').waitFor();
  return popup;
}

/** Accepts on the hub page; the redirect page posts to the opener and closes the popup. */
async function acceptAndClose(popup) {
  const closed = popup.waitForEvent("close");
  await popup.getByRole("button", { name: "Accept" }).click();
  await closed;
}

const session = (id) => demo.api(`/v1/sessions/${id}`);
const timeline = (id) => demo.api(`/v1/sessions/${id}/timeline`);
const entries = (t, kind) => t.entries.filter((e) => e.kind === kind);
const accepted = (t) => entries(t, "event.accepted").map((e) => e.data.event);

async function expectEnded(page, id, outcome) {
  await page.locator(`#verify[data-gangway-outcome="${outcome}"]`).waitFor();
  await page.locator(`#result[data-outcome="${outcome}"]`).waitFor();
  const s = await session(id);
  assert.equal(s.outcome, outcome, JSON.stringify(s));
  return s;
}

test("the whole popup flow: Connect opens 360dialog's page in a popup, Accept closes it, the card goes on live to approved; no key reaches the browser", { timeout: 120000 }, async () => {
  const { context, page, problems, responses, signals } = await newPage();
  const { id } = await startWhatsApp(page);
  await shot(page, "whatsapp-connect");
  const popup = await openPopup(page, "Connect WhatsApp");
  await shot(popup, "whatsapp-popup");
  await acceptAndClose(popup);

  await expectEnded(page, id, "approved");
  await page.locator('#channel-key[data-ready="true"]').waitFor();
  await shot(page, "whatsapp-approved");
  // The SDK passed the popup's message on (a hint the workflow confirmed);
  // Gangway's redirect page posted the same query, and one of them won.
  assert.deepEqual(
    signals.map((s) => s.name),
    ["dialog360_redirect"],
  );
  const t = await timeline(id);
  assert.ok(["dialog360.redirect", "signal.dialog360_redirect"].includes(accepted(t)[0]), JSON.stringify(accepted(t)));
  assert.ok(accepted(t).includes("dialog360.channels_running"), JSON.stringify(accepted(t)));

  // The channel API key exists and went to the demo backend only.
  const secrets = await demo.api(`/v1/sessions/${id}/secrets`);
  const key = secrets.secrets[0].value;
  assert.match(key, /^d360ck_/);
  const hint = await page.locator("#channel-key").textContent();
  assert.ok(hint.includes(key.slice(-4)) && !hint.includes(key), hint);
  let checked = 0;
  for (const r of responses) {
    const headers = JSON.stringify(await r.allHeaders().catch(() => ({})));
    const body = (await r.body().catch(() => Buffer.from(""))).toString("utf8");
    for (const text of [headers, body, r.url()]) {
      assert.ok(!text.includes(key), `the channel API key reached the browser in ${r.url()}`);
      assert.ok(!text.includes(demo.apiKey), `the customer API key reached the browser in ${r.url()}`);
      for (const p of SECRET_PATTERNS) assert.ok(!p.test(text), `${p} matched a response of ${r.url()}`);
    }
    checked++;
  }
  assert.ok(checked >= 10, `checked ${checked} responses`);
  assert.ok(responses.some((r) => r.url().includes("/v1/redirect/360dialog/")), "the popup's pages were among them");
  assert.ok(!demo.log().includes(key), "the channel API key is in the server log");
  assert.deepEqual(problems, []);
  await context.close();
});

test("popup blocked: the same-tab link goes to 360dialog, Gangway's page records the redirect and links back, the session ends approved", { timeout: 120000 }, async () => {
  const { context, page, problems } = await newPage();
  await page.addInitScript(() => {
    window.open = () => null; // what a popup blocker does
  });
  const { id } = await startWhatsApp(page);
  await page.getByRole("button", { name: "Connect WhatsApp" }).click();
  const link = page.locator("#verify a[data-gangway-fallback]");
  await link.waitFor();
  await shot(page, "whatsapp-blocked");
  assert.match(await link.getAttribute("href"), HUB_PAGE);
  assert.equal(await link.getAttribute("target"), null, "the same tab");

  await link.click();
  await page.waitForURL(HUB_PAGE);
  await page.getByRole("button", { name: "Accept" }).click();
  await page.waitForURL(/\/v1\/redirect\/360dialog\/d360st_/);
  await page.locator("#msg", { hasText: "Your WhatsApp number is connected" }).waitFor();
  const back = page.locator("#back a");
  await back.waitFor();
  assert.equal(await back.getAttribute("href"), `${demo.url}/demo/flows/${FLOW}`);
  // Gangway's page took the redirect server-side: the session moved on.
  await until("the redirect to be confirmed", async () => (await session(id)).step !== "permission");

  const resumed = page.waitForResponse((r) => r.url().endsWith("/demo/api/sessions"));
  await back.click();
  await page.waitForURL(`${demo.url}/demo/flows/${FLOW}`);
  assert.equal((await (await resumed).json()).id, id, "back on the same session");
  await expectEnded(page, id, "approved");
  const t = await timeline(id);
  assert.equal(accepted(t)[0], "dialog360.redirect", JSON.stringify(accepted(t)));
  assert.deepEqual(problems, []);
  await context.close();
});

test("popup closed by the user: retry is offered under the same deadline, Try again completes", { timeout: 120000 }, async () => {
  const { context, page, problems, signals } = await newPage();
  const { id } = await startWhatsApp(page);
  const deadline = (await session(id)).waiting_on.deadline;
  const first = await openPopup(page, "Connect WhatsApp");
  await first.close();

  await page.locator("#verify .gw-popup", { hasText: "The 360dialog window was closed." }).waitFor();
  await page.getByRole("button", { name: "Try again" }).waitFor();
  await page.getByRole("button", { name: "Cancel" }).waitFor();
  await shot(page, "whatsapp-closed");
  const waiting = await until("the popup_closed step", async () => {
    const s = await session(id);
    return s.step === "popup_closed" && s.status === "waiting" && s;
  });
  assert.equal(waiting.waiting_on.deadline, deadline, "the same deadline");
  assert.deepEqual(accepted(await timeline(id)), ["signal.popup_closed"]);
  await page.locator('#verify[data-gangway-step="popup_closed"]').waitFor();

  // The same state is still valid: the same page opens again.
  const second = await openPopup(page, "Try again");
  await acceptAndClose(second);
  await expectEnded(page, id, "approved");
  assert.deepEqual(
    signals.map((s) => s.name),
    ["popup_closed", "dialog360_redirect"],
  );
  assert.deepEqual(problems, []);
  await context.close();
});

test("popup closed twice, then Cancel: the session ends canceled with the reason", { timeout: 120000 }, async () => {
  const { context, page, problems } = await newPage();
  const { id } = await startWhatsApp(page);
  await (await openPopup(page, "Connect WhatsApp")).close();
  await page.getByRole("button", { name: "Try again" }).waitFor();
  await until("the popup_closed step", async () => (await session(id)).step === "popup_closed");
  await (await openPopup(page, "Try again")).close();
  await page.getByRole("button", { name: "Try again" }).waitFor();
  await until("the second close recorded", async () => accepted(await timeline(id)).length === 2);
  assert.deepEqual(accepted(await timeline(id)), ["signal.popup_closed", "signal.popup_closed"]);

  await page.getByRole("button", { name: "Cancel" }).click();
  const ended = await expectEnded(page, id, "canceled");
  assert.equal(ended.reason, "the user closed the 360dialog window without granting access");
  await page.locator("#verify .gw-final", { hasText: "without granting access" }).waitFor();
  assert.deepEqual(accepted(await timeline(id)).at(-1), "signal.cancel");
  assert.deepEqual(problems, []);
  await context.close();
});

test("postMessages from another origin, or not from the popup, carrying valid-looking parameters do not advance the session", { timeout: 120000 }, async () => {
  const { context, page, problems } = await newPage();
  // Every fetch the page makes, recorded synchronously (the SDK fetches through globalThis.fetch).
  await page.addInitScript(() => {
    window.__fetched = [];
    const original = window.fetch;
    window.fetch = function (input, init) {
      window.__fetched.push({ url: String((input && input.url) || input), body: init && typeof init.body === "string" ? init.body : null });
      return original.call(this, input, init);
    };
  });
  const { id } = await startWhatsApp(page);
  // Registered after the SDK's listener: when it has seen a message, so has the SDK.
  await page.evaluate(() => {
    window.__messages = 0;
    window.addEventListener("message", (e) => e.data && e.data.type === "gangway:360dialog" && window.__messages++);
  });
  const popup = await openPopup(page, "Connect WhatsApp");
  const hubUrl = popup.url();
  const state = new URL(hubUrl).searchParams.get("state");
  assert.match(state, /^d360st_/);

  // A client of our own partner with a running channel: parameters the
  // Partner API would confirm, with the session's real state.
  const seeded = await (
    await fetch(`${demo.url}/sim/360dialog/control/seed`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ partner_id: PARTNER, channels: 1, status: "running" }),
    })
  ).json();
  const channel = seeded.channels[0];
  const forged = [
    { type: "gangway:360dialog", state, query: `?client=${seeded.client_id}&channels=[${channel}]&state=${state}` },
    { type: "gangway:360dialog", state, query: { client: seeded.client_id, channels: [channel] } },
  ];
  // 1. The popup itself, navigated to another origin, posts to its opener:
  //    the right window, the wrong origin.
  await popup.goto(`${other.url}/forge#${encodeURIComponent(JSON.stringify(forged))}`);
  await popup.waitForFunction(() => document.title === "posted");
  // 2. Gangway's origin, but not the popup: the page posts to itself.
  await page.evaluate((m) => window.postMessage(m, location.origin), forged[0]);
  await until("the page to receive the three forged messages", () => page.evaluate(() => window.__messages === 3));

  const fetched = await page.evaluate(() => window.__fetched);
  assert.deepEqual(
    fetched.filter((f) => f.url.includes("/signal")),
    [],
    "the SDK signalled nothing",
  );
  assert.equal(await page.locator('#verify .gw-popup[data-phase="open"]').count(), 1, "still waiting for the popup");
  const s = await session(id);
  assert.equal(s.step, "permission");
  assert.equal(s.status, "waiting");
  const t = await timeline(id);
  assert.deepEqual(entries(t, "event.received"), [], "nothing reached the session");
  assert.deepEqual(entries(t, "provider.call").filter((c) => c.step === "confirm"), []);

  // The same window back on 360dialog and Gangway's page: accepted.
  await popup.goto(hubUrl);
  await acceptAndClose(popup);
  await expectEnded(page, id, "approved");
  const sent = (await page.evaluate(() => window.__fetched)).filter((f) => f.url.includes("/signal")).map((f) => JSON.parse(f.body));
  assert.equal(sent.length, 1, JSON.stringify(sent));
  assert.equal(sent[0].name, "dialog360_redirect");
  assert.equal(sent[0].data.state, state);
  assert.doesNotMatch(sent[0].data.query, new RegExp(seeded.client_id), "the genuine client, not the forged one");
  assert.deepEqual(problems, []);
  await context.close();
});
