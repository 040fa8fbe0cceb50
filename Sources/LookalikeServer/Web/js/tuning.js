// Tuning (the "Teach it what similar means" section): starting a tuning of the chosen collection
// from a metadata field, following its validation curve live (server-sent events read from
// fetch, else polling), and the collection's models: its default, its tuned models, making one
// the default or removing it.

import { api, collectionPath, sleep, streamEvents } from './api.js';
import { $, h } from './dom.js';
import { enc } from './format.js';
import { isAbort, notify, showError } from './notice.js';
import { state } from './state.js';

const SVG = 'http://www.w3.org/2000/svg';
let tuningAbort = null; // AbortController of the tuning being followed
// Reads the collections again (their models changed); handed over by app.js.
let loadCollections = async () => {};

const over = (tuning) => tuning.state === 'finished' || tuning.state === 'failed';
const score = (x) => (x == null ? '–' : x.toFixed(3));

function svg(tag, attributes = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  if (text != null) el.textContent = text;
  return el;
}

/** Draws the validation curve: held-out mAP@R per epoch, a line per head, the base model dashed. */
function drawCurve(curve) {
  const box = $('#tuning-curve');
  const title = box.querySelector('title');
  box.replaceChildren(title);
  if (!curve.length) return;
  const [width, height, left, bottom, top, right] = [320, 160, 34, 20, 8, 70];
  const base = curve.find((p) => p.head == null)?.held_out;
  const heads = [...new Set(curve.filter((p) => p.head != null).map((p) => p.head))];
  const epochs = Math.max(1, ...curve.map((p) => p.epoch));
  const values = curve.map((p) => p.held_out);
  const low = Math.max(0, Math.floor(Math.min(...values) * 10) / 10);
  const high = Math.min(1, Math.ceil(Math.max(...values) * 10) / 10 || 1);
  const x = (epoch) => left + (epoch / epochs) * (width - left - right);
  const y = (value) => height - bottom - ((value - low) / Math.max(high - low, 0.05)) * (height - bottom - top);
  box.append(svg('line', { x1: left, y1: y(low), x2: x(epochs), y2: y(low), class: 'axis' }),
    svg('line', { x1: left, y1: y(low), x2: left, y2: y(high), class: 'axis' }),
    svg('text', { x: left - 4, y: y(high) + 4, class: 'tick', 'text-anchor': 'end' }, high.toFixed(1)),
    svg('text', { x: left - 4, y: y(low) + 4, class: 'tick', 'text-anchor': 'end' }, low.toFixed(1)),
    svg('text', { x: x(epochs), y: height - 4, class: 'tick', 'text-anchor': 'end' }, `epoch ${epochs}`));
  if (base != null) {
    box.append(svg('line', { x1: left, y1: y(base), x2: x(epochs), y2: y(base), class: 'base' }),
      svg('text', { x: x(epochs) + 4, y: y(base) + 4, class: 'label' }, 'as it is'));
  }
  let labelBelow = -Infinity; // the heads' names, kept at least a line apart
  heads.map((head, index) => {
    const points = [{ epoch: 0, held_out: base ?? values[0] }, ...curve.filter((p) => p.head === head)];
    box.append(svg('polyline', { points: points.map((p) => `${x(p.epoch)},${y(p.held_out)}`).join(' '), class: `head head-${index}` }));
    return { head, index, at: y(points[points.length - 1].held_out) + 4 };
  }).sort((a, b) => a.at - b.at).forEach(({ head, index, at }) => {
    labelBelow = Math.max(at, labelBelow + 11);
    box.append(svg('text', { x: x(epochs) + 4, y: labelBelow, class: `label head-${index}` }, head));
  });
}

function renderTuning(tuning) {
  $('#tuning').hidden = false;
  $('#tuning-title').textContent = `${tuning.model} from “${tuning.labels}” → ${tuning.collection}`;
  const words = { queued: 'Waiting', reading: 'Reading the labelled vectors', training: 'Training',
    projecting: `Making the tuned vectors: ${tuning.projected} of ${tuning.to_project}`, done: 'Finished' };
  const last = tuning.curve[tuning.curve.length - 1];
  $('#tuning-status').textContent = tuning.state === 'failed'
    ? `Failed: ${tuning.error}`
    : `${words[tuning.phase] ?? tuning.phase}${tuning.phase === 'training' && last ? ` · ${last.head ?? 'base'} epoch ${last.epoch}, held-out mAP@R ${score(last.held_out)}` : ''}`;
  drawCurve(tuning.curve);
  const report = tuning.report;
  $('#tuning-report').textContent = !report ? ''
    : report.created
      ? `Held-out mAP@R ${score(report.baseline)} with ${report.base}, ${score(report.best)} tuned (${report.head ? `${report.head} head` : 'no head beat it; made as asked'}). `
        + `${report.model} is made${tuning.made_default ? ' and is now this collection’s default model' : ''}.`
      : `Not made: ${report.reason}`;
}

