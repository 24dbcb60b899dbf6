// The "Assistant (Open Integration Hub)" card in headless Chromium, against
// the real `gangway demo` binary and its OIH simulator: /help, /auth with
// the sign-in in a popup, /me, /run-flow, and a socket closed mid-flow that
// the page reopens by itself without showing anything twice. Screenshots go
// to target/browser-screenshots/, or to docs/screenshots/ with
// UPDATE_SCREENSHOTS=1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startDemo, until, ROOT } from "./lib/demo.mjs";

const SHOTS = process.env.UPDATE_SCREENSHOTS ? join(ROOT, "docs/screenshots") : join(ROOT, "target/browser-screenshots");
const FLOW = "assistant-oih";
// The simulated hub's HMAC key (sim/setup.rs), its OAuth tokens, Gangway's
// callback tokens, the demo's customer API key.
const SECRET_PATTERNS = [/\boihhmac_[0-9a-f]{16,}/, /\boihsim_(?:at|rt)_[A-Za-z0-9]+/, /\bgwcb_[0-9a-f]{16,}/, /\bgw_demo_[0-9a-f]{16,}/, /secret_id/];

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

const log = () => "#verify .gw-chat-log";

/** Types a line and returns the run card or answer that replies to it. */
async function type(page, line) {
  await page.fill("#verify .gw-chat-input", line);
  await page.press("#verify .gw-chat-input", "Enter");
  const mine = page.locator(`${log()} li[data-role=user]:not(.gw-pending)`, { hasText: line }).last();
  await mine.waitFor();
  return mine;
}

/** The run card of the latest run of `command`. */
const runCard = (page, command) => page.locator(`${log()} li[data-role=run]`, { has: page.locator(".gw-run-head", { hasText: `/${command}` }) }).last();

test("the assistant: /help, /auth through a sign-in popup, /me, /run-flow, and a dropped socket that reconnects without repeats", { timeout: 120000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  const bodies = [];
  context.on("response", async (r) => {
    try {
      bodies.push(`${r.url()}\n${await r.text()}`);
    } catch {
      // redirects and aborted responses have no body
    }
  });
  // Every chat socket goes through here: the test can cut one, and sees
  // every frame the page received.
  const sockets = [];
  const frames = [];
  await page.routeWebSocket(/\/chat$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      frames.push(String(m));
      ws.send(m);
    });
    sockets.push(ws);
  });

  await page.goto(`${demo.url}/demo`);
  await page.click(`a[data-flow="${FLOW}"]`);
  await page.locator('#verify .gw-chat[data-chat-state="live"]').waitFor();
  await page.locator(`${log()} li[data-greeting]`).waitFor();

  await type(page, "/help");
  await page.locator(`${log()} li[data-role=assistant]`, { hasText: "/run-flow <flow-id> [json]" }).waitFor();

  // /auth: the chat shows a sign-in button; the sign-in happens in a popup.
  await type(page, "/auth");
  const auth = runCard(page, "auth");
  const signIn = auth.getByRole("button", { name: "Sign in" });
  await signIn.waitFor();
  await page.screenshot({ path: join(SHOTS, "assistant-sign-in.png"), fullPage: true });
  const opened = page.waitForEvent("popup");
  await signIn.click();
  const popup = await opened;
  await popup.locator("#password").fill("correct horse");
  await popup.locator("button#sign-in").click();
  await popup.locator("button#allow").click();
  await auth.locator('[data-outcome="approved"], .gw-run-result').first().waitFor();
  await page.locator(`${log()} li[data-role=run][data-outcome="approved"]`, { hasText: "Signed in as Ada Lovelace" }).waitFor();
  if (!popup.isClosed()) await popup.close();

  // /me: the profile as a card of fields.
  await type(page, "/me");
  const me = runCard(page, "me");
  await me.locator('xpath=self::*[@data-outcome="approved"]').waitFor();
  await me.locator("dt", { hasText: "Display name" }).waitFor();
  await me.locator("dd", { hasText: "Ada Lovelace" }).first().waitFor();

  // /run-flow with JSON input: the customer record, readable.
  await type(page, '/run-flow lookup-customer {"customer_id": "c-42"}');
  const lookup = runCard(page, "run-flow");
  await lookup.locator('xpath=self::*[@data-outcome="approved"]').waitFor();
  await lookup.locator("dt", { hasText: "Open orders" }).waitFor();

  // A slow flow; the socket is cut after its first progress line. The page
  // reconnects by itself and shows the rest, each line once.
  await type(page, "/run-flow slow-progress");
  const slow = runCard(page, "run-flow");
  await slow.locator(".gw-run-progress").first().waitFor();
  const before = sockets.length;
  await sockets[sockets.length - 1].close({ code: 1006, reason: "test cut the connection" });
  await until("the page to reconnect", () => sockets.length > before);
  await page.locator('#verify .gw-chat[data-chat-state="live"]').waitFor();
  await slow.locator('xpath=self::*[@data-outcome="approved"]').waitFor({ timeout: 30000 });
  assert.equal(await slow.locator(".gw-run-progress").count(), 3, "three progress lines, none twice");
  assert.equal(await slow.locator(".gw-run-result").count(), 1, "one result");
  const ids = await page.locator(`${log()} [data-id]`).evaluateAll((els) => els.map((e) => e.getAttribute("data-id")));
  assert.equal(new Set(ids).size, ids.length, `no message shown twice: ${ids}`);
  await page.screenshot({ path: join(SHOTS, "assistant.png"), fullPage: true });

  // Nothing secret reached the page: responses and socket frames.
  const everything = bodies.join("\n") + frames.join("\n");
  for (const p of SECRET_PATTERNS) assert.doesNotMatch(everything, p);
  assert.deepEqual(problems, []);
  await context.close();
});
