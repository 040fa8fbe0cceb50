// Searching (#search): the query image chosen by file, drop, paste, address or "More like
// this", its preview and caption, the search options (filter, how many, model), the search
// request itself, and the page's address, which names the search (Back, bookmarks, links).
// An uploaded query image is kept by the server for an hour (POST /v1/queries), and the address
// names it by that id. The region box is region.js; the answer is drawn by results.js.

import { api, authHeaders, checkFile, collectionPath, loadImage } from './api.js';
import { $, h, BlobGroup, renewed } from './dom.js';
import { parseFilter } from './filter.js';
import { clamp, enc, formatBytes, short, withSize } from './format.js';
import { isAbort, notify, showError } from './notice.js';
import { regionAllowed, regionParam, renderRegion, roundRegion, updateRegionTools } from './region.js';
import { renderResults, resetResults } from './results.js';
import { state } from './state.js';

let searchAbort = null;            // AbortController of the running search
let queryBlobs = new BlobGroup();  // the query's preview (an uploaded file, or a thumbnail fetched with the key)

// ---- The query ----

/** Searches with an image file (chosen, dropped or pasted), unless the server would refuse it. */
export function searchFile(file) {
  try { checkFile(file); } catch (e) { notify(e.message); return; }
  setQuery({ kind: 'file', file });
}

/** Searches with the image at an http(s) address, which the server fetches. */
export function searchUrl(url) {
  try {
    const parsed = new URL(url);
    if (!/^https?:$/.test(parsed.protocol)) throw new Error();
  } catch {
    notify('Give the full address of an image, starting with http:// or https://.');
    $('#url-input').focus();
    return;
  }
  setQuery({ kind: 'url', url });
}

const reduceMotion = () => matchMedia('(prefers-reduced-motion: reduce)').matches;

/** Searches in words, with the server's model made of words (unless another is chosen). */
export function searchText(text) {
  if (!text.trim()) { notify('Type some words to search with.'); $('#text-input').focus(); return; }
  setQuery({ kind: 'text', text });
}

/**
 * Drops an understood part of the words (a chip's ×): its phrase comes out of the words it was
 * read from, and the search runs again without it.
 */
export function dropPhrase(phrase) {
  const { query } = state;
  if (!query) return;
  const without = (text) => {
    const at = text.toLowerCase().indexOf(phrase.toLowerCase());
    return at < 0 ? text : `${text.slice(0, at)} ${text.slice(at + phrase.length)}`.replace(/\s+/g, ' ').replace(/^[\s,]+|[\s,]+$/g, '');
  };
  if (query.kind === 'text') {
    const text = without(query.text);
    $('#text-input').value = text;
    if (!text) { notify('Nothing is left of the words: type some to search with.'); return; }
    setQuery({ kind: 'text', text });
  } else {
    $('#narrow-input').value = without($('#narrow-input').value);
    runSearch();
  }
}

/** Searches with an item of the collection (a hit) and scrolls up to the query. */
export function moreLikeThis(hit) {
  setQuery({ kind: 'id', id: hit.id, thumbnail: hit.thumbnail, name: hit.name });
  $('#search').scrollIntoView({ behavior: reduceMotion() ? 'auto' : 'smooth', block: 'start' });
}

function setQuery(query) {
  state.query = query;
  state.region = null;
  showQuery();
  runSearch({ fresh: true });
}

/** Back to no query: the preview hidden, a running search stopped, no results. */
export function clearQuery() {
  state.query = null;
  state.region = null;
  searchAbort?.abort();
  $('#query').hidden = true;
  $('#region-tools').hidden = true;
  $('#search-again').disabled = true;
  resetResults();
  $('#results').replaceChildren();
  $('#results').setAttribute('aria-busy', 'false');
  $('#status').textContent = 'Choose, drop or paste an image to find the ones that look like it.';
}

