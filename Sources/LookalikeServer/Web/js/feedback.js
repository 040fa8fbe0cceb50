// Feedback on a search's hits (a thumbs up or down, and opening a hit), sent to the server with
// the search's query, so later searches near the same query use it (POST .../feedback).

import { api, collectionPath } from './api.js';
import { $ } from './dom.js';
import { showError } from './notice.js';
import { state } from './state.js';

/** Whether the shown search can take marks: one by a stored item or an uploaded file, whole. */
export const canMark = () => !state.lastSearchHadRegion && (state.query?.kind === 'id' || state.query?.kind === 'file');

/** Sends one mark (relevant, not_relevant or click) for a hit of the current search by `model`. */
export async function sendMark(hit, mark, model) {
  const query = state.query;
  const marks = { marks: [{ id: hit.id, mark }], ...(model ? { model } : {}) };
  const path = `${collectionPath()}/feedback`;
  if (query.kind === 'id') return api(path, { method: 'POST', json: { id: query.id, ...marks } });
  const form = new FormData();
  form.append('image', query.file);
  form.append('feedback', new Blob([JSON.stringify(marks)], { type: 'application/json' }));
  return api(path, { method: 'POST', body: form });
}

/** The thumbs of a hit card: pressed once, they say so; a failure is shown and undone. */
export function markButtons(hit, model, h) {
  if (!canMark()) return null;
  const button = (mark, text, label) => {
    const node = h('button', { type: 'button', class: 'mark', 'aria-label': label, title: label, 'aria-pressed': 'false', text });
    node.addEventListener('click', async () => {
      for (const other of node.parentElement.querySelectorAll('.mark')) other.disabled = true;
      node.setAttribute('aria-pressed', 'true');
      try {
        await sendMark(hit, mark, model);
        $('#marks-bar').hidden = false;
      } catch (e) {
        node.setAttribute('aria-pressed', 'false');
        for (const other of node.parentElement.querySelectorAll('.mark')) other.disabled = false;
        showError(e);
      }
    });
    return node;
  };
  return h('div', { class: 'marks', role: 'group', 'aria-label': 'Was this a good answer?' },
    button('relevant', '👍', 'A good answer: show more like it for this query'),
    button('not_relevant', '👎', 'Not a good answer: show it less for this query'));
}

/** Notes that a hit was opened (weak evidence it is relevant); failures stay silent. */
export function noteClick(hit, model) {
  if (canMark()) sendMark(hit, 'click', model).catch(() => {});
}
