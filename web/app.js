// app.js — the assetd web page: keep an API key, upload with progress, a
// gallery that follows the server live, and a detail view per asset.
//
// Plain browser JavaScript, no framework and no build step: assetd serves
// this file as it is (compiled into the binary, see src/web/static.h).
// Videos open in the player page (/play/{id}, play.js), decks in the
// presenter and audience pages (/present/{id}, /watch/{id}, slides.js):
// the same origin, so those pages find the key where this one keeps it.
// How a file's bytes go up (one POST, or resumable tus for a large file) is
// upload.js.
//
// Safety.  File names and error messages come from whoever uploaded a file,
// so no text ever reaches the page as markup: elements are built with h()
// below, whose string children become text nodes, and nothing here touches
// innerHTML.  The page's Content-Security-Policy backs this up (no inline
// script, Trusted Types where supported).
//
// Authentication.  Every API call carries `Authorization: Bearer KEY`.  An
// <img src> cannot send that header, so thumbnails and renditions are
// fetched with fetch() and shown through blob: URLs (revoked when their card
// or the detail view goes).  EventSource cannot send it either: the live
// stream uses a short-lived token from POST /v1/events/token, fetched afresh
// for every (re)connection, and resumes after the last event seen with
// ?since= (EventSource only sends Last-Event-ID when it reconnects to the
// same URL, and ours changes with each token).
//
// Consistency.  The stream is opened before the list is read, so nothing
// that happens in between is lost; the same asset may then arrive both ways
// in either order, and the copy with the later `updated` wins.
//
// Every async result is checked against `state.generation`, which changes
// whenever the key does: a reply meant for a forgotten key never lands.

import { uploadFile } from './upload.js';

const KEY_STORAGE = 'assetd.key';
const PAGE_SIZE = 100;
const TOKEN_TTL = 300;            // seconds; a new token is fetched at every connect
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30000;
const BLOB_FETCHES = 4;           // thumbnails in flight: leave browser connections for the API
const UPLOADS_KEPT = 20;          // finished upload rows shown
const EVENT_TYPES = ['asset.created', 'asset.processing', 'asset.ready', 'asset.failed',
  'asset.deleted', 'snapshot', 'replay.incomplete'];

const $ = (id) => document.getElementById(id);

const state = {
  key: null,
  generation: 0,
  assets: new Map(),   // id -> {asset, card, thumbKey, thumbUrl}
  deleted: new Set(),  // ids seen deleted: a late list reply must not bring them back
  listLoaded: false,
  nextCursor: null,
  events: null,        // the EventSource
  lastEventId: null,
  resyncOnOpen: false,
  reconnectTimer: null,
  backoff: RECONNECT_MIN_MS,
  detail: null,        // {id, urls: Map(key -> blob URL), jobsTimer}
  uploads: [],         // queued {file, row}
  uploading: false,
  uploadAbort: null,   // the AbortController of the upload in flight
};

// ---------------------------------------------------------------- DOM helpers

/** Builds an element.  props: attributes, plus `class`, `text` and `onX`
 *  listeners.  String children become text nodes, never markup. */
function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

function formatBytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

const formatTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
const errorText = (err) => (err ? `${err.code}: ${err.message}` : '');

// ---------------------------------------------------------------- status lines

function setConnection(stateName, text) {
  const p = $('connection');
  p.dataset.state = stateName;
  p.textContent = text;
}

function notice(text) {
  const p = $('notice');
  p.textContent = text || '';
  p.hidden = !text;
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
/** Thrown when a reply arrives for a key that is no longer in use. */
class Stale extends Error {}

async function errorFrom(res) {
  let code = `http_${res.status}`, message = res.statusText || 'request failed';
  try {
    const j = await res.json();
    if (j && j.error) ({ code, message } = j.error);
  } catch { /* not JSON: keep the status */ }
  return new ApiError(res.status, code, message);
}

/** fetch() with the key; throws ApiError for an error reply, Stale if the
 *  key changed meanwhile.  A 401 also tells the user the key was refused. */
async function api(method, path, body) {
  const gen = state.generation;
  const res = await fetch(path, {
    method, body, cache: 'no-store', headers: { Authorization: `Bearer ${state.key}` },
  });
  if (gen !== state.generation) throw new Stale();
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401) keyRefused();
    throw err;
  }
  return res;
}

