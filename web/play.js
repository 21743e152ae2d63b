// play.js — the video player page, /play/{id}: the poster first, then
// adaptive playback (the HLS ladder through hls.js and Media Source
// Extensions), a quality menu, previews from the timeline's sprite sheet
// while the pointer is over the progress bar, and the MP4 fallback.
//
// What to play comes from the asset's manifest.json (src/api/manifest.c),
// whose URLs are relative to it.
//
// Playing while processing.  A video with a ladder is playable before it
// is ready: its manifest then says status "processing" and has formats.hls
// alone, whose EVENT playlists grow as the worker transcodes.  hls.js
// follows them from the start (startPosition 0, not a live edge) until
// they end; the page polls the manifest until the video is ready, then
// takes the poster, the timeline and the MP4 fallback from it.
//
// Access.  Every request carries a play token as ?token= (src/api/play.c):
// a <video src>, a poster and a CSS background-image cannot send a header,
// and hls.js resolves the playlists' relative URLs without the query, so
// its xhrSetup puts the token back on each one.  The token comes from the
// play link's fragment (#token=…), or — the page opened from the gallery —
// from trading the API key the gallery keeps in localStorage for one
// (POST /v1/assets/{id}/links {"page":"play"}), renewed before it expires.
// A token is only ever sent to this origin.
//
// Which playback: HLS when the manifest has a ladder (sources of 720p and
// up) and the browser has MSE with H.264 and AAC; else the MP4 fallback
// when <video> can play it (this includes Safari's native HLS, which would
// fetch the playlists' URLs without the token); else a message saying why,
// never a black box.  A fatal hls.js error also falls back to the MP4, at
// the same time.
//
// Safety: only text, attributes and CSSOM properties are set, never markup
// (the page runs under the same strict CSP as /, with Trusted Types).
// hls.js runs without its worker, which it would start from a blob: URL
// that the policy refuses as script.

const KEY_STORAGE = 'assetd.key';   // the gallery's (app.js)
const POLL_MIN_MS = 1000;
const POLL_MAX_MS = 10000;
const FOLLOW_MS = 3000;             // the manifest, while the video plays processing
const RENEW_SHARE = 0.8;            // renew a key's token at 80 % of its life
const SEEK_STEP = 5;                // seconds, arrow keys on the timeline
const H264 = 'video/mp4; codecs="avc1.64001f"';
const AAC = 'audio/mp4; codecs="mp4a.40.2"';
const MP4 = 'video/mp4; codecs="avc1.64001f, mp4a.40.2"';

const $ = (id) => document.getElementById(id);
const ID = decodeURIComponent(location.pathname.split('/')[2] || '');
const BASE = new URL(`/v1/assets/${encodeURIComponent(ID)}/`, location.origin);
const video = $('video');

const state = {
  token: null,
  key: null,             // set when the page trades the owner's key for tokens
  renewTimer: null,
  manifest: null,
  hls: null,
  mode: null,            // 'hls' | 'mp4' | 'unsupported'
  cues: [],              // the timeline: {start, end, url, x, y, w, h}
  started: false,
};

// ---------------------------------------------------------------- messages

function say(text) {
  const m = $('message');
  m.textContent = text || '';
  m.hidden = !text;
}

function status(text) {
  const s = $('status');
  s.textContent = text || '';
  s.hidden = !text;
}

