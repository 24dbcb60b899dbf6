// The workflow studio (admins): a workflow's YAML and its graph side by
// side. As the operator types, the draft is checked by the server
// (POST /v1/workflows/validate, the same validation as `gangway validate`),
// each problem shown at its line and column, and the graph redrawn from the
// valid draft. The draft can be dry-run against the simulators and deployed
// as the next version without a restart (POST /v1/admin/workflows).

import { el, errorText, header, toast } from '../ui.js';
import { editor } from './studio_editor.js';
import { dryRunPanel } from './studio_dryrun.js';
import { graphPane } from './studio_graph.js';

export const title = 'studio';

/** Where a new draft starts: the shape of http-score, against the score simulator. */
const STARTER = `# A new workflow: edit it; the graph and the problems follow as you type.
id: my-workflow
version: 1
description: Score a customer and decide
steps:
  start_provider:
    call: http.request
    with:
      service: score
      method: POST
      path: /v1/sessions
      body:
        reference: \${session.reference}
    provider_ref: result.body.id
    save_as: provider
    next: wait_for_result
  wait_for_result:
    wait:
      score.completed: fetch_score
    timeout: 10m
    on_timeout: too_late
    present:
      kind: iframe
      url: https://provider.example/flow/\${state.provider.body.id}
  fetch_score:
    call: http.request
    with:
      service: score
      path: /v1/sessions/\${state.provider.body.id}/score
    save_as: score
    next: decide
  decide:
    decide:
      - when: state.score.body.score >= 50
        next: approve
    default: decline
  approve:
    end: approved
    reason: score \${state.score.body.score} is at least 50
  decline:
    end: declined
    reason: score \${state.score.body.score} is below 50
  too_late:
    end: expired
    reason: no score within 10 minutes
`;

