// Indexing a folder on the server (the "Index a folder on the server" card): starting a job,
// following its progress live (server-sent events read from fetch, else polling), and the
// list of recent jobs.

import { api, collectionPath, sleep, streamEvents } from './api.js';
import { loadCollections } from './collections.js';
import { $, h } from './dom.js';
import { enc, plural } from './format.js';
import { isAbort, notify, showError } from './notice.js';

let jobAbort = null; // AbortController of the job being followed

const jobOver = (job) => job.state === 'finished' || job.state === 'failed';

/** Fills the folder field's suggestions with the server's index roots (or says there are none). */
export function showRoots(info) {
  const roots = info.index_roots;
  $('#roots').replaceChildren(...roots.map((r) => h('option', { value: r })));
  if (!$('#folder-input').value && roots.length) $('#folder-input').value = roots[0];
  $('#roots-text').textContent = roots.length
    ? `Folders under ${roots.join(', ')} can be indexed.`
    : 'This server allows no folders to be indexed (it has no index roots).';
  $('#folder-index').disabled = !roots.length;
}

async function startFolderJob(event) {
  event.preventDefault();
  const path = $('#folder-input').value.trim();
  if (!path) { notify('Enter the folder to index.'); $('#folder-input').focus(); return; }
  try {
    const job = await api(`${collectionPath()}/jobs`, { method: 'POST', json: { path, recursive: $('#recursive-input').checked } });
    followJob(job);
    loadJobs();
  } catch (e) { showError(e); }
}

function renderJob(job) {
  $('#job').hidden = false;
  $('#job-title').textContent = `${job.path} → ${job.collection}`;
  const bar = $('#job-progress');
  if (job.total > 0 || jobOver(job)) {
    bar.max = Math.max(job.total, 1);
    bar.value = jobOver(job) ? bar.max : job.done;
  } else {
    bar.removeAttribute('value'); // indeterminate while the folder is being listed
  }
  const words = { queued: 'Waiting', running: 'Indexing', finished: 'Finished', failed: 'Failed' };
  $('#job-status').textContent = `${words[job.state] ?? job.state}: ${job.done.toLocaleString()} of ${plural(job.total, 'file')}`
    + ` · ${job.added.toLocaleString()} added · ${job.duplicates.toLocaleString()} duplicates · ${job.failed.toLocaleString()} failed`
    + (job.skipped ? ` · ${job.skipped.toLocaleString()} skipped (hidden or not images)` : '')
    + (job.error ? ` · ${job.error}` : '');
  const shown = job.failures.slice(0, 5);
  $('#job-failures').replaceChildren(...shown.map((f) => h('li', {}, h('strong', { text: f.path }), `: ${f.reason}`)),
    job.failed > shown.length ? h('li', { class: 'hint', text: `…and ${job.failed - shown.length} more` }) : '');
}

/** Follows a job's progress live: server-sent events over fetch, or polling once a second. */
async function followJob(job) {
  jobAbort?.abort();
  const controller = (jobAbort = new AbortController());
  const { signal } = controller;
  renderJob(job);
  let last = job;
  if (!jobOver(job)) {
    try {
      last = (await streamEvents(`/v1/jobs/${enc(job.id)}/events`, signal, renderJob)) ?? last;
    } catch (e) {
      if (isAbort(e)) return;
    }
    try {
      if (!jobOver(last)) last = await pollJob(job.id, signal);
    } catch (e) {
      if (!isAbort(e)) showError(e);
      return;
    }
  }
  if (signal.aborted) return;
  jobAbort = null;
  notify(`Indexing of ${last.path} ${last.state === 'finished' ? 'finished' : 'failed'}: ${last.added} added, ${last.duplicates} duplicates, ${last.failed} failed.`,
    last.state === 'finished' ? 'info' : 'error');
  loadCollections().catch(showError);
  loadJobs();
}

async function pollJob(id, signal) {
  let failures = 0;
  for (;;) {
    try {
      const job = await api(`/v1/jobs/${enc(id)}`, { signal });
      failures = 0;
      renderJob(job);
      if (jobOver(job)) return job;
    } catch (e) {
      if (isAbort(e) || ++failures >= 5 || e.status === 404) throw e;
    }
    await sleep(1000, signal);
  }
}

/** Lists recent jobs; on the first load, follows one that is still going. */
export async function loadJobs(followRunning = false) {
  let jobs;
  try { ({ jobs } = await api('/v1/jobs')); } catch (e) { if (e.status !== 401) showError(e); return; }
  const list = $('#jobs-list');
  if (!jobs.length) { list.replaceChildren(h('li', { class: 'hint', text: 'None yet.' })); return; }
  list.replaceChildren(...jobs.slice(0, 8).map((job) => h('li', {},
    h('span', { class: `state ${job.state}`, text: job.state }), ' ',
    h('span', { class: 'path', text: `${job.path} → ${job.collection}` }), ' ',
    h('span', { class: 'hint', text: `${job.done}/${job.total} · ${job.added} added · ${job.failed} failed` }),
    jobOver(job) ? null : h('button', { type: 'button', class: 'link', onclick: () => followJob(job) }, 'Follow'))));
  const running = jobs.find((job) => !jobOver(job));
  if (followRunning && running && !jobAbort) followJob(running);
}

/** Binds the folder form. */
export function bindJobs() {
  $('#folder-form').addEventListener('submit', startFolderJob);
}
