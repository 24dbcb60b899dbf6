// A customer page on another origin, with its own backend and a strict CSP,
// loads the SDK from Gangway and embeds the Incode flow: the module load,
// the CORS preflights (Authorization, Last-Event-ID) and the iframe's
// frame-ancestors all work for an allowed origin and fail for another, and
// the SDK then says why (once) instead of reconnecting forever.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";
import { startDemo } from "./lib/demo.mjs";

let demo;
let browser;
const shops = [];

/** A customer site: a page embedding the flow, and a backend route creating the session. */
async function startShop() {
  const server = http.createServer(async (req, res) => {
    if (req.method === "POST" && req.url === "/api/identity-session") {
      const r = await fetch(`${demo.url}/v1/sessions`, {
        method: "POST",
        headers: { authorization: `Bearer ${demo.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ workflow: "incode-identity", reference: `shop-${randomBytes(6).toString("hex")}` }),
      });
      const s = await r.json();
      res.writeHead(r.ok ? 200 : 502, { "content-type": "application/json" });
      return res.end(JSON.stringify({ id: s.id, client_secret: s.client_secret }));
    }
    if (req.url === "/api/ping") {
      res.writeHead(200, { "content-type": "text/plain" });
      return res.end("pong");
    }
    const nonce = randomBytes(16).toString("base64");
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": `default-src 'self'; script-src 'nonce-${nonce}' ${demo.url}; connect-src 'self' ${demo.url}; frame-src ${demo.url}; style-src 'self'`,
    });
    res.end(`<!doctype html><meta charset="utf-8"><title>Shop</title>
<div id="verify"></div>
<script type="module" nonce="${nonce}">
  import { Gangway } from "${demo.url}/sdk/gangway.js";
  const { id, client_secret } = await (await fetch("/api/identity-session", { method: "POST" })).json();
  Gangway.mount(document.getElementById("verify"), { sessionId: id, clientSecret: client_secret });
</script>`);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  shops.push(server);
  return `http://127.0.0.1:${server.address().port}`;
}

let allowed;
let refused;

before(async () => {
  // The shops' ports must be known before Gangway starts; their handlers
  // read `demo` only when called.
  allowed = await startShop();
  refused = await startShop();
  demo = await startDemo({ allowedOrigins: [allowed] });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  for (const s of shops) s.close();
});

async function open(url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  await page.addInitScript(() => {
    window.__violations = [];
    window.__errors = [];
    document.addEventListener("gangway:error", (e) => window.__errors.push(e.detail));
    document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(url);
  return { context, page };
}

test("an allowed origin embeds the flow under its own strict CSP", { timeout: 120000 }, async () => {
  const { context, page } = await open(allowed);
  const iframe = page.locator("#verify iframe.gw-iframe");
  await iframe.waitFor();
  // The SDK's stylesheet applies although the page allows no inline styles.
  assert.equal(await iframe.evaluate((f) => getComputedStyle(f).borderTopWidth), "0px");
  const pass = page.frameLocator("#verify iframe").getByRole("button", { name: "Pass" });
  await pass.click();
  await page.locator('#verify[data-gangway-outcome="approved"]').waitFor();
  assert.equal(await page.locator("#verify iframe").count(), 0);
  assert.deepEqual(await page.evaluate(() => window.__violations), []);
  await context.close();
});

test("an origin not in client.allowed_origins gets one error naming the setting, and no retries", { timeout: 60000 }, async () => {
  const { context, page } = await open(refused);
  const streams = [];
  page.on("request", (r) => r.url().endsWith("/events") && streams.push(r.headers()));
  await page.locator('#verify[data-gangway-state="failed"]').waitFor();
  assert.equal(await page.locator("#verify").getAttribute("data-gangway-error"), "origin_not_allowed");
  const errors = await page.evaluate(() => window.__errors);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.equal(errors[0].code, "origin_not_allowed");
  assert.equal(errors[0].status, 403);
  assert.equal(errors[0].fatal, true);
  assert.match(errors[0].message, /client\.allowed_origins/);
  assert.ok(errors[0].message.includes(refused), errors[0].message);
  // The element says so instead of "Connection lost, reconnecting…".
  const shown = await page.locator("#verify").innerText();
  assert.match(shown, /client\.allowed_origins/);
  assert.doesNotMatch(shown, /reconnecting/i);
  assert.equal(await page.locator("#verify iframe").count(), 0);
  // No retry: the request that failed CORS (with the secret) and the probe
  // (a simple request without it). Back online wakes any reconnect wait:
  // there is none, so no third request follows the round trip below.
  assert.equal(streams.length, 2, JSON.stringify(streams));
  assert.ok(streams[0].authorization?.startsWith("Bearer "));
  assert.equal(streams[1].authorization, undefined);
  await page.evaluate(() => window.dispatchEvent(new Event("online")));
  await page.evaluate(() => fetch("/api/ping").then((r) => r.text()));
  assert.equal(streams.length, 2);
  assert.equal((await page.evaluate(() => window.__errors)).length, 1);
  await context.close();
});
