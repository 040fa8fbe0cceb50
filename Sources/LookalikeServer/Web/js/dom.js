// DOM helpers shared by the views: element lookup, element building (never innerHTML, so
// server texts are always shown as text), and object URLs for images fetched as blobs.

export const $ = (selector) => document.querySelector(selector);

/** Creates an element: h('li', {class: 'hit', onclick: f}, child, 'text', …). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : value);
  }
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

/** Object URLs made for one purpose, revoked together (late arrivals after close are revoked at once). */
export class BlobGroup {
  urls = [];
  closed = false;
  add(blob) {
    const url = URL.createObjectURL(blob);
    if (this.closed) { URL.revokeObjectURL(url); return null; }
    this.urls.push(url);
    return url;
  }
  close() {
    this.closed = true;
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls = [];
  }
}

/** Closes a group and gives a new one for the same purpose: `group = renewed(group)`. */
export function renewed(group) {
  group.close();
  return new BlobGroup();
}
