// Headless Chromium for the browser tests: Debian's (no browser download),
// with the launch flags every test uses, and pages that fail on the page's
// own errors. Screenshots go to docs/screenshots when UPDATE_SCREENSHOTS is
// set (the README shows them), else to target/.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ROOT } from "./demo.mjs";

export const SHOTS = process.env.UPDATE_SCREENSHOTS ? join(ROOT, "docs/screenshots") : join(ROOT, "target/browser-screenshots");

/** Launches Chromium (and makes the screenshot folder). */
export async function launch() {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
}

/**
 * A page in a context of its own: `{ context, page, problems }`, where
 * `problems` collects the page's uncaught errors.
 */
export async function newPage(browser, { width = 1280, height = 900, ...options } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  return { context, page, problems };
}
