// Gangway browser SDK: its styles, one constructed stylesheet (not blocked
// by a strict style-src CSP), themable through custom properties.

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
.gw-icon { width: 56px; height: 56px; border-radius: 50%; display: grid; place-items: center; background: #f2f4f7; color: #344054; }
.gw-icon svg { width: 28px; height: 28px; fill: none; stroke: currentColor; stroke-width: 2.5; stroke-linecap: round; stroke-linejoin: round; }
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
.gw-actions { display: flex; flex-wrap: wrap; justify-content: center; gap: 8px; margin-top: 8px; }
.gw-qr { margin: 0; display: flex; flex-direction: column; align-items: center; gap: 10px; padding: 20px; border: 1px solid var(--gw-line); border-radius: var(--gw-radius); background: #fff; }
.gw-qr svg { width: min(260px, 70vw); height: auto; }
.gw-qr figcaption { color: var(--gw-muted); }
.gw-chat { display: flex; flex-direction: column; height: var(--gw-frame-height); border: 1px solid var(--gw-line); border-radius: var(--gw-radius); background: #fff; overflow: hidden; }
.gw-chat-log { flex: 1; overflow: auto; margin: 0; padding: 12px; list-style: none; display: flex; flex-direction: column; gap: 8px; }
.gw-chat-log li { max-width: 80%; padding: 8px 12px; border-radius: 12px; background: #f2f4f7; white-space: pre-wrap; }
.gw-chat-log .gw-chat-user { align-self: flex-end; background: var(--gw-accent); color: #fff; }
.gw-chat-log .gw-pending { opacity: .6; }
.gw-chat-title { margin: 0; padding: 10px 12px; font-weight: 600; border-bottom: 1px solid var(--gw-line); }
.gw-chat-log .gw-chat-run { align-self: stretch; max-width: none; background: #fff; border: 1px solid var(--gw-line); }
.gw-chat-log .gw-failed { background: #b42318; }
.gw-chat-state { margin: 0; padding: 0 12px; font-size: .85em; color: #667085; }
.gw-chat-state:empty { display: none; }
.gw-run-head { margin: 0 0 4px; font-weight: 600; font-family: ui-monospace, monospace; }
.gw-run-lines p { margin: 4px 0; }
.gw-run-working { color: #667085; }
.gw-run-outcome { font-weight: 600; }
.gw-outcome-approved .gw-run-outcome { color: #067647; }
.gw-outcome-failed .gw-run-outcome, .gw-outcome-declined .gw-run-outcome, .gw-outcome-expired .gw-run-outcome { color: #b42318; }
.gw-fields { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0 0; }
.gw-fields dt { color: #667085; }
.gw-fields dd { margin: 0; overflow-wrap: anywhere; }
.gw-value-list { margin: 0; padding-left: 18px; }
.gw-empty { color: #98a2b3; }
.gw-chat-form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid var(--gw-line); }
.gw-chat-input { flex: 1; font: inherit; padding: 8px 10px; border: 1px solid var(--gw-line); border-radius: 10px; }
`;

let styled = false;
export function installStyles(doc) {
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
