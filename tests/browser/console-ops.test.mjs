// The console's deliveries page and dashboard in headless Chromium, on a
// real `gangway demo` with a second customer endpoint: a receiver of our
// own, down while sessions end, so their `session.ended` deliveries fail;
// once it is up again an admin sends one again from the console and then
// the rest with "redeliver all failed since", and the receiver gets each
// under its original webhook-id. A viewer sees no redeliver button and the
// API refuses them (403). The dashboard's funnel counts the sessions made.
// axe-core finds no serious or critical problem on either page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { launch, newPage as openPage, SHOTS } from "./lib/chromium.mjs";
import { startDemo, until } from "./lib/demo.mjs";
import { login, seriousViolations } from "./lib/console.mjs";

let demo;
let browser;
let receiver;
let hookUrl;
/** Requests the receiver answered: `{ id, ok }`. */
const received = [];
let down = true;

before(async () => {
  receiver = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received.push({ id: req.headers["webhook-id"], ok: !down });
      res.writeHead(down ? 503 : 204).end();
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  hookUrl = `http://127.0.0.1:${receiver.address().port}/hooks`;
  const secret = `whsec_${randomBytes(24).toString("base64")}`;
  // One retry, soon: a delivery fails within a second while it is down.
  demo = await startDemo({
    extraConfig: `[webhooks]\nretry_schedule = ["100ms"]\nallowed_networks = ["127.0.0.1"]\n\n[[webhooks.endpoints]]\nurl = "${hookUrl}"\nsecret = "${secret}"\nevents = ["session.ended"]\n`,
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  await new Promise((r) => receiver?.close(r));
});

const newPage = (viewport) => openPage(browser, viewport);

/** With the demo's API key, as the customer backend. */
async function call(method, path, body) {
  const r = await fetch(demo.url + path, {
    method,
    headers: { authorization: `Bearer ${demo.apiKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

/** The failed deliveries to our receiver. */
async function failedToUs() {
  const { body } = await call("GET", `/v1/deliveries?status=failed&endpoint=${encodeURIComponent(hookUrl)}`);
  return body.data;
}

let sessions = [];

test("a failed delivery is redelivered from the console, one and then all failed since", async () => {
  // Two sessions end (canceled) while the receiver is down.
  for (const ref of ["ops-1", "ops-2"]) {
    const { status, body } = await call("POST", "/v1/sessions", { workflow: "http-score", reference: ref });
    assert.equal(status, 201, JSON.stringify(body));
    sessions.push(body.id);
    const canceled = await call("POST", `/v1/sessions/${body.id}/cancel`, { reason: "ops test" });
    assert.equal(canceled.status, 200, JSON.stringify(canceled.body));
  }
  const failed = await until("both deliveries to fail", async () => {
    const list = await failedToUs();
    return list.length === 2 && list;
  });
  down = false;

  const { context, page, problems } = await newPage();
  await login(page, demo, "admin", `/console/deliveries?status=failed&endpoint=${encodeURIComponent(hookUrl)}`);
  const rows = page.locator("table.deliveries tbody tr");
  await until("the failed rows", async () => (await rows.count()) === 2);
  const [first, second] = [failed[0].id, failed[1].id];
  const row = (id) => page.locator(`tr[data-id="${id}"]`);
  assert.equal(await row(first).getAttribute("data-status"), "failed");
  // Each attempt's result is shown.
  await row(first).locator("summary").click();
  assert.match(await row(first).locator("ol.attempts").textContent(), /HTTP 503/);

  await row(first).getByRole("button", { name: `Redeliver ${first}` }).click();
  await row(first).and(page.locator('[data-status="delivered"]')).waitFor();
  assert.ok(received.some((r) => r.id === first && r.ok), "the receiver got it under its webhook-id");
  await row(first).locator("summary").click();
  assert.match(await row(first).locator("ol.attempts").textContent(), /HTTP 204/);
  assert.deepEqual(await seriousViolations(page), []);
  await page.screenshot({ path: join(SHOTS, "console-deliveries.png"), fullPage: true });

  // The rest: every failed one since an hour ago, once confirmed.
  await page.click("#bulk-open");
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /failed delivery created since/);
  assert.deepEqual(await seriousViolations(page), []);
  await page.click("#bulk-confirm");
  await until("the second at the receiver", () => received.some((r) => r.id === second && r.ok));
  await until("nothing failed left", async () => (await failedToUs()).length === 0);
  // A replay is one more attempt of each: two refused, one accepted.
  for (const id of [first, second]) {
    assert.deepEqual(received.filter((r) => r.id === id).map((r) => r.ok), [false, false, true]);
  }
  assert.deepEqual(problems, []);
  await context.close();
});

test("a viewer has no redeliver button and the API refuses them", async () => {
  const [delivery] = (await call("GET", `/v1/deliveries?endpoint=${encodeURIComponent(hookUrl)}`)).body.data;
  const { context, page, problems } = await newPage();
  await login(page, demo, "viewer", "/console/deliveries?status=");
  await page.locator("table.deliveries tbody tr").first().waitFor();
  assert.equal(await page.locator("button.redeliver").count(), 0);
  assert.equal(await page.locator("#bulk-open").count(), 0);
  const answer = await page.evaluate(async (id) => {
    const me = await (await fetch("/v1/console/me")).json();
    const r = await fetch(`/v1/deliveries/${id}/redeliver`, { method: "POST", headers: { "x-csrf-token": me.csrf_token } });
    return { status: r.status, body: await r.json() };
  }, delivery.id);
  assert.equal(answer.status, 403, JSON.stringify(answer.body));
  assert.equal(answer.body.missing_scope, "sessions:write");
  assert.deepEqual(await seriousViolations(page), []);
  assert.deepEqual(problems, []);
  await context.close();
});

test("the dashboard's funnel counts the sessions created", async () => {
  // One more, left waiting for its score.
  const { body } = await call("POST", "/v1/sessions", { workflow: "http-score", reference: "ops-3" });
  sessions.push(body.id);
  await until("it waits", async () => (await call("GET", `/v1/sessions/${body.id}`)).body.status === "waiting");
  const { context, page, problems } = await newPage();
  await login(page, demo, "viewer", "/console?workflow=http-score&days=1");
  const cell = (step, n) => page.locator(`table.funnel tr[data-step="${step}"] td`).nth(n);
  await cell("start_provider", 1).waitFor();
  assert.equal(await cell("start_provider", 1).textContent(), String(sessions.length));
  assert.equal(await cell("wait_for_result", 1).textContent(), String(sessions.length));
  assert.match(await cell("wait_for_result", 3).textContent(), /ended canceled: 2/);
  assert.match(await cell("wait_for_result", 3).textContent(), /still here: 1/);
  // Drawn: a bar per step, outcomes with their legend, provider health.
  assert.ok((await page.locator("svg.funnel-chart rect").count()) >= 4);
  assert.match(await page.locator("ul.legend").textContent(), /canceled: 2/);
  assert.ok(await page.locator('table.providers tr[data-connector="http"]').count());
  assert.deepEqual(await seriousViolations(page), []);
  await page.screenshot({ path: join(SHOTS, "console-dashboard.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
});
