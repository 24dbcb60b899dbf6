// The console's sign-in in headless Chromium: each role signs in through
// the form and sees the navigation its role allows; a wrong password shows
// an error; a form on another site cannot act with the operator's session;
// sign-out ends it; the audit log page lists the sign-ins. axe-core finds no
// serious or critical problem on the sign-in page, the shell and the audit log.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { join } from "node:path";
import { launch, newPage as openPage, SHOTS } from "./lib/chromium.mjs";
import { startDemo, until } from "./lib/demo.mjs";
import { login, seriousViolations } from "./lib/console.mjs";

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

const newPage = (viewport) => openPage(browser, viewport ?? { width: 1280, height: 800 });

async function navNames(page) {
  return page.locator("#nav a").evaluateAll((as) => as.map((a) => a.textContent.trim()));
}

test("each role signs in and sees the pages its role allows", async () => {
  for (const [role, studio] of [["viewer", false], ["reviewer", false], ["admin", true]]) {
    const { context, page, problems } = await newPage();
    await login(page, demo, role);
    assert.equal(await page.locator("#who .role").textContent(), role);
    const nav = await navNames(page);
    assert.ok(nav.includes("Sessions") && nav.includes("Reviews"), nav.join());
    assert.equal(nav.includes("Studio"), studio, `${role}: ${nav}`);
    assert.equal(nav.includes("Audit log"), studio, `${role}: ${nav}`);
    // The cookie is not readable by scripts.
    assert.equal(await page.evaluate(() => document.cookie.includes("gangway_console")), false);
    assert.deepEqual(problems, []);
    await context.close();
  }
});

test("a wrong password is refused on the form; the sign-in page has no serious accessibility problem", async () => {
  const { context, page } = await newPage();
  await page.goto(`${demo.url}/console/sessions`);
  assert.match(page.url(), /\/console\/login\?next=%2Fconsole%2Fsessions$/);
  assert.deepEqual(await seriousViolations(page), []);
  await page.fill("#email", "viewer@kestrel.example");
  await page.fill("#password", "not the password at all");
  await page.click('button[type="submit"]');
  await page.locator(".notice").waitFor();
  assert.match(await page.locator(".notice").textContent(), /wrong email or password/);
  assert.equal(await page.inputValue("#email"), "viewer@kestrel.example");
  await page.screenshot({ path: join(SHOTS, "console-login.png") });
  await context.close();
});

test("a form on another site cannot act with the operator's session", async () => {
  const { context, page } = await newPage();
  await login(page, demo, "admin");
  // A session the attacker would like canceled.
  const created = await fetch(`${demo.url}/v1/sessions`, {
    method: "POST",
    headers: { authorization: `Bearer ${demo.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ workflow: "ockto-mortgage", input: { loan_amount: 250000 } }),
  }).then((r) => r.json());
  assert.ok(created.id, JSON.stringify(created));
  // The attacker's page, on another origin (localhost vs 127.0.0.1), posts
  // a form to the cancel route as soon as it loads.
  const target = `${demo.url}/v1/sessions/${created.id}/cancel`;
  const evil = createServer((req, res) => {
    res.setHeader("content-type", "text/html");
    res.end(`<form id="f" method="post" action="${target}" enctype="text/plain"><input name='{"reason":"x","y":"' value='"}'></form><script>document.getElementById("f").submit()</script>`);
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  try {
    const answered = page.waitForResponse((r) => r.url() === target);
    await page.goto(`http://localhost:${evil.address().port}/`);
    const resp = await answered;
    assert.ok([401, 403, 415].includes(resp.status()), `the forged post got ${resp.status()}`);
    const session = await demo.api(`/v1/sessions/${created.id}`);
    assert.notEqual(session.outcome, "canceled", JSON.stringify(session));
  } finally {
    evil.close();
  }
  await context.close();
});

test("the audit log lists the sign-ins; sign-out ends the session", async () => {
  const { context, page, problems } = await newPage();
  await login(page, demo, "admin", "/console/audit");
  await page.locator("#audit-action").selectOption("operator.signed_in");
  await page.click('form[role="search"] button[type="submit"]');
  await until("sign-ins in the audit log", async () => (await page.locator("tbody tr").count()) >= 1);
  const rows = await page.locator("tbody tr").allTextContents();
  assert.ok(rows.every((r) => r.includes("operator.signed_in") && r.includes("operator:op_")), rows.join("\n"));
  assert.deepEqual(await seriousViolations(page), []);
  await page.screenshot({ path: join(SHOTS, "console-audit.png"), fullPage: true });
  await page.click("#logout");
  await page.waitForURL(/\/console\/login/);
  // The old page's API calls are refused now: back to the sign-in.
  await page.goto(`${demo.url}/console/audit`);
  assert.match(page.url(), /\/console\/login/);
  assert.deepEqual(problems, []);
  await context.close();
});

test("every console page is readable on a phone: nothing wider than the screen but the scrollable tables", async () => {
  const { context, page, problems } = await newPage({ width: 390, height: 844, isMobile: true, hasTouch: true });
  await login(page, demo, "admin");
  for (const path of ["/console", "/console/sessions", "/console/reviews", "/console/deliveries", "/console/workflows", "/console/studio", "/console/audit"]) {
    await page.goto(`${demo.url}${path}`);
    await page.locator("main h1").first().waitFor();
    await page.waitForLoadState("networkidle").catch(() => {});
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `${path} is ${overflow}px wider than a phone's screen`);
  }
  await page.goto(`${demo.url}/console/sessions`);
  await page.locator("main h1").first().waitFor();
  await page.screenshot({ path: join(SHOTS, "console-phone.png") });
  assert.deepEqual(problems, []);
  await context.close();
});
