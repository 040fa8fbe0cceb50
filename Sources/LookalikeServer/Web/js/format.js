// Small pure helpers for numbers, texts, metadata and URLs, shared by the views.
// No DOM and no state: each function only maps its arguments to a value.

export const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
export const percent = (v) => `${Math.round(v * 100)}%`;
export const plural = (n, word, many = `${word}s`) => `${n.toLocaleString()} ${n === 1 ? word : many}`;

/** A size in bytes for people: "512 bytes", "40 kB", "1.5 MB", "12 MB". */
export function formatBytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(n >= 10 << 20 ? 0 : 1)} MB`;
  return n >= 1024 ? `${Math.round(n / 1024)} kB` : `${n} bytes`;
}

/** Metadata as [dotted key, short text] pairs, nested objects flattened. */
export function metadataEntries(metadata, prefix = '') {
  if (!metadata || typeof metadata !== 'object') return [];
  return Object.entries(metadata).flatMap(([k, v]) => {
    const key = prefix + k;
    if (v && typeof v === 'object' && !Array.isArray(v)) return metadataEntries(v, `${key}.`);
    return [[key, v]];
  });
}

/** A metadata value as text (arrays as a comma-separated list). */
export const valueText = (v) => (Array.isArray(v) ? v.join(', ') : String(v));
/** A text cut to at most n characters, an ellipsis marking the cut. */
export const short = (s, n = 40) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/** An image URL of the API asking for the given size. */
export const withSize = (url, size) => `${url}${url.includes('?') ? '&' : '?'}size=${size}`;
export const enc = encodeURIComponent;
