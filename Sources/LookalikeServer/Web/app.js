// Lookalike's web page: search by image, add images, follow indexing jobs.
// A plain ES module with no dependencies; it speaks the HTTP API described in openapi.yaml.

// ---- Pure helpers (no DOM): filter syntax, server-sent events, regions, formatting ----

const FILTER_OPS = { '=': '$eq', '==': '$eq', '!=': '$ne', '<': '$lt', '<=': '$lte', '>': '$gt', '>=': '$gte' };
// One condition: key, operator, then a "quoted string" or a bare word.
const CONDITION = /([^\s=!<>"]+)\s*(!=|==|<=|>=|=|<|>)\s*("(?:[^"\\]|\\.)*"|[^\s"]+)/y;
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** A bare word of the filter syntax as a value: number, boolean or string. */
function literal(raw) {
  if (raw.startsWith('"')) return raw.slice(1, -1).replace(/\\(.)/g, '$1');
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  return NUMBER.test(raw) ? Number(raw) : raw;
}

/**
 * Reads the filter box: a JSON object (text starting with `{`), or space-separated conditions
 * `key=value key!=value key<n key<=n key>n key>=n`. Returns the API's filter object, or null
 * when the text is empty. Throws an Error whose message is meant for people.
 *   parseFilter('color=red price<50 price>=10')
 *   → {color: 'red', price: {$lt: 50, $gte: 10}}
 */
function parseFilter(text) {
  const source = text.trim();
  if (!source) return null;
  if (source.startsWith('{')) {
    let value;
    try { value = JSON.parse(source); } catch (e) { throw new Error(`The filter is not valid JSON (${e.message}).`); }
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('A JSON filter must be an object.');
    return value;
  }
  const byKey = new Map(); // key → {operator: value}
  let at = 0;
  while (at < source.length) {
    while (/\s/.test(source[at])) at++;
    CONDITION.lastIndex = at;
    const match = CONDITION.exec(source);
    const end = CONDITION.lastIndex;
    if (!match || (end < source.length && !/\s/.test(source[end]))) {
      const near = source.slice(at).split(/\s/)[0];
      throw new Error(`Cannot read “${near}”: write conditions like color=red or price<50, separated by spaces.`);
    }
    const [, key, symbol, raw] = match;
    const op = FILTER_OPS[symbol];
    const ops = byKey.get(key) ?? {};
    if (op in ops) throw new Error(`“${key}” has two ${symbol} conditions${op === '$eq' ? '; for alternatives use a JSON filter with $in' : ''}.`);
    ops[op] = literal(raw);
    byKey.set(key, ops);
    at = end;
  }
  // Built from entries, so a key such as __proto__ stays an ordinary key.
  return Object.fromEntries([...byKey].map(([key, ops]) => {
    const names = Object.keys(ops);
    return [key, names.length === 1 && names[0] === '$eq' ? ops.$eq : ops];
  }));
}

/**
 * An incremental parser of a text/event-stream. Give it decoded text as it arrives; it calls
 * onEvent({event, data}) for each complete event (event defaults to "message"). Comments, `id`
 * and `retry` fields are ignored.
 */
function sseParser(onEvent) {
  let buffer = '';
  let event = '';
  let data = [];
  let pendingCR = false; // a chunk ended in \r: a \n starting the next one belongs to it
  return function push(text) {
    if (pendingCR && text.startsWith('\n')) text = text.slice(1);
    pendingCR = text.endsWith('\r');
    buffer += text;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop(); // the last piece is an unfinished line
    for (const line of lines) {
      if (line === '') {
        if (data.length) onEvent({ event: event || 'message', data: data.join('\n') });
        event = '';
        data = [];
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    }
  };
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const MIN_REGION = 0.02; // smaller boxes are taken as a click, not a region

/** The box spanned by two points, in fractions. */
function regionFromPoints(a, b) {
  return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), width: Math.abs(a.x - b.x), height: Math.abs(a.y - b.y) };
}

/** A region rounded to 4 decimals that stays inside the image. */
function roundRegion(r) {
  const round = (v) => Math.round(v * 1e4) / 1e4;
  const x = round(r.x), y = round(r.y);
  return { x, y, width: Math.min(round(r.width), round(1 - x)), height: Math.min(round(r.height), round(1 - y)) };
}

const regionParam = (r) => { const q = roundRegion(r); return [q.x, q.y, q.width, q.height].join(','); };
const percent = (v) => `${Math.round(v * 100)}%`;
const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? '' : 's'}`;

function formatBytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(n >= 10 << 20 ? 0 : 1)} MB`;
  return n >= 1024 ? `${Math.round(n / 1024)} kB` : `${n} bytes`;
}

/** Metadata as [dotted key, short text] pairs, nested objects flattened. */
function metadataEntries(metadata, prefix = '') {
  if (!metadata || typeof metadata !== 'object') return [];
  return Object.entries(metadata).flatMap(([k, v]) => {
    const key = prefix + k;
    if (v && typeof v === 'object' && !Array.isArray(v)) return metadataEntries(v, `${key}.`);
    return [[key, v]];
  });
}

const valueText = (v) => (Array.isArray(v) ? v.join(', ') : String(v));
const short = (s, n = 40) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const withSize = (url, size) => `${url}${url.includes('?') ? '&' : '?'}size=${size}`;
const enc = encodeURIComponent;

// ---- DOM helpers and page state ----

const $ = (selector) => document.querySelector(selector);

/** Creates an element: h('li', {class: 'hit', onclick: f}, child, 'text', …). */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : value);
  }
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

const store = {
  get: (k) => { try { return localStorage.getItem(k); } catch { return null; } },
  set: (k, v) => { try { if (v) localStorage.setItem(k, v); else localStorage.removeItem(k); } catch { /* private mode */ } },
};
const KEY_STORE = 'lookalike.key';
const COLLECTION_STORE = 'lookalike.collection';

const state = {
  key: store.get(KEY_STORE) || '',
  server: null,              // ServerInfo
  needsReadKey: false,       // images must then be fetched with the key, not by <img src>
  collections: [],
  collection: store.get(COLLECTION_STORE) || 'default',
  query: null,               // {kind: 'file', file} | {kind: 'url', url} | {kind: 'id', id, thumbnail, name}
  region: null,              // {x, y, width, height} in fractions of the upright image
  lastSearchHadRegion: false,
  searchAbort: null,         // AbortController of the running search
  jobAbort: null,            // AbortController of the job being followed
  uploading: false,
};

/** Object URLs made for one purpose, revoked together (late arrivals after close are revoked at once). */
class BlobGroup {
  urls = [];
  closed = false;
  add(blob) {
    const url = URL.createObjectURL(blob);
    if (this.closed) { URL.revokeObjectURL(url); return null; }
    this.urls.push(url);
    return url;
  }
  close() {
    this.closed = true;
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls = [];
  }
}
const blobs = { results: new BlobGroup(), query: new BlobGroup(), lightbox: new BlobGroup() };
function renewBlobs(name) { blobs[name].close(); return (blobs[name] = new BlobGroup()); }

/** Forgets the shown results' images before new ones are drawn. */
function resetResults() {
  renewBlobs('results');
  lazyThumbs?.disconnect();
}

// ---- Messages ----

let noticeTimer = 0;
/** Shows a message in the page's live notice area; information fades after a while, errors stay. */
function notify(message, kind = 'error') {
  const box = $('#notice');
  clearTimeout(noticeTimer);
  box.className = `notice ${kind}`;
  box.replaceChildren(message ? h('span', { text: message }) : '',
    message ? h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss message', onclick: () => notify('') }, '✕') : '');
  if (message && kind !== 'error') noticeTimer = setTimeout(() => notify(''), 6000);
}

const isAbort = (e) => e?.name === 'AbortError';
function showError(e) { if (!isAbort(e)) notify(e.message || String(e)); }

/** Opens the settings with the key field, explaining why. */
function askForKey(message) {
  $('#settings').open = true;
  $('#key-hint').textContent = `${message[0].toUpperCase()}${message.slice(1)}. Enter the key and press Save.`;
  $('#key-hint').classList.add('error');
  if (!document.activeElement?.matches('input, textarea, select')) $('#key-input').focus();
}

// ---- The API ----

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

const authHeaders = (extra = {}) => (state.key ? { ...extra, Authorization: `Bearer ${state.key}` } : extra);

/**
 * One API request. `json` is sent as JSON; `body` is sent raw with Content-Type `type`.
 * Resolves to the parsed JSON answer (null for 204); rejects with an ApiError carrying the
 * server's message, or the browser's AbortError.
 */
async function api(path, { method = 'GET', json, body, type, signal } = {}) {
  const headers = authHeaders({ Accept: 'application/json' });
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (body !== undefined) {
    headers['Content-Type'] = type || 'application/octet-stream';
  }
  let response, text;
  try {
    response = await fetch(path, { method, headers, body, signal });
    text = await response.text();
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new ApiError(0, 'network', 'Cannot reach the Lookalike server. Check the connection and try again.');
  }
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!response.ok) {
    const error = data?.error;
    const failure = new ApiError(response.status, error?.code || `http_${response.status}`,
      error?.message || `The server answered ${response.status} ${response.statusText}.`.replace(' .', '.'));
    if (response.status === 401) askForKey(failure.message);
    throw failure;
  }
  return data;
}

const collectionPath = (name = state.collection) => `/v1/collections/${enc(name)}`;

/** Shows an image of the server: plain src when no key is needed, else fetched with the key. */
async function loadImage(img, url, group) {
  if (!state.needsReadKey) { img.src = url; return; }
  try {
    const response = await fetch(url, { headers: authHeaders() });
    if (!response.ok) throw new Error(String(response.status));
    const src = group.add(await response.blob());
    if (src) img.src = src;
  } catch {
    img.dispatchEvent(new Event('error'));
  }
}

// Result thumbnails fetched with a key are loaded when they come near the viewport.
const lazyThumbs = 'IntersectionObserver' in window
  ? new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      lazyThumbs.unobserve(entry.target);
      loadImage(entry.target, entry.target.dataset.src, blobs.results);
    }
  }, { rootMargin: '300px' })
  : null;

