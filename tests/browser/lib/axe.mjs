// Accessibility checks with axe-core in the page under test. The source is
// evaluated through the DevTools protocol, which the pages' CSP (scripts
// only from 'self') does not govern, so the page is checked as served.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe on `page` (or the element `selector`) and answers the serious and
 * critical violations, each as "rule: help (targets)".
 */
export async function seriousViolations(page, selector = null) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(SOURCE);
  const results = await page.evaluate(
    (sel) => window.axe.run(sel ? document.querySelector(sel) : document, { resultTypes: ["violations"] }),
    selector,
  );
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}
