// The page's live notice area (#notice): information that fades, and errors that stay.

import { $, h } from './dom.js';

let noticeTimer = 0;
/** Shows a message in the page's live notice area; information fades after a while, errors stay. */
export function notify(message, kind = 'error') {
  const box = $('#notice');
  clearTimeout(noticeTimer);
  box.className = `notice ${kind}`;
  box.replaceChildren(message ? h('span', { text: message }) : '',
    message ? h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss message', onclick: () => notify('') }, '✕') : '');
  if (message && kind !== 'error') noticeTimer = setTimeout(() => notify(''), 6000);
}

/** True for the error of an aborted fetch or wait, which is never shown. */
export const isAbort = (e) => e?.name === 'AbortError';
export function showError(e) { if (!isAbort(e)) notify(e.message || String(e)); }
