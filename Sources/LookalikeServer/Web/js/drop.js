// Dropping and pasting anywhere on the page: images dropped on "Add images" are uploaded;
// elsewhere, a dropped or pasted image (or image address) becomes the search query.

import { $ } from './dom.js';
import { searchFile, searchUrl } from './search.js';
import { uploadFiles } from './uploads.js';

/** The image files of a drop or paste. */
function imageFiles(dataTransfer) {
  const files = [...(dataTransfer?.files ?? [])];
  if (files.length) return files;
  return [...(dataTransfer?.items ?? [])].filter((i) => i.kind === 'file').map((i) => i.getAsFile()).filter(Boolean);
}

/** The first line of a text that is an http(s) address, if any. */
function firstUrl(text) {
  return (text || '').split(/\r?\n/).map((l) => l.trim()).find((l) => /^https?:\/\/\S+$/i.test(l));
}

/** The drop area's words for this device: a phone has no drag and drop or keyboard paste. */
function describeDropArea() {
  const touch = matchMedia('(pointer: coarse)').matches;
  const mac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
  $('#drop .drop-text').textContent = touch ? 'Take or choose a photo to search with:'
    : `Drop an image here, paste one (${mac ? '⌘V' : 'Ctrl+V'}), or`;
}

/** Binds the document's dragover, drop and paste. */
export function bindDropAndPaste() {
  describeDropArea();
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
