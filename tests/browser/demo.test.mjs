// The demo customer site and the Incode iframe flow in headless Chromium,
// against the real `gangway demo` binary. Screenshots go to
// target/browser-screenshots/, or to docs/screenshots/ with UPDATE_SCREENSHOTS=1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startDemo, until, ROOT } from "./lib/demo.mjs";

const SHOTS = process.env.UPDATE_SCREENSHOTS ? join(ROOT, "docs/screenshots") : join(ROOT, "target/browser-screenshots");
const DESKTOP = { width: 1200, height: 860 };
const PHONE = { width: 390, height: 844 };

let demo;
let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
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

async function newPage(viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  // Every event the SDK hands to the page, in order.
  await page.addInitScript(() => {
    window.__gangway = [];
    for (const type of ["step", "ended"]) {
      document.addEventListener(`gangway:${type}`, (e) => window.__gangway.push({ type, id: e.detail.eventId }));
    }
  });
  return { context, page, problems };
}

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

/** Opens /demo and starts the Incode card; returns the session the demo backend created. */
async function startIncode(page) {
  await page.goto(`${demo.url}/demo`);
  const created = page.waitForResponse((r) => r.url().endsWith("/demo/api/sessions"));
  await page.click('a[data-flow="incode-identity"]');
  const session = await (await created).json();
  await page.locator("#verify iframe.gw-iframe").waitFor();
  return session;
}

const frame = (page) => page.frameLocator("#verify iframe.gw-iframe");

async function expectEnded(page, outcome, title) {
  await page.locator(`#verify[data-gangway-outcome="${outcome}"]`).waitFor();
  await page.locator("#verify .gw-final", { hasText: title }).waitFor();
  assert.equal(await page.locator("#verify iframe").count(), 0, "the iframe is gone");
  await page.locator(`#result[data-outcome="${outcome}"]`).waitFor();
}

/** The ids of the events the SDK handed to the page: 1..n, none missing or repeated. */
async function expectAllEvents(page) {
  const got = await page.evaluate(() => window.__gangway);
  const ids = got.map((e) => Number(e.id));
  assert.ok(ids.length >= 2, JSON.stringify(got));
  assert.deepEqual(ids, ids.map((_, i) => i + 1), `events in order, none missed: ${JSON.stringify(got)}`);
  assert.equal(got.at(-1).type, "ended");
}

const SECRET_PATTERNS = [
  /\b(?:incodekey|simkey|simwh|incodewh|gw_demo|gwit)_[0-9a-f]{16,}/,
  /whsec_[A-Za-z0-9+/=]{16,}/,
  /eyJ[\w-]{8,}\.[\w-]{8,}\./, // a JWT-shaped provider session token
];

test("pass: the iframe appears, Pass inside it, the page shows approved and the iframe is gone; nothing secret reaches the browser", { timeout: 120000 }, async () => {
  const { context, page, problems } = await newPage();
  const responses = [];
  const requested = [];
  context.on("response", (r) => responses.push(r));
  context.on("request", (r) => requested.push(r.url()));

  await page.goto(`${demo.url}/demo`);
  await page.locator("#card-incode-identity").waitFor();
  await shot(page, "landing");

  const session = await startIncode(page);
  assert.match(session.id, /^ses_/);
  assert.deepEqual(Object.keys(session).sort(), ["client_secret", "client_secret_expires_at", "id"]);
  const iframe = page.locator("#verify iframe.gw-iframe");
  assert.equal(await iframe.getAttribute("allow"), "camera; microphone; geolocation");
  await frame(page).getByRole("button", { name: "Pass" }).waitFor();
  await page.locator('#verify[data-gangway-state="live"]').waitFor();
  await shot(page, "incode-iframe");

  await frame(page).getByRole("button", { name: "Pass" }).click();
  await expectEnded(page, "approved", "Approved");
  await shot(page, "approved");
  await expectAllEvents(page);

  // Every response the page (and its iframe) received, headers and bodies.
  const known = [demo.apiKey];
  let checked = 0;
  for (const r of responses) {
    const headers = JSON.stringify(await r.allHeaders());
    const body = (await r.body().catch(() => Buffer.from(""))).toString("utf8");
    for (const text of [headers, body]) {
      for (const k of known) assert.ok(!text.includes(k), `the customer API key reached the browser in ${r.url()}`);
      for (const p of SECRET_PATTERNS) assert.ok(!p.test(text), `${p} matched a response of ${r.url()}`);
    }
    checked++;
  }
  assert.ok(checked >= 10, `checked ${checked} responses`);
  const stream = responses.find((r) => r.url().includes("/events"));
  assert.ok(stream, "the event stream was among them");
  assert.match((await stream.body()).toString("utf8"), /event: ended/);
  // The client secret travels only in headers, never in a URL; no secret is logged.
  for (const u of requested) assert.ok(!u.includes("gwcs_"), `client secret in a URL: ${u}`);
  const log = demo.log();
  assert.ok(log.length > 0 && !log.includes("gwcs_") && !log.includes(demo.apiKey), "no secret in the server log");
  for (const p of SECRET_PATTERNS) assert.ok(!p.test(log), `${p} matched the server log`);
  assert.deepEqual(problems, []);
  await context.close();
});

