// Small DOM helpers every console page shares: element building (text is
// always set as text, never as markup), times, status badges, toasts.

/** `el('a', { href: '/x', class: 'y' }, 'text', child)`; `on*` attributes bind listeners. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** An SVG element (graphs and charts). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** An RFC 3339 time as the operator's local time. */
export function time(t) {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

/** "3 min ago", "in 2 h": a time relative to now. */
export function ago(t, now = Date.now()) {
  if (!t) return '—';
  const ms = new Date(t).getTime() - now;
  const abs = Math.abs(ms);
  const units = [['d', 86400000], ['h', 3600000], ['min', 60000], ['s', 1000]];
  const [name, size] = units.find(([, s]) => abs >= s) || ['s', 1000];
  const n = Math.round(abs / size);
  return ms < 0 ? `${n} ${name} ago` : `in ${n} ${name}`;
}

/** A duration in milliseconds, short. */
export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3600000) return `${Math.round(ms / 60000)} min`;
  return `${(ms / 3600000).toFixed(1)} h`;
}

/** A status or outcome as a coloured label. */
export function badge(value) {
  return el('span', { class: `badge badge-${value || 'none'}` }, value || '—');
}

/** A passing message for the operator (announced by screen readers). */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = el('div', { class: `toast toast-${kind}` }, message);
  box.append(t);
  setTimeout(() => t.remove(), 6000);
}

/** The message of an ApiError (or any error) for the operator. */
export function errorText(err) {
  const p = err && err.problem;
  if (p && (p.detail || p.title)) return p.detail || p.title;
  return (err && err.message) || String(err);
}

/** A page's heading row: the title and optional actions. */
export function header(title, ...actions) {
  return el('div', { class: 'page-head' }, el('h1', {}, title), el('div', { class: 'actions' }, actions));
}

/**
 * A table in a horizontally scrollable box. The box is focusable and named,
 * so keyboard users can scroll it too (axe: scrollable-region-focusable).
 */
export function tableWrap(label, table) {
  return el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': label }, table);
}
