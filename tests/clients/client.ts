// The TypeScript client generated from /openapi.json (openapi-typescript
// types, openapi-fetch), run against a live Gangway: create a session, read
// it, list it by reference, its client view, cancel it, its timeline and
// webhook deliveries, and problem responses.
//
// Usage: GANGWAY_API_KEY=… tsx client.ts BASE_URL CLOSED_DOCUMENT (scripts/clients;
// `tsc` first checks this file against the generated types). A middleware
// checks every response against the document with every object closed
// (closed.py): its status and content type must be documented and its body
// must match the schema, formats included (Ajv, JSON Schema 2020-12). Any
// difference fails the run.

import { readFileSync } from "node:fs";
import createClient, { type Middleware } from "openapi-fetch";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import type { paths } from "./generated/api.js";

const [BASE, DOC_PATH] = process.argv.slice(2);
const API_KEY = process.env.GANGWAY_API_KEY;
if (!BASE || !API_KEY || !DOC_PATH) {
  throw new Error("usage: GANGWAY_API_KEY=… client.ts BASE_URL CLOSED_DOCUMENT");
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

// References to components become references into one registered schema.
function rebase(v: Json): Json {
  if (Array.isArray(v)) return v.map(rebase);
  if (v && typeof v === "object") {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] =
        k === "$ref" && typeof x === "string"
          ? x.replace("#/components/schemas/", "https://gangway.invalid/schemas#/$defs/")
          : rebase(x);
    }
    return out;
  }
  return v;
}

const doc = JSON.parse(readFileSync(DOC_PATH, "utf8")) as Obj;
const components = doc.components as Obj;
const ajv = new Ajv2020({ strict: false, allErrors: true });
// ajv-formats is CommonJS: its default export is the module object here.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (a: Ajv2020) => void;
addFormats(ajv);
ajv.addSchema({ $id: "https://gangway.invalid/schemas", $defs: rebase(components.schemas) } as Obj);

const failures: string[] = [];
let checked = 0;

const validator: Middleware = {
  async onResponse({ request, response, schemaPath }) {
    const method = request.method.toLowerCase();
    const where = `${request.method} ${new URL(request.url).pathname} -> ${response.status}`;
    const op = ((doc.paths as Obj)[schemaPath] as Obj | undefined)?.[method] as Obj | undefined;
    if (!op) {
      failures.push(`${where}: no such operation in the document`);
      return undefined;
    }
    const responses = op.responses as Obj;
    let answer = (responses[String(response.status)] ?? responses[`${String(response.status)[0]}XX`]) as
      | Obj
      | undefined;
    if (!answer) {
      failures.push(`${where}: status not documented`);
      return undefined;
    }
    if (typeof answer.$ref === "string") {
      const name = answer.$ref.split("/").pop() as string;
      answer = (components.responses as Obj)[name] as Obj;
    }
    const media = (response.headers.get("content-type") ?? "").split(";")[0].trim();
    const content = (answer.content ?? {}) as Obj;
    if (Object.keys(content).length > 0 && !(media in content)) {
      failures.push(`${where}: content type ${media}, documented ${Object.keys(content).join(", ")}`);
      return undefined;
    }
    if (media.endsWith("json")) {
      const schema = rebase((content[media] as Obj).schema) as Obj;
      const validate = ajv.compile(schema);
      const body = (await response.clone().json()) as Json;
      if (!validate(body)) {
        for (const e of validate.errors ?? []) {
          failures.push(`${where}: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
        }
      }
    }
    checked += 1;
    return undefined;
  },
};

function must<T>(what: string, r: { data?: T; error?: unknown; response: Response }): T {
  if (r.data === undefined) {
    throw new Error(`${what}: ${r.response.status} ${JSON.stringify(r.error)}`);
  }
  return r.data;
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`failed: ${what}`);
}

async function eventually(what: string, probe: () => Promise<boolean>, seconds = 30): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const api = createClient<paths>({ baseUrl: BASE, headers: { Authorization: `Bearer ${API_KEY}` } });
  api.use(validator);

  const workflows = must("listWorkflows", await api.GET("/v1/workflows"));
  const score = workflows.data.find((w) => w.id === "http-score");
  check(score !== undefined && score.versions.includes(score.version), "http-score and its versions");

  const reference = `ts-${Math.random().toString(16).slice(2, 14)}`;
  const created = must(
    "createSession",
    await api.POST("/v1/sessions", {
      body: { workflow: "http-score", reference, input: { email: "typescript@example.com" } },
    }),
  );
  const id = created.id;
  const path = { path: { id } };
  check(created.reference === reference && created.client_secret.length > 0, "created");

  const session = must("getSession", await api.GET("/v1/sessions/{id}", { params: path }));
  check(session.id === id && session.input.email === "typescript@example.com", "read");

  const page = must("listSessions", await api.GET("/v1/sessions", { params: { query: { reference } } }));
  check(page.data.length === 1 && page.data[0].id === id && page.next_cursor === null, "listed by reference");

  const browser = createClient<paths>({
    baseUrl: BASE,
    headers: { Authorization: `Bearer ${created.client_secret}` },
  });
  browser.use(validator);
  const view = must("getClientSession", await browser.GET("/v1/client/sessions/{id}", { params: path }));
  check(view.id === id, "client view");

  // Waiting for the score: its provider call has been made.
  await eventually("the session to wait", async () => {
    const s = must("getSession", await api.GET("/v1/sessions/{id}", { params: path }));
    return s.status === "waiting";
  });
  const canceled = must(
    "cancelSession",
    await api.POST("/v1/sessions/{id}/cancel", { params: path, body: { reason: "typescript client" } }),
  );
  check(canceled.status === "ended" && canceled.outcome === "canceled", "canceled");

  const timeline = must("getSessionTimeline", await api.GET("/v1/sessions/{id}/timeline", { params: path }));
  const kinds = timeline.entries.map((e) => e.kind);
  check(kinds[0] === "session.created" && kinds.includes("session.ended"), `timeline ${kinds.join(",")}`);

  await eventually("the session.ended delivery", async () => {
    const d = must("listSessionDeliveries", await api.GET("/v1/sessions/{id}/deliveries", { params: path }));
    return d.data.some((x) => x.event_type === "session.ended" && x.status === "delivered");
  });

  // Problems, typed as such: an unknown session, a second cancel.
  const missing = await api.GET("/v1/sessions/{id}", { params: { path: { id: "ses_unknown" } } });
  check(missing.error?.status === 404 && missing.error.type.endsWith("/not-found"), "404 problem");
  const again = await api.POST("/v1/sessions/{id}/cancel", { params: path });
  check(again.error?.status === 409, "409 problem");
}

try {
  await main();
} finally {
  if (failures.length > 0) {
    console.error(["responses that disagree with /openapi.json:", ...failures].join("\n"));
  }
}
if (failures.length > 0) process.exit(1);
console.log(`typescript client: ${checked} responses checked against the document`);
