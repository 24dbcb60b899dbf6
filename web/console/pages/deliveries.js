// Placeholder: this page is being built (issue 22).
import { el } from '../ui.js';

export const title = 'deliveries';

export async function render(root) {
  root.append(el('h1', {}, 'deliveries'), el('p', { class: 'muted' }, 'This page is not built yet.'));
}
