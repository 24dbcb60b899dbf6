// Dashboard: per workflow, the funnel over a chosen period (sessions that
// reached each step, where they went or ended, median time per step),
// outcomes over time, provider health and the webhook backlog. Every
// figure comes from the server (GET /v1/stats/*); the charts are SVG drawn
// here.

import { el, svg, time, ago, duration, errorText, header } from '../ui.js';

export const title = 'Dashboard';

const PERIODS = [['1', 'Last 24 hours'], ['7', 'Last 7 days'], ['30', 'Last 30 days']];
const OUTCOME_COLOURS = {
  approved: '#1b6e3a', declined: '#b3261e', review: '#8a5300',
  failed: '#6d28d9', canceled: '#4b5563', expired: '#0e7490',
};
const outcomeColour = (o) => OUTCOME_COLOURS[o] || '#1f4fd1';

function periodQuery(days) {
  const until = new Date();
  const since = new Date(until.getTime() - Number(days) * 86400000);
  return { since: since.toISOString(), until: until.toISOString() };
}

/** Horizontal bars, one per step: sessions that reached it. */
function funnelChart(f) {
  const steps = f.steps.filter((s) => s.sessions > 0 || s.kind !== 'end');
  const max = Math.max(1, ...steps.map((s) => s.sessions));
  const rowH = 34;
  const labelW = 170;
  const barW = 420;
  const height = steps.length * rowH + 10;
  const chart = svg('svg', { viewBox: `0 0 ${labelW + barW + 90} ${height}`, class: 'chart funnel-chart', role: 'img',
    'aria-label': `Funnel of ${f.workflow}: ${steps.map((s) => `${s.step} ${s.sessions}`).join(', ')}` });
  steps.forEach((s, i) => {
    const y = 5 + i * rowH;
    const w = Math.max(s.sessions ? 2 : 0, Math.round((s.sessions / max) * barW));
    chart.append(
      svg('text', { x: labelW - 8, y: y + 20, 'text-anchor': 'end', class: 'chart-label' }, s.step),
      svg('rect', { x: labelW, y: y + 4, width: barW, height: 24, fill: '#eef2fb', rx: 3 }),
      svg('rect', { x: labelW, y: y + 4, width: w, height: 24, fill: s.kind === 'end' ? '#1b6e3a' : '#1f4fd1', rx: 3 }),
      svg('text', { x: labelW + barW + 8, y: y + 20, class: 'chart-value' }, String(s.sessions)),
    );
  });
  return chart;
}

function exitText(s) {
  const parts = s.exits.map((e) => (e.outcome ? `ended ${e.outcome}: ${e.visits}` : `→ ${e.step}: ${e.visits}`));
  if (s.in_step) parts.push(`still here: ${s.in_step}`);
  return parts.join(' · ') || '—';
}

function funnelTable(f) {
  return el('div', { class: 'table-wrap' }, el('table', { class: 'funnel' },
    el('caption', { class: 'sr-only' }, `Steps of ${f.workflow}`),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Step'), el('th', { scope: 'col' }, 'Sessions'),
      el('th', { scope: 'col' }, 'Median time'), el('th', { scope: 'col' }, 'Went on to / dropped off'))),
    el('tbody', {}, f.steps.map((s) => el('tr', { dataset: { step: s.step } },
      el('td', {}, el('code', {}, s.step), ' ', el('span', { class: 'muted small' }, s.kind || 'older version')),
      el('td', { class: 'num' }, String(s.sessions)),
      el('td', {}, s.median_ms === null ? '—' : duration(s.median_ms)),
      el('td', {}, exitText(s)))))));
}

/** Stacked columns: sessions ended per bucket and outcome. */
function outcomesChart(o) {
  const totals = o.series.map((b) => Object.values(b.counts).reduce((a, n) => a + n, 0));
  const max = Math.max(1, ...totals);
  const n = o.series.length;
  // Sized for a third of the page: its labels stay legible when scaled.
  const w = 360;
  const h = 140;
  const colW = w / Math.max(n, 1);
  const outcomes = [...new Set(o.series.flatMap((b) => Object.keys(b.counts)))].sort();
  const sum = (out) => o.series.reduce((a, b) => a + (b.counts[out] || 0), 0);
  const chart = svg('svg', { viewBox: `0 0 ${w} ${h + 24}`, class: 'chart outcomes-chart', role: 'img',
    'aria-label': outcomes.length ? `Sessions ended: ${outcomes.map((x) => `${x} ${sum(x)}`).join(', ')}` : 'No session ended in this period' });
  o.series.forEach((b, i) => {
    let y = h;
    for (const out of outcomes) {
      const count = b.counts[out] || 0;
      if (!count) continue;
      const bh = (count / max) * (h - 10);
      y -= bh;
      chart.append(svg('rect', { x: i * colW + 1, y, width: Math.max(colW - 2, 1), height: bh, fill: outcomeColour(out) },
        svg('title', {}, `${time(b.start)}: ${out} ${count}`)));
    }
  });
  chart.append(svg('line', { x1: 0, y1: h, x2: w, y2: h, stroke: '#545d6e' }),
    svg('text', { x: 0, y: h + 18, class: 'chart-label' }, time(o.since)),
    svg('text', { x: w, y: h + 18, 'text-anchor': 'end', class: 'chart-label' }, time(o.until)));
  const legend = el('ul', { class: 'legend' }, outcomes.map((out) => el('li', {},
    svg('svg', { width: 12, height: 12, 'aria-hidden': 'true' }, svg('rect', { width: 12, height: 12, fill: outcomeColour(out) })),
    ` ${out}: ${sum(out)}`)));
  return el('div', {}, chart, legend);
}

