// Placeholder: this page is being built (issue 22).
import { el } from '../ui.js';

export const title = 'workflow';

export async function render(root) {
  root.append(el('h1', {}, 'workflow'), el('p', { class: 'muted' }, 'This page is not built yet.'));
}
