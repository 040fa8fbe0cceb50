// Collections: the chooser in the header (#collection-select), creating one and deleting the
// chosen one (the Collections card). The choice is kept in localStorage; changing it searches
// the new collection with the same query.

import { api, collectionPath } from './api.js';
import { $, h } from './dom.js';
import { plural } from './format.js';
import { notify, showError } from './notice.js';
import { clearDuplicates } from './duplicates.js';
import { clearQuery, runSearch, showModels } from './search.js';
import { COLLECTION_STORE, state, store } from './state.js';
import { showTunedModels } from './tuning.js';

/** Reads the collections; falls back to "default" (or the first) when the chosen one is gone. */
export async function loadCollections() {
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
  showModels(state.server); // the collection's tuned models join the choice
  showTunedModels();
}

/** Makes `name` the chosen collection; the shown query is searched there too (unless `search`
 *  is false, or its last search failed: that failure is not repeated unasked). */
export function chooseCollection(name, { search = true } = {}) {
  state.collection = name;
  store.set(COLLECTION_STORE, name);
  renderCollections();
  clearDuplicates();
  if (state.query?.kind === 'id') clearQuery(); // an item id belongs to its collection
  else if (search && state.query && !state.lastSearchFailed) runSearch();
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

/** Binds the chooser and the Collections card's form and button. */
export function bindCollections() {
  $('#collection-select').addEventListener('change', (e) => chooseCollection(e.target.value));
  $('#new-collection-form').addEventListener('submit', createCollection);
  $('#delete-collection').addEventListener('click', deleteCollection);
}