async function pollTuning(id, signal) {
  for (;;) {
    const tuning = await api(`/v1/tunings/${enc(id)}`, { signal });
    renderTuning(tuning);
    if (over(tuning)) return tuning;
    await sleep(1000, signal);
  }
}

async function followTuning(tuning) {
  tuningAbort?.abort();
  const controller = (tuningAbort = new AbortController());
  const { signal } = controller;
  renderTuning(tuning);
  let last = tuning;
  try {
    if (!over(last)) {
      last = (await streamEvents(`/v1/tunings/${enc(tuning.id)}/events`, signal, renderTuning)
        .catch((e) => { if (isAbort(e)) throw e; return null; })) ?? last;
    }
    if (!over(last)) last = await pollTuning(tuning.id, signal);
  } catch (e) {
    if (!isAbort(e)) showError(e);
    return;
  }
  tuningAbort = null;
  $('#tune-start').disabled = false;
  if (last.state === 'failed') notify(`The tuning failed: ${last.error}`);
  else notify(last.report?.created ? `${last.model} is made.` : `${last.model} was not made: ${last.report?.reason ?? ''}`,
    last.report?.created ? 'info' : 'error');
  await loadCollections().catch(showError);
}

async function startTuning(event) {
  event.preventDefault();
  const labels = $('#tune-labels').value.trim();
  const name = $('#tune-name').value.trim();
  if (!labels) { notify('Enter the metadata field to learn from.'); $('#tune-labels').focus(); return; }
  if (!/^[A-Za-z0-9._-]{1,40}$/.test(name)) {
    notify('A name is 1 to 40 letters, digits, “-”, “_” or “.”.');
    $('#tune-name').focus();
    return;
  }
  $('#tune-start').disabled = true;
  try {
    const body = { labels, name, make_default: $('#tune-default').checked };
    let tuning;
    try {
      tuning = await api(`${collectionPath()}/tunings`, { method: 'POST', json: body });
    } catch (e) {
      if (e.code !== 'tuned_model_exists' || !window.confirm(`${e.message}. Replace it?`)) throw e;
      tuning = await api(`${collectionPath()}/tunings`, { method: 'POST', json: { ...body, replace: true } });
    }
    await followTuning(tuning);
  } catch (e) {
    showError(e);
  } finally {
    $('#tune-start').disabled = false;
  }
}

async function makeDefault(model) {
  try {
    await api(collectionPath(), { method: 'PATCH', json: { default_model: model } });
    notify(model ? `${model} is now the default model of “${state.collection}”.` : `“${state.collection}” searches with the installed default again.`, 'info');
    await loadCollections();
  } catch (e) { showError(e); }
}

async function removeTuned(model) {
  if (!window.confirm(`Remove the tuned model ${model} and its vectors from “${state.collection}”? Its base model is untouched.`)) return;
  try {
    await api(`${collectionPath()}/tuned-models/${enc(model)}`, { method: 'DELETE' });
    notify(`${model} is removed.`, 'info');
    await loadCollections();
  } catch (e) { showError(e); }
}

/** Shows the chosen collection's default model and its tuned models (called when collections load). */
export function showTunedModels() {
  const collection = state.collections.find((c) => c.name === state.collection);
  if (!collection) return;
  const fallback = state.server?.default_model;
  const current = collection.default_model ?? fallback;
  $('#default-model-text').textContent = `“${collection.name}” searches with ${current} when no model is chosen.`;
  $('#reset-default').hidden = !fallback || current === fallback;
  const tuned = collection.tuned_models ?? [];
  $('#tuned-list').replaceChildren(...(tuned.length ? tuned.map((m) => h('li', { 'data-model': m.name },
    h('span', { class: 'path', text: m.name }), ' ',
    h('span', { class: 'hint', text: `from “${m.labels ?? 'labels'}”, held-out mAP@R ${score(m.held_out_base)} → ${score(m.held_out_tuned)}` }), ' ',
    m.name === current ? h('span', { class: 'state finished', text: 'default' })
      : h('button', { type: 'button', class: 'link', onclick: () => makeDefault(m.name) }, 'Make default'), ' ',
    h('button', { type: 'button', class: 'link danger', onclick: () => removeTuned(m.name) }, 'Remove…')))
    : [h('li', { class: 'hint', text: 'No tuned models yet.' })]));
}

/** Binds the tuning form and the reset button; `reload` reads the collections again. */
export function bindTuning({ reload }) {
  loadCollections = reload;
  $('#tune-form').addEventListener('submit', startTuning);
  $('#reset-default').addEventListener('click', () => makeDefault(null));
}
