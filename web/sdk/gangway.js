// Gangway browser SDK: shows a session's current step on a customer page and
// keeps it current over the session's event stream.
//
//   import { Gangway } from "https://gangway.example.com/sdk/gangway.js";
//   const flow = Gangway.mount(element, { sessionId, clientSecret });
//   flow.on("ended", ({ outcome }) => ...);
//
// An ES module with no dependencies and no build step (docs/sdk.md), also
// published as the npm package `@gangway/sdk` (package.json here). It holds
// only the session's client secret, sends it only in the Authorization
// header (never in a URL), and talks only to Gangway: no provider is ever
// polled from the browser. Types: /sdk/gangway.d.ts. It imports its parts
// (stream.js, renderers.js, styles.js) from beside itself.

import { EventStreamClient, problemDetail } from "./stream.js";
import { h, registerRenderer, rendererFor, selectRenderer } from "./renderers.js";
import { installStyles } from "./styles.js";
import { ChatSocket } from "./chat.js";

export { EventStreamParser, EventStreamClient, backoff } from "./stream.js";
export { registerRenderer, selectRenderer, safeUrl, sanitizeSvg } from "./renderers.js";
export { ChatSocket, renderValue } from "./chat.js";

export const VERSION = "1.0.0";

// ---------------------------------------------------------------------------
// A mounted flow.

const STATUS_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost, reconnecting…",
  closed: "Finished",
  failed: "Disconnected",
};

/**
 * The Gangway server that served this module: `https://host/sdk/gangway.js`
 * -> `https://host`. Null when it came from elsewhere (a bundle built from
 * the npm package, a copy): then only `baseUrl` can say where Gangway is.
 */
function defaultBaseUrl() {
  let url;
  try {
    url = new URL(import.meta.url);
  } catch {
    return null;
  }
  return url.pathname.endsWith("/sdk/gangway.js") ? new URL("..", url).href : null;
}

export class Flow {
  constructor(element, options = {}) {
    if (!element || typeof element.append !== "function") throw new TypeError("Gangway.mount: `element` must be a DOM element");
    const { sessionId, clientSecret } = options;
    if (typeof sessionId !== "string" || !sessionId) throw new TypeError("Gangway.mount: `sessionId` is required");
    if (typeof clientSecret !== "string" || !clientSecret) throw new TypeError("Gangway.mount: `clientSecret` is required");
    const baseUrl = options.baseUrl || defaultBaseUrl();
    if (!baseUrl) {
      throw new TypeError(
        "Gangway.mount: `baseUrl` is required (your Gangway server's URL) when the SDK is not loaded from its /sdk/gangway.js, e.g. from the npm package",
      );
    }
    const base = baseUrl.replace(/\/+$/, "");
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
    // The secret stays in closures and private fields: not in the DOM, storage or a URL.
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
    // A chat presentation talks over the session's WebSocket (chat.js).
    const chatUrl = `${this.sessionUrl.replace(/^http/, "ws")}/chat`;
    this.openChat = (handlers) =>
      new ChatSocket({ url: chatUrl, secret, WebSocketImpl: options.WebSocket, backoff: options.backoff, ...handlers });

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
      onFatal: (err) => this.fail(err.message, err.status, err.code),
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
      openChat: this.openChat,
      ...extra,
    };
    let handle;
    try {
      handle = rendererFor(kind)(this.stage, present, ctx);
    } catch (e) {
      handle = rendererFor("error")(this.stage, present, { ...ctx, error: e.message });
      this.emit("error", { message: e.message, fatal: false });
    }
    this.element.setAttribute("data-gangway-view", kind);
    this.current = { kind, key, handle };
  }

  /** A final refusal: shown once, emitted once (`code` says why: see stream.js `refusal`). */
  fail(message, status, code) {
    if (!this.mounted) return;
    this.render(this.view, "error", { error: message });
    this.element.setAttribute("data-gangway-error", code);
    this.emit("error", { message, status, code, fatal: true });
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
    for (const a of ["state", "event-id", "step", "outcome", "view", "error"]) this.element.removeAttribute(`data-gangway-${a}`);
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
