// Gangway browser SDK: the chat (`kind: "chat"`), over the session's
// WebSocket `/v1/client/sessions/{id}/chat` (docs/sdk.md#chat).
//
// The client secret goes in the first message, never in the URL. Every
// message has an id; after a dropped socket the client reconnects with
// backoff and sends the last id it saw, so it gets what it missed exactly
// once. Lines typed while the socket was down, or whose acknowledgement was
// lost, are sent again with the same client id; the server takes each once.

import { backoff } from "./stream.js";
import { h, registerRenderer, safeUrl } from "./renderers.js";

/** Close codes after which reconnecting cannot help. */
const FATAL_CLOSE = new Set([4400, 4401, 1000]);

export class ChatSocket {
  /** The client secret: a private field, sent only in the hello message. */
  #secret;

  constructor({ url, secret, onMessage, onState, onAck, onError, onEnded, WebSocketImpl, backoff: backoffOptions }) {
    this.url = url;
    this.#secret = secret;
    this.onMessage = onMessage || (() => {});
    this.onState = onState || (() => {});
    this.onAck = onAck || (() => {});
    this.onError = onError || (() => {});
    this.onEnded = onEnded || (() => {});
    this.WebSocketImpl = WebSocketImpl || globalThis.WebSocket;
    this.backoffOptions = backoffOptions;
    this.lastId = 0;
    this.pending = new Map(); // client_id -> text, until acknowledged
    this.attempt = 0;
    this.ws = null;
    this.ready = false;
    this.stopped = false;
    this.timer = null;
    this.seq = 0;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    this.onState(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new this.WebSocketImpl(this.url);
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", secret: this.#secret, last_id: this.lastId }));
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      if (this.stopped) return;
      if (FATAL_CLOSE.has(e.code)) {
        this.stopped = true;
        this.onState(e.code === 1000 ? "closed" : "failed");
        if (e.code !== 1000) this.onError({ message: e.reason || "the chat refused the connection", fatal: true });
        return;
      }
      this.retry();
    };
    ws.onerror = () => {};
  }

