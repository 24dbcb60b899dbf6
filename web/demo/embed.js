import { Gangway } from "/sdk/gangway.js";

const element = document.getElementById("verify");
const flow = element.dataset.flow; // "incode-identity"
// Your backend creates the session with its API key and answers {id, client_secret}.
// The same order id (kept for this tab) resumes the same session after a reload.
const order = (sessionStorage[`order:${flow}`] ??= crypto.randomUUID());
const res = await fetch("/demo/api/sessions", {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ flow, order }),
});
if (!res.ok) throw new Error(`could not start the flow: HTTP ${res.status}`);
const { id, client_secret } = await res.json();

const gangway = Gangway.mount(element, { sessionId: id, clientSecret: client_secret });
gangway.on("ended", ({ outcome }) => console.log(`identity check: ${outcome}`));