async function apiJson(method, path) {
  const res = await api(method, path);
  return res.status === 204 ? null : res.json();
}

/** Reports a failed action, ignoring replies for a forgotten key. */
function report(what, err) {
  if (err instanceof Stale) return;
  if (err instanceof ApiError && err.status === 401) return;   // keyRefused() said it
  notice(`${what}: ${err instanceof ApiError ? `${err.code}: ${err.message}` : err.message}`);
}

// Blob fetches (thumbnails, renditions) share a small pool.
const blobQueue = [];
let blobActive = 0;

function fetchBlobUrl(path) {
  return new Promise((resolve, reject) => {
    blobQueue.push({ path, resolve, reject });
    pumpBlobs();
  });
}

function pumpBlobs() {
  while (blobActive < BLOB_FETCHES && blobQueue.length) {
    const job = blobQueue.shift();
    blobActive++;
    api('GET', job.path)
      .then((res) => res.blob())
      .then((b) => job.resolve(URL.createObjectURL(b)), job.reject)
      .finally(() => { blobActive--; pumpBlobs(); });
  }
}

// ---------------------------------------------------------------- the key

function loadKey() {
  try { return localStorage.getItem(KEY_STORAGE); } catch { return null; }
}

function saveKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch { /* storage disabled: the key lasts for this page only */ }
}

function useKey(key) {
  stop();
  state.key = key;
  notice('');
  $('app').hidden = false;
  connectEvents();
  loadFirstPage();
}

function keyRefused() {
  stop();
  setConnection('error', 'Not connected');
  notice('The API key was refused: check it, or paste another one.');
}

/** Drops everything tied to the current key. */
function stop() {
  state.generation++;
  if (state.events) state.events.close();
  state.events = null;
  clearTimeout(state.reconnectTimer);
  state.backoff = RECONNECT_MIN_MS;
  state.lastEventId = null;
  state.resyncOnOpen = false;
  closeDetail();
  clearGallery();
  state.deleted.clear();
  for (const u of state.uploads) finishUpload(u.row, 'error', 'cancelled');
  state.uploads = [];
  state.uploadAbort?.abort();
  $('app').hidden = true;
  setConnection('off', 'Not connected');
}

// ---------------------------------------------------------------- gallery

function clearGallery() {
  for (const entry of state.assets.values()) if (entry.thumbUrl) URL.revokeObjectURL(entry.thumbUrl);
  state.assets.clear();
  state.listLoaded = false;
  state.nextCursor = null;
  $('gallery').replaceChildren();
  $('more').hidden = true;
  $('empty').hidden = true;
}

async function loadPage(cursor) {
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (cursor) q.set('cursor', cursor);
  const page = await apiJson('GET', `/v1/assets?${q}`);
  for (const a of page.items) upsert(a, true);
  state.listLoaded = true;
  state.nextCursor = page.next_cursor;
  $('more').hidden = !page.next_cursor;
  $('empty').hidden = state.assets.size > 0;
}

function loadFirstPage() {
  loadPage(null).catch((e) => report('Cannot list assets', e));
}

/** Starts the gallery over: after a gap in the event stream we cannot tell
 *  what changed, so the list is read again. */
function resync() {
  clearGallery();
  loadFirstPage();
}

/** Whether an asset the list has not shown yet belongs on the loaded pages
 *  (newest first): only if it is newer than the oldest card, or every page
 *  is loaded.  Otherwise "More" will bring it. */
