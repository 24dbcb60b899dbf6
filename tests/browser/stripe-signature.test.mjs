// Gangway's Stripe-Signature check against headers made by Stripe's own
// library (the `stripe` npm package's webhooks.generateTestHeaderString), not
// only against Gangway's simulator: the real `gangway demo` binary with a
// `[stripe]` section of two signing secrets (a rotation in progress).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import Stripe from "stripe";
import { startDemo } from "./lib/demo.mjs";

const OLD = "whsec_gangway_browser_old_0000000001";
const NEW = "whsec_gangway_browser_new_0000000002";
const stripe = new Stripe("sk_test_unused_by_this_test");

let demo;

before(async () => {
  // The connector is never called here (only webhooks are posted), so the
  // section need not point at a simulator.
  demo = await startDemo({
    extraConfig: `[stripe]\nbase_url = "https://api.stripe.com"\nsecret_key = "sk_test_unused"\nwebhook_secrets = ["${OLD}", "${NEW}"]\n`,
  });
});

after(async () => {
  await demo?.stop();
});

function event(id, type = "identity.verification_session.verified") {
  return JSON.stringify(
    {
      id,
      object: "event",
      api_version: "2025-03-31.basil",
      created: Math.floor(Date.now() / 1000),
      type,
      livemode: false,
      data: { object: { id: `vs_${id}`, object: "identity.verification_session", status: "verified", last_error: null } },
    },
    null,
    2, // pretty-printed, as Stripe sends it: the exact bytes are signed
  );
}

async function post(payload, header) {
  const res = await fetch(`${demo.url}/v1/webhooks/stripe`, {
    method: "POST",
    headers: { "content-type": "application/json; charset=utf-8", "stripe-signature": header },
    body: payload,
  });
  return { status: res.status, body: await res.json() };
}

test("headers from Stripe's library are accepted under either secret, and a replay is a duplicate", async () => {
  for (const [i, secret] of [OLD, NEW].entries()) {
    const payload = event(`evt_lib_${i}`);
    const header = stripe.webhooks.generateTestHeaderString({ payload, secret });
    assert.match(header, /^t=\d+,v1=[0-9a-f]{64}$/);
    // Stripe's own verifier agrees with the header, so the test is about Gangway.
    assert.equal(stripe.webhooks.constructEvent(payload, header, secret).id, `evt_lib_${i}`);
    const first = await post(payload, header);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body, { received: true, duplicate: false });
    const again = await post(payload, header);
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
  }
  // An event type no workflow waits for is answered 2xx and not stored.
  const created = event("evt_lib_created", "identity.verification_session.created");
  const ignored = await post(created, stripe.webhooks.generateTestHeaderString({ payload: created, secret: NEW }));
  assert.equal(ignored.status, 200);
  assert.equal(ignored.body.ignored, true);
});

test("tampered, stale or foreign headers from Stripe's library are refused", async () => {
  const payload = event("evt_lib_tampered");
  const header = stripe.webhooks.generateTestHeaderString({ payload, secret: NEW });
  const tampered = payload.replace('"status": "verified"', '"status": "verified" ');
  assert.notEqual(tampered, payload);
  const refused = await post(tampered, header);
  assert.equal(refused.status, 401, JSON.stringify(refused.body));
  assert.equal(refused.body.status, 401);
  assert.equal(refused.body.detail, "signature does not match");

  const stale = stripe.webhooks.generateTestHeaderString({
    payload,
    secret: NEW,
    timestamp: Math.floor(Date.now() / 1000) - 600,
  });
  const old = await post(payload, stale);
  assert.equal(old.status, 401);
  assert.equal(old.body.detail, "timestamp outside the tolerance window");

  const foreign = stripe.webhooks.generateTestHeaderString({ payload, secret: "whsec_someone_else_000000000000" });
  assert.equal((await post(payload, foreign)).status, 401);
  // The untampered original is still good: nothing was stored meanwhile.
  const good = await post(payload, header);
  assert.equal(good.status, 200);
  assert.equal(good.body.duplicate, false);
});
