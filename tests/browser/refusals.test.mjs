// A client secret the server refuses, in Chromium: the SDK emits one `error`
// whose `code` says why (`secret_expired`, or `secret_refused` for a wrong
// secret or one a newer secret replaced) and stops, instead of showing
// "Connection lost, reconnecting…" forever. (Another origin:
// cross-origin.test.mjs.)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";
import { startDemo, until } from "./lib/demo.mjs";

let demo; // secrets live for the default hour
let brief; // secrets live one second
let browser;
let shop;

/** A customer page that mounts whatever session the test hands it. */
async function startShop() {
  const server = http.createServer((req, res) => {
    const gw = new URL(req.url, "http://x").searchParams.get("gw");
    if (![demo?.url, brief?.url].includes(gw)) {
      res.writeHead(404);
      return res.end();
    }
    const nonce = randomBytes(16).toString("base64");
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": `default-src 'self'; script-src 'nonce-${nonce}' ${gw}; connect-src 'self' ${gw}; frame-src ${gw}`,
    });
    res.end(`<!doctype html><meta charset="utf-8"><title>Shop</title>
<div id="verify"></div>
<script type="module" nonce="${nonce}">
  import { Gangway } from "${gw}/sdk/gangway.js";
  window.mountFlow = (sessionId, clientSecret) =>
    void Gangway.mount(document.getElementById("verify"), { sessionId, clientSecret });
</script>`);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return server;
}

before(async () => {
  shop = await startShop();
  const origin = `http://127.0.0.1:${shop.address().port}`;
  demo = await startDemo({ allowedOrigins: [origin] });
  brief = await startDemo({ allowedOrigins: [origin], secretTtl: "1s" });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  await brief?.stop();
  shop?.close();
});

/** POST /v1/sessions as the customer backend. */
async function create(gw, idempotencyKey) {
  const headers = { authorization: `Bearer ${gw.apiKey}`, "content-type": "application/json" };
  if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
  const r = await fetch(`${gw.url}/v1/sessions`, {
    method: "POST",
    headers,
    body: JSON.stringify({ workflow: "incode-identity", reference: `refusal-${idempotencyKey || randomBytes(4).toString("hex")}` }),
  });
  assert.ok(r.ok, `${r.status} ${await r.clone().text()}`);
  return r.json();
}

/** Opens the shop's page against `gw` and mounts the session there. */
async function mount(gw, id, secret) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const streams = [];
  page.on("request", (r) => r.url().endsWith("/events") && streams.push(r.url()));
  await page.addInitScript(() => {
    window.__errors = [];
    document.addEventListener("gangway:error", (e) => window.__errors.push(e.detail));
  });
  await page.goto(`http://127.0.0.1:${shop.address().port}/?gw=${encodeURIComponent(gw.url)}`);
  await page.waitForFunction(() => typeof window.mountFlow === "function");
  await page.evaluate(([id, secret]) => window.mountFlow(id, secret), [id, secret]);
  return { context, page, streams };
}

/** The one fatal error the page got, after the element shows it. */
async function refusedWith(page, streams, code) {
  await page.locator('#verify[data-gangway-state="failed"]').waitFor();
  assert.equal(await page.locator("#verify").getAttribute("data-gangway-error"), code);
  const errors = await page.evaluate(() => window.__errors);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.equal(errors[0].code, code);
  assert.equal(errors[0].status, 401);
  assert.equal(errors[0].fatal, true);
  // One request: a refused secret is not sent again. Back online wakes any
  // reconnect wait; there is none, so none follows the round trip.
  assert.equal(streams.length, 1, JSON.stringify(streams));
  await page.evaluate(() => window.dispatchEvent(new Event("online")));
  await page.evaluate(() => fetch(location.href).then((r) => r.text()));
  assert.equal(streams.length, 1);
  assert.doesNotMatch(await page.locator("#verify").innerText(), /reconnecting/i);
  return errors[0];
}

test("an expired client secret: one error `secret_expired`, no retries", { timeout: 60000 }, async () => {
  const s = await create(brief);
  // Wait until the server itself refuses the secret as expired.
  await until(
    "the secret to expire",
    async () => (await fetch(`${brief.url}/v1/client/sessions/${s.id}`, { headers: { authorization: `Bearer ${s.client_secret}` } })).status === 401,
    10000,
  );
  const { context, page, streams } = await mount(brief, s.id, s.client_secret);
  const error = await refusedWith(page, streams, "secret_expired");
  assert.match(error.message, /expired/);
  assert.match(await page.locator("#verify").innerText(), /expired/);
  await context.close();
});

test("a secret replaced by a newer one: one error `secret_refused`; the new one works", { timeout: 60000 }, async () => {
  const key = `order-${randomBytes(6).toString("hex")}`;
  const first = await create(demo, key);
  const again = await create(demo, key);
  assert.equal(again.id, first.id);
  assert.notEqual(again.client_secret, first.client_secret);

  const old = await mount(demo, first.id, first.client_secret);
  const error = await refusedWith(old.page, old.streams, "secret_refused");
  assert.match(error.message, /newer one replaced it/);
  await old.context.close();

  const fresh = await mount(demo, again.id, again.client_secret);
  await fresh.page.locator("#verify iframe.gw-iframe").waitFor();
  assert.deepEqual(await fresh.page.evaluate(() => window.__errors), []);
  await fresh.context.close();
});
