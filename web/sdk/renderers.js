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

// A line of progress from the provider: {kind: "progress", message}.
registerRenderer("progress", (container, present) => {
  const text = present && typeof present.message === "string" && present.message ? present.message : "Working on it.";
  const card = message(container, { icon: "spinner", title: "In progress…", text });
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

// 360dialog (providers.md 4.6): {kind: "popup", url, features, state,
// provider?, label?, title?, closed?}. A button opens the URL with
// window.open from the click (a user gesture, so popup blockers let it
// through); a blocked popup falls back to a link in this tab. Only a
// message from that very window, on Gangway's origin, of the type
// "gangway:360dialog" and with this step's state, is passed on (as the
// signal `dialog360_redirect`); the server confirms it anyway. A window
// closed without such a message sends `popup_closed` and offers to try
// again or cancel; `closed: true` (the workflow's popup_closed step) shows
// that offer from the start.
const POPUP_MESSAGE_TYPE = "gangway:360dialog";
/** How often, and for how long at most, the opened window is checked for being closed. */
const POPUP_WATCH_EVERY_MS = 500;
const POPUP_WATCH_MAX_MS = 2 * 60 * 60 * 1000;

/** A short random id for one attempt (signal ids, so a resent signal applies once). */
function attemptId() {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

registerRenderer("popup", (container, present, ctx) => {
  const url = safeUrl(present.url);
  if (!url) throw new Error("the popup step has no valid http(s) URL");
  const state = typeof present.state === "string" ? present.state : "";
  const features = typeof present.features === "string" ? present.features : "popup,width=600,height=900";
  const provider = typeof present.provider === "string" && present.provider ? present.provider : "";
  const label = typeof present.label === "string" && present.label ? present.label : "Continue";
  const windowName = "gangway_popup";

  let win = null; // the window this step opened, while it may still answer
  let attempt = null; // the current opening (signal ids)
  let watch = null;
  let phase = null;
  let ended = false;

  const title = h("p", { class: "gw-title" });
  const text = h("p", { class: "gw-text" });
  const actions = h("div", { class: "gw-actions" });
  const box = h("div", { class: "gw-message gw-popup" }, title, text, actions);

  const button = (caption, onClick, secondary = false) => {
    const b = h("button", { class: secondary ? "gw-button gw-secondary" : "gw-button", type: "button", text: caption });
    b.addEventListener("click", onClick);
    return b;
  };

  const stopWatch = () => {
    if (watch !== null) clearInterval(watch);
    watch = null;
  };

  /** Shows one phase of the step: ready, open, blocked, closed, finishing, canceling. */
  const show = (next) => {
    phase = next;
    box.dataset.phase = next;
    actions.replaceChildren();
    const what = provider ? `the ${provider} window` : "the window";
    switch (next) {
      case "ready":
        title.textContent = typeof present.title === "string" && present.title ? present.title : "Continue in a new window";
        text.textContent = `${provider ? `${provider}'s page` : "The next step"} opens in a new window.`;
        actions.append(button(label, open));
        break;
      case "open":
        title.textContent = "Continue in the other window";
        text.textContent = "Waiting for you to finish in the other window…";
        actions.append(button(`Show ${what}`, () => win && !win.closed && win.focus(), true));
        break;
      case "blocked":
        title.textContent = "Your browser blocked the new window";
        text.textContent = "Continue in this tab instead; you will come back here when you are done.";
        actions.append(
          h("a", { class: "gw-button", href: url, rel: "noopener", "data-gangway-fallback": true, text: "Continue in this tab" }),
          button("Try the window again", open, true),
        );
        break;
      case "closed":
        title.textContent = provider ? `The ${provider} window was closed.` : "The window was closed.";
        text.textContent = "Nothing was shared. You can open it again, or cancel.";
        actions.append(button("Try again", open), button("Cancel", cancel, true));
        break;
      case "finishing":
        title.textContent = "Thanks, confirming…";
        text.textContent = "This page moves on by itself.";
        break;
      case "canceling":
        title.textContent = "Canceling…";
        text.textContent = "";
        break;
    }
  };

  const closedByUser = () => {
    stopWatch();
    win = null;
    if (ended || phase !== "open") return;
    show("closed");
    ctx.signal("popup_closed", {}, `popup_closed:${attempt}`).catch(() => {});
  };

  // Called from a click only: window.open needs the user's gesture.
  function open() {
    if (ended) return;
    attempt = attemptId();
    const opened = window.open(url, windowName, features);
    if (!opened) {
      show("blocked");
      return;
    }
    win = opened;
    show("open");
    try {
      win.focus();
    } catch {
      // some browsers refuse focus() on a new window; it has focus anyway
    }
    stopWatch();
    // A local check of our own window handle (no network), bounded by the
    // step's deadline: there is no event for "the popup was closed".
    const deadline = Date.parse((ctx.view && ctx.view.deadline) || "");
    const limit = Math.min(Number.isFinite(deadline) ? deadline : Infinity, Date.now() + POPUP_WATCH_MAX_MS);
    watch = setInterval(() => {
      if (win && win.closed) closedByUser();
      else if (Date.now() > limit) stopWatch();
    }, POPUP_WATCH_EVERY_MS);
  }

  function cancel() {
    if (ended) return;
    show("canceling");
    ctx.signal("cancel", {}, `cancel:${state}`).catch(() => show("closed"));
  }

  const onMessage = (e) => {
    // Only the window we opened, from Gangway's origin, of our type, with this step's state.
    if (!win || e.source !== win) return;
    if (e.origin !== ctx.origin) return;
    const d = e.data;
    if (!d || typeof d !== "object" || d.type !== POPUP_MESSAGE_TYPE) return;
    if (!state || d.state !== state) return;
    if (typeof d.query !== "string" || d.query.length > 4096) return;
    stopWatch();
    win = null; // one answer per opening; the window closes itself
    show("finishing");
    // A hint only: the workflow confirms it with the provider.
    ctx.signal("dialog360_redirect", { state: d.state, query: d.query }, `dialog360_redirect:${attempt}`).catch(() => {});
  };
  window.addEventListener("message", onMessage);

  show(present.closed === true ? "closed" : "ready");
  container.append(box);
  return {
    // The same window and state: stay as we are (e.g. `closed` arriving
    // from the server after this page already shows the offer).
    update: (next) => {
      if (safeUrl(next.url) !== url || next.state !== present.state) return false;
      if (next.closed === true && phase === "ready") show("closed");
      return true;
    },
    destroy: () => {
      ended = true;
      window.removeEventListener("message", onMessage);
      stopWatch();
      removeNode(box);
    },
  };
});

// A hosted page that takes over the tab (Stripe Identity's `url`, a
// provider without a popup mode): {kind: "redirect", url, label?, title?,
// text?}. A button navigates this tab to the URL; the provider sends the
// user back to its `return_url` (the customer's page, which resumes the
// same session with the client secret it kept), and the outcome arrives
// from the server as always. Nothing is sent from here.
registerRenderer("redirect", (container, present) => {
  const url = safeUrl(present.url);
  if (!url) throw new Error("the redirect step has no valid http(s) URL");
  const str = (v, fallback) => (typeof v === "string" && v ? v : fallback);
  const link = h("a", { class: "gw-button", href: url, rel: "noopener", "data-gangway-redirect": true, text: str(present.label, "Continue") });
  const box = h(
    "div",
    { class: "gw-message gw-redirect" },
    h("p", { class: "gw-title", text: str(present.title, "Continue on the next page") }),
    h("p", { class: "gw-text", text: str(present.text, "You will come back here when you are done.") }),
    h("div", { class: "gw-actions" }, link),
  );
  container.append(box);
  return {
    update: (next) => safeUrl(next.url) === url && next.label === present.label && next.title === present.title,
    destroy: () => removeNode(box),
  };
});

// The chat (`kind: "chat"`) lives in chat.js: it has a socket of its own.