function belongsOnPage(asset) {
  if (!state.listLoaded || !state.nextCursor) return true;
  const cards = $('gallery').children;
  const last = cards[cards.length - 1];
  const oldest = last && state.assets.get(last.dataset.id);
  return !oldest || asset.created >= oldest.asset.created;
}

/** Adds or updates an asset's card; an older copy than the one shown is ignored. */
function upsert(asset, fromList = false) {
  if (state.deleted.has(asset.id)) return;
  let entry = state.assets.get(asset.id);
  if (entry && entry.asset.updated > asset.updated) return;
  if (!entry) {
    if (!fromList && !belongsOnPage(asset)) return;
    entry = { asset, card: null, thumbKey: null, thumbUrl: null };
    entry.card = buildCard(entry);
    state.assets.set(asset.id, entry);
    placeCard(entry);
    $('empty').hidden = true;
  }
  entry.asset = asset;
  renderCard(entry);
  if (state.detail && state.detail.id === asset.id) renderDetail(asset);
}

function removeAsset(id) {
  state.deleted.add(id);
  const entry = state.assets.get(id);
  if (entry) {
    if (entry.thumbUrl) URL.revokeObjectURL(entry.thumbUrl);
    entry.card.remove();
    state.assets.delete(id);
  }
  if (state.listLoaded) $('empty').hidden = state.assets.size > 0;
  if (state.detail && state.detail.id === id) {
    closeDetail();
    notice('That asset was deleted.');
  }
}

/** Keeps the gallery newest first. */
function placeCard(entry) {
  const gallery = $('gallery');
  for (const card of gallery.children) {
    const other = state.assets.get(card.dataset.id);
    if (other && other.asset.created < entry.asset.created) {
      gallery.insertBefore(entry.card, card);
      return;
    }
  }
  gallery.append(entry.card);
}

function buildCard(entry) {
  const { asset } = entry;
  const open = h('button', { type: 'button', class: 'card-open', onclick: () => openDetail(asset.id) },
    h('span', { class: 'thumb' }),
    h('span', { class: 'card-name' }),
    h('span', { class: 'card-meta' }),
    h('span', { class: 'card-error' }));
  const li = h('li', { class: 'card' }, open, h('nav', { class: 'card-links', hidden: true }));
  li.dataset.id = asset.id;
  return li;
}

const isDeck = (asset) => asset.kind === 'pdf' || asset.kind === 'presentation';

/** The pages an asset opens in: a ready video's player; a deck's presenter
 *  and audience views (which make it a slideshow when its owner opens them,
 *  see slides.js). */
function pageLinks(asset) {
  const id = encodeURIComponent(asset.id);
  const link = (cls, href, text, label) => h('a', { class: cls, href, 'aria-label': label }, text);
  const name = asset.filename || 'the asset';
  if (asset.kind === 'video' && asset.status === 'ready') return [link('play-link', `/play/${id}`, 'Play', `Play ${name}`)];
  if (isDeck(asset) && asset.status === 'ready') {
    return [link('present-link', `/present/${id}`, 'Present', `Present ${name}`),
      link('watch-link', `/watch/${id}`, 'Audience', `Audience view of ${name}`)];
  }
  return [];
}

/** The rendition a card shows: an image's thumb (or, for the cover and
 *  avatar profiles, their card-sized one), a video's cover (or its poster),
 *  a deck's first slide. */
function cardPicture(asset) {
  const rs = asset.renditions || [];
  const names = asset.kind === 'video' ? ['cover_medium', 'poster']
    : isDeck(asset) ? ['slide_001_thumb', 'slide_001'] : ['thumb', 'cover_small', 'avatar_256'];
  for (const n of names) {
    const r = rs.find((x) => x.name === n);
    if (r) return r;
  }
  return null;
}

