// The facts a workflow attached to a review (scores, incomes, the rules that
// fired), as a reviewer reads them: nested objects as definition lists,
// lists as lists, numbers and booleans in words, keys without underscores.
// Text is always set as text (el() never parses markup).

import { el } from '../ui.js';

/** `income_monthly` → "income monthly". */
function keyText(key) {
  return String(key).replace(/[_-]+/g, ' ').trim();
}

function scalar(v) {
  if (v === null || v === undefined) return el('span', { class: 'muted' }, '—');
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'number') return v.toLocaleString();
  return String(v);
}

function value(v, depth) {
  if (Array.isArray(v)) {
    if (v.length === 0) return el('span', { class: 'muted' }, 'none');
    if (v.every((x) => x === null || typeof x !== 'object')) {
      return el('ul', { class: 'fact-list' }, v.map((x) => el('li', {}, scalar(x))));
    }
    return el('ol', { class: 'fact-list' }, v.map((x) => el('li', {}, value(x, depth + 1))));
  }
  if (v && typeof v === 'object') {
    // Deep nesting stays readable as JSON rather than ever-narrower lists.
    if (depth >= 3) return el('pre', {}, JSON.stringify(v, null, 2));
    const keys = Object.keys(v);
    if (keys.length === 0) return el('span', { class: 'muted' }, 'none');
    return el('dl', { class: 'facts' }, keys.flatMap((k) => [el('dt', {}, keyText(k)), el('dd', {}, value(v[k], depth + 1))]));
  }
  return scalar(v);
}

/** The facts as a block; an empty or missing set says so. */
export function factsView(facts) {
  if (facts === null || facts === undefined
    || (typeof facts === 'object' && !Array.isArray(facts) && Object.keys(facts).length === 0)) {
    return el('p', { class: 'muted' }, 'The workflow attached no facts.');
  }
  return el('div', { class: 'review-facts' }, value(facts, 0));
}