for (const [button, outcome, title] of [
  ["Fail", "declined", "Declined"],
  // The demo's Incode simulator expires an abandoned session after 3 s.
  ["Abandon", "expired", "Expired"],
]) {
  test(`${button.toLowerCase()}: the page shows ${outcome} and the iframe is gone`, { timeout: 120000 }, async () => {
    const { context, page, problems } = await newPage();
    await startIncode(page);
    await frame(page).getByRole("button", { name: button }).click();
    await expectEnded(page, outcome, title);
    await shot(page, outcome);
    await expectAllEvents(page);
    assert.deepEqual(problems, []);
    await context.close();
  });
}

test("review: the page says a person checks; a reviewer's decision through the API ends it", { timeout: 120000 }, async () => {
  const { context, page, problems } = await newPage();
  const session = await startIncode(page);
  await frame(page).getByRole("button", { name: "Review" }).click();
  // The workflow hands the WARN score to a reviewer: the iframe goes, the page waits.
  await page.locator('#verify[data-gangway-step="manual_review"]').waitFor();
  await page.locator("#verify", { hasText: "A person is checking your identity" }).waitFor();
  assert.equal(await page.locator("#verify iframe").count(), 0, "the iframe is gone");
  await shot(page, "review");
  // The demo's key may review (docs/api.md#reviews): claim, then decide.
  const review = await demo.api(`/v1/reviews/${session.id}`);
  assert.equal(review.facts.overall_status, "WARN", JSON.stringify(review));
  const post = (path, body) =>
    fetch(demo.url + path, {
      method: "POST",
      headers: { authorization: `Bearer ${demo.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  assert.equal((await post(`/v1/reviews/${session.id}/claim`, {})).status, 200);
  const decided = await post(`/v1/reviews/${session.id}/decide`, { decision: "approved", note: "checked by hand" });
  assert.equal(decided.status, 200, await decided.text());
  await expectEnded(page, "approved", "Approved");
  await expectAllEvents(page);
  assert.deepEqual(problems, []);
  await context.close();
});

test("reload mid-flow: the same session is picked up again and still ends correctly", { timeout: 120000 }, async () => {
  const { context, page, problems } = await newPage();
  const first = await startIncode(page);
  const src = await page.locator("#verify iframe").getAttribute("src");

  const again = page.waitForResponse((r) => r.url().endsWith("/demo/api/sessions"));
  await page.reload();
  const second = await (await again).json();
  assert.equal(second.id, first.id, "the same session");
  assert.notEqual(second.client_secret, first.client_secret, "with a fresh client secret");
  await page.locator("#verify iframe.gw-iframe").waitFor();
  assert.equal(await page.locator("#verify iframe").getAttribute("src"), src, "the same provider session");

  // The previous page's secret no longer works.
  const old = await fetch(`${demo.url}/v1/client/sessions/${first.id}`, { headers: { authorization: `Bearer ${first.client_secret}` } });
  assert.equal(old.status, 401);

  await frame(page).getByRole("button", { name: "Pass" }).click();
  await expectEnded(page, "approved", "Approved");
  await expectAllEvents(page);
  assert.deepEqual(problems, []);
  await context.close();
});

test("network loss mid-flow: the SDK reconnects with Last-Event-ID and misses no event", { timeout: 120000 }, async () => {
  const { context, page, problems } = await newPage();
  let down = false;
  let aborted = 0;
  let probes = 0;
  const sent = []; // Last-Event-ID of each stream request the page made
  let droppedAfter = null;
  await page.route("**/v1/client/sessions/*/events", async (route) => {
    const req = route.request();
    const headers = await req.allHeaders();
    // The SDK's probe after a failed request (no secret, no headers: is
    // this origin refused?) fails too while the network is down.
    if (!headers.authorization) {
      probes++;
      return down ? route.abort("internetdisconnected") : route.continue();
    }
    sent.push(headers["last-event-id"] ?? null);
    if (down) {
      aborted++;
      return route.abort("internetdisconnected");
    }
    if (droppedAfter !== null) return route.continue();
    // The first connection: pass the real stream on until the iframe step,
    // then the connection drops and the network stays down.
    const ac = new AbortController();
    const res = await fetch(req.url(), { headers: { authorization: headers.authorization, accept: "text/event-stream" }, signal: ac.signal });
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let text = "";
    while (!/"kind":"iframe"[^\n]*\n\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
    ac.abort();
    droppedAfter = [...text.matchAll(/^id: ?(\d+)$/gm)].at(-1)[1];
    down = true;
    return route.fulfill({ status: 200, headers: { "content-type": "text/event-stream", "cache-control": "no-store" }, body: text });
  });

  const session = await startIncode(page);
  const iv = (await page.locator("#verify iframe").getAttribute("src")).split("/").at(-1);
  await until("a failed reconnect", () => aborted >= 1);
  await page.locator('#verify[data-gangway-state="reconnecting"]').waitFor();
  await shot(page, "reconnecting");

  // While the browser is offline the user finishes at Incode (on their phone,
  // say): the session ends on the server without the page seeing it.
  const r = await fetch(`${demo.url}/sim/incode/control/${iv}/finish`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ result: "pass" }),
  });
  assert.equal(r.status, 200);
  await until("the session to end on the server", async () => (await demo.api(`/v1/sessions/${session.id}`)).status === "ended");
  assert.equal(await page.locator("#verify iframe").count(), 1, "the page has not seen the end yet");

  down = false;
  await expectEnded(page, "approved", "Approved");
  await expectAllEvents(page);
  assert.equal(sent[0], null, "the first connection starts from the beginning");
  assert.ok(sent.slice(1).every((id) => id === droppedAfter), `every reconnect resumes after event ${droppedAfter}: ${JSON.stringify(sent)}`);
  assert.ok(sent.length >= 3, JSON.stringify(sent));
  assert.ok(probes >= 1, "a failed request is followed by the probe");
  assert.deepEqual(problems.filter((p) => !/ERR_INTERNET_DISCONNECTED|Failed to fetch/.test(p)), []);
  await context.close();
});

test("the webhooks page lists the signed webhooks the demo backend received, verified", { timeout: 60000 }, async () => {
  const { context, page, problems } = await newPage();
  await page.goto(`${demo.url}/demo/webhooks`);
  await page.locator(".hook.ok", { hasText: "session.ended" }).first().waitFor();
  await until("every ended session's webhook", async () => (await page.locator(".hook.ok", { hasText: "session.ended" }).count()) >= 6);
  assert.equal(await page.locator(".hook.bad").count(), 0, "every signature verified");
  for (const outcome of ["approved", "declined"]) {
    await page.locator(".hook.ok", { hasText: outcome }).first().waitFor();
  }
  await shot(page, "webhooks", false);
  assert.deepEqual(problems, []);
  await context.close();
});

test("phone-sized screen: the landing page and the flow fit", { timeout: 120000 }, async () => {
  const { context, page, problems } = await newPage(PHONE);
  await page.goto(`${demo.url}/demo`);
  await page.locator("#card-incode-identity").waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling (overflow ${overflow}px)`);
  await page.screenshot({ path: join(SHOTS, "phone-landing.png") });
  await startIncode(page);
  await frame(page).getByRole("button", { name: "Pass" }).waitFor();
  await page.screenshot({ path: join(SHOTS, "phone-flow.png") });
  await frame(page).getByRole("button", { name: "Pass" }).click();
  await expectEnded(page, "approved", "Approved");
  assert.deepEqual(problems, []);
  await context.close();
});