function providerTable(p) {
  if (!p.connectors.length) return el('p', { class: 'muted' }, 'No provider call in this period.');
  return el('div', { class: 'table-wrap' }, el('table', { class: 'providers' },
    el('caption', { class: 'sr-only' }, 'Provider calls per connector'),
    el('thead', {}, el('tr', {}, ['Connector', 'Calls', 'Error rate', 'Average', 'Slowest']
      .map((t) => el('th', { scope: 'col' }, t)))),
    el('tbody', {}, p.connectors.map((c) => el('tr', { dataset: { connector: c.connector } },
      el('td', {}, c.connector), el('td', { class: 'num' }, String(c.calls)),
      el('td', { class: c.error_rate > 0.05 ? 'num error' : 'num' }, `${(c.error_rate * 100).toFixed(1)}% (${c.errors})`),
      el('td', { class: 'num' }, duration(c.avg_ms)), el('td', { class: 'num' }, duration(c.max_ms)))))));
}

function webhookFacts(wh) {
  return el('dl', { class: 'facts webhooks' },
    el('dt', {}, 'Pending now'), el('dd', {}, el('a', { href: '/console/deliveries?status=pending' }, String(wh.pending)),
      wh.oldest_pending_at ? el('span', { class: 'muted' }, ` (oldest ${ago(wh.oldest_pending_at)})`) : null),
    el('dt', {}, 'Failed'), el('dd', {}, el('a', { href: '/console/deliveries?status=failed' }, String(wh.failed))),
    el('dt', {}, 'Delivered in period'), el('dd', {}, String(wh.delivered)),
    el('dt', {}, 'Lag (average / max)'), el('dd', {}, wh.avg_lag_ms === null ? '—' : `${duration(wh.avg_lag_ms)} / ${duration(wh.max_lag_ms)}`));
}

export async function render(root, ctx) {
  const params = new URLSearchParams(location.search);
  const { data: workflows } = await ctx.api('/v1/workflows');
  if (!ctx.isCurrent()) return undefined;
  const workflow = el('select', { id: 'd-workflow', name: 'workflow' },
    workflows.map((w) => el('option', { value: w.id, selected: params.get('workflow') === w.id }, w.id)));
  const period = el('select', { id: 'd-period', name: 'days' },
    PERIODS.map(([v, label]) => el('option', { value: v, selected: (params.get('days') || '7') === v }, label)));
  const form = el('form', { class: 'filters', 'aria-label': 'Dashboard period' },
    el('label', { for: 'd-workflow' }, 'Workflow', workflow),
    el('label', { for: 'd-period' }, 'Period', period),
    el('button', { type: 'submit' }, 'Show'));
  const funnel = el('section', { class: 'card', 'aria-labelledby': 'h-funnel' }, el('h2', { id: 'h-funnel' }, 'Funnel'));
  const outcomes = el('section', { class: 'card', 'aria-labelledby': 'h-outcomes' }, el('h2', { id: 'h-outcomes' }, 'Outcomes over time'));
  const providers = el('section', { class: 'card', 'aria-labelledby': 'h-providers' }, el('h2', { id: 'h-providers' }, 'Provider health'));
  const webhooks = el('section', { class: 'card', 'aria-labelledby': 'h-webhooks' }, el('h2', { id: 'h-webhooks' }, 'Webhook backlog'));
  root.append(header('Dashboard'), form, funnel, el('div', { class: 'grid' }, outcomes, providers, webhooks));

  const fill = (section, node) => section.replaceChildren(section.firstChild, node);
  async function load() {
    const q = periodQuery(period.value);
    const wf = workflow.value;
    const [f, o, p] = await Promise.allSettled([
      wf ? ctx.api('/v1/stats/funnel', { query: { workflow: wf, ...q } }) : Promise.reject(new Error('No workflow loaded')),
      ctx.api('/v1/stats/outcomes', { query: { workflow: wf, ...q } }),
      ctx.api('/v1/stats/providers', { query: q }),
    ]);
    if (!ctx.isCurrent()) return;
    const failed = (r) => el('p', { class: 'error', role: 'alert' }, errorText(r.reason));
    fill(funnel, f.status === 'fulfilled'
      ? el('div', { class: 'funnel-body' }, funnelChart(f.value), funnelTable(f.value)) : failed(f));
    fill(outcomes, o.status === 'fulfilled' ? outcomesChart(o.value) : failed(o));
    fill(providers, p.status === 'fulfilled' ? providerTable(p.value) : failed(p));
    fill(webhooks, p.status === 'fulfilled' ? webhookFacts(p.value.webhooks) : failed(p));
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    history.replaceState(null, '', `/console?workflow=${encodeURIComponent(workflow.value)}&days=${period.value}`);
    load();
  });
  await load();
  return undefined;
}
