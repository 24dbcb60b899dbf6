// The SDK as an npm package: `npm pack` web/sdk, install the tarball into a
// scratch project, bundle a page with esbuild, and run the bundled page in
// Chromium against a live server until the session ends. The server keeps
// serving the same files at /sdk/ for pages without a build step.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { ROOT, startDemo } from "./lib/demo.mjs";

const SDK = join(ROOT, "web/sdk");
const manifest = JSON.parse(readFileSync(join(SDK, "package.json"), "utf8"));

let demo;
let browser;
let shop;
let dir;

/** npm, quietly, without touching the network for what is local. */
function npm(cwd, ...args) {
  return execFileSync("npm", [...args, "--no-audit", "--no-fund", "--no-update-notifier", "--ignore-scripts", "--loglevel=error"], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, npm_config_cache: join(dir, "npm-cache") },
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "gangway-sdk-package-"));
  shop = http.createServer();
  await new Promise((r) => shop.listen(0, "127.0.0.1", r));
  demo = await startDemo({ allowedOrigins: [`http://127.0.0.1:${shop.address().port}`] });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  shop?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("package.json: ESM only, exports with types, no runtime dependencies, the version the module reports", async () => {
  assert.equal(manifest.type, "module");
  assert.deepEqual(manifest.exports["."], { types: "./gangway.d.ts", default: "./gangway.js" });
  assert.equal(manifest.types, "./gangway.d.ts");
  for (const field of ["dependencies", "peerDependencies", "optionalDependencies", "main", "require"]) {
    assert.equal(manifest[field], undefined, field);
  }
  const { VERSION } = await import("../../web/sdk/gangway.js");
  assert.equal(manifest.version, VERSION);
  // Every module the entry imports is in the package.
  for (const file of readdirSync(SDK).filter((f) => f.endsWith(".js"))) {
    assert.ok(manifest.files.includes(file), `${file} is not in package.json's files`);
  }
});

test("the packed SDK, installed and bundled with esbuild, runs a session to its end in Chromium", { timeout: 180000 }, async () => {
  // Pack and install as a customer would (from a tarball: no registry).
  const packed = JSON.parse(npm(SDK, "pack", "--json", "--pack-destination", dir));
  const tarball = join(dir, packed[0].filename);
  const app = join(dir, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "shop", private: true, type: "module" }));
  npm(app, "install", tarball);
  const installed = join(app, "node_modules", ...manifest.name.split("/"));
  const files = readdirSync(installed).sort();
  assert.deepEqual(files, [...manifest.files, "package.json"].sort());
  assert.equal(readdirSync(join(app, "node_modules")).filter((d) => !d.startsWith(".")).length, 1, "no dependencies installed");

  // The page's script imports the package by name; esbuild bundles it.
  writeFileSync(
    join(app, "main.js"),
    `import { Gangway, VERSION } from "${manifest.name}";
const { id, client_secret, gangway } = await (await fetch("/api/session", { method: "POST" })).json();
const flow = Gangway.mount(document.getElementById("verify"), { baseUrl: gangway, sessionId: id, clientSecret: client_secret });
flow.on("ended", ({ outcome }) => (document.title = \`\${VERSION} \${outcome}\`));
`,
  );
  const result = await build({
    absWorkingDir: app,
    entryPoints: ["main.js"],
    bundle: true,
    format: "esm",
    minify: true,
    outfile: "dist/app.js",
    metafile: true,
    logLevel: "silent",
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(inputs.includes(`node_modules/${manifest.name}/gangway.js`), inputs.join(", "));
  assert.ok(!inputs.some((i) => i.includes("web/sdk")), "bundled from the installed package, not the repository");
  const bundle = readFileSync(join(app, "dist/app.js"), "utf8");

  // The customer's site: the page, its bundle, and its backend's route.
  shop.on("request", async (req, res) => {
    if (req.method === "POST" && req.url === "/api/session") {
      const r = await fetch(`${demo.url}/v1/sessions`, {
        method: "POST",
        headers: { authorization: `Bearer ${demo.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ workflow: "incode-identity", reference: `npm-${randomBytes(6).toString("hex")}` }),
      });
      const s = await r.json();
      res.writeHead(r.ok ? 200 : 502, { "content-type": "application/json" });
      return res.end(JSON.stringify({ id: s.id, client_secret: s.client_secret, gangway: demo.url }));
    }
    if (req.url === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      return res.end(bundle);
    }
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      // Scripts from this origin only: nothing is loaded from Gangway.
      "content-security-policy": `default-src 'self'; connect-src 'self' ${demo.url}; frame-src ${demo.url}`,
    });
    res.end(`<!doctype html><meta charset="utf-8"><title>Shop</title>
<div id="verify"></div>
<script type="module" src="/app.js"></script>`);
  });

  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const fromGangway = [];
  page.on("request", (r) => r.url().startsWith(`${demo.url}/sdk/`) && fromGangway.push(r.url()));
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${shop.address().port}/`);
  await page.frameLocator("#verify iframe").getByRole("button", { name: "Pass" }).click();
  await page.locator('#verify[data-gangway-outcome="approved"]').waitFor();
  assert.equal(await page.title(), `${manifest.version} approved`);
  assert.deepEqual(fromGangway, []);
  assert.deepEqual(errors, []);
  await context.close();
});

test("the server still serves the same files as the script, byte for byte", async () => {
  for (const file of manifest.files.filter((f) => f !== "README.md")) {
    const r = await fetch(`${demo.url}/sdk/${file}`);
    assert.equal(r.status, 200, file);
    assert.equal(await r.text(), readFileSync(join(SDK, file), "utf8"), file);
  }
});
