// Feedback on a search's hits (marked good or not, and opening a hit), sent to the server with
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

// A check mark and a cross, drawn (an emoji may have no font to show it).
const ICONS = { relevant: ['M5 12.5l4.5 4.5L19 7.5'], not_relevant: ['M6.5 6.5l11 11', 'M17.5 6.5l-11 11'] };

function icon(mark) {
  const svgNS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  for (const d of ICONS[mark]) {
    const path = document.createElementNS(svgNS, 'path');
    path.setAttribute('d', d);
    path.setAttribute('fill', 'none');
    path.setAttribute('stroke', 'currentColor');
    path.setAttribute('stroke-width', '2.2');
    path.setAttribute('stroke-linecap', 'round');
    svg.append(path);
  }
  return svg;
}

/** The marks of a hit card: pressed once, they say so; a failure is shown and undone. */
export function markButtons(hit, model, h) {
  if (!canMark()) return null;
  const button = (mark, label) => {
    const node = h('button', { type: 'button', class: `mark ${mark}`, 'aria-label': label, title: label, 'aria-pressed': 'false' },
      icon(mark));
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
    button('relevant', 'A good answer: show more like it for this query'),
    button('not_relevant', 'Not a good answer: show it less for this query'));
}

/** Notes that a hit was opened (weak evidence it is relevant); failures stay silent. */
export function noteClick(hit, model) {
  if (canMark()) sendMark(hit, 'click', model).catch(() => {});
}
