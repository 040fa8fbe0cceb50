// The region box on the query image (#qframe, #qregion, #region-tools): searching only part of
// the image. Drawn and moved with a pointer (mouse, touch, pen) or the keyboard; kept in
// state.region as fractions of the image, which the search view sends with the query.

import { $ } from './dom.js';
import { clamp, percent } from './format.js';
import { state } from './state.js';

const MIN_REGION = 0.02; // smaller boxes are taken as a click, not a region

/** The box spanned by two points, in fractions. */
function regionFromPoints(a, b) {
  return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), width: Math.abs(a.x - b.x), height: Math.abs(a.y - b.y) };
}

/** A region rounded to 4 decimals that stays inside the image. */
export function roundRegion(r) {
  const round = (v) => Math.round(v * 1e4) / 1e4;
  const x = round(r.x), y = round(r.y);
  return { x, y, width: Math.min(round(r.width), round(1 - x)), height: Math.min(round(r.height), round(1 - y)) };
}

/** A region as the `region` query parameter: "x,y,width,height". */
export const regionParam = (r) => { const q = roundRegion(r); return [q.x, q.y, q.width, q.height].join(','); };

const defaultRegion = () => ({ x: 0.25, y: 0.25, width: 0.5, height: 0.5 });

// Regions are for uploaded and URL queries whose preview shows (the API takes none with an id).
export const regionAllowed = () => state.query != null && state.query.kind !== 'id' && state.query.kind !== 'text' && !state.query.noPreview;

// Searches again with the current region: the search view's, handed over by bindRegion.
let search = () => {};

function setRegion(region) {
  state.region = region;
  renderRegion();
}

/** Draws the box and the region tools' text and buttons for state.region. */
export function renderRegion() {
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

/** Offers region drawing (pointer and keyboard) only when the query allows it. */
export function updateRegionTools() {
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

function clearRegion() {
  setRegion(null);
  if (state.lastSearchHadRegion) search(); // back to the whole image
}

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
      search();
    } else if (e.key === 'Escape' && state.region) {
      e.preventDefault();
      clearRegion();
    }
  });
}

/** Binds the box and the region tools; `runSearch` searches with the current query and region. */
export function bindRegion({ runSearch }) {
  search = runSearch;
  bindRegionDrawing();
  $('#region-select').addEventListener('click', () => {
    if (!state.region) setRegion(defaultRegion());
    $('#qframe').focus();
  });
  $('#region-search').addEventListener('click', search);
  $('#region-clear').addEventListener('click', clearRegion);
}