// ---- Server information and collections ----

async function loadServer() {
  try {
    const info = await api('/v1/server');
    state.server = info;
    state.needsReadKey = info.auth.read_key_required;
    renderServer(info);
    await loadCollections();
    loadJobs(true);
  } catch (e) {
    if (e.status === 401) state.needsReadKey = true;
    showError(e);
  }
}

function renderServer(info) {
  const { auth, limits } = info;
  $('#key-hint').classList.remove('error');
  $('#key-hint').textContent = [
    auth.read_key_required ? 'This server needs a key to search.' : 'Searching needs no key.',
    auth.admin_key_required ? 'Adding or deleting needs the admin key.' : 'Changes need no key.',
    state.key ? 'A key is saved in this browser.' : '',
  ].filter(Boolean).join(' ');
  $('#server-info').textContent = `Version ${info.version} · model ${info.default_model} · uploads up to ${formatBytes(limits.max_body_bytes)}`;
  $('#foot').textContent = `Lookalike ${info.version}`;

  const models = $('#model-select');
  models.replaceChildren(...info.models.map((m) => h('option', { value: m.name, title: m.description }, `${m.name} (${m.dimension})`)));
  models.value = info.default_model;
  $('#model-field').hidden = info.models.length < 2;

  const roots = info.index_roots;
  $('#roots').replaceChildren(...roots.map((r) => h('option', { value: r })));
  if (!$('#folder-input').value && roots.length) $('#folder-input').value = roots[0];
  $('#roots-text').textContent = roots.length
    ? `Folders under ${roots.join(', ')} can be indexed.`
    : 'This server allows no folders to be indexed (it has no index roots).';
  $('#folder-index').disabled = !roots.length;
}

