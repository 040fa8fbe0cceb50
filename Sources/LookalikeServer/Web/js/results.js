// The results of a search (#status, #results): the grid of hits with their scores, names,
// metadata and "More like this" buttons, "Show more", and the lightbox (#lightbox) showing a
// hit's original, with Previous and Next and removing the item.

import { api, collectionPath, loadImage } from './api.js';
import { $, h, BlobGroup, renewed } from './dom.js';
import { markButtons, noteClick } from './feedback.js';
import { enc, metadataEntries, plural, short, valueText } from './format.js';
import { notify, showError } from './notice.js';
import { state } from './state.js';

let thumbBlobs = new BlobGroup();    // the shown hits' thumbnails, when fetched with the key
let lightboxBlobs = new BlobGroup(); // the original in the lightbox, likewise

// Starts a search like a hit: the search view's, handed over by bindResults.
let moreLike = () => {};
// The model of the shown answer, which marks on its hits are for.
let shownModel = null;
// The shown hits, in order, and the one the lightbox shows (Previous and Next step through them).
let shownHits = [];
let lightboxIndex = -1;

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
export function renderResults(answer, { filter, region, top }) {
  const { hits, searched, took_ms: took, model, filtered, notes = [] } = answer;
  resetResults();
  $('#marks-bar').hidden = true;
  const status = $('#status');
  status.textContent = `${plural(hits.length, 'hit')} from ${plural(searched, 'image')}`
    + (filtered != null ? `, ${filtered.toLocaleString()} passing the filter` : '')
    + ` in ${Math.round(took)} ms` + (region ? ' · region' : '');
  status.title = `Model ${model}`;
  shownHits = hits;
  showUnderstood(answer.parsed);

  const results = $('#results');
  if (!hits.length) {
    // The server says why when it knows (no vectors of this model, a field no item has, ...).
    const reasons = notes.map((note) => h('p', { class: 'note', 'data-code': note.code, text: sentence(note.message) }));
    if (!reasons.length) {
      reasons.push(h('p', { text: filter ? 'No image matches the filter. Loosen or clear it and search again.'
        : 'Nothing in this collection looks like the query.' }));
    }
    const needsImages = notes.some((note) => note.code === 'empty_collection' || note.code === 'no_vectors_for_model');
    results.replaceChildren(h('div', { class: 'empty' }, reasons,
      needsImages ? h('a', { href: '#add', class: 'btn' }, 'Add images') : null));
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
  // As many hits as asked for: there may be more; "Show more" asks for the next page's worth.
  if (top && hits.length >= top && top < 1000) {
    parts.push(h('p', { class: 'more-row' }, h('button', { type: 'button', id: 'show-more', onclick: () => showMore(top) },
      `Show more (${Math.min(1000, top + PAGE)})`)));
  }
  results.replaceChildren(...parts);
}

// Drops a phrase of the words and searches again: the search view's, handed over by bindResults.
let dropPhrase = () => {};

/** How the server read the words: a chip per understood part (× drops it), and the words left. */
function showUnderstood(parsed) {
  const box = $('#understood');
  const parts = parsed?.parts ?? [];
  box.hidden = !parts.length;
  if (!parts.length) { box.replaceChildren(); return; }
  box.replaceChildren(...[
    h('span', { class: 'hint', text: 'Understood:' }),
    h('ul', { class: 'chips', 'aria-label': 'How the words were read' }, parts.map((part) => h('li', { class: `chip part ${part.kind}`, 'data-kind': part.kind },
      part.kind === 'color' || part.kind === 'not_color' ? h('span', { class: `swatch swatch-${part.value}`, 'aria-hidden': 'true' }) : null,
      h('span', { text: part.label }),
      h('button', { type: 'button', class: 'drop', title: `Search without “${part.phrase}”`, 'aria-label': `Remove ${part.label}`,
        onclick: () => dropPhrase(part.phrase), text: '×' })))),
    parsed.text ? h('span', { class: 'hint', text: `words: “${short(parsed.text, 60)}”` }) : null,
    parsed.conflict ? h('p', { class: 'error', text: sentence(parsed.conflict) }) : null,
  ].filter(Boolean));
}

const PAGE = 24;
// Searches again asking for more hits: the search view's, handed over by bindResults.
let searchMore = () => {};
function showMore(top) {
  searchMore(Math.min(1000, top + PAGE));
}

/** A server message as a sentence: capitalised, with a full stop. */
const sentence = (text) => `${text[0].toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}`;

/** A region tile in words, as the CLI says it. */
function partName({ x, y, width, height }) {
  if (width === 0.5 && height === 0.5) {
    if (x === 0.25 && y === 0.25) return 'centre';
    if ((x === 0 || x === 0.5) && (y === 0 || y === 0.5)) return `${y ? 'bottom' : 'top'}-${x ? 'right' : 'left'} quarter`;
  }
  return 'part';
}

/**
 * The outline of the part that matched, over the thumbnail: the image is contained in a square,
 * so the part's fractions are placed inside the image's letterboxed rectangle. Positioned through
 * the CSSOM (the page's content security policy allows no style attributes).
 */
function partBox(hit) {
  const box = h('span', { class: 'part-box', 'aria-hidden': 'true' });
  const aspect = hit.width / hit.height;
  const [shownW, shownH] = aspect >= 1 ? [100, 100 / aspect] : [100 * aspect, 100];
  const [left, top] = [(100 - shownW) / 2, (100 - shownH) / 2];
  box.style.left = `${left + hit.part.x * shownW}%`;
  box.style.top = `${top + hit.part.y * shownH}%`;
  box.style.width = `${hit.part.width * shownW}%`;
  box.style.height = `${hit.part.height * shownH}%`;
  return box;
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
  const part = hit.part ? partBox(hit) : null;
  return h('li', { class: 'hit', 'data-id': hit.id, title },
    h('button', { type: 'button', class: 'thumb', onclick: () => openLightbox(hit, index) }, img, part),
    h('div', { class: 'info' },
      h('span', { class: 'score', title: 'Similarity to the query (1 is identical)', text: score }),
      hit.duplicate ? h('span', { class: 'badge', title: 'A copy of the query image', text: 'copy' }) : null,
      hit.part ? h('span', { class: 'badge quiet detail', title: `Found by a part of this image: its ${partName(hit.part)} (outlined)`,
        text: 'detail' }) : null,
      hit.query_part ? h('span', { class: 'badge quiet framed',
        title: 'Found by a crop of your image: the image was in a larger picture (a screenshot, a frame, padding)',
        text: 'in frame' }) : null,
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
  showInLightbox(index);
  if (!dialog.open) dialog.showModal();
}

/** Shows the hit at `index` of the shown ones in the lightbox. */
function showInLightbox(index) {
  const hit = shownHits[index];
  if (!hit) return;
  lightboxIndex = index;
  const img = $('#lb-img');
  const caption = $('#lb-caption');
  img.removeAttribute('src');
  img.hidden = false;
  img.alt = `Result ${index + 1}${hit.name ? `, ${hit.name}` : ''}, score ${hit.score.toFixed(3)}`;
  img.onerror = () => { img.hidden = true; caption.textContent = 'The original image is not available (it may have moved on the server).'; };
  lightboxBlobs = renewed(lightboxBlobs);
  loadImage(img, hit.image, lightboxBlobs);
  const details = metadataEntries(hit.metadata).map(([k, v]) => `${k}: ${valueText(v)}`);
  caption.textContent = [`${index + 1} of ${shownHits.length}`, hit.name, `${hit.width} × ${hit.height}`, `score ${hit.score.toFixed(3)}`,
    hit.duplicate ? 'copy' : '', ...details].filter(Boolean).join(' · ');
  $('#lb-open').href = hit.image;
  $('#lb-open').hidden = state.needsReadKey;
  $('#lb-prev').disabled = index === 0;
  $('#lb-next').disabled = index === shownHits.length - 1;
  $('#lb-more').onclick = () => { $('#lightbox').close(); moreLike(hit); };
  $('#lb-delete').onclick = () => deleteHit(hit);
}

function step(delta) {
  const next = lightboxIndex + delta;
  if (next < 0 || next >= shownHits.length) return;
  noteClick(shownHits[next], shownModel);
  showInLightbox(next);
}

/** Removes a hit's item from the collection, after asking (needs the admin key when one is set). */
async function deleteHit(hit) {
  const name = hit.name || `item ${hit.id}`;
  if (!confirm(`Remove “${name}” from the collection “${state.collection}”? Its image file stays where it is.`)) return;
  try {
    await api(`${collectionPath()}/items/${enc(hit.id)}`, { method: 'DELETE' });
  } catch (e) { showError(e); return; }
  const index = shownHits.indexOf(hit);
  shownHits = shownHits.filter((h) => h !== hit);
  document.querySelector(`#results .hit[data-id="${CSS.escape(hit.id)}"]`)?.remove();
  notify(`Removed “${name}”.`, 'info');
  if (!shownHits.length) { $('#lightbox').close(); return; }
  showInLightbox(Math.min(index, shownHits.length - 1));
}

/** Binds the lightbox; `moreLikeThis(hit)` searches for images like a hit, `searchWithTop(n)` asks for n hits. */
export function bindResults({ moreLikeThis, searchWithTop, dropPhrase: drop }) {
  moreLike = moreLikeThis;
  searchMore = searchWithTop;
  dropPhrase = drop;
  const dialog = $('#lightbox');
  dialog.addEventListener('click', (e) => { if (e.target === dialog) dialog.close(); }); // the backdrop
  dialog.addEventListener('close', () => { lightboxBlobs = renewed(lightboxBlobs); $('#lb-img').removeAttribute('src'); });
  dialog.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowLeft') { e.preventDefault(); step(-1); }
    if (e.key === 'ArrowRight') { e.preventDefault(); step(1); }
  });
  $('#lb-prev').addEventListener('click', () => step(-1));
  $('#lb-next').addEventListener('click', () => step(1));
}
