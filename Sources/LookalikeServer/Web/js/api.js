// Talking to the HTTP API (described in openapi.yaml): JSON requests with the saved API key,
// the server's errors as ApiError, images of the server loaded with the key when it is needed,
// and the server's limits on uploaded files.

import { formatBytes, enc } from './format.js';
import { isAbort } from './notice.js';
import { sseParser } from './sse.js';
import { state } from './state.js';

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// What a 401 answer does besides failing: the settings view asks for a key (set by app.js).
let onUnauthorized = () => {};
/** Sets the function called with the server's message when a request is answered 401. */
export function whenUnauthorized(handler) { onUnauthorized = handler; }

export const authHeaders = (extra = {}) => (state.key ? { ...extra, Authorization: `Bearer ${state.key}` } : extra);

/**
 * One API request. `json` is sent as JSON; `body` is sent raw with Content-Type `type`.
 * Resolves to the parsed JSON answer (null for 204); rejects with an ApiError carrying the
 * server's message, or the browser's AbortError.
 */
export async function api(path, { method = 'GET', json, body, type, signal } = {}) {
  const headers = authHeaders({ Accept: 'application/json' });
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (body !== undefined && !(body instanceof FormData)) { // a form sets its own boundary
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
    if (response.status === 401) onUnauthorized(failure.message);
    throw failure;
  }
  return data;
}

/** The API path of a collection, by default the chosen one. */
export const collectionPath = (name = state.collection) => `/v1/collections/${enc(name)}`;

/** Shows an image of the server: plain src when no key is needed, else fetched with the key. */
export async function loadImage(img, url, group) {
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

/**
 * Follows a server-sent event stream (a job's or a tuning's `/events`) until its `end` event:
 * each event's data, parsed, goes to `onData`; resolves to the last one (null if none came).
 */
export async function streamEvents(path, signal, onData) {
  const response = await fetch(path, { headers: authHeaders({ Accept: 'text/event-stream' }), signal });
  if (!response.ok || !response.body) throw new Error(`event stream answered ${response.status}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let last = null, ended = false;
  const push = sseParser(({ event, data }) => {
    if (event === 'end') ended = true;
    try { last = JSON.parse(data); onData(last); } catch { /* not JSON */ }
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

/** Waits `ms`, or rejects with an AbortError when `signal` aborts first. */
export const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(timer); reject(new DOMException('Aborted', 'AbortError')); }, { once: true });
});

/** Throws an Error for people when a file is not an image or is larger than the server takes. */
export function checkFile(file) {
  if (file.type && !file.type.startsWith('image/')) throw new Error(`“${file.name}” is not an image.`);
  const limit = state.server?.limits.max_body_bytes;
  if (limit && file.size > limit) throw new Error(`“${file.name}” is ${formatBytes(file.size)}; this server takes up to ${formatBytes(limit)}.`);
}
