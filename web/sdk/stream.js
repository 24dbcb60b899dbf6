// Gangway browser SDK: the session's event stream. A Server-Sent Events
// parser and a fetch-based client that sends the client secret in the
// Authorization header and Last-Event-ID itself, and reconnects with backoff.
// No DOM: unit-tested under Node (tests/browser/sdk.test.mjs).

// ---------------------------------------------------------------------------
// Server-Sent Events parsing (WHATWG HTML, "event stream interpretation")

/** Incremental parser: feed text chunks, get complete events back. */
export class EventStreamParser {
  constructor() {
    this.buffer = "";
    this.data = "";
    this.type = "";
    /** The last `id:` seen; carried by every later event, as in EventSource. */
    this.lastEventId = "";
    /** The last `retry:` in milliseconds, or null. */
    this.retry = null;
    this.started = false;
    this.pendingCR = false;
  }

  /** Parses `text` (any split) and returns the events it completed. */
  push(text) {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    // A "\r\n" split across chunks is one line end.
    if (this.pendingCR && text.startsWith("\n")) text = text.slice(1);
    this.pendingCR = false;
    this.buffer += text;
    const events = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== "\n" && c !== "\r") continue;
      const line = this.buffer.slice(start, i);
      if (c === "\r") {
        if (i + 1 === this.buffer.length) this.pendingCR = true;
        else if (this.buffer[i + 1] === "\n") i++;
      }
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  line(line) {
    if (line === "") {
      if (this.data === "") {
        this.type = "";
        return null;
      }
      const event = {
        id: this.lastEventId,
        event: this.type || "message",
        data: this.data.endsWith("\n") ? this.data.slice(0, -1) : this.data,
      };
      this.data = "";
      this.type = "";
      return event;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data += value + "\n";
    else if (field === "event") this.type = value;
    else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
    return null;
  }
}

/** Delay before reconnect attempt `attempt` (0-based): exponential, capped, with jitter. */
export function backoff(attempt, { base = 500, max = 15000, random = Math.random } = {}) {
  const cap = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

// ---------------------------------------------------------------------------
// The event stream client: fetch-based, so that the secret goes in a header
// and Last-Event-ID is ours to send.

/** HTTP statuses after which reconnecting cannot help. */
const FATAL = new Set([400, 401, 403, 404, 410]);

/** Problem types (the slug after `/problems/`) the SDK names with a code. */
const CODES = {
  "origin-not-allowed": "origin_not_allowed",
  "client-secret-expired": "secret_expired",
  unauthorized: "secret_refused",
};

/** What a page's developer should read, per code (the server's detail is terser). */
const MESSAGES = {
  origin_not_allowed: (origin) =>
    `this page's origin${origin ? ` (${origin})` : ""} is not in client.allowed_origins on the Gangway server: add it there`,
  secret_expired: () => "the client secret has expired: ask your backend for a new one",
  secret_refused: () =>
    "the client secret was refused: it is wrong, or a newer one replaced it (the session was created again with the same Idempotency-Key); ask your backend for a new one",
};

/**
 * A refusal as `{status, code, message}`: `code` is `origin_not_allowed`,
 * `secret_expired`, `secret_refused` or `http_<status>`.
 */
export async function refusal(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not problem JSON
  }
  const slug = body && typeof body.type === "string" ? body.type.split("/problems/")[1] : undefined;
  const code = (slug && Object.hasOwn(CODES, slug) && CODES[slug]) || `http_${res.status}`;
  const origin = globalThis.location && globalThis.location.origin;
  const message = MESSAGES[code]
    ? MESSAGES[code](origin)
    : body && typeof body.detail === "string"
      ? body.detail
      : `HTTP ${res.status}`;
  return { status: res.status, code, message };
}

export class EventStreamClient {
  /** The client secret: a private field, sent only in the Authorization header. */
  #secret;