  retry() {
    if (this.stopped) return;
    this.onState("reconnecting");
    const wait = backoff(this.attempt++, this.backoffOptions);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, wait);
  }

  receive(raw) {
    let m;
    try {
      m = JSON.parse(raw);
    } catch {
      return;
    }
    switch (m.type) {
      case "message":
        if (typeof m.id === "number" && m.id > this.lastId) {
          this.lastId = m.id;
          this.onMessage(m);
        }
        break;
      case "ready":
        this.ready = true;
        this.attempt = 0;
        this.onState("live");
        // Lines not yet acknowledged go again, with their client ids.
        for (const [clientId, text] of this.pending) this.send(clientId, text);
        break;
      case "ack":
        this.pending.delete(m.client_id);
        this.onAck(m);
        break;
      case "error":
        if (m.client_id) this.pending.delete(m.client_id);
        this.onError({ message: m.message, clientId: m.client_id, fatal: false });
        break;
      case "ended":
        this.stopped = true;
        this.onEnded(m);
        this.onState("closed");
        break;
      default:
        break;
    }
  }

  send(clientId, text) {
    if (this.ws && this.ready) this.ws.send(JSON.stringify({ type: "say", text, client_id: clientId }));
  }

  /** Sends a line; returns its client id. Kept until the server acknowledges it. */
  say(text) {
    const clientId = `c${Date.now().toString(36)}${(this.seq++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    this.pending.set(clientId, text);
    this.send(clientId, text);
    return clientId;
  }

  stop() {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
  }
}

// ---------------------------------------------------------------------------
// Rendering results readably: objects as labelled fields, lists as lists.

function label(key) {
  const words = String(key)
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/[_-]+/g, " ")
    .trim();
  return words.charAt(0).toUpperCase() + words.slice(1).toLowerCase();
}

/** A JSON value as DOM: objects as a definition list, arrays as a list. */
export function renderValue(value, depth = 0) {
  if (value === null || value === undefined) return h("span", { class: "gw-empty", text: "none" });
  if (Array.isArray(value)) {
    if (value.length === 0) return h("span", { class: "gw-empty", text: "none" });
    return h("ul", { class: "gw-value-list" }, ...value.map((v) => h("li", {}, renderValue(v, depth + 1))));
  }
  if (typeof value === "object") {
    if (depth > 4) return h("code", { text: JSON.stringify(value) });
    const dl = h("dl", { class: "gw-fields" });
    for (const [k, v] of Object.entries(value)) dl.append(h("dt", { text: label(k) }), h("dd", {}, renderValue(v, depth + 1)));
    return dl;
  }
  return h("span", { text: String(value) });
}

const OUTCOME_TEXT = {
  approved: "Done",
  declined: "Refused",
  review: "Needs review",
  failed: "Failed",
  canceled: "Canceled",
  expired: "No answer in time",
};

// ---------------------------------------------------------------------------
// The chat renderer: {kind: "chat", title, greeting, commands: [...]}.

registerRenderer("chat", (container, present, ctx) => {
  const log = h("ol", { class: "gw-chat-log", "aria-live": "polite" });
  const input = h("input", {
    class: "gw-chat-input",
    type: "text",
    "aria-label": "Message",
    maxlength: "4000",
    autocomplete: "off",
    placeholder: typeof present.placeholder === "string" ? present.placeholder : "Type /help",
  });
  const send = h("button", { class: "gw-button", type: "submit", text: "Send" });
  const form = h("form", { class: "gw-chat-form" }, input, send);
  const state = h("p", { class: "gw-chat-state", role: "status" });
  const title = typeof present.title === "string" ? present.title : "Chat";
  const box = h("div", { class: "gw-chat", "data-chat-state": "connecting" }, h("p", { class: "gw-chat-title", text: title }), log, state, form);
  const runs = new Map(); // run id -> its card
  const pendingLines = new Map(); // client id -> pending bubble

  const scroll = () => {
    log.scrollTop = log.scrollHeight;
  };
  const bubble = (role, text, attrs = {}) => {
    const li = h("li", { class: `gw-chat-${role}`, "data-role": role, ...attrs, text });
    log.append(li);
    scroll();
    return li;
  };
  if (typeof present.greeting === "string") bubble("assistant", present.greeting, { "data-greeting": "" });

  const runCard = (m) => {
    let card = runs.get(m.run);
    if (!card) {
      const head = h("p", { class: "gw-run-head", text: `/${m.command || "run"}` });
      const lines = h("div", { class: "gw-run-lines" });
      const li = h("li", { class: "gw-chat-run", "data-role": "run", "data-run": m.run, "data-run-state": "started" }, head, lines);
      card = { li, head, lines };
      runs.set(m.run, card);
      log.append(li);
    }
    return card;
  };

  const show = (frame) => {
    const m = frame.message || {};
    if (m.role === "user") {
      const mine = m.client_id && pendingLines.get(m.client_id);
      if (mine) {
        mine.classList.remove("gw-pending");
        mine.setAttribute("data-id", String(frame.id));
        pendingLines.delete(m.client_id);
      } else {
        bubble("user", String(m.text || ""), { "data-id": String(frame.id) });
      }
      return;
    }
    if (m.role === "assistant") {
      bubble("assistant", String(m.text || ""), { "data-id": String(frame.id) });
      return;
    }
    if (m.role !== "run" || typeof m.run !== "string") return;
    const card = runCard(m);
    if (m.state === "started") {
      card.lines.append(h("p", { class: "gw-run-working", text: "Working on it…" }));
    } else if (m.state === "progress" && m.present) {
      card.li.setAttribute("data-run-state", "progress");
      const p = m.present;
      const line = h("p", { class: "gw-run-progress", "data-id": String(frame.id), text: typeof p.message === "string" ? p.message : "" });
      const url = safeUrl(p.url);
      if (url) {
        // A link the flow returned, e.g. a sign-in page: opened in a popup
        // from the click; a blocked popup leaves a plain link.
        const open = h("button", { class: "gw-button", type: "button", "data-open-url": "", text: typeof p.label === "string" ? p.label : "Open" });
        open.addEventListener("click", () => {
          const features = typeof p.features === "string" ? p.features : "popup=yes,width=520,height=680";
          const win = window.open(url, "gangway_chat_popup", features);
          if (!win) line.append(" ", h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "Open it in a new tab" }));
        });
        line.append(" ", open);
      }
      card.lines.append(line);
    } else if (m.state === "ended") {
      card.li.setAttribute("data-run-state", "ended");
      card.li.setAttribute("data-outcome", String(m.outcome || ""));
      for (const b of card.lines.querySelectorAll("button[data-open-url]")) b.disabled = true;
      card.lines.querySelector(".gw-run-working")?.remove();
      const result = h("div", { class: `gw-run-result gw-outcome-${m.outcome || "unknown"}` });
      result.append(h("p", { class: "gw-run-outcome", text: OUTCOME_TEXT[m.outcome] || String(m.outcome || "") }));
      if (typeof m.reason === "string" && m.reason) result.append(h("p", { class: "gw-run-reason", text: m.reason }));
      if (m.output !== null && m.output !== undefined && !(typeof m.output === "object" && Object.keys(m.output).length === 0)) {
        result.append(renderValue(m.output));
      }
      card.lines.append(result);
    }
    scroll();
  };

  const STATE_TEXT = { connecting: "Connecting…", live: "", reconnecting: "Connection lost, reconnecting…", closed: "This chat has ended.", failed: "Disconnected." };
  const chat = ctx.openChat({
    onMessage: show,
    onState: (s) => {
      box.setAttribute("data-chat-state", s);
      state.textContent = STATE_TEXT[s] ?? s;
      const usable = s !== "closed" && s !== "failed";
      input.disabled = !usable;
      send.disabled = !usable;
    },
    onError: (e) => {
      if (e.clientId) pendingLines.get(e.clientId)?.classList.add("gw-failed");
      bubble("assistant", e.message || "Something went wrong.", { "data-error": "" });
    },
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    const clientId = chat.say(text);
    pendingLines.set(clientId, bubble("user", text, { class: "gw-chat-user gw-pending", "data-client-id": clientId }));
  });
  container.append(box);
  chat.start();
  return {
    // The chat's presentation does not change while it runs; keep the socket.
    update: () => true,
    destroy: () => {
      chat.stop();
      box.remove();
    },
  };
});
