// The Ockto mortgage card in headless Chromium, with two pages: the desktop
// page shows the QR code; a second page (the "phone") opens its link and
// presses Scanned, then Share data; the desktop page moves on live and
// shows the outcome and the rules that decided it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startDemo, ROOT } from "./lib/demo.mjs";

const SHOTS = process.env.UPDATE_SCREENSHOTS ? join(ROOT, "docs/screenshots") : join(ROOT, "target/browser-screenshots");

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

async function newPage(viewport) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  return { context, page, problems };
}

test("QR on the desktop, scan and share on the phone, the desktop moves on live", async () => {
  const desktop = await newPage({ width: 1200, height: 900 });
  const seen = [];
  desktop.page.on("response", async (r) => {
    try {
      seen.push(`${r.url()} ${JSON.stringify(r.headers())} ${await r.text()}`);
    } catch {
      // bodies of redirects and aborted requests are not available
    }
  });
  await desktop.page.goto(`${demo.url}/demo`);
  const created = desktop.page.waitForResponse((r) => r.url().endsWith("/demo/api/sessions"));
  await desktop.page.click('a[data-flow="ockto-mortgage"]');
  const session = await (await created).json();
  const qr = desktop.page.locator("#verify figure.gw-qr svg");
  await qr.waitFor();
  const link = await desktop.page.locator("#verify figure.gw-qr a").getAttribute("href");
  assert.match(link, /\/sim\/ockto\/app\/ock_/);
  await desktop.page.screenshot({ path: join(SHOTS, "ockto-qr.png"), fullPage: true });

  // The phone opens the QR code's link.
  const phone = await newPage({ width: 390, height: 844 });
  await phone.page.goto(link);
  await phone.page.click("#scan");
  // The desktop learns of the scan from Gangway's stream (Gangway polls Ockto).
  await desktop.page.locator('#verify figure.gw-qr[data-scanned="true"]').waitFor();
  assert.equal(await desktop.page.locator("#verify figure.gw-qr svg").count(), 0, "the code is gone once scanned");
  await phone.page.click("#share");

  // The outcome and the rules that decided it.
  await desktop.page.locator("#verify[data-gangway-outcome]").waitFor();
  const outcome = await desktop.page.locator("#verify").getAttribute("data-gangway-outcome");
  assert.ok(["approved", "declined", "review"].includes(outcome), outcome);
  await desktop.page.locator(`#result[data-outcome="${outcome}"]`).waitFor();
  await desktop.page.locator("#decision:not([hidden]) #decision-rules li").first().waitFor();
  const reason = await desktop.page.locator("#decision-reason").textContent();
  const rules = await desktop.page.locator("#decision-rules li").allTextContents();
  assert.ok(rules.some((r) => r.includes("state.ockto.state.result.summary")), rules.join("\n"));
  await desktop.page.screenshot({ path: join(SHOTS, "ockto-decided.png"), fullPage: true });

  // The server says the same.
  const res = await fetch(`${demo.url}/v1/sessions/${session.id}`, { headers: { Authorization: `Bearer ${demo.apiKey}` } });
  const server = await res.json();
  assert.equal(server.outcome, outcome);
  assert.equal(server.reason, reason);

  // Nothing secret reached the desktop page: no API key anywhere, and
  // Gangway's client API carried no shared financial data (only the demo's
  // own backend, holding the API key, chose to show the rules).
  const all = seen.join("\n");
  assert.ok(!all.includes(demo.apiKey), "the customer API key reached the browser");
  const client = seen.filter((r) => r.includes("/v1/client/")).join("\n");
  assert.ok(client.length > 0);
  for (const field of ["net_monthly_income", "gross_yearly_income", "odm", "employer"]) {
    assert.ok(!client.includes(field), `${field} reached the browser through the client API`);
  }
  assert.deepEqual(desktop.problems, []);
  assert.deepEqual(phone.problems, []);
  await desktop.context.close();
  await phone.context.close();
});