  /**
   * @param {object} o
   * @param {string} o.url the session's `/events` URL
   * @param {string} o.secret the client secret (Authorization header only)
   * @param {(ev: {id: string, event: string, data: string}) => boolean} o.onEvent true ends the stream
   * @param {(state: string) => void} [o.onState] connecting, live, reconnecting, closed, failed
   * @param {(err: {status: number, code: string, message: string}) => void} [o.onFatal]
   */
  constructor(o) {
    this.url = o.url;
    this.#secret = o.secret;
    this.onEvent = o.onEvent;
    this.onState = o.onState || (() => {});
    this.onFatal = o.onFatal || (() => {});
    this.fetch = o.fetch || ((...a) => globalThis.fetch(...a));
    this.setTimeout = o.setTimeout || ((f, ms) => globalThis.setTimeout(f, ms));
    this.clearTimeout = o.clearTimeout || ((t) => globalThis.clearTimeout(t));
    this.backoff = o.backoff || {};
    this.idleTimeoutMs = o.idleTimeoutMs ?? 45000;
    this.lastEventId = o.lastEventId || "";
    this.state = "idle";
    this.attempt = 0;
    this.stopped = false;
    this.controller = null;
    this.wakeUp = null;
    this.connections = 0;
  }

  start() {
    this.run();
  }

  /** Closes the stream for good. */
  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
    if (this.wakeUp) this.wakeUp();
  }

  /** Ends a reconnect wait now (e.g. when the browser is back online). */
  wake() {
    if (this.wakeUp) this.wakeUp();
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }

  async run() {
    while (!this.stopped) {
      this.setState(this.connections === 0 ? "connecting" : "reconnecting");
      let result;
      try {
        result = await this.once();
      } catch (e) {
        result = { retry: true, error: e };
      }
      if (this.stopped) return;
      if (result.done) {
        this.setState("closed");
        return;
      }
      if (result.fatal) {
        this.setState("failed");
        this.onFatal({ status: result.status, code: result.code, message: result.message });
        return;
      }
      this.setState("reconnecting");
      const delay = result.retryMs ?? backoff(this.attempt, this.backoff);
      this.attempt++;
      await this.sleep(delay);
    }
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const timer = this.setTimeout(done, ms);
      const self = this;
      function done() {
        self.clearTimeout(timer);
        self.wakeUp = null;
        resolve();
      }
      this.wakeUp = done;
    });
  }

  async once() {
    const controller = new AbortController();
    this.controller = controller;
    const headers = { Authorization: `Bearer ${this.#secret}`, Accept: "text/event-stream" };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    this.connections++;
    let res;
    try {
      res = await this.fetch(this.url, {
        headers,
        signal: controller.signal,
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (e) {
      if (this.stopped) throw e;
      // A refused CORS preflight looks like a lost network. Ask again
      // without a secret or headers: a "simple" request has no preflight,
      // and the server answers another origin's with a 403 it may read.
      const why = await this.probe();
      if (why) return { fatal: true, ...why };
      throw e;
    }
    if (FATAL.has(res.status)) {
      return { fatal: true, ...(await refusal(res)) };
    }
    if (!res.ok || !res.body) return { retry: true };
    this.setState("live");
    this.attempt = 0;
    const parser = new EventStreamParser();
    parser.lastEventId = this.lastEventId;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let idle = null;
    const arm = () => {
      if (idle !== null) this.clearTimeout(idle);
      // The server sends a comment every 15 s: silence means a dead connection.
      idle = this.setTimeout(() => controller.abort(), this.idleTimeoutMs);
    };
    // After the final event the server closes the stream; read it to its end.
    let finished = false;
    try {
      arm();
      for (;;) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (finished) return { done: true };
          throw e;
        }
        if (chunk.done || this.stopped) return finished ? { done: true } : { retry: true };
        arm();
        if (finished) continue;
        for (const ev of parser.push(decoder.decode(chunk.value, { stream: true }))) {
          this.lastEventId = ev.id;
          if (ev.event === "reconnect") {
            // The server is going away; come back after its `retry`.
            return { retry: true, retryMs: parser.retry ?? undefined };
          }
          if (this.onEvent(ev)) {
            finished = true;
            break;
          }
        }
      }
    } finally {
      if (idle !== null) this.clearTimeout(idle);
      try {
        reader.cancel().catch(() => {});
      } catch {
        // already released
      }
    }
  }

  /**
   * After a failed request: the refusal of this page's origin, if that is
   * why, else null (the network, or the server, is down: keep retrying).
   */
  async probe() {
    let res;
    try {
      res = await this.fetch(this.url, {
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch {
      return null;
    }
    if (res.status === 403) {
      const why = await refusal(res);
      if (why.code === "origin_not_allowed") return why;
      return null;
    }
    try {
      res.body?.cancel();
    } catch {
      // already read or released
    }
    return null;
  }
}

export async function problemDetail(res) {
  try {
    const body = await res.json();
    if (body && typeof body.detail === "string") return body.detail;
  } catch {
    // not problem JSON
  }
  return `HTTP ${res.status}`;
}