/** Shows the query image, sized to its own aspect ratio so that fractions of the box are fractions of the image. */
function showQuery() {
  const { query } = state;
  const img = $('#qimg');
  const frame = $('#qframe');
  queryBlobs = renewed(queryBlobs);
  frame.style.removeProperty('--ratio');
  img.removeAttribute('src');
  img.classList.remove('broken');
  $('#query').hidden = false;
  $('#search-again').disabled = false;
  updateRegionTools();

  let caption;
  $('#qframe').hidden = query.kind === 'text';
  $('#narrow-field').hidden = query.kind === 'text'; // words read their own colours and prices
  if (query.kind === 'text') {
    caption = `Images described by “${short(query.text, 120)}”`;
  } else if (query.kind === 'file') {
    img.src = queryBlobs.add(query.file);
    caption = `${query.file.name || 'Pasted image'} · ${formatBytes(query.file.size)}`;
  } else if (query.kind === 'url') {
    img.referrerPolicy = 'no-referrer';
    img.src = query.url;
    caption = short(query.url, 80);
  } else {
    loadImage(img, withSize(query.thumbnail, 512), queryBlobs);
    caption = `More like ${query.name || `item ${query.id}`}`;
  }
  img.alt = `The query image: ${caption}`;
  $('#qcaption').textContent = caption;
  renderRegion();
}

function onQueryImageLoad() {
  const img = $('#qimg');
  if (img.naturalWidth && img.naturalHeight) $('#qframe').style.setProperty('--ratio', img.naturalWidth / img.naturalHeight);
}

function onQueryImageError() {
  const img = $('#qimg');
  if (!state.query || img.classList.contains('broken')) return;
  img.classList.add('broken');
  state.query.noPreview = true; // no region can be drawn on a picture that is not there
  updateRegionTools();
  $('#qcaption').textContent += ' · no preview (the search still works)';
}

// ---- The options ----

/** The model the chosen collection searches with when none is named (its own default, else the server's). */
export const defaultModel = () =>
  state.collections?.find((c) => c.name === state.collection)?.default_model ?? state.server?.default_model;

let shownDefault = null; // the default model the chooser last showed

/** Offers the server's models, and the chosen collection's tuned ones, to choose from when
 *  there is more than one; a choice other than the default is kept while on offer, and a chooser
 *  left on the default follows the collection's default. */
export function showModels(info) {
  if (!info) return;
  const models = $('#model-select');
  const chosen = models.value;
  const fallback = defaultModel();
  const tuned = state.collections?.find((c) => c.name === state.collection)?.tuned_models ?? [];
  const options = info.models.map((m) => h('option', { value: m.name, title: m.description }, `${m.name} (${m.dimension})`))
    .concat(tuned.map((m) => h('option', { value: m.name, title: `${m.base} tuned on ${m.labels ?? 'labels'}` },
      `${m.name} (${m.dimension}, tuned)`)));
  models.replaceChildren(...options);
  models.value = chosen && chosen !== shownDefault && options.some((o) => o.value === chosen) ? chosen : fallback;
  shownDefault = fallback;
  $('#model-field').hidden = options.length < 2;
}

function readTop() {
  const input = $('#top-input');
  const top = clamp(Math.round(Number(input.value)) || 24, 1, 1000);
  input.value = top;
  return top;
}

function setFilterError(message) {
  $('#filter-error').textContent = message;
  $('#filter-input').setAttribute('aria-invalid', message ? 'true' : 'false');
}

// ---- The search ----

/**
 * Searches with the current query, filter, top, model and region. `fresh`: a new query (the
 * address gets a new history entry, and a phone scrolls to the results); `fromAddress`: the
 * search the address names (Back, a bookmark), which writes no new history entry.
 */
