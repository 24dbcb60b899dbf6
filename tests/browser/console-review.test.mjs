// The console's review queue and workflow studio in headless Chromium,
// against the real `gangway demo` with sessions from its simulators: a
// reviewer claims and decides a review with the keyboard only and the
// customer's webhook inbox shows the decision; a viewer cannot decide (no
// button, and the API answers 403); an admin's studio shows a broken
// draft's problem at its line and deploys a valid draft as the next
// version. axe-core finds no serious or critical violation on these pages.
// Screenshots: console-reviews.png, console-studio.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { launch, newPage as openPage, SHOTS } from "./lib/chromium.mjs";
import { startDemo, until } from "./lib/demo.mjs";
import { login } from "./lib/console.mjs";
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

const newPage = (viewport) => openPage(browser, viewport);

async function expectAccessible(page, what) {
  assert.deepEqual(await seriousViolations(page), [], `${what}: serious or critical accessibility violations`);
}

/** A demo Incode session the visitor sent to review (the simulator's Review button). */
async function sessionInReview() {
  const { context, page } = await newPage();
  await page.goto(`${demo.url}/demo`);
  const created = page.waitForResponse((r) => r.url().endsWith("/demo/api/sessions"));
  await page.click('a[data-flow="incode-identity"]');
  const session = await (await created).json();
  await page.frameLocator("#verify iframe.gw-iframe").getByRole("button", { name: "Review" }).click();
  await page.locator('#verify[data-gangway-step="manual_review"]').waitFor();
  await context.close();
  return session.id;
}

/** Presses Tab until `match()` is true of the focused element (at most `max` times). */
async function tabTo(page, what, match, max = 80) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(match)) return;
  }
  throw new Error(`Tab never reached ${what}`);
}

const card = (page, id) => page.locator(`li.review[data-session="${id}"]`);

test("a reviewer claims and decides a review with the keyboard only; the customer's backend hears the decision", { timeout: 180000 }, async () => {
  const id = await sessionInReview();
  const { context, page, problems } = await newPage();
  await login(page, demo, "reviewer");
  await page.goto(`${demo.url}/console/reviews`);
  await card(page, id).waitFor();
  // The facts the workflow attached, readable: Incode's score summary.
  await card(page, id).locator("dl.facts dt", { hasText: "overall status" }).waitFor();
  await expectAccessible(page, "/console/reviews");

  // Tab to this review's Claim button, press Enter: focus lands in the decision form.
  await page.evaluate((id) => { window.__target = id; }, id);
  await tabTo(page, "the Claim button", () => {
    const a = document.activeElement;
    return !!a && a.classList.contains("claim-button") && a.closest("li.review").dataset.session === window.__target;
  });
  await page.keyboard.press("Enter");
  await card(page, id).locator(".claim-mine", { hasText: "Claimed by you" }).waitFor();
  await until("focus on the decision", () => page.evaluate(() => document.activeElement?.type === "radio"));
  await shot(page, "console-reviews");

  // Space picks Approved, Tab to the note, type it, Tab to Decide, Enter.
  await page.keyboard.press("Space");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.name), "note");
  await page.keyboard.type("Document and selfie checked by hand");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Decide");
  await page.keyboard.press("Enter");

  // The decision shows at once, focused, with the way to the session.
  await card(page, id).locator('[role="status"]', { hasText: "Decided approved" }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), "H2");
  const link = card(page, id).getByRole("link", { name: "Open the session detail" });
  assert.equal(await link.getAttribute("href"), `/console/sessions/${id}`);
  await expectAccessible(page, "/console/reviews after a decision");

  // The customer's backend got the decision, signed, then the end.
  const hooks = await until("the decision's webhooks in the demo inbox", async () => {
    const { data } = await (await fetch(`${demo.url}/demo/api/webhooks`)).json();
    const mine = data.filter((w) => w.session_id === id && w.verified);
    return mine.some((w) => w.event_type === "session.ended" && w.outcome === "approved") && mine;
  }, 30000, 200);
  assert.ok(hooks.some((w) => w.event_type === "session.updated"), JSON.stringify(hooks));
  const inbox = await context.newPage();
  await inbox.goto(`${demo.url}/demo/webhooks`);
  await inbox.locator("li.hook", { hasText: id }).first().waitFor();

  // The claim and the decision are in the audit log, under the operator
  // (read as an admin does, in the console's own session).
  const admin = await newPage();
  await login(admin.page, demo, "admin");
  const audit = await admin.page.evaluate(async (id) => (await fetch(`/v1/admin/audit?session_id=${id}`)).json(), id);
  await admin.context.close();
  const actions = audit.data.map((e) => `${e.action} ${e.actor.split(":")[0]}`);
  assert.ok(actions.includes("review.claimed operator"), JSON.stringify(audit));
  assert.ok(actions.includes("review.decided operator"), JSON.stringify(audit));
  assert.deepEqual(problems, []);
  await context.close();
});

