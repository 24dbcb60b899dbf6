// The review queue: sessions waiting in a `review` step, oldest first, with
// the facts their workflow attached. A reviewer claims one (so two people do
// not decide the same session), then decides it approved or declined with a
// note; the decision shows at once with a link to the session. Everything
// works from the keyboard: plain buttons, labelled fields, and focus moved to
// what the operator acts on next (the decision form after a claim, the
// result after a decision). A viewer sees the queue without the buttons.

import { el, time, ago, badge, toast, errorText, header } from '../ui.js';
import { ApiError } from '../api.js';
import { factsView } from './review_facts.js';

export const title = 'reviews';

const AGES = [
  ['', 'any age'],
  ['900', 'over 15 min'],
  ['3600', 'over 1 hour'],
  ['14400', 'over 4 hours'],
  ['86400', 'over 1 day'],
  ['604800', 'over 7 days'],
];
const PAGE = 25;

/** Who holds a claim, in words: "you", or the kind and id the API names. */
function holderText(claim, me) {
  const by = claim.by || {};
  if (by.kind === 'operator' && me.operator && by.id === me.operator.id) return 'you';
  return `${by.kind === 'operator' ? 'operator' : 'API key'} ${by.id}`;
}

function isMine(claim, me) {
  return !!claim && holderText(claim, me) === 'you';
}