async function loadCollections() {
  const { collections } = await api('/v1/collections');
  state.collections = collections;
  if (!collections.some((c) => c.name === state.collection)) {
    state.collection = collections.find((c) => c.name === 'default')?.name ?? collections[0]?.name ?? 'default';
  }
  renderCollections();
}

function renderCollections() {
  const select = $('#collection-select');
  select.replaceChildren(...state.collections.map((c) => h('option', { value: c.name }, `${c.name} (${plural(c.items, 'image')})`)));
  select.value = state.collection;
  const current = state.collections.find((c) => c.name === state.collection);
  const remove = $('#delete-collection');
  remove.textContent = `Delete “${state.collection}”`;
  remove.disabled = !current?.deletable;
  remove.title = current?.deletable ? '' : 'This collection cannot be deleted.';
}

function chooseCollection(name) {
  state.collection = name;
  store.set(COLLECTION_STORE, name);
  renderCollections();
  if (state.query?.kind === 'id') clearQuery(); // an item id belongs to its collection
  else if (state.query) runSearch();
}

async function createCollection(event) {
  event.preventDefault();
  const input = $('#new-collection-input');
  const name = input.value.trim();
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name)) {
    notify('A collection name is 1 to 64 lowercase letters, digits, “-” or “_”, starting with a letter or digit.');
    input.focus();
    return;
  }
  try {
    await api('/v1/collections', { method: 'POST', json: { name } });
    input.value = '';
    state.collection = name;
    await loadCollections();
    chooseCollection(name);
    notify(`Collection “${name}” created.`, 'info');
  } catch (e) { showError(e); }
}

