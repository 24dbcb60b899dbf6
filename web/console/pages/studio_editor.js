// The studio's YAML editor: a plain textarea (every browser's own editing,
// undo and accessibility) with a line-number gutter beside it that marks
// the lines with problems, and the list of problems under it, each a button
// that puts the caret at its line and column.

import { el } from '../ui.js';

/** The offset in `text` of 1-based `line` and `col`. */
export function offsetOf(text, line, col) {
  let offset = 0;
  for (let l = 1; l < line; l += 1) {
    const next = text.indexOf('\n', offset);
    if (next < 0) return text.length;
    offset = next + 1;
  }
  const end = text.indexOf('\n', offset);
  const lineEnd = end < 0 ? text.length : end;
  return Math.min(offset + Math.max(col - 1, 0), lineEnd);
}

/**
 * `editor({ id, label, value, onInput })` → { root, textarea, value(),
 * setValue(text), showProblems(diagnostics), goTo(line, col) }.
 */
export function editor({ id, label, value = '', onInput }) {
  const gutter = el('pre', { class: 'gutter', 'aria-hidden': 'true' });
  const textarea = el('textarea', {
    id, spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', wrap: 'off',
    class: 'code', rows: 24, 'aria-describedby': `${id}-problems-head`,
  });
  textarea.value = value;
  const problems = el('ol', { class: 'problems', id: `${id}-problems` });
  const problemsHead = el('p', { class: 'problems-head', id: `${id}-problems-head`, role: 'status', 'aria-live': 'polite' });
  let marked = new Set();

  function drawGutter() {
    const lines = textarea.value.split('\n').length;
    const rows = [];
    for (let n = 1; n <= lines; n += 1) {
      rows.push(el('span', { class: marked.has(n) ? 'bad' : null }, `${n}\n`));
    }
    gutter.replaceChildren(...rows);
    gutter.scrollTop = textarea.scrollTop;
  }

  function goTo(line, col) {
    const at = offsetOf(textarea.value, line, col);
    textarea.focus();
    textarea.setSelectionRange(at, at);
    // Bring the line into view: the line height times the lines above it.
    const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
    textarea.scrollTop = Math.max(0, (line - 3) * lineHeight);
    gutter.scrollTop = textarea.scrollTop;
  }

  function showProblems(diagnostics, note) {
    marked = new Set((diagnostics || []).map((d) => d.line));
    drawGutter();
    problems.replaceChildren(...(diagnostics || []).map((d) => el('li', {},
      el('button', { type: 'button', class: 'link problem', onclick: () => goTo(d.line, d.col) },
        `Line ${d.line}, column ${d.col}`),
      `: ${d.message}`)));
    const n = (diagnostics || []).length;
    problemsHead.className = `problems-head ${n ? 'error' : 'ok'}`;
    problemsHead.textContent = note || (n === 0 ? 'No problems.' : `${n} problem${n === 1 ? '' : 's'}:`);
  }

  textarea.addEventListener('input', () => {
    drawGutter();
    if (onInput) onInput(textarea.value);
  });
  textarea.addEventListener('scroll', () => { gutter.scrollTop = textarea.scrollTop; });
  // Tab inserts two spaces (YAML indents with spaces); Escape then Tab
  // leaves the editor, so the keyboard is never trapped.
  let escaped = false;
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { escaped = true; return; }
    if (e.key === 'Tab' && !e.shiftKey && !escaped) {
      e.preventDefault();
      const { selectionStart: a, selectionEnd: b, value: v } = textarea;
      textarea.value = `${v.slice(0, a)}  ${v.slice(b)}`;
      textarea.setSelectionRange(a + 2, a + 2);
      textarea.dispatchEvent(new Event('input'));
      return;
    }
    escaped = false;
  });
  textarea.addEventListener('blur', () => { escaped = false; });
  drawGutter();

  const root = el('div', { class: 'editor-wrap' },
    el('label', { for: id }, label),
    el('p', { class: 'muted hint', id: `${id}-hint` }, 'Tab indents; press Escape, then Tab, to leave the editor.'),
    el('div', { class: 'editor' }, gutter, textarea),
    problemsHead, problems);
  textarea.setAttribute('aria-describedby', `${id}-hint ${id}-problems-head`);
  return {
    root,
    textarea,
    value: () => textarea.value,
    setValue(text) {
      textarea.value = text;
      drawGutter();
      if (onInput) onInput(text);
    },
    showProblems,
    goTo,
  };
}