export async function runSearch({ fresh = false, fromAddress = false } = {}) {
  const { query } = state;
  if (!query) return;
  let filter;
  try {
    filter = parseFilter($('#filter-input').value);
    setFilterError('');
  } catch (e) {
    setFilterError(e.message);
    $('#status').textContent = 'Fix the filter to search.';
    return;
  }
  const top = readTop();
  const region = regionAllowed() ? state.region : null;
  // Words beside an image narrow it (colours, prices, order); a query in words reads its own.
  const narrow = query.kind === 'text' ? '' : $('#narrow-input').value.trim();
  // Words are searched with the model made of words; images with the chosen model.
  const model = query.kind === 'text' ? null : ($('#model-field').hidden ? null : $('#model-select').value);
  const path = `${collectionPath()}/search`;

  searchAbort?.abort();
  const controller = (searchAbort = new AbortController());
  const { signal } = controller;
  const results = $('#results');
  results.setAttribute('aria-busy', 'true');
  $('#status').textContent = region ? 'Searching the region…' : 'Searching…';
  $('#status').classList.add('busy');

  // Copies can be grouped only by a model that knows when two images are copies.
  const chosen = query.kind === 'text' ? 'words' : model || defaultModel(); // the server searches words with `words`
  const collapse = $('#collapse-input').checked
    && state.server?.models?.find((m) => m.name === chosen)?.duplicate_threshold != null;
  const diversity = $('#diversity-input').checked ? 0.7 : null;
  // An uploaded image is kept by the server first, so that the search has an address; a kept
  // image the server has since let go is kept again (the file is still here).
  const request = async () => {
    if (query.kind === 'file' && !query.kept) query.kept = (await api('/v1/queries', { method: 'POST', body: query.file, type: query.file.type, signal })).id;
    const body = query.kind === 'url' ? { url: query.url, top } : query.kind === 'file' ? { query: query.kept, top }
      : query.kind === 'text' ? { text: query.text, top } : { id: query.id, top };
    if (filter) body.filter = filter;
    if (narrow) body.text = narrow;
    if (region) body.region = roundRegion(region);
    if (model) body.model = model;
    if (collapse) body.collapse = true;
    if (diversity) body.diversity = diversity;
    return api(path, { method: 'POST', json: body, signal });
  };

  try {
    let answer;
    try {
      answer = await request();
    } catch (e) {
      if (e.code !== 'query_expired' || query.kind !== 'file') throw e;
      query.kept = null;
      answer = await request();
    }
    state.lastSearchHadRegion = Boolean(region);
    state.lastSearchFailed = false;
    notify(''); // a notice of an earlier action is not about this answer
    renderResults(answer, { filter, region, top });
    writeAddress({ push: fresh && !fromAddress, filterText: $('#filter-input').value.trim(), top, region, model, diversity, narrow });
    if (fresh) bringResultsIntoView();
  } catch (e) {
    if (isAbort(e)) return;
    state.lastSearchFailed = true;
    if (e.code === 'bad_filter') setFilterError(e.message);
    resetResults();
    results.replaceChildren(h('p', { class: 'empty' }, 'No results: the search failed.'));
    $('#status').textContent = `Search failed: ${e.message}`;
    showError(e);
  } finally {
    if (searchAbort === controller) {
      searchAbort = null;
      results.setAttribute('aria-busy', 'false');
      $('#status').classList.remove('busy');
    }
  }
}

/** Searches again asking for `top` hits ("Show more"). */
export function searchWithTop(top) {
  $('#top-input').value = top;
  runSearch();
}

/** On a narrow screen the results are below the query: a new query's answer is brought into view. */
function bringResultsIntoView() {
  const status = $('#status');
  const { top } = status.getBoundingClientRect();
  if (top > window.innerHeight * 0.6 || top < 0) status.scrollIntoView({ behavior: reduceMotion() ? 'auto' : 'smooth', block: 'start' });
}

// ---- The address ----

const DEFAULT_TOP = 24;

/** Puts the shown search in the page's address: a new history entry for a new query. */
function writeAddress({ push, filterText, top, region, model, diversity, narrow }) {
  const { query } = state;
  const params = new URLSearchParams();
  if (state.collection !== 'default') params.set('collection', state.collection);
  if (query.kind === 'id') params.set('item', query.id);
  else if (query.kind === 'text') params.set('text', query.text);
  else if (query.kind === 'url') params.set('url', query.url);
  else if (query.kept) params.set('query', query.kept);
  else return;
  if (filterText) params.set('filter', filterText);
  if (narrow) params.set('words', narrow);
  if (region) params.set('region', regionParam(region));
  if (model && model !== defaultModel()) params.set('model', model);
  if (top !== DEFAULT_TOP) params.set('top', String(top));
  if (!$('#collapse-input').checked) params.set('collapse', '0');
  if (diversity) params.set('vary', '1');
  const address = `${location.pathname}?${params}`;
  if (address === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, '', address); else history.replaceState(null, '', address);
}