async function deleteCollection() {
  const current = state.collections.find((c) => c.name === state.collection);
  const name = state.collection;
  const count = current ? ` and its ${plural(current.items, 'image')}` : '';
  if (!confirm(`Delete the collection “${name}”${count}? This cannot be undone.`)) return;
  try {
    await api(collectionPath(name), { method: 'DELETE' });
    notify(`Collection “${name}” deleted.`, 'info');
    state.collection = 'default';
    await loadCollections();
    chooseCollection(state.collection);
  } catch (e) { showError(e); }
}

// ---- The query image and its region ----

// Regions are for uploaded and URL queries whose preview shows (the API takes none with an id).
const regionAllowed = () => state.query != null && state.query.kind !== 'id' && !state.query.noPreview;

function checkFile(file) {
  if (file.type && !file.type.startsWith('image/')) throw new Error(`“${file.name}” is not an image.`);
  const limit = state.server?.limits.max_body_bytes;
  if (limit && file.size > limit) throw new Error(`“${file.name}” is ${formatBytes(file.size)}; this server takes up to ${formatBytes(limit)}.`);
}

function searchFile(file) {
  try { checkFile(file); } catch (e) { notify(e.message); return; }
  setQuery({ kind: 'file', file });
}

function searchUrl(url) {
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

function moreLikeThis(hit) {
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

function clearQuery() {
  state.query = null;
  state.region = null;
  state.searchAbort?.abort();
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
  const group = renewBlobs('query');
  frame.style.removeProperty('--ratio');
  img.removeAttribute('src');
  img.classList.remove('broken');
  $('#query').hidden = false;
  $('#search-again').disabled = false;
  updateRegionTools();

  let caption;
  if (query.kind === 'file') {
    img.src = group.add(query.file);
    caption = `${query.file.name || 'Pasted image'} · ${formatBytes(query.file.size)}`;
  } else if (query.kind === 'url') {
    img.referrerPolicy = 'no-referrer';
    img.src = query.url;
    caption = short(query.url, 80);
  } else {
    loadImage(img, withSize(query.thumbnail, 512), group);
    caption = `More like ${query.name || `item ${query.id}`}`;
  }
  img.alt = `The query image: ${caption}`;
  $('#qcaption').textContent = caption;
  renderRegion();
}

/** Offers region drawing (pointer and keyboard) only when the query allows it. */
function updateRegionTools() {
  const frame = $('#qframe');
  const allowed = regionAllowed();
  frame.classList.toggle('drawable', allowed);
  $('#region-tools').hidden = !allowed;
  frame.setAttribute('aria-label', allowed
    ? 'Query image. Drag to select a region; arrow keys move it, Shift+arrow keys resize it, Enter searches, Escape clears.'
    : 'Query image');
  if (allowed) frame.tabIndex = 0; else frame.removeAttribute('tabindex');
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

function setRegion(region) {
  state.region = region;
  renderRegion();
}

function renderRegion() {
  const box = $('#qregion');
  const r = regionAllowed() ? state.region : null;
  box.hidden = !r;
  if (r) Object.assign(box.style, { left: `${r.x * 100}%`, top: `${r.y * 100}%`, width: `${r.width * 100}%`, height: `${r.height * 100}%` });
  $('#region-search').disabled = !r;
  $('#region-clear').disabled = !r;
  $('#region-text').textContent = r
    ? `Region: ${percent(r.x)}–${percent(r.x + r.width)} across, ${percent(r.y)}–${percent(r.y + r.height)} down.`
    : 'Drag on the image to search only part of it.';
}

const defaultRegion = () => ({ x: 0.25, y: 0.25, width: 0.5, height: 0.5 });

/** Pointer (mouse, touch, pen) drawing and moving of the region box. */
function bindRegionDrawing() {
  const frame = $('#qframe');
  let drag = null;
  const point = (e) => {
    const box = frame.getBoundingClientRect();
    return { x: clamp((e.clientX - box.left) / box.width, 0, 1), y: clamp((e.clientY - box.top) / box.height, 0, 1) };
  };
  frame.addEventListener('pointerdown', (e) => {
    if (!regionAllowed() || e.button !== 0) return;
    e.preventDefault();
    frame.setPointerCapture(e.pointerId);
    frame.focus({ preventScroll: true });
    const p = point(e);
    const r = state.region;
    const inside = r && p.x >= r.x && p.x <= r.x + r.width && p.y >= r.y && p.y <= r.y + r.height;
    drag = inside ? { move: true, start: p, origin: r } : { move: false, start: p };
  });
  frame.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const p = point(e);
    if (!drag.move) { setRegion(regionFromPoints(drag.start, p)); return; }
    const o = drag.origin;
    setRegion({ ...o, x: clamp(o.x + p.x - drag.start.x, 0, 1 - o.width), y: clamp(o.y + p.y - drag.start.y, 0, 1 - o.height) });
  });
  const end = () => {
    if (!drag) return;
    const r = state.region;
    if (!drag.move && r && (r.width < MIN_REGION || r.height < MIN_REGION)) setRegion(null);
    drag = null;
  };
  frame.addEventListener('pointerup', end);
  frame.addEventListener('pointercancel', end);

  // Keyboard: arrows move the box, Shift+arrows resize it, Enter searches, Escape clears.
  const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  frame.addEventListener('keydown', (e) => {
    if (!regionAllowed()) return;
    if (e.key in arrows) {
      e.preventDefault();
      const [dx, dy] = arrows[e.key].map((v) => v * 0.02);
      const r = state.region ?? defaultRegion();
      setRegion(e.shiftKey
        ? { ...r, width: clamp(r.width + dx, MIN_REGION, 1 - r.x), height: clamp(r.height + dy, MIN_REGION, 1 - r.y) }
        : { ...r, x: clamp(r.x + dx, 0, 1 - r.width), y: clamp(r.y + dy, 0, 1 - r.height) });
    } else if (e.key === 'Enter' && state.region) {
      e.preventDefault();
      runSearch();
    } else if (e.key === 'Escape' && state.region) {
      e.preventDefault();
      clearRegion();
    }
  });
}

function clearRegion() {
  setRegion(null);
  if (state.lastSearchHadRegion) runSearch(); // back to the whole image
}

// ---- Searching and results ----

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

/** Searches with the current query, filter, top, model and region. */
async function runSearch() {
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

  state.searchAbort?.abort();
  const controller = (state.searchAbort = new AbortController());
  const { signal } = controller;
  const results = $('#results');
  results.setAttribute('aria-busy', 'true');
  $('#status').textContent = region ? 'Searching the region…' : 'Searching…';
  $('#status').classList.add('busy');

  let request;
  if (query.kind === 'file') {
    const params = new URLSearchParams({ top });
    if (filter) params.set('filter', JSON.stringify(filter));
    if (region) params.set('region', regionParam(region));
    if (model) params.set('model', model);
    request = api(`${path}?${params}`, { method: 'POST', body: query.file, type: query.file.type || 'application/octet-stream', signal });
  } else {
    const body = query.kind === 'url' ? { url: query.url, top } : { id: query.id, top };
    if (filter) body.filter = filter;
    if (region) body.region = roundRegion(region);
    if (model) body.model = model;
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
    if (state.searchAbort === controller) {
      state.searchAbort = null;
      results.setAttribute('aria-busy', 'false');
      $('#status').classList.remove('busy');
    }
  }
}

function renderResults(answer, { filter, region }) {
  const { hits, searched, took_ms: took, model } = answer;
  resetResults();
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
  results.replaceChildren(h('ol', { class: 'grid' }, hits.map(hitCard)));
}

function hitCard(hit, index) {
  const score = hit.score.toFixed(3);
  const img = h('img', { alt: `Result ${index + 1}, score ${score}`, width: 256, height: 256, decoding: 'async' });
  img.addEventListener('error', () => img.classList.add('broken'));
  if (state.needsReadKey && lazyThumbs) { img.dataset.src = hit.thumbnail; lazyThumbs.observe(img); }
  else if (state.needsReadKey) loadImage(img, hit.thumbnail, blobs.results);
  else { img.loading = 'lazy'; img.src = hit.thumbnail; }

  const entries = metadataEntries(hit.metadata);
  const isQuery = state.query?.kind === 'id' && state.query.id === hit.id;
  const title = [hit.name, `${hit.width}×${hit.height}`, ...entries.map(([k, v]) => `${k}: ${valueText(v)}`)].filter(Boolean).join('\n');
  return h('li', { class: 'hit', 'data-id': hit.id, title },
    h('button', { type: 'button', class: 'thumb', onclick: () => openLightbox(hit, index) }, img),
    h('div', { class: 'info' },
      h('span', { class: 'score', title: 'Similarity to the query (1 is identical)', text: score }),
      hit.duplicate ? h('span', { class: 'badge', title: 'A copy of the query image', text: 'copy' }) : null,
      isQuery ? h('span', { class: 'badge quiet', text: 'query' }) : null,
      hit.name ? h('span', { class: 'name', text: hit.name }) : null),
    entries.length ? h('ul', { class: 'chips', 'aria-label': 'Metadata' },
      entries.slice(0, 3).map(([k, v]) => h('li', { class: 'chip', text: short(`${k}: ${valueText(v)}`, 28) })),
      entries.length > 3 ? h('li', { class: 'hint', text: `+${entries.length - 3}` }) : null) : null,
    h('button', { type: 'button', class: 'more', onclick: () => moreLikeThis(hit) }, 'More like this'));
}

// ---- The lightbox ----

function openLightbox(hit, index) {
  const dialog = $('#lightbox');
  if (typeof dialog.showModal !== 'function') { window.open(hit.image, '_blank', 'noopener'); return; }
  const img = $('#lb-img');
  const caption = $('#lb-caption');
  img.removeAttribute('src');
  img.hidden = false;
  img.alt = `Result ${index + 1}${hit.name ? `, ${hit.name}` : ''}, score ${hit.score.toFixed(3)}`;
  img.onerror = () => { img.hidden = true; caption.textContent = 'The original image is not available (it may have moved on the server).'; };
  loadImage(img, hit.image, renewBlobs('lightbox'));
  const details = metadataEntries(hit.metadata).map(([k, v]) => `${k}: ${valueText(v)}`);
  caption.textContent = [hit.name, `${hit.width} × ${hit.height}`, `score ${hit.score.toFixed(3)}`, hit.duplicate ? 'copy' : '', ...details]
    .filter(Boolean).join(' · ');
  $('#lb-open').href = hit.image;
  $('#lb-open').hidden = state.needsReadKey;
  $('#lb-more').onclick = () => { dialog.close(); moreLikeThis(hit); };
  dialog.showModal();
}

// ---- Adding images: uploads, folder jobs ----

async function uploadFiles(fileList) {
  const files = [...fileList];
  if (!files.length || state.uploading) return;
  state.uploading = true;
  const collection = state.collection;
  const progress = $('#upload-progress');
  const status = $('#upload-status');
  const errors = $('#upload-errors');
  progress.hidden = false;
  progress.max = files.length;
  progress.value = 0;
  errors.replaceChildren();
  $('#upload-input').disabled = true;
  let added = 0, duplicates = 0, failed = 0, stopped = '';

  for (const [i, file] of files.entries()) {
    status.textContent = `Uploading ${i + 1} of ${files.length}: ${file.name}`;
    try {
      checkFile(file);
      const result = await api(`${collectionPath(collection)}/items`, { method: 'POST', body: file, type: file.type || 'application/octet-stream' });
      if (result.status === 'duplicate') duplicates++; else added++;
    } catch (e) {
      failed++;
      errors.append(h('li', {}, h('strong', { text: file.name }), `: ${e.message}`));
      if (e.status === 0 || e.status === 401 || e.status === 403) { stopped = e.message; break; }
    }
    progress.value = i + 1;
  }
  const skipped = files.length - added - duplicates - failed;
  status.textContent = `${stopped ? 'Stopped' : 'Done'}: ${added} added, ${duplicates} already there, ${failed} failed`
    + (skipped ? `, ${skipped} not sent` : '') + ` (collection “${collection}”).`;
  state.uploading = false;
  $('#upload-input').disabled = false;
  $('#upload-input').value = '';
  loadCollections().catch(showError);
}

const jobOver = (job) => job.state === 'finished' || job.state === 'failed';

async function startFolderJob(event) {
  event.preventDefault();
  const path = $('#folder-input').value.trim();
  if (!path) { notify('Enter the folder to index.'); $('#folder-input').focus(); return; }
  try {
    const job = await api(`${collectionPath()}/jobs`, { method: 'POST', json: { path, recursive: $('#recursive-input').checked } });
    followJob(job);
    loadJobs();
  } catch (e) { showError(e); }
}

function renderJob(job) {
  $('#job').hidden = false;
  $('#job-title').textContent = `${job.path} → ${job.collection}`;
  const bar = $('#job-progress');
  if (job.total > 0 || jobOver(job)) {
    bar.max = Math.max(job.total, 1);
    bar.value = jobOver(job) ? bar.max : job.done;
  } else {
    bar.removeAttribute('value'); // indeterminate while the folder is being listed
  }
  const words = { queued: 'Waiting', running: 'Indexing', finished: 'Finished', failed: 'Failed' };
  $('#job-status').textContent = `${words[job.state] ?? job.state}: ${job.done.toLocaleString()} of ${plural(job.total, 'file')}`
    + ` · ${job.added.toLocaleString()} added · ${job.duplicates.toLocaleString()} duplicates · ${job.failed.toLocaleString()} failed`
    + (job.error ? ` · ${job.error}` : '');
  const shown = job.failures.slice(0, 5);
  $('#job-failures').replaceChildren(...shown.map((f) => h('li', {}, h('strong', { text: f.path }), `: ${f.reason}`)),
    job.failed > shown.length ? h('li', { class: 'hint', text: `…and ${job.failed - shown.length} more` }) : '');
}

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(timer); reject(new DOMException('Aborted', 'AbortError')); }, { once: true });
});