const DEBOUNCE_MS = 300;
const VERSION_LINE = /^version:[ \t]*[^\s#]*[ \t]*(#.*)?$/m;

/** The draft with its top-level `version:` set to `n`, or null without one. */
export function withVersion(source, n) {
  return VERSION_LINE.test(source) ? source.replace(VERSION_LINE, `version: ${n}`) : null;
}

export async function render(root, ctx) {
  if (!ctx.can('admin')) {
    root.append(header('Workflow studio'),
      el('p', { role: 'alert' }, `The studio is for admins; your role is ${ctx.me.operator.role}.`));
    return undefined;
  }
  let timer = null;
  let inflight = null;
  let last = null; // the latest validation answer
  const graph = graphPane({ onSelect: (node) => { if (node.line) ed.goTo(node.line, 1); } });

  const ed = editor({ id: 'studio-yaml', label: 'Workflow YAML', value: STARTER, onInput: schedule });
  const deployBox = el('div', { class: 'deploy', 'aria-live': 'polite' });
  const deployButton = el('button', { type: 'button', disabled: true, onclick: askDeploy }, 'Deploy');
  const picker = el('select', { id: 'studio-open' }, el('option', { value: '' }, 'a new workflow'));
  const open = el('button', { type: 'button', class: 'secondary', onclick: openWorkflow }, 'Open');

  const panel = dryRunPanel(ctx, {
    draft: () => ({ id: last && last.valid ? last.workflow.id : null, source: ed.value() }),
    onStep: (step, path) => graph.highlight(step, path),
  });

  root.append(
    header('Workflow studio'),
    el('div', { class: 'filters' },
      el('label', { for: 'studio-open' }, 'Start from', picker), open),
    el('div', { class: 'studio' },
      el('section', { class: 'card studio-source', 'aria-label': 'Source' }, ed.root),
      el('section', { class: 'card studio-graph', 'aria-labelledby': 'studio-graph-head' },
        el('h2', { id: 'studio-graph-head' }, 'Graph'), graph.root)),
    el('section', { class: 'card', 'aria-labelledby': 'deploy-head' },
      el('h2', { id: 'deploy-head' }, 'Deploy'),
      el('p', { class: 'muted' }, 'Deploys the draft to every node without a restart; running sessions keep their version.'),
      el('div', { class: 'actions' }, deployButton), deployBox),
    panel,
  );

  ctx.api('/v1/workflows').then((wfs) => {
    for (const w of wfs.data || []) picker.append(el('option', { value: `${w.id}@${w.version}` }, `${w.id} (v${w.version})`));
  }).catch((err) => toast(errorText(err), 'error'));

  async function openWorkflow() {
    const [id, version] = picker.value.split('@');
    if (!id) {
      ed.setValue(STARTER);
      return;
    }
    try {
      const v = await ctx.api(`/v1/workflows/${encodeURIComponent(id)}/versions/${encodeURIComponent(version)}`);
      ed.setValue(v.source);
      ed.textarea.focus();
    } catch (err) {
      toast(`Could not open ${id} v${version}: ${errorText(err)}`, 'error');
    }
  }

  function schedule() {
    clearTimeout(timer);
    deployButton.disabled = true;
    timer = setTimeout(check, DEBOUNCE_MS);
  }

  async function check() {
    if (inflight) inflight.abort();
    const mine = new AbortController();
    inflight = mine;
    const source = ed.value();
    try {
      const res = await ctx.api('/v1/workflows/validate', { method: 'POST', body: { source }, signal: mine.signal });
      if (mine.signal.aborted || !ctx.isCurrent()) return;
      last = res;
      ed.showProblems(res.diagnostics);
      if (res.valid) {
        graph.draw(res.graph, res.workflow);
        const next = (res.workflow.latest_version || 0) + 1;
        deployButton.textContent = `Deploy ${res.workflow.id} as version ${next}`;
        deployButton.disabled = false;
      } else {
        graph.stale();
        deployButton.textContent = 'Deploy (fix the problems first)';
      }
    } catch (err) {
      if (mine.signal.aborted || (err && err.name === 'AbortError')) return;
      last = null;
      ed.showProblems([], `Could not check the draft: ${errorText(err)}`);
    } finally {
      if (inflight === mine) inflight = null;
    }
  }

  function askDeploy() {
    if (!last || !last.valid) return;
    const { id } = last.workflow;
    const next = (last.workflow.latest_version || 0) + 1;
    const source = withVersion(ed.value(), next);
    if (source === null) {
      deployBox.replaceChildren(el('p', { class: 'error', role: 'alert' }, 'The draft has no top-level `version:` line to set.'));
      return;
    }
    const confirm = el('button', { type: 'button', class: 'danger' }, `Yes, deploy version ${next}`);
    const cancel = el('button', { type: 'button', class: 'secondary' }, 'Cancel');
    cancel.addEventListener('click', () => { deployBox.replaceChildren(); deployButton.focus(); });
    confirm.addEventListener('click', () => deploy(id, next, source, confirm));
    deployBox.replaceChildren(el('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm the deploy' },
      el('p', {}, `Deploy ${id} as version ${next}? New sessions of ${id} start on it at once.`),
      el('div', { class: 'actions' }, confirm, cancel)));
    confirm.focus();
  }

  async function deploy(id, version, source, button) {
    button.disabled = true;
    try {
      const res = await ctx.api('/v1/admin/workflows', {
        method: 'POST', body: { files: [{ name: `${id}.yaml`, source }] },
      });
      const done = (res.data || [])[0] || {};
      ed.setValue(source);
      const heading = el('p', { tabindex: '-1', role: 'status', class: 'deployed' },
        `Deployed ${done.id || id} version ${done.version || version} (${(done.change || 'done').replace(/_/g, ' ')}). `,
        el('a', { href: `/console/workflows/${encodeURIComponent(id)}` }, `See ${id} in Workflows`));
      deployBox.replaceChildren(heading);
      heading.focus();
      toast(`Deployed ${id} v${version}.`);
    } catch (err) {
      const problems = (err.problem && err.problem.problems) || [];
      deployBox.replaceChildren(el('div', { role: 'alert', class: 'error' },
        el('p', {}, errorText(err)), problems.length ? el('ul', {}, problems.map((p) => el('li', {}, p))) : null));
      button.disabled = false;
    }
  }

  check();
  return () => {
    clearTimeout(timer);
    if (inflight) inflight.abort();
  };
}
