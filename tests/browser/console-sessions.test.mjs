// The console's sessions, session and workflows pages in headless Chromium
// against `gangway demo`, with real sessions the demo's customer backend
// starts on the simulators (Ockto, Incode): the list shows them, searches
// them, and a new session appears without a reload (the server pushes it);
// a waiting Ockto session's detail draws the workflow graph with its path
// and current step, its wait and countdown, its timeline; an admin cancels
// it with confirmation and the page follows; a viewer has no cancel button;
// the workflows pages show counts, source and graph. axe-core finds no
// serious or critical problem on any of these pages.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
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

const newPage = (viewport) => openPage(browser, viewport);

/** A session started the way the demo's card starts it: its customer backend, with its API key. */
async function startFlow(flow) {
  const r = await fetch(`${demo.url}/demo/api/sessions`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: demo.url },
    body: JSON.stringify({ flow, order: `order-${randomBytes(6).toString("hex")}` }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return JSON.parse(text).id;
}

async function waiting(id) {
  return until(`${id} to wait`, async () => {
    const s = await demo.api(`/v1/sessions/${id}`);
    return s.status === "waiting" && s;
  });
}

async function rowIds(page) {
  return page.locator("#sessions-body tr").evaluateAll((rows) => rows.map((r) => r.dataset.id));
}

test("the session list: real sessions, search, and a new one arriving live", async () => {
  const ockto = await startFlow("ockto-mortgage");
  const incode = await startFlow("incode-identity");
  await waiting(ockto);
  const { context, page, problems } = await newPage();
  await login(page, demo, "viewer", "/console/sessions");
  await page.locator(`#sessions-body tr[data-id="${ockto}"]`).waitFor();
  await page.locator(`#sessions-body tr[data-id="${incode}"]`).waitFor();
  await page.locator("#live-state.on").waitFor();

  // Search by workflow: only Ockto sessions; the search is in the URL.
  await page.selectOption("#f-workflow", "ockto-mortgage");
  await page.click('form[role="search"] button[type="submit"]');
  await until("only ockto rows", async () => !(await rowIds(page)).includes(incode));
  assert.ok((await rowIds(page)).includes(ockto));
  assert.match(page.url(), /workflow=ockto-mortgage/);

  // A new Ockto session appears at the top without a reload (the page's
  // own state survives: no navigation happened).
  await page.evaluate(() => { window.__stillHere = true; });
  const fresh = await startFlow("ockto-mortgage");
  await page.locator(`#sessions-body tr[data-id="${fresh}"]`).waitFor();
  assert.equal((await rowIds(page))[0], fresh);
  assert.equal(await page.evaluate(() => window.__stillHere), true);
  // A new Incode session does not match the search: it stays out.
  const other = await startFlow("incode-identity");
  await waiting(other);
  assert.ok(!(await rowIds(page)).includes(other));

  // Search by status and by id.
  await page.selectOption("#f-workflow", "");
  await page.selectOption("#f-status", "ended");
  await page.click('form[role="search"] button[type="submit"]');
  await until("no waiting rows", async () => !(await rowIds(page)).includes(ockto));
  await page.click("#clear-filters");
  await page.fill("#f-id", incode);
  await page.click('form[role="search"] button[type="submit"]');
  await until("the one session", async () => {
    const ids = await rowIds(page);
    return ids.length === 1 && ids[0] === incode;
  });
  await page.click("#clear-filters");
  await page.locator(`#sessions-body tr[data-id="${fresh}"]`).waitFor();

  assert.deepEqual(await seriousViolations(page), []);
  await page.screenshot({ path: join(SHOTS, "console-sessions.png") });
  // The row links to the detail page, inside the console.
  await page.click(`#sessions-body tr[data-id="${ockto}"] a`);
  await page.waitForURL(`**/console/sessions/${ockto}`);
  await page.locator("#session-graph svg").waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test("a waiting Ockto session: its graph highlights the current step; an admin cancels it", async () => {
  const id = await startFlow("ockto-mortgage");
  const s = await waiting(id);
  assert.ok(s.step, JSON.stringify(s));

  // A viewer sees it, without a cancel button.
  {
    const { context, page } = await newPage();
    await login(page, demo, "viewer", `/console/sessions/${id}`);
    await page.locator("#session-graph svg").waitFor();
    assert.equal(await page.locator("#cancel").count(), 0);
    await context.close();
  }

  const { context, page, problems } = await newPage();
  await login(page, demo, "admin", `/console/sessions/${id}`);
  const current = page.locator("#session-graph svg .node.current");
  await current.waitFor();
  assert.equal(await current.getAttribute("data-id"), s.step);
  assert.equal(await page.locator("#session-graph svg .node.current").count(), 1);
  // The path it took: the start step and the current one, and an edge into the current one.
  const onPath = await page.locator("#session-graph svg .node.on-path").evaluateAll((ns) => ns.map((n) => n.dataset.id));
  assert.ok(onPath.length >= 2 && onPath.includes(s.step), onPath.join());
  assert.ok(await page.locator(`#session-graph svg path.edge.on-path[data-to="${s.step}"]`).count() >= 1);
  // What it waits on, with a countdown: its `run` step's child session,
  // linked there and among the child sessions; its timeline.
  await page.locator("#countdown").waitFor();
  assert.match(await page.locator("#countdown").textContent(), /\d/);
  const child = s.waiting_on.session;
  assert.ok(child, JSON.stringify(s.waiting_on));
  await page.locator(`section.waiting a[href="/console/sessions/${child}"]`).waitFor();
  await page.locator(`#children-h + ul a[href="/console/sessions/${child}"]`).waitFor();
  const kinds = await page.locator("#timeline tbody tr td:nth-child(4)").allTextContents();
  assert.ok(kinds.includes("session.created") && kinds.includes("child.started"), kinds.join());
  // No secret is on the page: no client secret, no provider token.
  const text = await page.locator("main").textContent();
  assert.ok(!/cs_[0-9a-f]{20}|gw_demo_/.test(text), "a secret is shown");

  assert.deepEqual(await seriousViolations(page), []);
  await page.screenshot({ path: join(SHOTS, "console-session.png"), fullPage: true });

  // The child: the provider session it holds (Ockto), its own current step.
  await page.click(`section.waiting a[href="/console/sessions/${child}"]`);
  await page.waitForURL(`**/console/sessions/${child}`);
  await page.locator("#session-graph svg .node.current").waitFor();
  assert.match(await page.locator("#providers").textContent(), /ockto/);
  const childKinds = await page.locator("#timeline tbody tr td:nth-child(4)").allTextContents();
  assert.ok(childKinds.includes("provider.call"), childKinds.join());
  assert.deepEqual(await seriousViolations(page), []);
  await page.goBack();
  await page.waitForURL(`**/console/sessions/${id}`);
  await page.locator("#session-graph svg .node.current").waitFor();

  // Cancel: asked first; "Keep it" changes nothing.
  await page.click("#cancel");
  await page.locator("#cancel-dialog[open]").waitFor();
  assert.deepEqual(await seriousViolations(page, "#cancel-dialog"), []);
  await page.click('#cancel-dialog button[value="keep"]');
  assert.equal((await demo.api(`/v1/sessions/${id}`)).status, "waiting");
  await page.click("#cancel");
  await page.fill("#cancel-reason", "asked by the customer on the phone");
  await page.click("#cancel-confirm");
  // The page follows the session live: ended, canceled, the graph ends at the outcome.
  await page.locator("#session-status .badge-ended").waitFor();
  await page.locator('#session-graph svg .node.on-path[data-id="outcome:canceled"]').waitFor();
  assert.equal(await page.locator("#cancel").count(), 0);
  const after = await demo.api(`/v1/sessions/${id}`);
  assert.equal(after.outcome, "canceled");
  assert.equal(after.reason, "asked by the customer on the phone");
  assert.deepEqual(problems, []);
  await context.close();
});

test("the workflows pages: counts per version, the source and the graph", async () => {
  const id = await startFlow("ockto-mortgage");
  await waiting(id);
  const { context, page, problems } = await newPage();
  await login(page, demo, "viewer", "/console/workflows");
  const card = page.locator("section.workflow-card", { has: page.locator("h2 a", { hasText: "ockto-mortgage" }) });
  await card.waitFor();
  const waitingCount = await card.locator("tbody tr").first().locator("td").nth(1).textContent();
  assert.ok(Number(waitingCount) >= 1, waitingCount);
  assert.deepEqual(await seriousViolations(page), []);

  await card.locator("h2 a").click();
  await page.waitForURL("**/console/workflows/ockto-mortgage");
  const graph = page.locator(".graph-wrap svg.graph");
  await graph.waitFor();
  assert.ok((await graph.locator(".node").count()) > 3);
  assert.ok((await graph.locator(".node-outcome").count()) >= 2);
  // Choosing a step shows its line in the source (by keyboard too).
  const node = graph.locator(".node[role=button]").first();
  await node.focus();
  await page.keyboard.press("Enter");
  const marked = page.locator("table.source tr.marked");
  await marked.waitFor();
  const stepId = await node.getAttribute("data-id");
  assert.match(await marked.textContent(), new RegExp(`${stepId}:`));
  assert.deepEqual(await seriousViolations(page), []);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, "console-workflows.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
});
