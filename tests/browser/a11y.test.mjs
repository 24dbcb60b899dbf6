// Accessibility of what end users see: axe-core on the demo's pages (the
// landing page, each flow's page, the backend webhook inbox) and on each of
// the SDK's renderers as real demo flows reach them (the Incode iframe,
// Ockto's QR code, Stripe's popup, the assistant's chat, and an outcome).
// Every check must find no serious or critical violation.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newPage as openPage } from "./lib/chromium.mjs";
import { startDemo } from "./lib/demo.mjs";
import { seriousViolations } from "./lib/axe.mjs";

let demo;
let browser;

before(async () => {
  demo = await startDemo();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await demo?.stop();
});

const newPage = (viewport) => openPage(browser, viewport ?? { width: 1200, height: 860 });

async function expectAccessible(page, what) {
  const found = await seriousViolations(page);
  assert.deepEqual(found, [], `${what}: serious or critical accessibility violations`);
}

/** Starts a demo flow from the landing page, as a visitor does. */
async function startFlow(page, flow) {
  await page.goto(`${demo.url}/demo`);
  const created = page.waitForResponse((r) => r.url().endsWith("/demo/api/sessions"));
  await page.click(`a[data-flow="${flow}"]`);
  await created;
  await page.locator('#verify[data-gangway-state="live"]').waitFor();
}

test("the demo's landing page and the webhook inbox", async () => {
  const { context, page } = await newPage();
  await page.goto(`${demo.url}/demo`);
  await page.locator("a[data-flow]").first().waitFor();
  await expectAccessible(page, "/demo");
  await page.goto(`${demo.url}/demo/webhooks`);
  await page.locator("h1").waitFor();
  await expectAccessible(page, "/demo/webhooks");
  await context.close();
});

test("the Incode flow: its page with the iframe renderer, then the outcome", { timeout: 120000 }, async () => {
  const { context, page } = await newPage();
  await startFlow(page, "incode-identity");
  await page.locator("#verify iframe.gw-iframe").waitFor();
  await expectAccessible(page, "incode-identity flow page (iframe)");
  const frame = page.frameLocator("#verify iframe.gw-iframe");
  await frame.getByRole("button", { name: "Pass" }).click();
  await page.locator('#verify[data-gangway-outcome="approved"]').waitFor();
  await page.locator('#result[data-outcome="approved"]').waitFor();
  await expectAccessible(page, "incode-identity outcome");
  await context.close();
});

test("the Ockto flow: its page with the QR renderer", { timeout: 120000 }, async () => {
  const { context, page } = await newPage();
  await startFlow(page, "ockto-mortgage");
  await page.locator("#verify figure.gw-qr svg").waitFor();
  await expectAccessible(page, "ockto-mortgage flow page (QR)");
  await context.close();
});

test("the Stripe and WhatsApp flows: their pages with the popup renderer", { timeout: 120000 }, async () => {
  for (const flow of ["stripe-identity", "whatsapp-360dialog"]) {
    const { context, page } = await newPage();
    await startFlow(page, flow);
    await page.locator('#verify .gw-popup[data-phase="ready"]').waitFor();
    await expectAccessible(page, `${flow} flow page (popup)`);
    await context.close();
  }
});

test("the assistant flow: its page with the chat renderer", { timeout: 120000 }, async () => {
  const { context, page } = await newPage();
  await startFlow(page, "assistant-oih");
  await page.locator('#verify .gw-chat[data-chat-state="live"]').waitFor();
  await page.locator("#verify .gw-chat-log li[data-greeting]").waitFor();
  await expectAccessible(page, "assistant-oih flow page (chat)");
  await context.close();
});
