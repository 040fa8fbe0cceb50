// The page state that several views read or change, and what of it is kept in localStorage.
// State that only one view uses (a running search, the followed job, an upload) lives in
// that view's module.

export const store = {
  get: (k) => { try { return localStorage.getItem(k); } catch { return null; } },
  set: (k, v) => { try { if (v) localStorage.setItem(k, v); else localStorage.removeItem(k); } catch { /* private mode */ } },
};
export const KEY_STORE = 'lookalike.key';
export const COLLECTION_STORE = 'lookalike.collection';

export const state = {
  key: store.get(KEY_STORE) || '',
  server: null,              // ServerInfo
  needsReadKey: false,       // images must then be fetched with the key, not by <img src>
  collections: [],
  collection: store.get(COLLECTION_STORE) || 'default',
  query: null,               // {kind: 'file', file, kept} | {kind: 'url', url} | {kind: 'id', id, thumbnail, name} | {kind: 'text', text}
  region: null,              // {x, y, width, height} in fractions of the upright image
  lastSearchHadRegion: false,
  lastSearchFailed: false,
};
