// slides.js — the slideshow pages: /present/{id} (presenter) and
// /watch/{id} (audience).  Both HTML files load this module; the path says
// which page this is and which slideshow (the HTML is the same for every id).
//
// Data: the public JSON (/api/v1/slideshow/{id}.json) gives the status and
// the slide URLs; while the deck is not READY it is polled every second.
// Then the WebSocket /api/v1/slideshow/{id}/listen says which slide is
// current: the server sends the current state first on every connection, so
// a reconnect (with backoff) is also a resync.
//
// Control (presenter only): POST /api/v1/slideshow/{id}/control with the
// control token.  The token comes from the URL fragment (#token=ct_…, which
// never reaches the server; it is removed from the address bar at once) or a
// form, and is kept in sessionStorage (this tab only).  Without one, the
// deck's owner's API key does the same: the gallery (app.js, same origin)
// keeps it in localStorage.
//
// A deck the gallery links here may not be a slideshow yet (it came through
// /v1/assets, not the slideshow upload): when the JSON is a 404 and this
// browser holds a key, the page asks POST /v1/assets/{id}/slideshow once —
// the owner opening the deck's page is the owner presenting it — and goes
// on; for anyone else it stays "No such slideshow".
//
// Safety: only text and attributes are set, never markup (the pages run
// under the same strict CSP as /, with Trusted Types).

const POLL_MS = 1000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10000;

const $ = (id) => document.getElementById(id);
const parts = location.pathname.split('/');
const MODE = parts[1];                       // 'present' or 'watch'
const ID = decodeURIComponent(parts[2] || '');
const API = `/api/v1/slideshow/${encodeURIComponent(ID)}`;
const TOKEN_KEY = `assetd.ct.${ID}`;
const GALLERY_KEY = 'assetd.key';   // app.js's

function galleryKey() {
  try { return localStorage.getItem(GALLERY_KEY); } catch { return null; }
}

/** Makes the deck a slideshow with the owner's key; true if it now is one. */
async function makeSlideshow() {
  const key = galleryKey();
  if (!key) return false;
  try {
    const r = await fetch(`/v1/assets/${encodeURIComponent(ID)}/slideshow`, {
      method: 'POST', cache: 'no-store', headers: { Authorization: `Bearer ${key}` },
    });
    if (!r.ok) return false;
    const s = await r.json();
    if (s.control_token && MODE === 'present') {
      sessionStorage.setItem(TOKEN_KEY, s.control_token);
      state.token = s.control_token;
    }
    return true;
  } catch {
    return false;
  }
}

const state = {
  slides: [],      // same-origin paths of the slide JPEGs
  current: 0,
  ready: false,
  ws: null,
  backoff: RECONNECT_MIN_MS,
  token: null,
  sending: false,
};

function notice(text) {
  const n = $('notice');
  n.textContent = text || '';
  n.hidden = !text;
}

const clamp = (n) => Math.max(0, Math.min(state.slides.length - 1, n));

// ---------------------------------------------------------------- deck