function renderCard(entry) {
  const { asset, card } = entry;
  card.dataset.status = asset.status;
  card.querySelector('.card-name').textContent = asset.filename || '(no name)';
  card.querySelector('.card-meta').replaceChildren(
    h('span', { class: `badge badge-${asset.status}`, text: asset.status }),
    ` ${asset.kind} · ${formatBytes(asset.size)}`);
  const err = card.querySelector('.card-error');
  err.textContent = asset.status === 'failed' ? errorText(asset.error) : '';
  err.hidden = asset.status !== 'failed';
  const links = pageLinks(asset);
  card.querySelector('.card-links').replaceChildren(...links);
  card.querySelector('.card-links').hidden = !links.length;
  renderThumb(entry);
}

/** The card's picture (cardPicture) once there is one, else a
 *  placeholder naming the kind. */
function renderThumb(entry) {
  const { asset, card } = entry;
  const box = card.querySelector('.thumb');
  const thumb = cardPicture(asset);
  if (!thumb) {
    if (!box.querySelector('.placeholder')) {
      box.replaceChildren(h('span', { class: 'placeholder', 'aria-hidden': 'true', text: asset.kind }));
    }
    return;
  }
  const key = `${thumb.url}#${thumb.size}`;
  if (entry.thumbKey === key) return;
  entry.thumbKey = key;
  const gen = state.generation;
  fetchBlobUrl(thumb.url).then((url) => {
    if (gen !== state.generation || state.assets.get(asset.id) !== entry || entry.thumbKey !== key) {
      URL.revokeObjectURL(url);
      return;
    }
    if (entry.thumbUrl) URL.revokeObjectURL(entry.thumbUrl);
    entry.thumbUrl = url;
    const img = h('img', { width: thumb.width, height: thumb.height, decoding: 'async' });
    img.alt = `Thumbnail of ${entry.asset.filename || 'the asset'}`;
    img.src = url;
    box.replaceChildren(img);
  }, (e) => {
    if (entry.thumbKey === key) entry.thumbKey = null;   // try again on the next update
    if (!(e instanceof Stale) && !(e instanceof ApiError && e.status === 404)) report('Cannot load a thumbnail', e);
  });
}

// ---------------------------------------------------------------- live events

async function connectEvents() {
  const gen = state.generation;
  clearTimeout(state.reconnectTimer);
  setConnection('connecting', state.lastEventId === null ? 'Connecting…' : 'Reconnecting…');
  let token;
  try {
    token = (await apiJson('POST', `/v1/events/token?ttl=${TOKEN_TTL}`)).token;
  } catch (e) {
    if (e instanceof Stale || (e instanceof ApiError && e.status === 401)) return;
    reconnectLater();
    return;
  }
  if (gen !== state.generation) return;
  const q = new URLSearchParams({ token });
  if (state.lastEventId !== null) q.set('since', state.lastEventId);
  const es = new EventSource(`/v1/events?${q}`);
  state.events = es;
  es.onopen = () => {
    state.backoff = RECONNECT_MIN_MS;
    setConnection('live', 'Live');
    if (state.resyncOnOpen) { state.resyncOnOpen = false; resync(); }
  };
  // EventSource would retry the same URL, whose token may have expired:
  // reconnect ourselves with a new token and since=.
  es.onerror = () => {
    if (state.events !== es) return;
    es.close();
    state.events = null;
    reconnectLater();
  };
  for (const type of EVENT_TYPES) es.addEventListener(type, onEvent);
}

function reconnectLater() {
  const gen = state.generation;
  // Without an event id we cannot ask for what was missed: read the list again.
  if (state.lastEventId === null) state.resyncOnOpen = true;
  setConnection('connecting', 'Reconnecting…');
  const delay = state.backoff;
  state.backoff = Math.min(state.backoff * 2, RECONNECT_MAX_MS);
  state.reconnectTimer = setTimeout(() => { if (gen === state.generation) connectEvents(); }, delay);
}