test("a viewer sees the queue without claim or decide buttons, and the API refuses the viewer", { timeout: 180000 }, async () => {
  const id = await sessionInReview();
  const { context, page, problems } = await newPage();
  await login(page, demo, "viewer");
  await page.goto(`${demo.url}/console/reviews`);
  await card(page, id).waitFor();
  await page.locator(".notice", { hasText: "needs the reviewer role" }).waitFor();
  assert.equal(await card(page, id).getByRole("button").count(), 0, "no buttons on a viewer's review");
  await expectAccessible(page, "/console/reviews as a viewer");
  // The same request the console would send, with the viewer's session and CSRF token.
  const statuses = await page.evaluate(async (id) => {
    const me = await (await fetch("/v1/console/me")).json();
    const post = (path, body) => fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": me.csrf_token },
      body: JSON.stringify(body),
    }).then((r) => r.status);
    return [await post(`/v1/reviews/${id}/claim`, {}), await post(`/v1/reviews/${id}/decide`, { decision: "approved", note: "no" })];
  }, id);
  assert.deepEqual(statuses, [403, 403]);
  const review = await demo.api(`/v1/reviews/${id}`);
  assert.equal(review.claim, null, JSON.stringify(review));
  assert.deepEqual(problems, []);
  await context.close();
});

test("the studio shows a broken draft's problem at its line, dry-runs a draft and deploys it as the next version", { timeout: 180000 }, async () => {
  const { context, page, problems } = await newPage();
  await login(page, demo, "admin");
  await page.goto(`${demo.url}/console/studio`);
  const yaml = page.locator("#studio-yaml");
  const status = page.locator("#studio-yaml-problems-head");
  await status.filter({ hasText: "No problems." }).waitFor();
  await page.locator(".graph-holder svg.graph").waitFor();

  // Open the deployed http-score.
  const before = (await demo.api("/v1/workflows")).data.find((w) => w.id === "http-score");
  await page.selectOption("#studio-open", `http-score@${before.version}`);
  await page.getByRole("button", { name: "Open" }).click();
  await until("http-score's source in the editor", async () => (await yaml.inputValue()).includes("id: http-score"));
  const source = await yaml.inputValue();
  await status.filter({ hasText: "No problems." }).waitFor();

  // Break it: the problem appears at its line and column as one types.
  const broken = source.replace("next: wait_for_result", "next: wait_for_reslt");
  const lines = broken.split("\n");
  const line = lines.findIndex((l) => l.includes("wait_for_reslt")) + 1;
  const col = lines[line - 1].indexOf("wait_for_reslt") + 1;
  await yaml.fill(broken);
  const problem = page.getByRole("button", { name: `Line ${line}, column ${col}` });
  await problem.waitFor();
  assert.match(await problem.locator("xpath=..").textContent(), /unknown step `wait_for_reslt`/);
  assert.equal(await page.locator(".gutter span.bad").first().textContent(), `${line}\n`);
  assert.match(await page.getByRole("button", { name: /^Deploy/ }).textContent(), /fix the problems first/);
  await expectAccessible(page, "/console/studio with problems");
  // The problem's button puts the caret there, from the keyboard.
  await problem.focus();
  await page.keyboard.press("Enter");
  const caret = await yaml.evaluate((t) => [document.activeElement === t, t.value.slice(0, t.selectionStart).split("\n").length]);
  assert.deepEqual(caret, [true, line]);

  // Fixed, it validates again and the graph comes back.
  await yaml.fill(source);
  await status.filter({ hasText: "No problems." }).waitFor();
  const next = before.version + 1;
  const deploy = page.getByRole("button", { name: `Deploy http-score as version ${next}` });
  await deploy.waitFor();
  await page.locator(".graph-pane:not(.stale) svg.graph g.node[data-id=wait_for_result]").waitFor();

  // Dry run against the simulators, stepped through.
  await page.fill("#dr-events", JSON.stringify([{ at: "wait_for_result", sim: "score", action: "complete", body: { score: 72 } }]));
  await page.getByRole("button", { name: "Dry run the draft" }).click();
  await page.locator(".dr-summary", { hasText: "The dry run ended" }).locator(".badge-approved").waitFor();
  assert.ok(await page.locator(".trace .trace-item").count() > 5);
  await page.getByRole("button", { name: "Next entry" }).click();
  await page.locator(".trace-item[aria-current=step]").waitFor();
  await page.getByRole("button", { name: "Next entry" }).click();
  await page.locator(".graph-holder svg.graph g.node.current").waitFor();
  await expectAccessible(page, "/console/studio after a dry run");
  await shot(page, "console-studio");

  // Deploy as the next version, with a confirmation.
  await deploy.click();
  await page.getByRole("button", { name: `Yes, deploy version ${next}` }).click();
  await page.locator(".deployed", { hasText: `Deployed http-score version ${next}` }).waitFor();
  const after = (await demo.api("/v1/workflows")).data.find((w) => w.id === "http-score");
  assert.equal(after.version, next);
  assert.match(await yaml.inputValue(), new RegExp(`^version: ${next}$`, "m"));
  assert.deepEqual(problems, []);
  await context.close();
});

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}
