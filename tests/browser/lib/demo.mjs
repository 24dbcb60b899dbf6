// Starts the real `gangway demo` binary (built by cargo) on a random port
// with a fresh temporary directory, and stops it.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Waits until `check()` returns a truthy value, or throws after `ms`. */
export async function until(what, check, ms = 20000, every = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/**
 * `allowedOrigins`: extra `client.allowed_origins` (customer pages on other
 * origins); `secretTtl`: `client.secret_ttl` (default the server's, 1h);
 * `extraConfig`: more TOML sections (a provider section the demo then keeps
 * instead of pointing it at its simulator).
 */
export async function startDemo({ allowedOrigins = [], secretTtl = null, extraConfig = "" } = {}) {
  // Where cargo put it: CARGO_TARGET_DIR when set, as cargo itself does.
  const target = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, "target");
  const bin = process.env.GANGWAY_BIN || join(target, "debug/gangway");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`cargo build -p gangway\` first`);
  const dir = mkdtempSync(join(tmpdir(), "gangway-browser-"));
  const apiKey = `gw_demo_${randomBytes(32).toString("hex")}`;
  // The demo's console operators (admin@, reviewer@, viewer@kestrel.example) share it.
  const operatorPassword = `pw-${randomBytes(12).toString("hex")}`;
  const log = join(dir, "gangway.log");
  const config = join(dir, "gangway.toml");
  const ttl = secretTtl ? `secret_ttl = ${JSON.stringify(secretTtl)}\n` : "";
  writeFileSync(config, `[client]\nallowed_origins = ${JSON.stringify(allowedOrigins)}\n${ttl}\n${extraConfig}`);
  const child = spawn(bin, ["demo", "--listen", "127.0.0.1:0", "--config", config], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      RUST_LOG: "info,sqlx=warn",
      GANGWAY_DEMO_API_KEY: apiKey,
      GANGWAY_DEMO_OPERATOR_PASSWORD: operatorPassword,
      GANGWAY_WORKFLOWS_DIR: join(ROOT, "workflows"),
    },
    stdio: ["ignore", "pipe", openSync(log, "a")],
  });
  let out = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (d) => (out += d));
  const url = await until(
    "`gangway demo` to print its URL",
    () => {
      if (child.exitCode !== null) throw new Error(`gangway demo exited: ${readFileSync(log, "utf8")}`);
      const m = out.match(/^gangway listening on (\S+)$/m);
      return m && m[1];
    },
    60000,
  );
  return {
    url,
    apiKey,
    dir,
    /** The console sign-in of the demo operator with this role. */
    operator(role) {
      return { email: `${role}@kestrel.example`, password: operatorPassword };
    },
    output: () => out,
    log: () => readFileSync(log, "utf8"),
    /** GET with the customer API key (what the customer backend may do). */
    async api(path) {
      const r = await fetch(url + path, { headers: { authorization: `Bearer ${apiKey}` } });
      return r.json();
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