function onEvent(e) {
  let msg;
  try { msg = JSON.parse(e.data); } catch { return; }
  if (msg.id > 0) state.lastEventId = String(msg.id);
  if (msg.type === 'replay.incomplete') resync();
  else if (msg.type === 'asset.deleted') removeAsset(msg.asset_id);
  else if (msg.data && msg.data.id) upsert(msg.data);
  if (state.detail && state.detail.id === msg.asset_id) refreshJobsSoon();
}

// ---------------------------------------------------------------- uploads

function queueUploads(files) {
  if (!state.key) return;
  for (const file of files) {
    const row = uploadRow(file);
    $('uploads').prepend(row);
    state.uploads.push({ file, row });
  }
  trimUploadRows();
  pumpUploads();
}

function uploadRow(file) {
  const progress = h('progress', { max: '100', value: '0', 'aria-label': `Upload progress of ${file.name}` });
  return h('li', { class: 'upload', 'data-state': 'queued' },
    h('span', { class: 'upload-name', text: file.name }),
    progress,
    h('span', { class: 'upload-pct', text: '0 %' }),
    h('span', { class: 'upload-result', text: `queued · ${formatBytes(file.size)}` }));
}

function trimUploadRows() {
  const done = [...$('uploads').children].filter((r) => r.dataset.state === 'done' || r.dataset.state === 'error');
  for (const r of done.slice(UPLOADS_KEPT)) r.remove();
}

function setProgress(row, loaded, total) {
  const pct = total > 0 ? Math.min(100, Math.floor((loaded * 100) / total)) : 100;
  row.querySelector('progress').value = pct;
  row.querySelector('.upload-pct').textContent = `${pct} %`;
}

function finishUpload(row, how, text) {
  row.dataset.state = how;
  row.querySelector('.upload-result').textContent = text;
}

/** One upload at a time, in order: each gets the whole link, so its bar moves steadily. */
async function pumpUploads() {
  if (state.uploading) return;
  state.uploading = true;
  try {
    while (state.uploads.length) {
      const { file, row } = state.uploads.shift();
      await uploadOne(file, row);
    }
  } finally {
    state.uploading = false;
  }
}

async function uploadOne(file, row) {
  const gen = state.generation;
  const abort = new AbortController();
  state.uploadAbort = abort;
  row.dataset.state = 'sending';
  const status = (text) => { row.querySelector('.upload-result').textContent = text; };
  status('uploading…');
  try {
    const asset = await uploadFile(file, state.key, {
      onProgress: (loaded, total) => setProgress(row, loaded, total),
      onStatus: status,
      signal: abort.signal,
    });
    setProgress(row, 1, 1);
    finishUpload(row, 'done', `uploaded · ${formatBytes(asset.size)}`);
    if (gen === state.generation) upsert(asset);
  } catch (err) {
    finishUpload(row, 'error', err.code === 'cancelled' ? 'cancelled' : errorText(err));
    if (err.status === 401 && gen === state.generation) keyRefused();
  } finally {
    if (state.uploadAbort === abort) state.uploadAbort = null;
  }
}

function setUpDropZone() {
  const drop = $('drop');
  const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
  drop.addEventListener('dragenter', (e) => { if (hasFiles(e)) { e.preventDefault(); drop.classList.add('over'); } });
  drop.addEventListener('dragover', (e) => { if (hasFiles(e)) { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; } });
  drop.addEventListener('dragleave', (e) => { if (!drop.contains(e.relatedTarget)) drop.classList.remove('over'); });
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer && e.dataTransfer.files.length) queueUploads(e.dataTransfer.files);
  });
  // A file dropped anywhere else must not make the browser leave the page for it.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (e) => { if (hasFiles(e) && !drop.contains(e.target)) e.preventDefault(); });
  }
  $('files').addEventListener('change', (e) => {
    queueUploads(e.target.files);
    e.target.value = '';   // so choosing the same file again uploads it again
  });
}

// ---------------------------------------------------------------- detail view

