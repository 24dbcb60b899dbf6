// The demo's chrome around the embedded flow: the outcome banner, "start
// over" and a log of live events. It only listens to the DOM events the SDK
// dispatches on its element; embed.js is the whole integration.
const element = document.getElementById("verify");
const log = document.getElementById("log");
const result = document.getElementById("result");
const problem = document.getElementById("problem");

// What the page says at the end, per flow.
const OUTCOMES = {
  "incode-identity": {
    approved: ["Welcome to Kestrel", "Your identity is verified and your account is ready."],
    declined: ["We could not verify you", "The identity check did not pass. You can try again."],
    review: ["Almost there", "A specialist will review your documents; we will email you shortly."],
    failed: ["Something went wrong", "The check could not be completed. Please start over."],
    canceled: ["Verification stopped", "You left the identity check."],
    expired: ["Time is up", "The check was not finished in time. Please start over."],
  },
  "stripe-identity": {
    approved: ["Welcome, seller", "Stripe verified your identity; your shop can open."],
    declined: ["We could not verify you", "Stripe could not match the document to you."],
    review: ["Almost there", "A specialist will look at your verification; we will email you shortly."],
    failed: ["Something went wrong", "The check could not be completed. Please start over."],
    canceled: ["Verification stopped", "The identity check was canceled."],
    expired: ["Time is up", "The check was not finished in time. Please start over."],
  },
  "ockto-mortgage": {
    approved: ["Your mortgage fits", "Based on the data you shared, we can offer this loan."],
    declined: ["This loan does not fit", "Based on the data you shared, we cannot offer this loan."],
    review: ["An advisor will call you", "The loan is close to a limit; an advisor will go through it with you."],
    failed: ["Something went wrong", "The check could not be completed. Please start over."],
    canceled: ["Sharing stopped", "You chose not to share your data."],
    expired: ["Time is up", "The code was not scanned, or the data not shared, in time."],
  },
  "whatsapp-360dialog": {
    approved: ["WhatsApp is connected", "Your number is live, and Kestrel can now message your customers through it."],
    declined: ["Not connected", "360dialog did not accept the number."],
    review: ["Almost there", "Please allow Kestrel to create an API key for your number in 360dialog's Client Hub."],
    failed: ["Something went wrong", "The number could not be set up. Please start over."],
    canceled: ["Not connected", "You closed the 360dialog window without granting access."],
    expired: ["Time is up", "Access was not granted, or the number did not go live, in time."],
  },
  "assistant-oih": {
    canceled: ["Chat closed", "You closed the chat."],
    expired: ["Chat closed", "This chat has closed. Start over for a new one."],
  },
};

// A connected WhatsApp number: Kestrel's backend holds the channel's API key
// (read from Gangway's audited secrets endpoint); the page sees it masked.
async function showChannelKey(sessionId) {
  const order = sessionStorage.getItem(`order:${element.dataset.flow}`);
  if (!sessionId || !order) return;
  const res = await fetch(`/demo/api/sessions/${encodeURIComponent(sessionId)}/channel-key?order=${encodeURIComponent(order)}`);
  if (!res.ok) return;
  const { ready, keys } = await res.json();
  if (!ready) return;
  const line = document.getElementById("channel-key");
  line.textContent = keys.map((k) => `Kestrel's backend holds the API key of channel ${k.channel_id} (${k.hint}); it never reached this page.`).join(" ");
  line.dataset.ready = "true";
  line.hidden = false;
}

// The rules that decided, as Kestrel's backend reads them from Gangway.
async function showDecision(sessionId) {
  const order = sessionStorage.getItem(`order:${element.dataset.flow}`);
  if (!sessionId || !order) return;
  const res = await fetch(`/demo/api/sessions/${encodeURIComponent(sessionId)}/decision?order=${encodeURIComponent(order)}`);
  if (!res.ok) return;
  const decision = await res.json();
  if (!decision.rules.length) return;
  document.getElementById("decision-reason").textContent = decision.reason || "";
  const list = document.getElementById("decision-rules");
  list.replaceChildren(
    ...decision.rules.map((r) => {
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = r.when ?? `no rule matched: ${r.default}`;
      li.dataset.result = String(r.result ?? "default");
      li.append(code, ` → ${r.result ?? "default"}`);
      return li;
    }),
  );
  document.getElementById("decision").hidden = false;
}

function note(text) {
  const li = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString();
  li.append(time, " ", text);
  log.prepend(li);
}

function showProblem(message) {
  problem.textContent = `Could not continue: ${message}`;
  problem.hidden = false;
}

element.addEventListener("gangway:connection", (e) => note(`stream ${e.detail.state}`));
element.addEventListener("gangway:step", (e) => {
  const { step, view, eventId } = e.detail;
  note(`event ${eventId}: ${view.status} in step “${step ? step.name : "?"}”${step && step.present ? ` (${step.present.kind})` : ""}`);
});
element.addEventListener("gangway:ended", (e) => {
  const { outcome, reason, eventId, view } = e.detail;
  note(`event ${eventId}: ended, ${outcome}`);
  const texts = OUTCOMES[element.dataset.flow] || OUTCOMES["incode-identity"];
  const [title, text] = texts[outcome] || ["Finished", reason || ""];
  document.getElementById("result-title").textContent = title;
  document.getElementById("result-text").textContent = text;
  result.dataset.outcome = outcome;
  result.hidden = false;
  showDecision(view && view.id).catch(() => {});
  if (element.dataset.flow === "whatsapp-360dialog" && outcome === "approved") showChannelKey(view && view.id).catch(() => {});
});
element.addEventListener("gangway:error", (e) => {
  note(`error: ${e.detail.message}`);
  if (e.detail.fatal) showProblem(e.detail.message);
});
window.addEventListener("unhandledrejection", (e) => showProblem(String((e.reason && e.reason.message) || e.reason)));
window.addEventListener("error", (e) => showProblem(e.message));

for (const button of document.querySelectorAll("[data-restart]")) {
  button.addEventListener("click", () => {
    sessionStorage.removeItem(`order:${element.dataset.flow}`);
    location.reload();
  });
}
