// Gangway browser SDK: shows a session's current step on a customer page and
// keeps it current over the session's event stream.
//
//   import { Gangway } from "https://gangway.example.com/sdk/gangway.js";
//   const flow = Gangway.mount(element, { sessionId, clientSecret });
//   flow.on("ended", ({ outcome }) => ...);
//
// An ES module with no dependencies and no build step (docs/sdk.md). It holds
// only the session's client secret, sends it only in the Authorization
// header (never in a URL), and talks only to Gangway: no provider is ever
// polled from the browser. Types: /sdk/gangway.d.ts.

export const VERSION = "1.0.0";

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

export class EventStreamClient {
  /**
   * @param {object} o
   * @param {string} o.url the session's `/events` URL
   * @param {string} o.secret the client secret (Authorization header only)
   * @param {(ev: {id: string, event: string, data: string}) => boolean} o.onEvent true ends the stream
   * @param {(state: string) => void} [o.onState] connecting, live, reconnecting, closed, failed
   * @param {(err: {status: number, message: string}) => void} [o.onFatal]
   */
  constructor(o) {
    this.url = o.url;
    this.secret = o.secret;
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
        this.onFatal({ status: result.status, message: result.message });
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
    const headers = { Authorization: `Bearer ${this.secret}`, Accept: "text/event-stream" };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    this.connections++;
    const res = await this.fetch(this.url, {
      headers,
      signal: controller.signal,
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    if (FATAL.has(res.status)) {
      return { fatal: true, status: res.status, message: await problemDetail(res) };
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
}

async function problemDetail(res) {
  try {
    const body = await res.json();
    if (body && typeof body.detail === "string") return body.detail;
  } catch {
    // not problem JSON
  }
  return `HTTP ${res.status}`;
}

// ---------------------------------------------------------------------------
// Renderers: one per presentation kind, in a registry so that new kinds plug in.
//
// A renderer is `(container, present, ctx) => ({ update?(present): boolean, destroy() })`.
// `update` may take a changed presentation of the same kind in place (return
// true); otherwise the old one is destroyed and a new one mounted.

const registry = new Map();

/** Adds or replaces the renderer of a presentation kind. */
export function registerRenderer(kind, renderer) {
  if (typeof kind !== "string" || typeof renderer !== "function") {
    throw new TypeError("registerRenderer(kind: string, renderer: function)");
  }
  registry.set(kind, renderer);
}

/** Which renderer shows a client view: a presentation kind or a state. */
export function selectRenderer(view, known = registry) {
  if (!view) return "connecting";
  if (view.status === "ended") return "ended";
  const present = view.step && view.step.present;
  if (!present || typeof present !== "object") return "working";
  return known.has(present.kind) ? present.kind : "unsupported";
}

/** An http(s) URL, absolute; anything else (javascript:, data:) is refused. */
export function safeUrl(value, base) {
  if (typeof value !== "string" || value === "") return null;
  try {
    const u = new URL(value, base);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch {
    return null;
  }
}

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

function message(container, { icon, title, text, tone = "neutral" }) {
  const card = h(
    "div",
    { class: `gw-message gw-tone-${tone}` },
    icon === "spinner" ? h("div", { class: "gw-spinner", "aria-hidden": "true" }) : icon ? h("div", { class: "gw-icon", "aria-hidden": "true", text: icon }) : null,
    h("p", { class: "gw-title", text: title }),
    text ? h("p", { class: "gw-text", text }) : null,
  );
  container.append(card);
  return card;
}

const OUTCOMES = {
  approved: { icon: "✓", title: "Approved", tone: "good" },
  declined: { icon: "✕", title: "Declined", tone: "bad" },
  review: { icon: "…", title: "In review", tone: "warn" },
  failed: { icon: "!", title: "Failed", tone: "bad" },
  canceled: { icon: "–", title: "Canceled", tone: "neutral" },
  expired: { icon: "⏱", title: "Expired", tone: "neutral" },
};

function removeNode(node) {
  // Incode: an iframe really stops only when removed through its parent.
  if (node && node.parentNode) node.parentNode.removeChild(node);
}

registerRenderer("connecting", (container) => {
  const card = message(container, { icon: "spinner", title: "Connecting…" });
  return { destroy: () => removeNode(card) };
});

registerRenderer("working", (container) => {
  const card = message(container, { icon: "spinner", title: "One moment…", text: "Preparing the next step." });
  return { destroy: () => removeNode(card) };
});

registerRenderer("unsupported", (container, present) => {
  const card = message(container, {
    icon: "!",
    title: "This step cannot be shown here",
    text: `Unknown presentation kind "${String(present && present.kind)}". Update the Gangway SDK.`,
    tone: "bad",
  });
  return { destroy: () => removeNode(card) };
});

registerRenderer("ended", (container, _present, ctx) => {
  const view = ctx.view || {};
  const o = OUTCOMES[view.outcome] || { icon: "•", title: String(view.outcome || "Ended"), tone: "neutral" };
  const card = message(container, { icon: o.icon, title: o.title, text: view.reason || "", tone: o.tone });
  card.classList.add("gw-final");
  card.setAttribute("data-outcome", String(view.outcome || ""));
  return { destroy: () => removeNode(card) };
});

registerRenderer("error", (container, _present, ctx) => {
  const card = message(container, {
    icon: "!",
    title: "This step cannot be shown",
    text: ctx.error || "Please reload the page or start again.",
    tone: "bad",
  });
  return { destroy: () => removeNode(card) };
});

// providers.md 2.5: 100% wide, no border, camera/microphone/geolocation allowed.
registerRenderer("iframe", (container, present) => {
  const url = safeUrl(present.url);
  if (!url) throw new Error("the iframe step has no valid http(s) URL");
  const frame = h("iframe", {
    class: "gw-iframe",
    src: url,
    title: typeof present.title === "string" ? present.title : "Verification",
    allow: typeof present.allow === "string" && present.allow ? present.allow : "camera; microphone; geolocation",
    referrerpolicy: "no-referrer",
    frameborder: "0",
  });
  container.append(frame);
  return {
    update: (next) => safeUrl(next.url) === url,
    destroy: () => removeNode(frame),
  };
});

const SVG_ELEMENTS = new Set(["svg", "path", "rect", "g"]);
const SVG_ATTRS = new Set(["xmlns", "version", "width", "height", "viewBox", "d", "fill", "x", "y", "shape-rendering", "stroke", "transform"]);

/** Imports a server-rendered QR SVG keeping only plain shapes (no scripts, links or styles). */
export function sanitizeSvg(markup, doc = document) {
  const parsed = new DOMParser().parseFromString(String(markup), "image/svg+xml");
  const root = parsed.documentElement;
  if (!root || root.localName !== "svg") return null;
  const walk = (el) => {
    for (const child of Array.from(el.children)) {
      if (!SVG_ELEMENTS.has(child.localName)) child.remove();
      else walk(child);
    }
    for (const attr of Array.from(el.attributes)) {
      if (!SVG_ATTRS.has(attr.name)) el.removeAttribute(attr.name);
    }
  };
  walk(root);
  return doc.importNode(root, true);
}

// Ockto (providers.md 3.4): {kind: "qr", svg, link}.
registerRenderer("qr", (container, present) => {
  const box = h("figure", { class: "gw-qr" });
  const render = (p) => {
    box.replaceChildren();
    const svg = p.svg ? sanitizeSvg(p.svg) : null;
    if (svg) {
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", "QR code");
      box.append(svg);
    }
    box.append(h("figcaption", { text: "Scan this code with your phone's camera." }));
    const link = safeUrl(p.link);
    if (link) box.append(h("a", { class: "gw-button gw-secondary", href: link, rel: "noopener noreferrer", text: "On your phone? Open the app" }));
  };
  render(present);
  container.append(box);
  return { update: (next) => (render(next), true), destroy: () => removeNode(box) };
});

// 360dialog (providers.md 4.6): {kind: "popup", url, features, state}, opened from a click.
registerRenderer("popup", (container, present, ctx) => {
  const url = safeUrl(present.url);
  if (!url) throw new Error("the popup step has no valid http(s) URL");
  const features = typeof present.features === "string" ? present.features : "popup,width=600,height=900";
  let win = null;
  let completed = false;
  let watch = null;
  const status = h("p", { class: "gw-text", text: "The next step opens in a new window." });
  const button = h("button", { class: "gw-button", type: "button", text: typeof present.label === "string" ? present.label : "Continue" });
  const box = h("div", { class: "gw-message gw-popup" }, h("p", { class: "gw-title", text: "Continue in a new window" }), status, button);
  const onMessage = (e) => {
    // Only our popup, from Gangway's origin, with this step's state.
    if (!win || e.source !== win || e.origin !== ctx.origin) return;
    if (!e.data || e.data.state !== present.state) return;
    completed = true;
    status.textContent = "Thanks, finishing…";
  };
  window.addEventListener("message", onMessage);
  button.addEventListener("click", () => {
    win = window.open(url, "gangway_popup", features);
    if (!win) {
      status.textContent = "Your browser blocked the window. ";
      status.append(h("a", { href: url, target: "_blank", rel: "noopener", text: "Open it here" }));
      return;
    }
    button.textContent = "Reopen the window";
    status.textContent = "Waiting for you to finish in the other window…";
    if (watch === null) {
      // A local check of our own window handle, not a network poll.
      watch = setInterval(() => {
        if (win && win.closed && !completed) {
          clearInterval(watch);
          watch = null;
          status.textContent = "The window was closed.";
          ctx.signal("popup_closed", {}, `popup_closed:${present.state || ""}`).catch(() => {});
        }
      }, 500);
    }
  });
  container.append(box);
  return {
    destroy: () => {
      window.removeEventListener("message", onMessage);
      if (watch !== null) clearInterval(watch);
      removeNode(box);
    },
  };
});

// A chat panel: {kind: "chat", messages: [{from: "user"|"bot", text}], placeholder}.
// What the user types is sent as the signal `chat_message` {text}.
registerRenderer("chat", (container, present, ctx) => {
  const list = h("ol", { class: "gw-chat-log", "aria-live": "polite" });
  const input = h("input", { class: "gw-chat-input", type: "text", "aria-label": "Message", maxlength: "2000", placeholder: present.placeholder || "Type a message" });
  const form = h("form", { class: "gw-chat-form" }, input, h("button", { class: "gw-button", type: "submit", text: "Send" }));
  const box = h("div", { class: "gw-chat" }, list, form);
  const render = (p) => {
    list.replaceChildren(
      ...(Array.isArray(p.messages) ? p.messages : []).map((m) =>
        h("li", { class: `gw-chat-${m && m.from === "user" ? "user" : "bot"}`, text: String((m && m.text) || "") }),
      ),
    );
    list.scrollTop = list.scrollHeight;
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    list.append(h("li", { class: "gw-chat-user gw-pending", text }));
    ctx.signal("chat_message", { text }).catch(() => {});
  });
  render(present);
  container.append(box);
  return { update: (next) => (render(next), true), destroy: () => removeNode(box) };
});

// ---------------------------------------------------------------------------
// Styles: one constructed stylesheet (not blocked by a strict style-src CSP),
// themable through custom properties.

const CSS = `
.gw-root { --gw-accent: #1d5bd8; --gw-ink: #101828; --gw-muted: #667085; --gw-line: #e4e7ec; --gw-radius: 16px; --gw-frame-height: 640px;
  display: flex; flex-direction: column; gap: 8px; color: var(--gw-ink); font: inherit; }
.gw-stage { position: relative; min-height: 220px; display: flex; flex-direction: column; }
.gw-iframe { display: block; width: 100%; height: var(--gw-frame-height); border: 0; border-radius: var(--gw-radius); background: #fff; }
.gw-message { display: flex; flex-direction: column; align-items: center; justify-content: center; text-align: center; gap: 6px;
  min-height: 220px; padding: 28px 20px; border: 1px solid var(--gw-line); border-radius: var(--gw-radius); background: #fff; }
.gw-title { margin: 0; font-weight: 650; font-size: 1.15em; }
.gw-text { margin: 0; color: var(--gw-muted); max-width: 36em; }
.gw-icon { width: 56px; height: 56px; border-radius: 50%; display: grid; place-items: center; font-size: 26px; font-weight: 700; background: #f2f4f7; color: #344054; }
.gw-tone-good .gw-icon { background: #ecfdf3; color: #079455; }
.gw-tone-bad .gw-icon { background: #fef3f2; color: #d92d20; }
.gw-tone-warn .gw-icon { background: #fffaeb; color: #dc6803; }
.gw-spinner { width: 36px; height: 36px; border-radius: 50%; border: 3px solid var(--gw-line); border-top-color: var(--gw-accent); animation: gw-spin .9s linear infinite; }
@keyframes gw-spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .gw-spinner { animation-duration: 3s; } }
.gw-status { display: flex; align-items: center; gap: 6px; margin: 0; font-size: 12px; color: var(--gw-muted); }
.gw-status::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #98a2b3; }
.gw-root[data-gangway-state="live"] .gw-status::before { background: #17b26a; }
.gw-root[data-gangway-state="reconnecting"] .gw-status::before { background: #f79009; }
.gw-root[data-gangway-state="failed"] .gw-status::before { background: #f04438; }
.gw-button { font: inherit; font-weight: 600; border: 0; border-radius: 10px; padding: 10px 16px; cursor: pointer; background: var(--gw-accent); color: #fff; text-decoration: none; }
.gw-secondary { background: #f2f4f7; color: #344054; }
.gw-qr { margin: 0; display: flex; flex-direction: column; align-items: center; gap: 10px; padding: 20px; border: 1px solid var(--gw-line); border-radius: var(--gw-radius); background: #fff; }
.gw-qr svg { width: min(260px, 70vw); height: auto; }
.gw-qr figcaption { color: var(--gw-muted); }
.gw-chat { display: flex; flex-direction: column; height: var(--gw-frame-height); border: 1px solid var(--gw-line); border-radius: var(--gw-radius); background: #fff; overflow: hidden; }
.gw-chat-log { flex: 1; overflow: auto; margin: 0; padding: 12px; list-style: none; display: flex; flex-direction: column; gap: 8px; }
.gw-chat-log li { max-width: 80%; padding: 8px 12px; border-radius: 12px; background: #f2f4f7; white-space: pre-wrap; }
.gw-chat-log .gw-chat-user { align-self: flex-end; background: var(--gw-accent); color: #fff; }
.gw-chat-log .gw-pending { opacity: .6; }
.gw-chat-form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid var(--gw-line); }
.gw-chat-input { flex: 1; font: inherit; padding: 8px 10px; border: 1px solid var(--gw-line); border-radius: 10px; }
`;

let styled = false;
function installStyles(doc) {
  if (styled || !doc) return;
  styled = true;
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
  } catch {
    const style = doc.createElement("style");
    style.textContent = CSS;
    doc.head.append(style);
  }
}

// ---------------------------------------------------------------------------
// A mounted flow.

const STATUS_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost, reconnecting…",
  closed: "Finished",
  failed: "Disconnected",
};

/** The Gangway server that served this module: `https://host/sdk/gangway.js` -> `https://host`. */
function defaultBaseUrl() {
  try {
    return new URL("..", import.meta.url).href;
  } catch {
    return globalThis.location ? globalThis.location.origin : "";
  }
}

export class Flow {
  constructor(element, options = {}) {
    if (!element || typeof element.append !== "function") throw new TypeError("Gangway.mount: `element` must be a DOM element");
    const { sessionId, clientSecret } = options;
    if (typeof sessionId !== "string" || !sessionId) throw new TypeError("Gangway.mount: `sessionId` is required");
    if (typeof clientSecret !== "string" || !clientSecret) throw new TypeError("Gangway.mount: `clientSecret` is required");
    const base = (options.baseUrl || defaultBaseUrl()).replace(/\/+$/, "");
    this.sessionId = sessionId;
    this.element = element;
    this.view = null;
    this.state = "connecting";
    this.listeners = new Map();
    this.current = null;
    this.mounted = true;
    this.base = base;
    this.origin = new URL(base, globalThis.location && globalThis.location.href).origin;
    this.sessionUrl = `${base}/v1/client/sessions/${encodeURIComponent(sessionId)}`;
    // The secret lives in this closure only: not on `this`, not in the DOM.
    const secret = clientSecret;
    const fetchImpl = options.fetch || ((...a) => globalThis.fetch(...a));
    this.post = (path, body) =>
      fetchImpl(`${this.sessionUrl}${path}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });

    installStyles(element.ownerDocument);
    element.classList.add("gw-root");
    this.stage = h("div", { class: "gw-stage" });
    this.statusLine = h("p", { class: "gw-status", role: "status", "aria-live": "polite" });
    element.replaceChildren(this.stage, this.statusLine);
    this.setState("connecting");
    this.render(null);

    this.client = new EventStreamClient({
      url: `${this.sessionUrl}/events`,
      secret,
      fetch: options.fetch,
      idleTimeoutMs: options.idleTimeoutMs,
      backoff: options.backoff,
      onEvent: (ev) => this.onEvent(ev),
      onState: (state) => this.setState(state),
      onFatal: (err) => this.fail(err.message, err.status),
    });
    this.online = () => this.client.wake();
    globalThis.addEventListener?.("online", this.online);
    this.client.start();
  }

  /** Subscribes to `step`, `ended`, `error` or `connection`; returns an unsubscribe function. */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    this.listeners.get(type)?.delete(fn);
  }

  emit(type, detail) {
    for (const fn of this.listeners.get(type) || []) {
      try {
        fn(detail);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
    this.element.dispatchEvent(new CustomEvent(`gangway:${type}`, { detail, bubbles: true }));
  }

  /** Sends a browser signal (`signal.<name>` in the workflow). */
  async signal(name, data = {}, id = undefined) {
    const res = await this.post("/signal", id === undefined ? { name, data } : { name, data, id });
    if (!res.ok) throw new Error(await problemDetail(res));
    return res.json();
  }

  setState(state) {
    this.state = state;
    if (!this.mounted) return;
    this.element.setAttribute("data-gangway-state", state);
    this.statusLine.textContent = STATUS_TEXT[state] || state;
    this.emit("connection", { state });
  }

  onEvent(ev) {
    if (!this.mounted) return true;
    if (ev.event !== "step" && ev.event !== "ended") return false;
    let view;
    try {
      view = JSON.parse(ev.data);
    } catch {
      this.emit("error", { message: "the server sent an unreadable event", fatal: false });
      return false;
    }
    this.view = view;
    this.element.setAttribute("data-gangway-event-id", ev.id);
    if (view.step && view.step.name) this.element.setAttribute("data-gangway-step", view.step.name);
    this.render(view);
    if (ev.event === "ended" || view.status === "ended") {
      this.element.setAttribute("data-gangway-outcome", String(view.outcome || ""));
      this.emit("ended", { outcome: view.outcome, reason: view.reason, view, eventId: ev.id });
      return true;
    }
    this.emit("step", { step: view.step, view, eventId: ev.id });
    return false;
  }

  render(view, kind = selectRenderer(view), extra = {}) {
    const present = (view && view.step && view.step.present) || null;
    const key = kind + "\u0000" + JSON.stringify(present);
    if (this.current && this.current.key === key) return;
    if (this.current && this.current.kind === kind && this.current.handle.update && present) {
      try {
        if (this.current.handle.update(present)) {
          this.current.key = key;
          return;
        }
      } catch {
        // fall through to a fresh mount
      }
    }
    if (this.current) this.current.handle.destroy();
    this.current = null;
    const ctx = {
      view,
      origin: this.origin,
      signal: (name, data, id) => this.signal(name, data, id),
      ...extra,
    };
    let handle;
    try {
      handle = registry.get(kind)(this.stage, present, ctx);
    } catch (e) {
      handle = registry.get("error")(this.stage, present, { ...ctx, error: e.message });
      this.emit("error", { message: e.message, fatal: false });
    }
    this.element.setAttribute("data-gangway-view", kind);
    this.current = { kind, key, handle };
  }

  fail(message, status) {
    if (!this.mounted) return;
    this.render(this.view, "error", { error: message });
    this.emit("error", { message, status, fatal: true });
  }

  /** Stops the stream, removes everything rendered and the listeners. */
  unmount() {
    if (!this.mounted) return;
    this.client.stop();
    globalThis.removeEventListener?.("online", this.online);
    if (this.current) this.current.handle.destroy();
    this.current = null;
    this.mounted = false;
    this.element.replaceChildren();
    this.element.classList.remove("gw-root");
    for (const a of ["state", "event-id", "step", "outcome", "view"]) this.element.removeAttribute(`data-gangway-${a}`);
    this.listeners.clear();
  }
}

export const Gangway = {
  version: VERSION,
  /** Renders the session's current step into `element` and keeps it current. */
  mount: (element, options) => new Flow(element, options),
  registerRenderer,
};

export default Gangway;
