// The results of a search (#status, #results): the grid of hits with their scores, names,
// metadata and "More like this" buttons, and the lightbox (#lightbox) showing a hit's original.

import { loadImage } from './api.js';
import { $, h, BlobGroup, renewed } from './dom.js';
import { markButtons, noteClick } from './feedback.js';
import { metadataEntries, plural, short, valueText } from './format.js';
import { state } from './state.js';

let thumbBlobs = new BlobGroup();    // the shown hits' thumbnails, when fetched with the key
let lightboxBlobs = new BlobGroup(); // the original in the lightbox, likewise

// Starts a search like a hit: the search view's, handed over by bindResults.
let moreLike = () => {};
// The model of the shown answer, which marks on its hits are for.
let shownModel = null;

// Result thumbnails fetched with a key are loaded when they come near the viewport.
const lazyThumbs = 'IntersectionObserver' in window
  ? new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      lazyThumbs.unobserve(entry.target);
      loadImage(entry.target, entry.target.dataset.src, thumbBlobs);
    }
  }, { rootMargin: '300px' })
  : null;

/** Forgets the shown results' images before new ones are drawn. */
export function resetResults() {
  thumbBlobs = renewed(thumbBlobs);
  lazyThumbs?.disconnect();
}

/** Shows a search's answer: a status line and the hits, or why there are none. */
export function renderResults(answer, { filter, region }) {
  const { hits, searched, took_ms: took, model } = answer;
  resetResults();
  $('#marks-bar').hidden = true;
  const status = $('#status');
  status.textContent = `${plural(hits.length, 'hit')} from ${plural(searched, 'image')} in ${Math.round(took)} ms`
    + (region ? ' · region' : '') + (filter ? ' · filtered' : '');
  status.title = `Model ${model}`;

  const results = $('#results');
  if (!hits.length) {
    let why = 'Nothing in this collection looks like the query.';
    if (searched === 0) why = `The collection “${state.collection}” has no indexed images yet. Add some below.`;
    else if (filter) why = 'No image matches the filter. Loosen or clear it and search again.';
    results.replaceChildren(h('div', { class: 'empty' }, h('p', { text: why }),
      searched === 0 ? h('a', { href: '#add', class: 'btn' }, 'Add images') : null));
    return;
  }
  // The divide: hits the model calls weak (about what unrelated images score) come after the
  // close ones, dimmed; when every hit is weak the answer says "no close match" first.
  const close = hits.filter((hit) => hit.label !== 'weak');
  const weak = hits.filter((hit) => hit.label === 'weak');
  const parts = [];
  shownModel = model;
  if (close.length) parts.push(h('ol', { class: 'grid' }, close.map((hit, i) => hitCard(hit, i))));
  if (weak.length) {
    parts.push(h('p', { class: 'divide', role: 'note' }, answer.match === 'none'
      ? 'No close match: nothing in this collection looks much like the query. The nearest images anyway:'
      : 'Weaker matches: these score about what unrelated images do.'));
    parts.push(h('ol', { class: 'grid weak' }, weak.map((hit, i) => hitCard(hit, close.length + i))));
  }
  if (answer.match === 'none') status.textContent += ' · no close match';
  results.replaceChildren(...parts);
}

function hitCard(hit, index) {
  const score = hit.score.toFixed(3);
  const img = h('img', { alt: `Result ${index + 1}, score ${score}`, width: 256, height: 256, decoding: 'async' });
  img.addEventListener('error', () => img.classList.add('broken'));
  if (state.needsReadKey && lazyThumbs) { img.dataset.src = hit.thumbnail; lazyThumbs.observe(img); }
  else if (state.needsReadKey) loadImage(img, hit.thumbnail, thumbBlobs);
  else { img.loading = 'lazy'; img.src = hit.thumbnail; }

  const entries = metadataEntries(hit.metadata);
  const isQuery = state.query?.kind === 'id' && state.query.id === hit.id;
  const title = [hit.name, `${hit.width}×${hit.height}`, ...entries.map(([k, v]) => `${k}: ${valueText(v)}`)].filter(Boolean).join('\n');
  return h('li', { class: 'hit', 'data-id': hit.id, title },
    h('button', { type: 'button', class: 'thumb', onclick: () => openLightbox(hit, index) }, img),
    h('div', { class: 'info' },
      h('span', { class: 'score', title: 'Similarity to the query (1 is identical)', text: score }),
      hit.duplicate ? h('span', { class: 'badge', title: 'A copy of the query image', text: 'copy' }) : null,
      hit.copies?.length ? h('button', { type: 'button', class: 'badge quiet copies',
        title: 'Copies of this image folded into it: show them (turns off Group copies)',
        onclick: () => showCopies(hit), text: `+${plural(hit.copies.length, 'copy', 'copies')}` }) : null,
      isQuery ? h('span', { class: 'badge quiet', text: 'query' }) : null,
      hit.name ? h('span', { class: 'name', text: hit.name }) : null),
    entries.length ? h('ul', { class: 'chips', 'aria-label': 'Metadata' },
      entries.slice(0, 3).map(([k, v]) => h('li', { class: 'chip', text: short(`${k}: ${valueText(v)}`, 28) })),
      entries.length > 3 ? h('li', { class: 'hint', text: `+${entries.length - 3}` }) : null) : null,
    h('div', { class: 'actions' },
      markButtons(hit, shownModel, h),
      h('button', { type: 'button', class: 'more', onclick: () => moreLike(hit) }, 'More like this')));
}

/** Shows the copies folded into a hit: the search like that hit, copies no longer grouped. */
function showCopies(hit) {
  $('#collapse-input').checked = false;
  moreLike(hit);
}

// ---- The lightbox ----

function openLightbox(hit, index) {
  noteClick(hit, shownModel);
  const dialog = $('#lightbox');
  if (typeof dialog.showModal !== 'function') { window.open(hit.image, '_blank', 'noopener'); return; }
  const img = $('#lb-img');
  const caption = $('#lb-caption');
  img.removeAttribute('src');
  img.hidden = false;
  img.alt = `Result ${index + 1}${hit.name ? `, ${hit.name}` : ''}, score ${hit.score.toFixed(3)}`;
  img.onerror = () => { img.hidden = true; caption.textContent = 'The original image is not available (it may have moved on the server).'; };
  lightboxBlobs = renewed(lightboxBlobs);
  loadImage(img, hit.image, lightboxBlobs);
  const details = metadataEntries(hit.metadata).map(([k, v]) => `${k}: ${valueText(v)}`);
  caption.textContent = [hit.name, `${hit.width} × ${hit.height}`, `score ${hit.score.toFixed(3)}`, hit.duplicate ? 'copy' : '', ...details]
    .filter(Boolean).join(' · ');
  $('#lb-open').href = hit.image;
  $('#lb-open').hidden = state.needsReadKey;
  $('#lb-more').onclick = () => { dialog.close(); moreLike(hit); };
  dialog.showModal();
}

/** Binds the lightbox; `moreLikeThis(hit)` searches for images like a hit. */
export function bindResults({ moreLikeThis }) {
  moreLike = moreLikeThis;
  const dialog = $('#lightbox');
  dialog.addEventListener('click', (e) => { if (e.target === dialog) dialog.close(); }); // the backdrop
  dialog.addEventListener('close', () => { lightboxBlobs = renewed(lightboxBlobs); $('#lb-img').removeAttribute('src'); });
}
