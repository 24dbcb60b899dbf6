// axe-core (the npm package) in a Playwright page: the WCAG 2.x A/AA rules
// and best practices on the whole document, and the serious or critical
// violations as readable lines, so that a failing assertion says what to fix.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe on `page` (the main document; `include`: a CSS selector to limit
 * it to) and returns the serious and critical violations as lines:
 * `rule (impact): help: selector, ...`. The pages run under a strict CSP
 * (script-src 'self'): axe is evaluated through the DevTools protocol,
 * which a page's CSP does not govern, so the page is tested as served.
 */
export async function seriousViolations(page, { include = null } = {}) {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async (include) => {
    const result = await window.axe.run(include ? { include: [include] } : document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
      resultTypes: ["violations"],
      iframes: false,
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(" ")),
    }));
  }, include);
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.targets.slice(0, 5).join(", ")}`);
}