async function errorText(res) {
  try {
    const j = await res.json();
    if (j && j.error) return j.error.message || j.error.code;
  } catch { /* not JSON */ }
  return `HTTP ${res.status}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function formatTime(s) {
  if (!Number.isFinite(s) || s < 0) s = 0;
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

// ---------------------------------------------------------------- access

/** url (absolute, or relative to the manifest) with the token; only this
 *  origin's URLs get it. */
function signed(url) {
  const u = new URL(url, BASE);
  if (u.origin === location.origin && state.token) u.searchParams.set('token', state.token);
  return u.href;
}

function loadKey() {
  try { return localStorage.getItem(KEY_STORAGE); } catch { return null; }
}

function askForKey(text) {
  say(text);
  $('key-form').hidden = false;
  $('key').focus();
}

/** A fresh token for the owner's key; false (with a message) if refused. */
async function renewToken() {
  clearTimeout(state.renewTimer);
  let r;
  try {
    r = await fetch(new URL('links', BASE), {
      method: 'POST', cache: 'no-store', body: '{"page":"play"}',
      headers: { Authorization: `Bearer ${state.key}`, 'Content-Type': 'application/json' },
    });
  } catch (e) {
    say(`Cannot reach the server: ${e.message}`);
    return false;
  }
  if (r.status === 401) { askForKey('The API key was refused: paste another one.'); return false; }
  if (!r.ok) { say(`Cannot open the video: ${await errorText(r)}`); return false; }
  const link = await r.json();
  state.token = link.token;
  const life = Date.parse(link.expires) - Date.now();
  state.renewTimer = setTimeout(renewToken, Math.max(5000, life * RENEW_SHARE));
  return true;
}

/** The token of the play link, or one for the gallery's key. */
async function authorize() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    state.token = decodeURIComponent(m[1]);
    return true;
  }
  state.key = loadKey();
  if (!state.key) {
    askForKey('This video needs a play link, or its owner\'s API key.');
    return false;
  }
  return renewToken();
}

// ---------------------------------------------------------------- manifest

/** The manifest once the video is playable (polled while it is processed);
 *  null with a message when it cannot be had. */
async function loadManifest() {
  for (let wait = POLL_MIN_MS; ; wait = Math.min(POLL_MAX_MS, wait * 2)) {
    let r = null;
    try { r = await fetch(signed('manifest.json'), { cache: 'no-store' }); } catch { /* retried */ }
    if (r && r.ok) { status(''); return r.json(); }
    if (r && r.status === 409) {
      status('The video is still being processed…');
    } else if (r && r.status === 401) {
      if (state.key) askForKey('The API key was refused: paste another one.');
      else say('This play link is not valid, or has expired: ask for a new one.');
      return null;
    } else if (r && r.status === 404) {
      say(`No such video (${await errorText(r)}).`);
      return null;
    } else {
      status('Cannot reach the server; trying again…');
    }
    await sleep(wait);
  }
}

// ---------------------------------------------------------------- playback

function canUseHls() {
  return !!(window.Hls && window.Hls.isSupported() && window.MediaSource &&
    MediaSource.isTypeSupported(H264) && MediaSource.isTypeSupported(AAC));
}

function setMode(mode) {
  state.mode = mode;
  document.body.dataset.mode = mode;
}

function startHls() {
  const hls = new window.Hls({
    enableWorker: false,
    startPosition: 0,       // a playlist still growing starts at its start too
    autoStartLoad: false,   // the poster until Play: no segment is fetched before
    xhrSetup: (xhr, url) => { xhr.open('GET', signed(url), true); },
  });
  state.hls = hls;
  setMode('hls');
  hls.on(window.Hls.Events.MANIFEST_PARSED, (_, data) => {
    fillQuality(data.levels.map((l, index) => ({ index, height: l.height, bitrate: l.bitrate })));
    ready();
  });
  hls.on(window.Hls.Events.LEVEL_SWITCHED, (_, data) => showLevel(hls.levels[data.level]));
  hls.on(window.Hls.Events.ERROR, (_, data) => {
    if (!data.fatal) return;
    if (data.response && (data.response.code === 401 || data.response.code === 403) && !state.key) {
      hls.destroy();
      state.hls = null;
      say('This play link has expired: ask for a new one.');
      return;
    }
    // Anything else fatal: the MP4 plays the same video, from where it was.
    const at = video.currentTime, playing = state.started && !video.paused;
    hls.destroy();
    state.hls = null;
    if (!startMp4(at, playing)) say(`The video cannot be played here (${data.details}).`);
  });
  hls.loadSource(signed(state.manifest.formats.hls));
  hls.attachMedia(video);
}

/** The MP4 fallback from at seconds; false if this browser cannot play it. */
function startMp4(at = 0, playing = false) {
  if (!state.manifest.formats.fallback || !video.canPlayType(MP4)) return false;
  setMode('mp4');
  video.preload = 'metadata';
  video.src = signed(state.manifest.formats.fallback);
  video.addEventListener('loadedmetadata', () => {
    fillQuality([{ index: 0, height: video.videoHeight }], true);
    if (at > 0) video.currentTime = at;
    if (playing) video.play().catch(() => {});
    ready();
  }, { once: true });
  return true;
}

function unsupported() {
  setMode('unsupported');
  say('This browser cannot play this video: it has no H.264/AAC decoder for the adaptive stream '
    + 'or the MP4. Try another browser.');
}

/** The controls work from here on. */
function ready() {
  $('play').disabled = false;
  updateTime();
}

function togglePlay() {
  if (state.mode !== 'hls' && state.mode !== 'mp4') return;
  if (!video.paused) { video.pause(); return; }
  if (state.hls && !state.started) state.hls.startLoad();
  state.started = true;
  video.play().catch((e) => { if (e.name !== 'AbortError') say(`Cannot play: ${e.message}`); });
}

// A failure of the MP4 itself: with the owner's key, an expired token is
// renewed and playback goes on where it was; otherwise say so.
video.addEventListener('error', async () => {
  if (state.mode !== 'mp4' || !video.error) return;
  if (state.key && video.error.code === MediaError.MEDIA_ERR_NETWORK && await renewToken()) {
    const at = video.currentTime, playing = !video.paused;
    startMp4(at, playing);
    return;
  }
  say(video.error.code === MediaError.MEDIA_ERR_SRC_NOT_SUPPORTED
    ? 'This browser cannot play this video\'s MP4.'
    : `The video stopped: ${video.error.message || 'a network or decoding error'}.`);
});

// ---------------------------------------------------------------- quality menu

function fillQuality(levels, fixed = false) {
  const sel = $('quality');
  const options = [...levels].sort((a, b) => b.height - a.height).map((l) => {
    const o = document.createElement('option');
    o.value = String(l.index);
    o.textContent = `${l.height}p`;
    return o;
  });
  if (!fixed) {
    const auto = document.createElement('option');
    auto.value = '-1';
    auto.textContent = 'Auto';
    options.unshift(auto);
  }
  sel.replaceChildren(...options);
  sel.value = fixed ? '0' : '-1';
  sel.disabled = fixed;
}

function showLevel(level) {
  if (!level) return;
  const sel = $('quality');
  sel.dataset.playing = String(level.height);
  const auto = sel.querySelector('option[value="-1"]');
  if (auto) auto.textContent = `Auto (${level.height}p)`;
}

$('quality').addEventListener('change', (e) => {
  if (state.hls) state.hls.currentLevel = Number(e.target.value);   // -1: automatic
});

// ---------------------------------------------------------------- timeline

const duration = () => (Number.isFinite(video.duration) && video.duration > 0
  ? video.duration : state.manifest?.info?.duration || 0);

function updateTime() {
  const d = duration(), t = video.currentTime;
  $('time').textContent = `${formatTime(t)} / ${formatTime(Math.round(d))}`;
  $('played').style.width = d ? `${Math.min(100, (t / d) * 100)}%` : '0%';
  const tl = $('timeline');
  tl.setAttribute('aria-valuemax', String(Math.round(d)));
  tl.setAttribute('aria-valuenow', String(Math.round(t)));
  tl.setAttribute('aria-valuetext', formatTime(t));
}

function updateBuffered() {
  const d = duration(), b = video.buffered;
  const end = b.length ? b.end(b.length - 1) : 0;
  $('buffered').style.width = d ? `${Math.min(100, (end / d) * 100)}%` : '0%';
}

function seekTo(t) {
  if (state.mode !== 'hls' && state.mode !== 'mp4') return;
  if (state.hls && !state.started) { state.hls.startLoad(t); state.started = true; }
  video.currentTime = Math.max(0, Math.min(duration(), t));
  updateTime();
}

const fraction = (e) => {
  const r = $('timeline').getBoundingClientRect();
  return Math.max(0, Math.min(1, (e.clientX - r.left) / r.width));
};

/** The WebVTT thumbnails track: cues whose text is the sprite's URL
 *  (relative to the track) with a #xywh= media fragment. */
function parseVtt(text, trackUrl) {
  const time = (s) => s.split(':').reduce((acc, p) => acc * 60 + Number(p), 0);
  const cues = [];
  for (const block of text.replace(/\r/g, '').split(/\n{2,}/)) {
    const lines = block.split('\n');
    const i = lines.findIndex((l) => l.includes('-->'));
    const ref = i >= 0 ? lines[i + 1]?.trim() : null;
    const m = ref && /^([^#]+)#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec(ref);
    if (!m) continue;
    const [from, to] = lines[i].split('-->').map((s) => time(s.trim().split(/\s+/)[0]));
    cues.push({ start: from, end: to, url: new URL(m[1], trackUrl).href,
      x: Number(m[2]), y: Number(m[3]), w: Number(m[4]), h: Number(m[5]) });
  }
  return cues;
}

async function loadTimeline() {
  const t = state.manifest.timeline;
  if (!t || !t.vtt) return;
  try {
    const r = await fetch(signed(t.vtt), { cache: 'no-store' });
    if (r.ok) state.cues = parseVtt(await r.text(), new URL(t.vtt, BASE).href);
  } catch { /* previews are a nicety: the player works without them */ }
}

function cueAt(t) {
  return state.cues.find((c) => t >= c.start && t < c.end) || state.cues[state.cues.length - 1];
}

function showPreview(e) {
  const d = duration();
  if (!d) return;
  const f = fraction(e), t = f * d;
  const tile = $('preview-tile'), preview = $('preview');
  const cue = state.cues.length ? cueAt(t) : null;
  if (cue) {
    tile.style.backgroundImage = `url("${signed(cue.url)}")`;
    tile.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
    tile.style.width = `${cue.w}px`;
    tile.style.height = `${cue.h}px`;
  }
  tile.hidden = !cue;
  $('preview-time').textContent = formatTime(t);
  preview.hidden = false;
  const width = $('timeline').getBoundingClientRect().width, half = preview.offsetWidth / 2;
  preview.style.left = `${Math.max(half, Math.min(width - half, f * width))}px`;
}

function setUpTimeline() {
  const tl = $('timeline');
  tl.addEventListener('pointermove', showPreview);
  tl.addEventListener('pointerenter', showPreview);
  tl.addEventListener('pointerleave', () => { $('preview').hidden = true; });
  tl.addEventListener('click', (e) => seekTo(fraction(e) * duration()));
  tl.addEventListener('keydown', (e) => {
    const to = { ArrowLeft: video.currentTime - SEEK_STEP, ArrowRight: video.currentTime + SEEK_STEP,
      Home: 0, End: duration() }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    seekTo(to);
  });
  video.addEventListener('timeupdate', updateTime);
  video.addEventListener('durationchange', updateTime);
  video.addEventListener('progress', updateBuffered);
}

// ---------------------------------------------------------------- controls

function setUpControls() {
  const play = $('play');
  play.addEventListener('click', togglePlay);
  video.addEventListener('click', togglePlay);
  const label = () => {
    const paused = video.paused;
    play.textContent = paused ? 'Play' : 'Pause';
    play.setAttribute('aria-label', paused ? 'Play' : 'Pause');
  };
  video.addEventListener('play', label);
  video.addEventListener('pause', label);
  video.addEventListener('ended', label);
  $('mute').addEventListener('click', () => { video.muted = !video.muted; });
  video.addEventListener('volumechange', () => {
    $('mute').textContent = video.muted ? 'Unmute' : 'Mute';
    $('mute').setAttribute('aria-label', video.muted ? 'Unmute' : 'Mute');
  });
  $('fullscreen').addEventListener('click', () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else $('player').requestFullscreen?.().catch(() => {});
  });
  document.addEventListener('keydown', (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (e.key === ' ' && e.target === document.body) { e.preventDefault(); togglePlay(); }
  });
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = $('key').value.trim();
    if (!key) return;
    try { localStorage.setItem(KEY_STORAGE, key); } catch { /* this page only */ }
    $('key').value = '';
    $('key-form').hidden = true;
    say('');
    start();
  });
}

// ---------------------------------------------------------------- start

/** The manifest of a video that plays while processing, polled until it is
 *  ready: then the poster, the timeline and the fallback are there. */
async function followUntilReady() {
  for (;;) {
    await sleep(FOLLOW_MS);
    let r = null;
    try { r = await fetch(signed('manifest.json'), { cache: 'no-store' }); } catch { /* retried */ }
    if (r && r.status === 404) return;   // deleted, or the link is gone: hls.js says the rest
    if (!r || !r.ok) continue;
    const m = await r.json();
    if (m.status === 'processing') continue;
    state.manifest = m;
    status('');
    const poster = m.poster || m.cover;
    if (poster && !state.started) video.poster = signed(poster);
    updateTime();
    loadTimeline();
    if (!state.mode && !startMp4()) unsupported();   // waited for the MP4
    return;
  }
}

async function start() {
  if (!(await authorize())) return;
  const m = await loadManifest();
  if (!m) return;
  state.manifest = m;
  const poster = m.poster || m.cover;
  if (poster) video.poster = signed(poster);   // shown until playback starts
  updateTime();
  loadTimeline();
  if (m.formats.hls && canUseHls()) startHls();
  else if (m.status !== 'processing' && !startMp4()) unsupported();
  if (m.status === 'processing') {
    status(state.mode ? 'Still being processed: it plays as far as it is ready.'
      : 'The video is still being processed…');
    followUntilReady();
  }
}

function main() {
  setUpControls();
  setUpTimeline();
  if (!/^[A-Za-z0-9_-]{22}$/.test(ID)) { say('No video id in the address.'); return; }
  start();
}

main();