/**
 * Searches as the page's address says (on load, Back and Forward): the collection, the query
 * (a stored item, an image address, or a kept upload), the filter, region, model and options.
 * Returns false when the address names no search.
 */
export async function searchFromAddress({ chooseCollection }) {
  const params = new URLSearchParams(location.search);
  const [item, url, kept, text] = [params.get('item'), params.get('url'), params.get('query'), params.get('text')];
  if (!item && !url && !kept && !text) {
    if (state.query) clearQuery();
    return false;
  }
  const collection = params.get('collection') || 'default';
  if (collection !== state.collection && state.collections.some((c) => c.name === collection)) chooseCollection(collection, { search: false });
  $('#filter-input').value = params.get('filter') || '';
  $('#narrow-input').value = params.get('words') || '';
  $('#top-input').value = clamp(Math.round(Number(params.get('top'))) || DEFAULT_TOP, 1, 1000);
  const model = params.get('model');
  if (model && [...$('#model-select').options].some((o) => o.value === model)) $('#model-select').value = model;
  else $('#model-select').value = defaultModel() ?? '';
  $('#collapse-input').checked = params.get('collapse') !== '0';
  $('#diversity-input').checked = params.get('vary') === '1';
  let query;
  if (text) {
    query = { kind: 'text', text };
    $('#text-input').value = text;
  } else if (item) {
    query = { kind: 'id', id: item, thumbnail: `${collectionPath()}/items/${enc(item)}/thumbnail` };
  } else if (url) {
    query = { kind: 'url', url };
    $('#url-input').value = url;
  } else {
    // The kept upload comes back as a file, so it can be previewed, framed and marked as before.
    try {
      const response = await fetch(`/v1/queries/${enc(kept)}/image`, { headers: authHeaders() });
      if (!response.ok) throw new Error(String(response.status));
      const blob = await response.blob();
      query = { kind: 'file', file: new File([blob], 'Image from this address', { type: blob.type }), kept };
    } catch {
      clearQuery();
      notify('The image of this search is no longer kept by the server (uploads are kept for an hour): choose it again.');
      return true;
    }
  }
  const [x, y, width, height] = (params.get('region') || '').split(',').map(Number);
  state.query = query;
  state.region = [x, y, width, height].every((v) => Number.isFinite(v)) && width > 0 && height > 0 ? { x, y, width, height } : null;
  showQuery();
  runSearch({ fromAddress: true });
  return true;
}

/** Binds the file chooser, the address form, the options form and the query preview. */
export function bindSearch() {
  $('#file-input').addEventListener('change', (e) => {
    const [file] = e.target.files;
    if (file) searchFile(file);
    e.target.value = ''; // choosing the same file again searches again
  });
  $('#url-form').addEventListener('submit', (e) => { e.preventDefault(); searchUrl($('#url-input').value.trim()); });
  $('#text-form').addEventListener('submit', (e) => { e.preventDefault(); searchText($('#text-input').value); });
  $('#options-form').addEventListener('submit', (e) => { e.preventDefault(); if (state.query) runSearch(); });
  $('#filter-input').addEventListener('input', () => setFilterError(''));
  $('#collapse-input').addEventListener('change', () => { if (state.query) runSearch(); });
  $('#diversity-input').addEventListener('change', () => { if (state.query) runSearch(); });
  $('#apply-marks').addEventListener('click', () => { if (state.query) runSearch(); });
  $('#qimg').addEventListener('load', onQueryImageLoad);
  $('#qimg').addEventListener('error', onQueryImageError);
}
