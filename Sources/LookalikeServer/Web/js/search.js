// Searching (#search): the query image chosen by file, drop, paste, address or "More like
// this", its preview and caption, the search options (filter, how many, model), and the
// search request itself. The region box is region.js; the answer is drawn by results.js.

import { api, checkFile, collectionPath, loadImage } from './api.js';
import { $, h, BlobGroup, renewed } from './dom.js';
import { parseFilter } from './filter.js';
import { clamp, formatBytes, short, withSize } from './format.js';
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

/** Searches with an item of the collection (a hit) and scrolls up to the query. */
export function moreLikeThis(hit) {
  setQuery({ kind: 'id', id: hit.id, thumbnail: hit.thumbnail, name: hit.name });
  const reduce = matchMedia('(prefers-reduced-motion: reduce)').matches;
  $('#search').scrollIntoView({ behavior: reduce ? 'auto' : 'smooth', block: 'start' });
}

function setQuery(query) {
  state.query = query;
  state.region = null;
  showQuery();
  runSearch();
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
  if (query.kind === 'file') {
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

/** Offers the server's models to choose from when it has more than one. */
export function showModels(info) {
  const models = $('#model-select');
  models.replaceChildren(...info.models.map((m) => h('option', { value: m.name, title: m.description }, `${m.name} (${m.dimension})`)));
  models.value = info.default_model;
  $('#model-field').hidden = info.models.length < 2;
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

/** Searches with the current query, filter, top, model and region. */
export async function runSearch() {
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
  const model = $('#model-field').hidden ? null : $('#model-select').value;
  const path = `${collectionPath()}/search`;

  searchAbort?.abort();
  const controller = (searchAbort = new AbortController());
  const { signal } = controller;
  const results = $('#results');
  results.setAttribute('aria-busy', 'true');
  $('#status').textContent = region ? 'Searching the region…' : 'Searching…';
  $('#status').classList.add('busy');

  // Copies can be grouped only by a model that knows when two images are copies.
  const chosen = model || state.server?.default_model;
  const collapse = $('#collapse-input').checked
    && state.server?.models?.find((m) => m.name === chosen)?.duplicate_threshold != null;
  const diversity = $('#diversity-input').checked ? 0.7 : null;
  let request;
  if (query.kind === 'file') {
    const params = new URLSearchParams({ top });
    if (filter) params.set('filter', JSON.stringify(filter));
    if (region) params.set('region', regionParam(region));
    if (model) params.set('model', model);
    if (collapse) params.set('collapse', 'true');
    if (diversity) params.set('diversity', String(diversity));
    request = api(`${path}?${params}`, { method: 'POST', body: query.file, type: query.file.type || 'application/octet-stream', signal });
  } else {
    const body = query.kind === 'url' ? { url: query.url, top } : { id: query.id, top };
    if (filter) body.filter = filter;
    if (region) body.region = roundRegion(region);
    if (model) body.model = model;
    if (collapse) body.collapse = true;
    if (diversity) body.diversity = diversity;
    request = api(path, { method: 'POST', json: body, signal });
  }

  try {
    const answer = await request;
    state.lastSearchHadRegion = Boolean(region);
    renderResults(answer, { filter, region });
  } catch (e) {
    if (isAbort(e)) return;
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

/** Binds the file chooser, the address form, the options form and the query preview. */
export function bindSearch() {
  $('#file-input').addEventListener('change', (e) => {
    const [file] = e.target.files;
    if (file) searchFile(file);
    e.target.value = ''; // choosing the same file again searches again
  });
  $('#url-form').addEventListener('submit', (e) => { e.preventDefault(); searchUrl($('#url-input').value.trim()); });
  $('#options-form').addEventListener('submit', (e) => { e.preventDefault(); if (state.query) runSearch(); });
  $('#filter-input').addEventListener('input', () => setFilterError(''));
  $('#collapse-input').addEventListener('change', () => { if (state.query) runSearch(); });
  $('#diversity-input').addEventListener('change', () => { if (state.query) runSearch(); });
  $('#apply-marks').addEventListener('click', () => { if (state.query) runSearch(); });
  $('#qimg').addEventListener('load', onQueryImageLoad);
  $('#qimg').addEventListener('error', onQueryImageError);
}
