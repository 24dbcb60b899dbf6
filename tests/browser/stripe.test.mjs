// The "Verify with Stripe" card in headless Chromium, against the real
// `gangway demo` binary and its Stripe Identity simulator: Stripe's hosted
// page in a popup, a failure the user fixes by trying again, a failure that
// declines, and a cancel; nothing secret (the secret key, the signing
// secret, the customer's API key) reaches the browser. Screenshots go to
// target/browser-screenshots/, or to docs/screenshots/ with UPDATE_SCREENSHOTS=1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startDemo, ROOT } from "./lib/demo.mjs";

const SHOTS = process.env.UPDATE_SCREENSHOTS ? join(ROOT, "docs/screenshots") : join(ROOT, "target/browser-screenshots");
const FLOW = "stripe-identity";
const HOSTED = /\/sim\/stripe\/start\/test_[A-Za-z0-9]+$/;
// The simulator's secret key and signing secret (SimCredentials::random),
// the demo's customer API key.
const SECRET_PATTERNS = [/\bsk_test_[0-9a-f]{16,}/, /\bwhsec_[0-9a-f]{16,}/, /\bgw_demo_[0-9a-f]{16,}/];

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

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  const responses = [];
  context.on("response", (r) => responses.push(r));
  return { context, page, problems, responses };
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const session = (id) => demo.api(`/v1/sessions/${id}`);

/** Opens /demo and starts the Stripe card; returns the session the demo backend created. */
async function startStripe(page) {
  await page.goto(`${demo.url}/demo`);
  await page.locator("#card-stripe-identity").waitFor();
  const created = page.waitForResponse((r) => r.url().endsWith("/demo/api/sessions"));
  await page.click(`a[data-flow="${FLOW}"]`);
  const s = await (await created).json();
  await page.locator('#verify .gw-popup[data-phase="ready"]').waitFor();
  await page.locator('#verify[data-gangway-state="live"]').waitFor();
  return s;
}

/** Clicks `name` and returns the popup it opened, on Stripe's hosted page. */
async function openStripe(page, name) {
  const opened = page.waitForEvent("popup");
  await page.getByRole("button", { name }).click();
  const popup = await opened;
  await popup.locator("h1", { hasText: "Verify your identity" }).waitFor();
  assert.match(popup.url(), HOSTED);
  return popup;
}

async function expectEnded(page, id, outcome) {
  await page.locator(`#verify[data-gangway-outcome="${outcome}"]`).waitFor();
  await page.locator(`#result[data-outcome="${outcome}"]`).waitFor();
  const s = await session(id);
  assert.equal(s.outcome, outcome, JSON.stringify(s));
  return s;
}

test("verified in Stripe's popup: the card goes on live to approved with the verified name; nothing secret reaches the browser", { timeout: 120000 }, async () => {
  const { context, page, problems, responses } = await newPage();
  const { id } = await startStripe(page);
  await shot(page, "stripe-ready");
  const popup = await openStripe(page, "Verify with Stripe");
  await shot(popup, "stripe-hosted-page");
  const closed = popup.waitForEvent("close");
  await popup.getByRole("button", { name: "Submit: verified" }).click();
  await closed; // the hosted page closes itself: the opener follows the outcome
  const s = await expectEnded(page, id, "approved");
  assert.equal(s.output.first_name, "Jenny");
  assert.match(s.output.verification_session, /^vs_/);
  await shot(page, "stripe-approved");

  let checked = 0;
  for (const r of responses) {
    const headers = JSON.stringify(await r.allHeaders().catch(() => ({})));
    const body = (await r.body().catch(() => Buffer.from(""))).toString("utf8");
    for (const text of [headers, body, r.url()]) {
      assert.ok(!text.includes(demo.apiKey), `the customer API key reached the browser in ${r.url()}`);
      for (const p of SECRET_PATTERNS) assert.ok(!p.test(text), `${p} matched a response of ${r.url()}`);
    }
    checked++;
  }
  assert.ok(checked >= 10, `checked ${checked} responses`);
  assert.ok(responses.some((r) => HOSTED.test(r.url())), "the hosted page was among them");
  assert.deepEqual(problems, []);
  await context.close();
});

test("a fixable failure offers a retry with a fresh link; a final one declines", { timeout: 120000 }, async () => {
  const { context, page, problems } = await newPage();
  const { id } = await startStripe(page);
  let popup = await openStripe(page, "Verify with Stripe");
  await popup.selectOption("#code", "document_expired");
  let closed = popup.waitForEvent("close");
  await popup.getByRole("button", { name: "Submit: fail" }).click();
  await closed;
  // Back to the card: Stripe's reason, and a button to try again.
  await page.locator("#verify .gw-popup .gw-title", { hasText: "expired" }).waitFor();
  await until_step(id, "retry");
  await shot(page, "stripe-retry");
  popup = await openStripe(page, "Try again with Stripe");
  await popup.selectOption("#code", "selfie_face_mismatch");
  closed = popup.waitForEvent("close");
  await popup.getByRole("button", { name: "Submit: fail" }).click();
  await closed;
  const s = await expectEnded(page, id, "declined");
  assert.equal(s.output.last_error_code, "selfie_face_mismatch");
  assert.deepEqual(problems, []);
  await context.close();
});

test("cancel on Stripe's page ends the card canceled", { timeout: 120000 }, async () => {
  const { context, page, problems } = await newPage();
  const { id } = await startStripe(page);
  const popup = await openStripe(page, "Verify with Stripe");
  const closed = popup.waitForEvent("close");
  await popup.getByRole("button", { name: "Cancel verification" }).click();
  await closed;
  const s = await expectEnded(page, id, "canceled");
  assert.equal(s.reason, "the VerificationSession was canceled at Stripe");
  assert.deepEqual(problems, []);
  await context.close();
});

async function until_step(id, step) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const s = await session(id);
    if (s.step === step && s.status === "waiting") return s;
    if (Date.now() > deadline) throw new Error(`session ${id} did not reach ${step}: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
