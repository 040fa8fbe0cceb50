// Lookalike's web page: search by image, add images, follow indexing jobs.
// Plain ES modules with no dependencies and no build step; they speak the HTTP API described
// in openapi.yaml. This entry module only connects the views and starts the page:
//
//   js/search.js       the query (file, drop, paste, address, "More like this"), options, search request
//   js/region.js       the region box drawn on the query image
//   js/results.js      the grid of hits and the lightbox
//   js/collections.js  the collection chooser, creating and deleting collections
//   js/uploads.js      uploading image files
//   js/jobs.js         indexing a folder on the server, job progress, recent jobs
//   js/duplicates.js   the collection's near-duplicate groups, keeping one image of each
//   js/tuning.js       tuning the collection from its labels, its validation curve, its default model
//   js/feedback.js     marks on hits (thumbs, clicks) sent as feedback on the search
//   js/settings.js     the server's information and the API key
//   js/drop.js         dropping and pasting anywhere on the page
//   js/api.js          requests, errors, event streams, images fetched with the key, file limits
//   js/state.js, js/notice.js, js/dom.js, js/format.js, js/filter.js, js/sse.js: shared helpers
//
// Modules import only downwards (a view may use the views it acts on, never the reverse).
// Where a lower module must call back up, the function is handed over here.

import { whenUnauthorized } from './js/api.js';
import { bindCollections, chooseCollection, loadCollections } from './js/collections.js';
import { bindDropAndPaste } from './js/drop.js';
import { bindDuplicates } from './js/duplicates.js';
import { bindJobs } from './js/jobs.js';
import { bindRegion } from './js/region.js';
import { bindResults } from './js/results.js';
import { bindSearch, dropPhrase, moreLikeThis, runSearch, searchFromAddress, searchWithTop } from './js/search.js';
import { askForKey, bindSettings, loadServer } from './js/settings.js';
import { bindTuning } from './js/tuning.js';
import { bindUploads } from './js/uploads.js';

whenUnauthorized(askForKey);     // any request answered 401 opens the key field
bindSearch();
bindRegion({ runSearch });       // Enter, "Search this region" and clearing the region search again
bindResults({ moreLikeThis, searchWithTop, dropPhrase }); // a hit's button, the lightbox's search like that hit, "Show more", a chip's ×
bindCollections();
bindUploads();
bindJobs();
bindDuplicates();
bindTuning({ reload: loadCollections }); // a finished tuning or a new default changes the collection's models
bindSettings();
bindDropAndPaste();

// The address names a search (a stored item, an image address or a kept upload, with its options):
// it runs once the server's models and collections are known, and again on Back and Forward.
loadServer().then(() => searchFromAddress({ chooseCollection }));
window.addEventListener('popstate', () => searchFromAddress({ chooseCollection }));
