// Uploading image files into the chosen collection (the "Upload files" card): one request per
// file, with a progress bar, a count of what was added, and the failures listed by file name.

import { api, checkFile, collectionPath } from './api.js';
import { loadCollections } from './collections.js';
import { $, h } from './dom.js';
import { enc } from './format.js';
import { showError } from './notice.js';
import { state } from './state.js';

let uploading = false; // files chosen during an upload are ignored

/** Uploads files one by one; stops at a network or key error. */
export async function uploadFiles(fileList) {
  const files = [...fileList];
  if (!files.length || uploading) return;
  uploading = true;
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
      // The file's name goes along, so the item is called what the file was.
      const named = file.name ? `?name=${enc(file.name.slice(0, 255))}` : '';
      const result = await api(`${collectionPath(collection)}/items${named}`, { method: 'POST', body: file, type: file.type || 'application/octet-stream' });
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
  uploading = false;
  $('#upload-input').disabled = false;
  $('#upload-input').value = '';
  loadCollections().catch(showError);
}

/** Binds the file chooser of the card (dropping on it is drop.js). */
export function bindUploads() {
  $('#upload-input').addEventListener('change', (e) => uploadFiles(e.target.files));
}