async function loadDeck() {
  let made = false;
  for (;;) {
    let s = null;
    try {
      const r = await fetch(`${API}.json`, { cache: 'no-store' });
      if (r.status === 404 && !made && (made = await makeSlideshow())) continue;
      if (r.status === 404) { notice('No such slideshow.'); $('preparing').hidden = true; return; }
      if (r.ok) s = await r.json();
    } catch { /* network: try again */ }
    if (s && s.status === 'READY') {
      // The JSON's URLs are absolute for the Host asked; keep the path so the
      // images are same-origin whatever name the page was opened under.
      state.slides = s.slides.map((u) => new URL(u, location.href).pathname);
      state.current = s.current;
      state.ready = true;
      $('preparing').hidden = true;
      notice('');
      return;
    }
    if (s && s.status === 'ERROR') {
      $('preparing').hidden = true;
      notice(`The slides could not be made: ${s.error?.message || s.error?.code || 'error'}`);
      return;
    }
    $('preparing').hidden = false;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

// ---------------------------------------------------------------- live

function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}${API}/listen`);
  state.ws = ws;
  ws.onopen = () => { state.backoff = RECONNECT_MIN_MS; };
  ws.onmessage = (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch { return; }
    if (Number.isInteger(m.current)) { $('badge').hidden = true; show(m.current); }
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    state.ws = null;
    $('badge').hidden = false;
    const wait = state.backoff;
    state.backoff = Math.min(RECONNECT_MAX_MS, state.backoff * 2);
    setTimeout(connect, wait);
  };
}

// ---------------------------------------------------------------- rendering

function show(n) {
  if (!state.ready || !state.slides.length) return;
  state.current = clamp(n);
  if (MODE === 'watch') {
    const img = $('slide');
    img.src = state.slides[state.current];
    img.alt = `Slide ${state.current + 1} of ${state.slides.length}`;
    img.hidden = false;
    return;
  }
  $('current').src = state.slides[state.current];
  const next = state.current + 1 < state.slides.length;
  $('next').hidden = !next;
  if (next) $('next').src = state.slides[state.current + 1];
  $('last').hidden = next;
  $('position').textContent = `Slide ${state.current + 1} / ${state.slides.length}`;
  $('prev').disabled = state.current === 0;
  $('advance').disabled = !next;
  for (const li of $('strip').children) {
    const on = Number(li.dataset.n) === state.current;
    li.classList.toggle('on', on);
    if (on) li.firstChild.setAttribute('aria-current', 'true');
    else li.firstChild.removeAttribute('aria-current');
  }
  $('strip').children[state.current]?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
}

// ---------------------------------------------------------------- presenter

function takeToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  state.token = sessionStorage.getItem(TOKEN_KEY) || galleryKey();
  $('token-form').hidden = !!state.token;
}

async function go(n) {
  if (!state.ready) return;
  n = clamp(n);
  if (!state.token) { $('token-form').hidden = false; notice('Paste the control token to change slides.'); return; }
  if (n === state.current) return;
  const before = state.current;
  show(n);   // at once; the server's answer (and the listeners) confirm it
  // A refused change goes back, unless the deck moved on meanwhile.
  const undo = () => { if (state.current === n) show(before); };
  try {
    const r = await fetch(`${API}/control`, {
      method: 'POST',
      headers: { 'Authorization': `Bearer ${state.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ current: n }),
    });
    const j = await r.json().catch(() => ({}));
    if (r.ok) { notice(''); return; }
    if (r.status === 401 || r.status === 403) {
      sessionStorage.removeItem(TOKEN_KEY);
      state.token = null;
      $('token-form').hidden = false;
    }
    undo();
    notice(`Could not change the slide: ${j.error?.message || r.status}`);
  } catch (e) {
    undo();
    notice(`Could not change the slide: ${e.message}`);
  }
}

function buildStrip() {
  const strip = $('strip');
  strip.replaceChildren();
  state.slides.forEach((src, i) => {
    const li = document.createElement('li');
    li.dataset.n = String(i);
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'thumb';
    b.title = `Slide ${i + 1}`;
    b.addEventListener('click', () => go(i));
    const img = document.createElement('img');
    img.loading = 'lazy';
    img.alt = `Slide ${i + 1}`;
    img.src = src;
    const num = document.createElement('span');
    num.textContent = String(i + 1);
    b.append(img, num);
    li.append(b);
    strip.append(li);
  });
}

const KEYS = {
  ArrowRight: (c) => c + 1, ' ': (c) => c + 1, PageDown: (c) => c + 1,
  ArrowLeft: (c) => c - 1, PageUp: (c) => c - 1,
  Home: () => 0, End: () => state.slides.length - 1,
};

function presenterControls() {
  $('watch-link').href = `/watch/${encodeURIComponent(ID)}`;
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('token').value.trim();
    if (!v) return;
    sessionStorage.setItem(TOKEN_KEY, v);
    state.token = v;
    $('token').value = '';
    $('token-form').hidden = true;
    notice('');
  });
  $('prev').addEventListener('click', () => go(state.current - 1));
  $('advance').addEventListener('click', () => go(state.current + 1));
  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.target instanceof HTMLInputElement) return;
    const f = KEYS[e.key];
    if (!f) return;
    e.preventDefault();
    go(f(state.current));
  });
}

// How many windows follow the deck (the server counts its listeners,
// this page's own included); refreshed every few seconds.
async function audience() {
  try {
    const r = await fetch(`${API}.json`, { cache: 'no-store' });
    if (r.ok) {
      const n = (await r.json()).listeners;
      if (Number.isInteger(n)) $('audience').textContent = `${n} watching`;
    }
  } catch { /* the next round tries again */ }
  setTimeout(audience, 3000);
}

// ---------------------------------------------------------------- start

async function main() {
  if (!ID) { notice('No slideshow id in the address.'); return; }
  if (MODE === 'present') { takeToken(); presenterControls(); }
  await loadDeck();
  if (!state.ready) return;
  if (MODE === 'present') { buildStrip(); $('deck').hidden = false; }
  show(state.current);
  connect();
  if (MODE === 'present') audience();
}

main();