export async function render(root, ctx) {
  const mayDecide = ctx.can('reviews:decide');
  const filters = { workflow: '', group: '', min_age_s: '' };
  let cursor = null;

  const list = el('ol', { class: 'review-list', 'aria-label': 'Reviews, oldest first' });
  const status = el('p', { class: 'muted', role: 'status', 'aria-live': 'polite' });
  const more = el('button', { type: 'button', class: 'secondary', hidden: true, onclick: () => load(false) }, 'Load more');

  const workflowSelect = el('select', { id: 'rf-workflow', name: 'workflow' }, el('option', { value: '' }, 'all workflows'));
  const groupInput = el('input', { id: 'rf-group', name: 'group', type: 'text', placeholder: 'e.g. kyc', autocomplete: 'off' });
  const ageSelect = el('select', { id: 'rf-age', name: 'min_age_s' }, AGES.map(([v, t]) => el('option', { value: v }, t)));
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the review queue' },
    el('label', { for: 'rf-workflow' }, 'Workflow', workflowSelect),
    el('label', { for: 'rf-group' }, 'Group', groupInput),
    el('label', { for: 'rf-age' }, 'Waiting', ageSelect),
    el('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    filters.workflow = workflowSelect.value;
    filters.group = groupInput.value.trim();
    filters.min_age_s = ageSelect.value;
    load(true);
  });

  root.append(header('Review queue'));
  if (!mayDecide) {
    root.append(el('p', { class: 'notice notice-info' },
      `Your role (${ctx.me.operator.role}) can read the queue; deciding a review needs the reviewer role.`));
  }
  root.append(form, status, list, more);

  // The workflow filter offers the workflows there are; the queue works without them.
  ctx.api('/v1/workflows').then((wfs) => {
    for (const w of wfs.data || []) workflowSelect.append(el('option', { value: w.id }, w.id));
  }).catch(() => {});

  async function load(fresh) {
    if (fresh) cursor = null;
    status.textContent = 'Loading…';
    try {
      const page = await ctx.api('/v1/reviews', { query: { ...filters, cursor, limit: PAGE } });
      if (!ctx.isCurrent()) return;
      if (fresh) list.replaceChildren();
      for (const r of page.data) list.append(card(r));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      const n = list.children.length;
      status.textContent = n === 0 ? 'No session waits for a review.' : `${n} review${n === 1 ? '' : 's'} shown, oldest first.`;
    } catch (err) {
      status.textContent = '';
      list.replaceChildren(el('li', { class: 'error', role: 'alert' }, errorText(err)));
    }
  }

  /** One review: its header, facts, claim and (for reviewers) actions. */
  function card(r) {
    const item = el('li', { class: 'card review', dataset: { session: r.session_id } });
    fill(item, r);
    return item;
  }

  function fill(item, r, focus) {
    const headingId = `rv-${r.session_id}`;
    const claimBox = el('div', { class: 'claim' });
    const actions = el('div', { class: 'review-actions' });
    item.setAttribute('aria-labelledby', headingId);
    item.replaceChildren(
      el('h2', { id: headingId, tabindex: '-1' },
        el('a', { href: `/console/sessions/${encodeURIComponent(r.session_id)}` }, r.reference || r.session_id),
        ' ', el('span', { class: 'muted' }, `${r.workflow} v${r.version} · ${r.step}`)),
      el('dl', { class: 'facts review-meta' },
        el('dt', {}, 'Session'), el('dd', { class: 'mono' }, r.session_id),
        el('dt', {}, 'Waiting since'), el('dd', {}, el('time', { datetime: r.since }, `${time(r.since)} (${ago(r.since)})`)),
        el('dt', {}, 'Deadline'), el('dd', {}, el('time', { datetime: r.deadline }, `${time(r.deadline)} (${ago(r.deadline)})`)),
        el('dt', {}, 'Group'), el('dd', {}, r.group || '—')),
      el('h3', {}, 'Facts'),
      factsView(r.facts),
      claimBox,
      actions,
    );
    if (r.claim) {
      claimBox.append(el('p', { class: isMine(r.claim, ctx.me) ? 'claim-mine' : 'claim-other' },
        `Claimed by ${holderText(r.claim, ctx.me)} until ${time(r.claim.expires_at)} (${ago(r.claim.expires_at)}).`));
    }
    if (!mayDecide) return;
    if (isMine(r.claim, ctx.me)) {
      const decideForm = decision(item, r);
      actions.append(decideForm);
      if (focus) decideForm.querySelector('input[type=radio]').focus();
    } else {
      const label = r.claim ? `Claim (held by ${holderText(r.claim, ctx.me)})` : 'Claim';
      const btn = el('button', { type: 'button', class: 'claim-button', 'aria-describedby': headingId }, label);
      btn.disabled = !!r.claim;
      btn.addEventListener('click', () => claim(item, r, btn));
      actions.append(btn);
      // A disabled button cannot hold focus: the review's heading does.
      if (focus) (btn.disabled ? item.querySelector('h2') : btn).focus();
    }
  }

  async function claim(item, r, btn) {
    btn.disabled = true;
    try {
      const claimed = await ctx.api(`/v1/reviews/${encodeURIComponent(r.session_id)}/claim`, { method: 'POST' });
      fill(item, claimed, true);
      toast(`Claimed ${r.reference || r.session_id}.`);
    } catch (err) {
      // Someone else was faster, or the review is gone: show it as it is now.
      await refresh(item, r, err);
    }
  }

  async function refresh(item, r, err) {
    const message = errorText(err);
    try {
      const now = await ctx.api(`/v1/reviews/${encodeURIComponent(r.session_id)}`);
      fill(item, now, true);
      item.querySelector('.claim').prepend(el('p', { class: 'error', role: 'alert' }, message));
    } catch (again) {
      if (again instanceof ApiError && again.status === 404) {
        gone(item, r, message);
      } else {
        toast(message, 'error');
      }
    }
  }

  function gone(item, r, message) {
    const h = el('h2', { tabindex: '-1' }, r.reference || r.session_id);
    item.replaceChildren(h, el('p', { role: 'alert' }, message, ' '),
      el('a', { href: `/console/sessions/${encodeURIComponent(r.session_id)}` }, 'Open the session'));
    h.focus();
  }

  /** The decision form: approved or declined, and the required note. */
  function decision(item, r) {
    const sid = r.session_id;
    const note = el('textarea', { id: `note-${sid}`, name: 'note', rows: 3, required: true, maxlength: 2000 });
    const problem = el('p', { class: 'error', role: 'alert', id: `err-${sid}` });
    const choice = (value, text) => el('label', { class: 'choice' },
      el('input', { type: 'radio', name: `decision-${sid}`, value, required: true }), ' ', text);
    const submit = el('button', { type: 'submit' }, 'Decide');
    const f = el('form', { class: 'decide', 'aria-label': `Decide ${r.reference || sid}` },
      el('fieldset', {}, el('legend', {}, 'Decision'), choice('approved', 'Approved'), choice('declined', 'Declined')),
      el('label', { for: note.id }, 'Note (required: why you decided so)'), note,
      problem, submit);
    note.setAttribute('aria-describedby', problem.id);
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      const picked = f.querySelector(`input[name="decision-${sid}"]:checked`);
      problem.textContent = '';
      if (!picked) {
        problem.textContent = 'Choose approved or declined.';
        f.querySelector('input[type=radio]').focus();
        return;
      }
      if (!note.value.trim()) {
        problem.textContent = 'Write a note: why you decided so.';
        note.focus();
        return;
      }
      submit.disabled = true;
      try {
        const session = await ctx.api(`/v1/reviews/${encodeURIComponent(sid)}/decide`, {
          method: 'POST', body: { decision: picked.value, note: note.value.trim() },
        });
        decided(item, r, picked.value, session);
      } catch (err) {
        submit.disabled = false;
        if (err instanceof ApiError && err.status === 422) {
          problem.textContent = errorText(err);
          note.focus();
        } else {
          await refresh(item, r, err);
        }
      }
    });
    return f;
  }

  /** The decision, shown in place, focused, with the way to the session. */
  function decided(item, r, decision, session) {
    const h = el('h2', { tabindex: '-1' }, `${r.reference || r.session_id}: `, badge(decision));
    const outcome = session.status === 'ended'
      ? ['The session ended ', badge(session.outcome), session.reason ? ` (${session.reason}).` : '.']
      : [`The workflow went on: the session is ${session.status}`, session.step ? ` at step ${session.step}.` : '.'];
    item.classList.add('review-decided');
    item.replaceChildren(h,
      el('p', { role: 'status' }, `Decided ${decision}. `, ...outcome),
      el('a', { href: `/console/sessions/${encodeURIComponent(r.session_id)}` }, 'Open the session detail'));
    h.focus();
    toast(`Decided ${decision}: ${r.reference || r.session_id}.`);
  }

  await load(true);
}
