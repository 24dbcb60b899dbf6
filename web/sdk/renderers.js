// Gangway browser SDK: the renderers, one per presentation kind, in a
// registry so that new kinds plug in (docs/sdk.md#presentations).

// ---------------------------------------------------------------------------
// Renderers: one per presentation kind, in a registry so that new kinds plug in.
//
// A renderer is `(container, present, ctx) => ({ update?(present): boolean, destroy() })`.
// `update` may take a changed presentation of the same kind in place (return
// true); otherwise the old one is destroyed and a new one mounted.

const registry = new Map();

/** The renderer of `kind`, or undefined. */
export function rendererFor(kind) {
  return registry.get(kind);
}

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

/** A DOM element with attributes (`text`: its text content) and children. */
export function h(tag, attrs = {}, ...children) {
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

const SVG_NS = "http://www.w3.org/2000/svg";
/** Stroke icons as SVG (no icon font, no glyph that a system font may lack). */
const ICONS = {
  check: ["M5 12.5l4.5 4.5L19 7.5"],
  cross: ["M7 7l10 10M17 7L7 17"],
  dots: ["M7 12h.01M12 12h.01M17 12h.01"],
  eye: ["M2.5 12s3.5-6.5 9.5-6.5 9.5 6.5 9.5 6.5-3.5 6.5-9.5 6.5S2.5 12 2.5 12z", "M12 9.5a2.5 2.5 0 1 0 0 5a2.5 2.5 0 1 0 0-5z"],
  alert: ["M12 7v6M12 17h.01"],
  dash: ["M7 12h10"],
  clock: ["M12 3.5a8.5 8.5 0 1 0 0 17a8.5 8.5 0 1 0 0-17z", "M12 7.5V12l3 2"],
};

function svgIcon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  for (const d of ICONS[name] || ICONS.dots) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

function message(container, { icon, title, text, tone = "neutral" }) {
  const card = h(
    "div",
    { class: `gw-message gw-tone-${tone}` },
    icon === "spinner" ? h("div", { class: "gw-spinner", "aria-hidden": "true" }) : icon ? h("div", { class: "gw-icon", "aria-hidden": "true" }, svgIcon(icon)) : null,
    h("p", { class: "gw-title", text: title }),
    text ? h("p", { class: "gw-text", text }) : null,
  );
  container.append(card);
  return card;
}

const OUTCOMES = {
  approved: { icon: "check", title: "Approved", tone: "good" },
  declined: { icon: "cross", title: "Declined", tone: "bad" },
  review: { icon: "eye", title: "In review", tone: "warn" },
  failed: { icon: "alert", title: "Failed", tone: "bad" },
  canceled: { icon: "dash", title: "Canceled", tone: "neutral" },
  expired: { icon: "clock", title: "Expired", tone: "neutral" },
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
    icon: "alert",
    title: "This step cannot be shown here",
    text: `Unknown presentation kind "${String(present && present.kind)}". Update the Gangway SDK.`,
    tone: "bad",
  });
  return { destroy: () => removeNode(card) };
});

registerRenderer("ended", (container, _present, ctx) => {
  const view = ctx.view || {};
  const o = OUTCOMES[view.outcome] || { icon: "dots", title: String(view.outcome || "Ended"), tone: "neutral" };
  const card = message(container, { icon: o.icon, title: o.title, text: view.reason || "", tone: o.tone });
  card.classList.add("gw-final");
  card.setAttribute("data-outcome", String(view.outcome || ""));
  return { destroy: () => removeNode(card) };
});

registerRenderer("error", (container, _present, ctx) => {
  const card = message(container, {
    icon: "alert",
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

// Ockto (providers.md 3.4): {kind: "qr", svg, link, scanned}.
registerRenderer("qr", (container, present) => {
  const box = h("figure", { class: "gw-qr" });
  const render = (p) => {
    box.replaceChildren();
    box.dataset.scanned = String(p.scanned === true);
    if (p.scanned === true) {
      // The phone has the code: the page says where the user continues.
      box.append(h("p", { class: "gw-title", text: "Scanned" }));
      box.append(h("figcaption", { text: "Continue on your phone: share your data in the app. This page moves on by itself." }));
      return;
    }
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
