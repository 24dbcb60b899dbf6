// The studio's dry run: the draft runs in the server's sandbox against the
// built-in simulators (POST /v1/workflows/{id}/dry-run with `source`), and
// its trace is shown in order and can be stepped through one entry at a
// time (the graph follows the step), a QR code drawn as the browser would
// see it, as `gangway sandbox` prints it.

import { el, badge, errorText } from '../ui.js';
import { ApiError } from '../api.js';

/** One line about a trace entry, in words. */
function describe(item) {
  const d = item.data || {};
  switch (item.kind) {
    case 'sandbox.started': return `sandbox session ${d.session_id || ''}`;
    case 'step.entered': return `entered step ${item.step || ''}`;
    case 'state.set': return `state.${d.key} set`;
    case 'state.removed': return `state.${d.key} removed`;
    case 'browser.presents': return d.kind === 'qr' ? 'the browser shows a QR code' : `the browser shows ${d.kind || 'something'}`;
    case 'script.applied': return d.signal ? `signal ${d.signal}` : `${d.sim || 'simulator'}: ${d.action || ''}`;
    case 'script.idle': return `waits in ${item.step || 'a step'}; the script has nothing for it`;
    case 'rule.evaluated': return `rule ${d.expr || d.when || ''} → ${JSON.stringify(d.result)}`;
    case 'session.ended': return `ended ${d.outcome || ''}${d.reason ? `: ${d.reason}` : ''}`;
    default: return item.step ? `${item.kind} in ${item.step}` : item.kind;
  }
}

function qrImage(d) {
  const src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(d.svg)}`;
  return el('figure', { class: 'qr' },
    el('img', { src, width: 180, height: 180, alt: `QR code: ${d.payload}` }),
    el('figcaption', {}, 'The phone opens ', el('span', { class: 'mono' }, d.payload)));
}

function traceItem(item, index) {
  const d = item.data || {};
  const when = item.at_ms === undefined ? '' : `+${item.at_ms} ms`;
  return el('li', { class: 'trace-item', id: `trace-${index}`, tabindex: '-1', dataset: { step: item.step || '', child: item.session || '' } },
    el('span', { class: 'when mono' }, when), ' ',
    el('span', { class: 'kind mono' }, item.kind), ' ',
    item.session ? el('span', { class: 'muted' }, `(child ${item.session}) `) : null,
    el('span', {}, describe(item)),
    item.kind === 'browser.presents' && d.svg ? qrImage(d) : null,
    el('details', {}, el('summary', {}, 'Data'), el('pre', {}, JSON.stringify(d, null, 2))));
}

/**
 * `dryRunPanel(ctx, { draft: () => ({id, source}), onStep })`: the form and
 * the trace. `onStep(step)` is called with the step of the trace entry the
 * operator steps to (for the graph), `null` when the trace is cleared.
 */
export function dryRunPanel(ctx, { draft, onStep }) {
  const input = el('textarea', { id: 'dr-input', rows: 4, class: 'code', spellcheck: 'false' });
  input.value = '{}';
  const events = el('textarea', { id: 'dr-events', rows: 6, class: 'code', spellcheck: 'false' });
  events.value = '[]';
  const problem = el('p', { class: 'error', role: 'alert' });
  const run = el('button', { type: 'submit' }, 'Dry run the draft');
  const summary = el('div', { class: 'dr-summary', role: 'status', 'aria-live': 'polite' });
  const list = el('ol', { class: 'trace', 'aria-label': 'Dry run trace' });
  let at = -1;
  const prev = el('button', { type: 'button', class: 'secondary', disabled: true }, 'Previous entry');
  const next = el('button', { type: 'button', class: 'secondary', disabled: true }, 'Next entry');
  const position = el('span', { class: 'muted', 'aria-live': 'polite' });
  const stepper = el('div', { class: 'actions stepper', hidden: true }, prev, next, position);

  function go(i) {
    const items = list.children;
    if (i < 0 || i >= items.length) return;
    if (at >= 0 && items[at]) items[at].removeAttribute('aria-current');
    at = i;
    const li = items[at];
    li.setAttribute('aria-current', 'step');
    li.scrollIntoView({ block: 'nearest' });
    prev.disabled = at === 0;
    next.disabled = at === items.length - 1;
    position.textContent = `Entry ${at + 1} of ${items.length}`;
    if (onStep) {
      // The steps entered so far (of the session itself, not its children).
      const path = [];
      for (const item of Array.from(items).slice(0, at + 1)) {
        const s = item.dataset.step;
        if (s && !item.dataset.child && path[path.length - 1] !== s) path.push(s);
      }
      onStep(li.dataset.child ? null : (li.dataset.step || null), path);
    }
  }
  prev.addEventListener('click', () => go(at - 1));
  next.addEventListener('click', () => go(at + 1));

  const form = el('form', { class: 'dry-run', 'aria-labelledby': 'dr-head' },
    el('label', { for: 'dr-input' }, 'Input (JSON object)'), input,
    el('label', { for: 'dr-events' }, 'Events (JSON list: {"at", "sim", "action", "body"} or {"at", "signal", "data"})'), events,
    problem, el('div', { class: 'actions' }, run));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    problem.textContent = '';
    let body;
    try {
      body = { input: JSON.parse(input.value || '{}'), events: JSON.parse(events.value || '[]') };
    } catch (err) {
      problem.textContent = `Not JSON: ${err.message}`;
      return;
    }
    const { id, source } = draft();
    if (!id) {
      problem.textContent = 'The draft needs a valid `id` before it can run.';
      return;
    }
    run.disabled = true;
    summary.textContent = 'Running in the sandbox…';
    list.replaceChildren();
    stepper.hidden = true;
    at = -1;
    if (onStep) onStep(null, []);
    try {
      const res = await ctx.api(`/v1/workflows/${encodeURIComponent(id)}/dry-run`, {
        method: 'POST', body: { ...body, source },
      });
      const s = res.session || {};
      summary.replaceChildren(
        el('p', {}, res.ended ? 'The dry run ended ' : 'The dry run stopped at its timeout, the session ',
          res.ended ? badge(s.outcome) : badge(s.status),
          s.reason ? ` ${s.reason}` : '', ` (${res.trace.length} trace entries).`));
      list.replaceChildren(...res.trace.map(traceItem));
      stepper.hidden = res.trace.length === 0;
      if (res.trace.length) go(0);
    } catch (err) {
      summary.textContent = '';
      const diags = err instanceof ApiError && err.problem.diagnostics;
      problem.textContent = diags && diags.length
        ? `${errorText(err)} (${diags.length} problem${diags.length === 1 ? '' : 's'}; see the editor)`
        : errorText(err);
    } finally {
      run.disabled = false;
    }
  });

  return el('section', { class: 'card', 'aria-labelledby': 'dr-head' },
    el('h2', { id: 'dr-head' }, 'Dry run against the simulators'),
    el('p', { class: 'muted' }, 'Runs the draft in an isolated sandbox: no real provider, nothing reaches this server\'s sessions or webhooks.'),
    form, summary, stepper, list);
}