function openDetail(id) {
  const entry = state.assets.get(id);
  if (!entry) return;
  closeDetail();
  state.detail = { id, urls: new Map(), jobsTimer: null, jobs: null, asset: null };
  renderDetail(entry.asset);
  $('detail').showModal();
  refreshJobs();
  const gen = state.generation;
  apiJson('GET', `/v1/assets/${encodeURIComponent(id)}`)
    .then((a) => { if (gen === state.generation) upsert(a); })
    .catch((e) => { if (e instanceof ApiError && e.status === 404) removeAsset(id); else report('Cannot load the asset', e); });
}

function closeDetail() {
  const d = state.detail;
  if (!d) return;
  state.detail = null;
  clearTimeout(d.jobsTimer);
  for (const url of d.urls.values()) URL.revokeObjectURL(url);
  if ($('detail').open) $('detail').close();
}

function renderDetail(asset) {
  const d = state.detail;
  d.asset = asset;
  $('detail-title').textContent = asset.filename || '(no name)';
  const meta = asset.meta || {};
  const rows = [
    ['ID', asset.id], ['Kind', asset.kind], ['Status', asset.status], ['Type', asset.content_type],
    ['Size', `${formatBytes(asset.size)} (${asset.size} bytes)`],
    ['Dimensions', meta.width && meta.height ? `${meta.width} × ${meta.height}` : '—'],
    ['SHA-256', asset.sha256], ['Created', formatTime(asset.created)], ['Updated', formatTime(asset.updated)],
  ];
  if (asset.error) rows.push(['Error', errorText(asset.error)]);
  const fields = h('dl', { class: 'fields' }, rows.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })]));
  if (asset.error) fields.lastElementChild.classList.add('error-text');

  const renditions = asset.renditions || [];
  const preview = renditions.find((r) => r.name === 'preview') || renditions.find((r) => r.name === 'thumb')
    || cardPicture(asset);
  const picture = h('div', { class: 'detail-picture' });
  if (preview) showBlob(picture, preview, (url) => {
    const img = h('img', { width: preview.width, height: preview.height });
    img.alt = `Preview of ${asset.filename || 'the asset'}`;
    img.src = url;
    return img;
  });

  const list = renditions.length
    ? h('ul', { class: 'renditions' }, renditions.map((r) => {
      const li = h('li', {},
        h('strong', { text: r.name }),
        ` ${r.content_type} · ${r.width} × ${r.height} · ${formatBytes(r.size)} `);
      showBlob(li, r, (url) => {
        const a = h('a', { href: url, download: `${asset.id}-${r.name}.${extension(r.content_type)}`, text: `Download ${r.name}` });
        return a;
      });
      return li;
    }))
    : h('p', { class: 'muted', text: asset.status === 'failed' ? 'None: processing failed.' : 'None yet.' });

  const jobs = h('div', { id: 'detail-jobs' });
  renderJobs(jobs);

  const actions = h('div', { class: 'detail-actions' }, pageLinks(asset),
    h('button', { type: 'button', onclick: () => downloadOriginal(asset) }, 'Download original'),
    h('button', { type: 'button', class: 'danger', onclick: () => deleteAsset(asset) }, 'Delete'));

  $('detail-body').replaceChildren(picture, fields,
    h('h3', { text: 'Renditions' }), list,
    h('h3', { text: 'Jobs' }), jobs, actions);
}

function extension(type) {
  return { 'image/jpeg': 'jpg', 'image/webp': 'webp', 'image/png': 'png' }[type] || 'bin';
}

/** Fetches a rendition once per detail view and appends make(blobUrl) to parent. */
function showBlob(parent, rendition, make) {
  const d = state.detail;
  const key = `${rendition.url}#${rendition.size}`;
  const have = d.urls.get(key);
  if (have) { parent.append(make(have)); return; }
  fetchBlobUrl(rendition.url).then((url) => {
    if (state.detail !== d) { URL.revokeObjectURL(url); return; }
    if (d.urls.has(key)) URL.revokeObjectURL(url);
    else d.urls.set(key, url);
    parent.append(make(d.urls.get(key)));
  }, (e) => report(`Cannot load ${rendition.name}`, e));
}

