// The duplicates review (#duplicates): the collection's groups of near-duplicate images side by
// side, with sizes, dates and names; keeping one image of a group removes the others, after
// asking.

import { api, collectionPath, loadImage } from './api.js';
import { $, h, BlobGroup, renewed } from './dom.js';
import { enc, plural } from './format.js';
import { showError } from './notice.js';
import { state } from './state.js';

let thumbs = new BlobGroup();

/** Asks the server for the groups and shows them. */
export async function findDuplicates() {
  const status = $('#duplicates-status');
  const list = $('#duplicate-groups');
  status.textContent = 'Looking for duplicates…';
  list.setAttribute('aria-busy', 'true');
  try {
    const report = await api(`${collectionPath()}/duplicates`);
    thumbs = renewed(thumbs);
    const copies = report.groups.reduce((n, group) => n + group.copies.length, 0);
    status.textContent = report.groups.length
      ? `${plural(report.groups.length, 'group')} with ${plural(copies, 'copy', 'copies')} among ${plural(report.searched, 'image')}.`
      : `No duplicates among ${plural(report.searched, 'image')}.`;
    list.replaceChildren(...report.groups.map(groupView));
  } catch (e) {
    status.textContent = `Could not look for duplicates: ${e.message}`;
    showError(e);
  } finally {
    list.setAttribute('aria-busy', 'false');
  }
}

function groupView(group) {
  const members = [group.representative, ...group.copies];
  const view = h('li', { class: 'group' }, h('p', { class: 'group-title', text: `${members.length} images` }));
  view.append(h('ul', { class: 'group-members' }, members.map((item) => memberView(item, members, view))));
  return view;
}

function memberView(item, members, view) {
  const img = h('img', { alt: item.name || item.id, width: 160, height: 160, decoding: 'async', loading: 'lazy' });
  img.addEventListener('error', () => img.classList.add('broken'));
  loadImage(img, item.thumbnail, thumbs);
  const added = item.added_at ? new Date(item.added_at).toLocaleDateString() : '';
  const facts = [`${item.width}×${item.height}`, added, item.score != null ? `similarity ${item.score.toFixed(3)}` : 'most alike to the rest']
    .filter(Boolean).join(' · ');
  return h('li', { class: 'member', 'data-id': item.id },
    h('div', { class: 'thumb' }, img),
    h('span', { class: 'name', text: item.name || item.id, title: item.name || item.id }),
    h('span', { class: 'hint', text: facts }),
    h('button', { type: 'button', class: 'keep', onclick: () => keepOnly(item, members, view) }, 'Keep this one'));
}

/** Removes every other member of a group, after asking. */
async function keepOnly(kept, members, view) {
  const others = members.filter((item) => item.id !== kept.id);
  const names = others.map((item) => item.name || item.id).join(', ');
  if (!window.confirm(`Remove ${plural(others.length, 'image')} from “${state.collection}” and keep ${kept.name || kept.id}?\n\n${names}`)) return;
  for (const button of view.querySelectorAll('button')) button.disabled = true;
  try {
    for (const item of others) await api(`${collectionPath()}/items/${enc(item.id)}`, { method: 'DELETE' });
    view.replaceChildren(h('p', { class: 'hint', text: `Kept ${kept.name || kept.id}; removed ${plural(others.length, 'image')}.` }));
  } catch (e) {
    for (const button of view.querySelectorAll('button')) button.disabled = false;
    showError(e);
  }
}

/** Binds the "Find duplicates" button; a change of collection clears the shown groups. */
export function bindDuplicates() {
  $('#find-duplicates').addEventListener('click', findDuplicates);
}

/** Forgets the shown groups (another collection was chosen). */
export function clearDuplicates() {
  thumbs = renewed(thumbs);
  $('#duplicate-groups').replaceChildren();
  $('#duplicates-status').textContent = '';
}
