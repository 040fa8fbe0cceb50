// The server's information and the API key (the Settings panel, #key-form): what the server
// needs, the key saved in this browser, and loading the page's data from the server, again
// each time the key changes.

import { api } from './api.js';
import { loadCollections } from './collections.js';
import { $ } from './dom.js';
import { formatBytes } from './format.js';
import { loadJobs, showRoots } from './jobs.js';
import { notify, showError } from './notice.js';
import { showModels } from './search.js';
import { KEY_STORE, state, store } from './state.js';

/** Reads the server's information, then the collections and the jobs. */
export async function loadServer() {
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

/** Shows what the server needs and offers: here, in the footer, and in the search and folder views. */
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
  showModels(info);
  showRoots(info);
}

/** Opens the settings with the key field, explaining why. */
export function askForKey(message) {
  $('#settings').open = true;
  $('#key-hint').textContent = `${message[0].toUpperCase()}${message.slice(1)}. Enter the key and press Save.`;
  $('#key-hint').classList.add('error');
  if (!document.activeElement?.matches('input, textarea, select')) $('#key-input').focus();
}

/** Fills the key field and binds Save and Forget. */
export function bindSettings() {
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
}