/** Follows a job's progress live: server-sent events over fetch, or polling once a second. */
async function followJob(job) {
  state.jobAbort?.abort();
  const controller = (state.jobAbort = new AbortController());
  const { signal } = controller;
  renderJob(job);
  let last = job;
  if (!jobOver(job)) {
    try {
      last = (await streamJob(job.id, signal)) ?? last;
    } catch (e) {
      if (isAbort(e)) return;
    }
    try {
      if (!jobOver(last)) last = await pollJob(job.id, signal);
    } catch (e) {
      if (!isAbort(e)) showError(e);
      return;
    }
  }
  if (signal.aborted) return;
  state.jobAbort = null;
  notify(`Indexing of ${last.path} ${last.state === 'finished' ? 'finished' : 'failed'}: ${last.added} added, ${last.duplicates} duplicates, ${last.failed} failed.`,
    last.state === 'finished' ? 'info' : 'error');
  loadCollections().catch(showError);
  loadJobs();
}

/** Reads GET /v1/jobs/{id}/events until the `end` event; resolves to the last Job seen. */
async function streamJob(id, signal) {
  const response = await fetch(`/v1/jobs/${enc(id)}/events`, { headers: authHeaders({ Accept: 'text/event-stream' }), signal });
  if (!response.ok || !response.body) throw new Error(`event stream answered ${response.status}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let last = null, ended = false;
  const push = sseParser(({ event, data }) => {
    if (event === 'end') ended = true;
    try { last = JSON.parse(data); renderJob(last); } catch { /* not a Job */ }
  });
  try {
    while (!ended) {
      const { value, done } = await reader.read();
      if (done) break;
      push(decoder.decode(value, { stream: true }));
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return last;
}

async function pollJob(id, signal) {
  let failures = 0;
  for (;;) {
    try {
      const job = await api(`/v1/jobs/${enc(id)}`, { signal });
      failures = 0;
      renderJob(job);
      if (jobOver(job)) return job;
    } catch (e) {
      if (isAbort(e) || ++failures >= 5 || e.status === 404) throw e;
    }
    await sleep(1000, signal);
  }
}

/** Lists recent jobs; on the first load, follows one that is still going. */
async function loadJobs(followRunning = false) {
  let jobs;
  try { ({ jobs } = await api('/v1/jobs')); } catch (e) { if (e.status !== 401) showError(e); return; }
  const list = $('#jobs-list');
  if (!jobs.length) { list.replaceChildren(h('li', { class: 'hint', text: 'None yet.' })); return; }
  list.replaceChildren(...jobs.slice(0, 8).map((job) => h('li', {},
    h('span', { class: `state ${job.state}`, text: job.state }), ' ',
    h('span', { class: 'path', text: `${job.path} → ${job.collection}` }), ' ',
    h('span', { class: 'hint', text: `${job.done}/${job.total} · ${job.added} added · ${job.failed} failed` }),
    jobOver(job) ? null : h('button', { type: 'button', class: 'link', onclick: () => followJob(job) }, 'Follow'))));
  const running = jobs.find((job) => !jobOver(job));
  if (followRunning && running && !state.jobAbort) followJob(running);
}

// ---- Wiring ----

/** The image files of a drop or paste. */
function imageFiles(dataTransfer) {
  const files = [...(dataTransfer?.files ?? [])];
  if (files.length) return files;
  return [...(dataTransfer?.items ?? [])].filter((i) => i.kind === 'file').map((i) => i.getAsFile()).filter(Boolean);
}

function firstUrl(text) {
  return (text || '').split(/\r?\n/).map((l) => l.trim()).find((l) => /^https?:\/\/\S+$/i.test(l));
}

function bindDropAndPaste() {
  let dragTimer = 0;
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    const zone = e.target.closest?.('#add') ? '#upload-drop' : '#drop';
    for (const z of ['#drop', '#upload-drop']) $(z).classList.toggle('over', z === zone);
    clearTimeout(dragTimer);
    dragTimer = setTimeout(() => { $('#drop').classList.remove('over'); $('#upload-drop').classList.remove('over'); }, 150);
  });
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    const files = imageFiles(e.dataTransfer);
    if (e.target.closest?.('#add')) { uploadFiles(files); return; }
    const image = files.find((f) => f.type.startsWith('image/')) ?? files[0];
    if (image) { searchFile(image); return; }
    const url = firstUrl(e.dataTransfer.getData('text/uri-list')) ?? firstUrl(e.dataTransfer.getData('text/plain'));
    if (url) { $('#url-input').value = url; searchUrl(url); }
  });
  document.addEventListener('paste', (e) => {
    const image = imageFiles(e.clipboardData).find((f) => f.type.startsWith('image/'));
    if (image) { e.preventDefault(); searchFile(image); return; }
    if (e.target.closest?.('input, textarea, [contenteditable]')) return; // ordinary text paste
    const url = firstUrl(e.clipboardData?.getData('text/plain'));
    if (url) { e.preventDefault(); $('#url-input').value = url; searchUrl(url); }
  });
}

function bind() {
  $('#file-input').addEventListener('change', (e) => {
    const [file] = e.target.files;
    if (file) searchFile(file);
    e.target.value = ''; // choosing the same file again searches again
  });
  $('#url-form').addEventListener('submit', (e) => { e.preventDefault(); searchUrl($('#url-input').value.trim()); });
  $('#options-form').addEventListener('submit', (e) => { e.preventDefault(); if (state.query) runSearch(); });
  $('#filter-input').addEventListener('input', () => setFilterError(''));
  $('#collection-select').addEventListener('change', (e) => chooseCollection(e.target.value));

  $('#qimg').addEventListener('load', onQueryImageLoad);
  $('#qimg').addEventListener('error', onQueryImageError);
  bindRegionDrawing();
  $('#region-select').addEventListener('click', () => {
    if (!state.region) setRegion(defaultRegion());
    $('#qframe').focus();
  });
  $('#region-search').addEventListener('click', runSearch);
  $('#region-clear').addEventListener('click', clearRegion);

  const dialog = $('#lightbox');
  dialog.addEventListener('click', (e) => { if (e.target === dialog) dialog.close(); }); // the backdrop
  dialog.addEventListener('close', () => { renewBlobs('lightbox'); $('#lb-img').removeAttribute('src'); });

  $('#upload-input').addEventListener('change', (e) => uploadFiles(e.target.files));
  $('#folder-form').addEventListener('submit', startFolderJob);
  $('#new-collection-form').addEventListener('submit', createCollection);
  $('#delete-collection').addEventListener('click', deleteCollection);

  $('#key-input').value = state.key;
  $('#key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.key = $('#key-input').value.trim();
    store.set(KEY_STORE, state.key);
    notify(state.key ? 'Key saved.' : 'Key removed.', 'info');
    loadServer();
  });
  $('#key-forget').addEventListener('click', () => {
    state.key = '';
    $('#key-input').value = '';
    store.set(KEY_STORE, '');
    notify('Key removed from this browser.', 'info');
    loadServer();
  });
  bindDropAndPaste();
}

bind();
loadServer();