function refreshJobsSoon() {
  const d = state.detail;
  clearTimeout(d.jobsTimer);
  d.jobsTimer = setTimeout(refreshJobs, 150);
}

async function refreshJobs() {
  const d = state.detail;
  if (!d) return;
  try {
    const page = await apiJson('GET', `/v1/jobs?asset=${encodeURIComponent(d.id)}`);
    if (state.detail !== d) return;
    d.jobs = page.items;
    const box = document.getElementById('detail-jobs');
    if (box) renderJobs(box);
  } catch (e) {
    report('Cannot list jobs', e);
  }
}

function renderJobs(box) {
  const jobs = state.detail.jobs;
  if (!jobs) { box.replaceChildren(h('p', { class: 'muted', text: 'Loading…' })); return; }
  if (!jobs.length) { box.replaceChildren(h('p', { class: 'muted', text: 'No jobs for this asset.' })); return; }
  const head = h('tr', {}, ['Type', 'State', 'Attempts', 'Progress', 'Error', 'Finished', ''].map((t) =>
    h('th', { scope: 'col', text: t })));
  const rows = jobs.map((j) => h('tr', { class: 'job', 'data-state': j.state },
    h('td', { text: j.type }),
    h('td', {}, h('span', { class: `badge badge-${j.state}`, text: j.state })),
    h('td', { text: `${j.attempts} / ${j.max_attempts}` }),
    h('td', { text: `${Math.round((j.progress || 0) * 100)} %` }),
    h('td', { class: 'error-text', text: errorText(j.error) }),
    h('td', { text: formatTime(j.finished) }),
    h('td', {}, j.state === 'failed' || j.state === 'dead'
      ? h('button', { type: 'button', onclick: (e) => retryJob(j, e.currentTarget) }, 'Retry')
      : '')));
  box.replaceChildren(h('table', { class: 'jobs' }, h('thead', {}, head), h('tbody', {}, rows)));
}

async function retryJob(job, button) {
  button.disabled = true;
  try {
    await apiJson('POST', `/v1/jobs/${encodeURIComponent(job.id)}/retry`);
    notice('');
  } catch (e) {
    report('Cannot retry the job', e);
  }
  refreshJobs();
}

async function deleteAsset(asset) {
  if (!window.confirm(`Delete ${asset.filename || asset.id}? This cannot be undone.`)) return;
  try {
    await api('DELETE', `/v1/assets/${encodeURIComponent(asset.id)}`);
    removeAsset(asset.id);
    closeDetail();
  } catch (e) {
    report('Cannot delete', e);
  }
}

async function downloadOriginal(asset) {
  try {
    const url = await fetchBlobUrl(asset.url);
    const a = h('a', { href: url, download: asset.filename || asset.id });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) {
    report('Cannot download', e);
  }
}

// ---------------------------------------------------------------- start

function main() {
  const input = $('key');
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) { notice('Paste an API key first.'); input.focus(); return; }
    saveKey(key);
    useKey(key);
  });
  $('forget-key').addEventListener('click', () => {
    saveKey(null);
    input.value = '';
    state.key = null;
    stop();
    notice('The key is forgotten.');
    input.focus();
  });
  $('more').addEventListener('click', () => {
    const btn = $('more');
    btn.disabled = true;
    loadPage(state.nextCursor).catch((e) => report('Cannot list more assets', e))
      .finally(() => { btn.disabled = false; });
  });
  $('detail-close').addEventListener('click', closeDetail);
  $('detail').addEventListener('close', closeDetail);
  setUpDropZone();
  const key = loadKey();
  if (key) {
    input.value = key;
    useKey(key);
  } else {
    notice('Paste an API key to start.');
  }
}

main();
