// The video player page (web/play.html, play.js, play.css, and /hls.min.js,
// npm hls.js) and what it stands on: play links (POST /v1/assets/{id}/links
// {"page":"play"}), whose token opens one video's manifest and renditions
// and nothing else; then the page in headless Chromium (Debian's chromium
// through npm playwright-core, browser.mjs): a 720p clip with audio plays
// from its HLS ladder (currentTime advances, audio is decoded), the quality
// menu lists the rungs and switches, a hover over the progress bar shows the
// sprite tile the WebVTT track names; a clip under 720p, and a browser
// without MSE, get the MP4; a browser without H.264 gets a message.  The
// gallery shows a video's cover and a deck's first slide and links them to
// /play, /present and /watch.  Clips are made here with ffmpeg's lavfi
// sources; screenshots go to build/test-artifacts/play*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  REPO, SLOW, TEST_TIMEOUT as T, TINY_PNG, makeTempDir, removeDir, startServer, serverFor, api, upload, sha256, waitFor,
} from './lib.mjs';
import { launchBrowser, openPage, waitInPage, useKey, screenshot } from './browser.mjs';
import { makeBucket, s3, startS3rver, S3RVER_ACCESS_KEY } from './s3servers.mjs';

let srv, browser, dir, longClip;
const clips = {};   // name -> file
const assets = {};  // name -> the ready asset's JSON

function ffmpeg(args) {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: 'inherit', timeout: 60000 });
}

/** A PDF of `pages` pages, each a coloured block (hand-made: two pages are
 *  enough for a deck, and the corpus's decks take long to render). */
function tinyDeck(pages) {
  const objs = ['<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${Array.from({ length: pages }, (_, i) => `${3 + 2 * i} 0 R`).join(' ')}] /Count ${pages} >>`];
  for (let i = 0; i < pages; i++) {
    const draw = `${(i * 0.4).toFixed(1)} 0.5 0.8 rg 40 40 240 100 re f`;
    objs.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 320 180] /Contents ${4 + 2 * i} 0 R >>`,
      `<< /Length ${draw.length} >>\nstream\n${draw}\nendstream`);
  }
  let out = '%PDF-1.4\n';
  const offsets = objs.map((o, i) => {
    const at = out.length;
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
    return at;
  });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out);
}

/** Resolves once every id has had asset.ready on /v1/events (replayed from
 *  the start, so an event before the connection counts); rejects on
 *  asset.failed. */
function readyOverEvents(ids, server = srv) {
  const waiting = new Set(ids);
  let req, timer;
  return new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no asset.ready for ${[...waiting]}`)), 240000 * SLOW);
    req = http.get(`${server.url}/v1/events?since=0&types=asset.ready,asset.failed`,
      { headers: { accept: 'text/event-stream', authorization: `Bearer ${server.token}` } }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('error', () => {});
        res.on('data', (d) => {
          buf += d;
          for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2)) {
            const line = buf.slice(0, i).split('\n').find((l) => l.startsWith('data: '));
            const e = line && JSON.parse(line.slice(6));
            if (!e || !waiting.has(e.asset_id)) continue;
            if (e.type === 'asset.failed') reject(new Error(`${e.asset_id} failed: ${JSON.stringify(e.data?.error)}`));
            waiting.delete(e.asset_id);
            if (!waiting.size) resolve();
          }
        });
      });
    req.on('error', reject);
  }).finally(() => { clearTimeout(timer); req.destroy(); });
}

before(async () => {
  dir = makeTempDir('assetd-play-');
  const tone = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];
  const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '38', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest'];
  // 720p: a ladder (480p + 720p) and audio, as a separate HLS rendition.
  clips.hd = path.join(dir, 'hd.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', ...tone, '-t', '10', ...x264, clips.hd]);
  // Under 720p: the fallback MP4 alone.
  clips.sd = path.join(dir, 'sd.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', ...tone, '-t', '6', ...x264, clips.sd]);
  // 30 s at 720p: five segments a rung, played while it is transcoded
  // (uploaded by its test, not here)
  longClip = path.join(dir, 'long.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', ...tone, '-t', '30', ...x264, longClip]);
  clips.deck = path.join(dir, 'deck.pdf');
  fs.writeFileSync(clips.deck, tinyDeck(2));
  srv = await startServer({ workers: 2, args: ['--video-preset', 'ultrafast'] });
  const ids = {};
  for (const [name, file] of Object.entries(clips)) {
    const r = await upload(srv, { file, filename: path.basename(file) });
    assert.equal(r.status, 201, r.text);
    ids[name] = r.json.id;
  }
  await readyOverEvents(Object.values(ids));
  for (const [name, id] of Object.entries(ids)) assets[name] = (await api(srv, 'GET', `/v1/assets/${id}`)).json;
  assert.equal(assets.hd.kind, 'video');
  assert.equal(assets.deck.kind, 'pdf');
  browser = await launchBrowser();
});
after(async () => {
  try { await browser?.close(); } finally {
    await srv?.cleanup();
    if (dir) removeDir(dir);
  }
});

const rendition = (a, name) => a.renditions.find((r) => r.name === name);

async function playLink(a, body = {}, server = srv) {
  const r = await api(server, 'POST', `/v1/assets/${a.id}/links`, { headers: ['Content-Type: application/json'],
    args: ['--data-binary', '@-'], input: JSON.stringify({ page: 'play', ...body }) });
  return r;
}

// What the server sent, from its access log (paths carry no query string).
const served = (pred) => srv.accessLog.filter(pred);
const requested = (id, name) => (l) => l.path === `/v1/assets/${id}/renditions/${name}`;

// ------------------------------------------------------------ the routes

test('GET /play/{id}, /play.js, /play.css, /hls.min.js: embedded files, no key, the CSP of /', { timeout: T }, async () => {
  const root = await api(srv, 'GET', '/', { token: null });
  const files = {
    [`/play/${assets.hd.id}`]: ['web/play.html', 'text/html; charset=utf-8'],
    '/play.js': ['web/play.js', 'text/javascript; charset=utf-8'],
    '/play.css': ['web/play.css', 'text/css; charset=utf-8'],
    '/hls.min.js': ['build/gen/hls.min.js', 'text/javascript; charset=utf-8'],
  };
  for (const [route, [file, type]] of Object.entries(files)) {
    const bytes = fs.readFileSync(path.join(REPO, file));
    const r = await api(srv, 'GET', route, { token: null });
    assert.equal(r.status, 200, route);
    assert.equal(r.headers['content-type'], type, route);
    assert.ok(r.body.equals(bytes), `${route}: not ${file} (rebuild?)`);
    assert.equal(r.headers.etag, `"${sha256(bytes)}"`);
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal((await api(srv, 'GET', route, { token: null, headers: [`If-None-Match: ${r.headers.etag}`] })).status, 304);
    if (type.startsWith('text/html')) {
      // The security headers of every page: exactly those of /.
      assert.equal(r.headers['content-security-policy'], root.headers['content-security-policy']);
      assert.match(r.headers['content-security-policy'], /media-src 'self' blob:;/, 'MSE plays a blob: URL');
      assert.equal(r.headers['referrer-policy'], 'no-referrer');
      const scripts = [...r.text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
      assert.deepEqual(scripts.map(([, attrs]) => /\bsrc="([^"]*)"/.exec(attrs)?.[1]), ['/hls.min.js', '/play.js']);
      for (const [, , body] of scripts) assert.equal(body.trim(), '', 'no inline script');
      assert.ok(!/<style\b|\sstyle=|\son[a-z]+=|javascript:/i.test(r.text), 'no inline style or handlers');
      assert.ok(!/(src|href)="(https?:)?\/\//i.test(r.text), 'nothing from another origin');
    } else {
      assert.equal(r.headers['content-security-policy'], undefined);
    }
  }
  // hls.js travels with its licence (Apache-2.0), then exactly as npm installed it.
  const hls = (await api(srv, 'GET', '/hls.min.js', { token: null })).body;
  const npm = fs.readFileSync(path.join(REPO, 'web/vendor/node_modules/hls.js/dist/hls.min.js'));
  assert.match(hls.subarray(0, 300).toString(), /^\/\*! hls\.js \(npm\)[^\n]*\nCopyright \(c\) 2017 Dailymotion[\s\S]*Apache License, Version 2\.0/);
  assert.ok(hls.subarray(hls.length - npm.length).equals(npm));
  assert.equal((await api(srv, 'GET', '/play/not-an-id', { token: null })).status, 404);
  const js = fs.readFileSync(path.join(REPO, 'web', 'play.js'), 'utf8');
  assert.ok(!/\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function/.test(js));
});

test('a play link: its token opens that video\'s manifest and renditions, nothing else, until it expires', { timeout: T }, async () => {
  const { hd, sd, deck } = assets;
  const r = await playLink(hd);
  assert.equal(r.status, 201, r.text);
  const { url, token, expires, asset_id: assetId } = r.json;
  assert.equal(assetId, hd.id);
  assert.equal(url, `${srv.url}/play/${hd.id}#token=${token}`);
  const life = Date.parse(expires) - Date.now();
  assert.ok(life > 3500e3 && life <= 3600e3, `an hour by default: ${expires}`);
  const get = (p, opts = {}) => api(srv, opts.method || 'GET', p, { token: opts.key ?? null, headers: opts.headers || [] });
  const base = `/v1/assets/${hd.id}`;
  const q = `?token=${token}`;
  // token = b64url(payload) "." b64url(MAC): one changed MAC character, and
  // the payload rewritten to name another video under the same MAC.
  const [payload, mac] = token.split('.');
  const i = mac.length >> 1;
  const tampered = `${payload}.${mac.slice(0, i)}${mac[i] === 'A' ? 'B' : 'A'}${mac.slice(i + 1)}`;
  const renamed = `${Buffer.from(Buffer.from(payload, 'base64url').toString().replace(hd.id, sd.id)).toString('base64url')}.${mac}`;

  // The manifest, then everything the player reads, by the manifest's URLs.
  const m = await get(`${base}/manifest.json${q}`);
  assert.equal(m.status, 200, m.text);
  const master = await get(`${base}/${m.json.formats.hls}${q}`);
  assert.equal(master.status, 200);
  const media = /^(hls_\d+)\.m3u8$/m.exec(master.text)[1];
  const playlist = (await get(`${base}/renditions/${media}.m3u8${q}`)).text;
  const segment = /^(seg_\S+\.m4s)$/m.exec(playlist)[1];
  for (const p of [m.json.poster, m.json.timeline.sprite, m.json.timeline.vtt, `renditions/${segment}`]) {
    assert.equal((await get(`${base}/${p}${q}`)).status, 200, p);
  }
  const ranged = await get(`${base}/${m.json.formats.fallback}${q}`, { headers: ['Range: bytes=0-99'] });
  assert.equal(ranged.status, 206, 'the MP4 seeks with ranges');
  assert.equal((await get(`${base}/${m.json.formats.fallback}${q}`, { method: 'HEAD' })).status, 200);

  // Nothing else: not the original, not the asset's JSON, not another
  // video, not a write; a tampered token or none opens nothing.
  const refused = [
    [`${base}/content${q}`, 'the original'], [`${base}${q}`, 'the asset JSON'],
    [`/v1/assets/${sd.id}/manifest.json${q}`, 'another video'], [`/v1/assets/${sd.id}/renditions/poster${q}`, 'another video\'s rendition'],
    [`${base}/manifest.json`, 'no token'], [`${base}/manifest.json?token=${tampered}`, 'a tampered token'],
    [`/v1/assets/${sd.id}/manifest.json?token=${renamed}`, 'a token edited to name another video'],
  ];
  for (const [p, what] of refused) {
    const got = await get(p);
    assert.equal(got.status, 401, `${what}: ${got.status} ${got.text.slice(0, 200)}`);
    assert.equal(got.json.error.code, 'unauthorized');
  }
  assert.equal((await get(`${base}${q}`, { method: 'DELETE' })).status, 401);
  // A key, when sent, decides alone: a wrong one is refused beside a good token.
  assert.equal((await get(`${base}/manifest.json${q}`, { key: `ak_${'x'.repeat(43)}` })).status, 401);

  // What a play link is not for.
  for (const [a, body, why] of [[deck, {}, /only a video/], [hd, { page: 'watch' }, /page must be/],
    [hd, { disposition: 'inline' }, /no disposition/], [hd, { expires_in: 3601 }, /max-sign-ttl/]]) {
    const bad = await playLink(a, body);
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.code, 'invalid_link');
    assert.match(bad.json.error.message, why);
  }

  // It expires (a second here; the server checks whole seconds).
  const short = (await playLink(hd, { expires_in: 1 })).json.token;
  assert.equal((await get(`${base}/manifest.json?token=${short}`)).status, 200);
  await waitFor(async () => (await get(`${base}/manifest.json?token=${short}`)).status === 401,
    { timeoutMs: 5000 * SLOW, intervalMs: 200, what: 'the 1 s play link to expire' });
});

// ------------------------------------------------------------ the page

const video = (page, expr) => page.evaluate(expr);
const qualities = (page) => page.locator('#quality option').allTextContents();

test('a play link in Chromium: the poster first, then the HLS ladder plays with audio; quality menu; hover previews', { timeout: T * 2 }, async (t) => {
  const { hd } = assets;
  const link = (await playLink(hd)).json;
  const opened = srv.accessLog.length;
  const since = (pred) => srv.accessLog.slice(opened).filter(pred);
  const { page, assertClean } = await openPage(t, browser, link.url);

  // The codecs.  Debian's chromium is built with H.264 and AAC (the
  // "proprietary codecs"), so the ladder and the MP4 both play here and
  // this test plays them.  A Chromium without them (Playwright's own
  // builds) fails here, on purpose, rather than passing on a black box:
  // the test below shows what the page does then (a message).
  const codecs = await page.evaluate(() => ({
    h264: MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f"'),
    aac: MediaSource.isTypeSupported('audio/mp4; codecs="mp4a.40.2"'),
    mp4: document.createElement('video').canPlayType('video/mp4; codecs="avc1.64001f, mp4a.40.2"'),
  }));
  assert.deepEqual(codecs, { h264: true, aac: true, mp4: 'probably' }, 'this Chromium plays H.264/AAC over MSE and in <video>');

  await waitInPage(page, 'the player to be ready (manifest, HLS master playlist)', () => !document.getElementById('play').disabled);
  assert.equal(await page.evaluate(() => document.body.dataset.mode), 'hls');
  assert.equal(await page.title(), 'Video');
  // The poster first: shown, and no segment fetched before Play.
  const poster = await video(page, () => document.getElementById('video').poster);
  assert.equal(new URL(poster).pathname, `/v1/assets/${hd.id}/renditions/poster.jpg`);
  assert.equal(new URL(poster).searchParams.get('token'), link.token);
  await srv.waitUntil(() => since(requested(hd.id, 'poster.jpg')).some((l) => l.status === 200), 10000, 'the poster');
  assert.equal(await video(page, () => document.getElementById('video').readyState), 0, 'no frame yet: the poster shows');
  assert.deepEqual(since((l) => l.path.startsWith(`/v1/assets/${hd.id}/renditions/seg_`)), [], 'no segment before Play');

  // The quality menu: Auto, then every rung of the ladder, highest first.
  assert.deepEqual(await qualities(page), ['Auto', '720p', '480p']);

  await page.click('#play');
  await waitInPage(page, 'currentTime to advance past 1.5 s', () => document.getElementById('video').currentTime > 1.5, null, 30000);
  assert.equal(await page.locator('#play').textContent(), 'Pause');
  // The audio is its own HLS rendition (the full hls.js build plays it).
  assert.ok(await video(page, () => document.getElementById('video').webkitAudioDecodedByteCount > 0), 'audio is decoded');

  // Switching rungs: hls.js switches (LEVEL_SWITCHED, shown by the menu),
  // then the picture has the rung's size.  Paused meanwhile, so the
  // switches do not race the clip's end.  (Segments may come from the
  // browser's cache: the access log would not see them.)
  await page.click('#play');
  for (const height of [720, 480]) {
    await page.selectOption('#quality', { label: `${height}p` });
    await waitInPage(page, `the ${height}p rung to play`, (h) => document.getElementById('quality').dataset.playing === String(h), height);
  }
  assert.match(await page.locator('#quality option').first().textContent(), /^Auto \(\d+p\)$/);
  const at = await video(page, () => document.getElementById('video').currentTime);
  await page.click('#play');
  await waitInPage(page, 'playback to go on, 480 lines high', (t0) => {
    const v = document.getElementById('video');
    return v.currentTime > t0 + 0.5 && v.videoHeight === 480;
  }, at);
  assert.equal(await page.locator('#quality').inputValue(), String(await page.evaluate(() =>
    [...document.querySelectorAll('#quality option')].find((o) => o.textContent === '480p').value)));

  // A hover over the progress bar: the tile of the WebVTT cue at that time,
  // cut out of the sprite sheet.
  const vtt = (await api(srv, 'GET', `/v1/assets/${hd.id}/renditions/timeline.vtt`)).text;
  const cues = [...vtt.matchAll(/(\d+):(\d+):([\d.]+) --> (\d+):(\d+):([\d.]+)\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/g)].map((c) => ({
    start: +c[1] * 3600 + +c[2] * 60 + +c[3], end: +c[4] * 3600 + +c[5] * 60 + +c[6], file: c[7], x: +c[8], y: +c[9], w: +c[10], h: +c[11] }));
  assert.equal(cues.length, 10, 'one tile a second');
  const box = await page.locator('#timeline').boundingBox();
  const duration = await video(page, () => document.getElementById('video').duration);
  const at55 = 0.55 * duration, cue = cues.find((c) => at55 >= c.start && at55 < c.end);
  const hovered = srv.accessLog.length;
  await page.mouse.move(box.x + 0.55 * box.width, box.y + box.height / 2);
  await waitInPage(page, 'the preview to show', () => !document.getElementById('preview').hidden && !document.getElementById('preview-tile').hidden);
  const tile = await page.evaluate(() => {
    const s = document.getElementById('preview-tile').style;
    return { image: s.backgroundImage, position: s.backgroundPosition, width: s.width, height: s.height,
      time: document.getElementById('preview-time').textContent };
  });
  const sprite = new URL(/^url\("(.*)"\)$/.exec(tile.image)[1]);
  assert.equal(sprite.pathname, `/v1/assets/${hd.id}/renditions/${cue.file}`);
  assert.equal(sprite.searchParams.get('token'), link.token);
  assert.equal(tile.position, `-${cue.x}px ${cue.y ? `-${cue.y}px` : '0px'}`);
  assert.deepEqual([tile.width, tile.height], [`${cue.w}px`, `${cue.h}px`]);
  assert.equal(tile.time, `0:0${Math.floor(at55)}`);
  await srv.waitUntil(() => srv.accessLog.slice(hovered).some((l) => requested(hd.id, 'tilesheet.jpg')(l) && l.status === 200),
    10000, 'the sprite sheet');
  await screenshot(page, 'play.png');
  await page.mouse.move(box.x + box.width / 2, box.y - 200);
  await waitInPage(page, 'the preview to go with the pointer', () => document.getElementById('preview').hidden);
  await assertClean();
});

/** The transcode's ffmpeg of the server (its output names dash.mpd), sent
 *  signal: SIGSTOP holds a video still processing. */
function signalTranscode(signal) {
  const line = execFileSync('ps', ['-eo', 'pid=,args=']).toString().split('\n')
    .find((l) => /\bffmpeg\b/.test(l) && l.includes(srv.dataDir) && l.includes('dash.mpd'));
  assert.ok(line, 'the transcode runs');
  process.kill(Number(line.trim().split(/\s+/)[0]), signal);
}

test('a video plays while it is transcoded: the page follows the growing HLS playlists, then takes the poster and timeline once ready', { timeout: T * 3 }, async (t) => {
  const r = await upload(srv, { file: longClip, filename: 'long.mp4' });
  assert.equal(r.status, 201, r.text);
  const id = r.json.id;
  // asset.playable, then the transcode held still: the video stays processing
  await new Promise((resolve, reject) => {
    const req = http.get(`${srv.url}/v1/events?since=0&asset=${id}&types=asset.playable,asset.ready,asset.failed`,
      { headers: { accept: 'text/event-stream', authorization: `Bearer ${srv.token}` } }, (res) => {
        res.setEncoding('utf8');
        res.on('error', () => {});
        res.on('data', (d) => {
          const type = /event: (\S+)/.exec(d)?.[1];
          if (!type) return;
          req.destroy();
          if (type === 'asset.playable') resolve();
          else reject(new Error(`${type} came before asset.playable`));
        });
      });
    req.on('error', () => {});
  });
  signalTranscode('SIGSTOP');
  let held = true;
  try {
    const link = (await playLink({ id })).json;
    const { page, assertClean } = await openPage(t, browser, link.url);
    await waitInPage(page, 'the player to be ready', () => !document.getElementById('play').disabled);
    assert.equal(await page.evaluate(() => document.body.dataset.mode), 'hls');
    assert.match(await page.locator('#status').textContent(), /processed/);
    assert.equal(await page.evaluate(() => document.getElementById('video').poster), '', 'no poster yet');
    await page.click('#play');
    await waitInPage(page, 'currentTime to advance past 1.5 s', () => document.getElementById('video').currentTime > 1.5, null, 30000);
    assert.equal((await api(srv, 'GET', `/v1/assets/${id}`)).json.status, 'processing', 'played while processing');
    signalTranscode('SIGCONT');
    held = false;
    // once ready, the page takes what the end made: the status goes, the
    // timeline's previews work, and playback goes on
    await waitInPage(page, 'the page to see the video ready', () => document.getElementById('status').hidden, null, 120000);
    assert.equal((await api(srv, 'GET', `/v1/assets/${id}`)).json.status, 'ready');
    await srv.waitUntil(() => srv.accessLog.some((l) => requested(id, 'timeline.vtt')(l) && l.status === 200),
      10000, 'the timeline track');
    const box = await page.locator('#timeline').boundingBox();
    let tile = false;   // the track is parsed after its response: hover until a tile shows
    for (let i = 0; i < 50 && !tile; i++) {
      await page.mouse.move(box.x + (0.1 + (i % 2) * 0.1) * box.width, box.y + box.height / 2);
      tile = await page.evaluate(() => !document.getElementById('preview-tile').hidden);
      if (!tile) await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(tile, 'a timeline preview once ready');
    const t0 = await page.evaluate(() => document.getElementById('video').currentTime);
    await waitInPage(page, 'playback to go on', (at) => document.getElementById('video').currentTime > at + 0.5, t0);
    await assertClean();
  } finally {
    if (held) signalTranscode('SIGCONT');
  }
});

test('under 720p (no ladder) and without MSE: the MP4 fallback plays; without H.264 the page says so', { timeout: T * 2 }, async (t) => {
  const { hd, sd } = assets;
  // A clip under 720p: the fallback alone, one fixed quality.
  const small = await openPage(t, browser, (await playLink(sd)).json.url);
  await waitInPage(small.page, 'the MP4 to load', () => !document.getElementById('play').disabled);
  assert.equal(await small.page.evaluate(() => document.body.dataset.mode), 'mp4');
  assert.deepEqual(await qualities(small.page), [`${rendition(sd, 'fallback').height}p`]);
  assert.equal(await small.page.locator('#quality').isDisabled(), true);
  await small.page.click('#play');
  await waitInPage(small.page, 'the MP4 to play', () => document.getElementById('video').currentTime > 1);
  assert.equal(new URL(await small.page.evaluate(() => document.getElementById('video').currentSrc)).pathname,
    `/v1/assets/${sd.id}/renditions/fallback.mp4`);
  await small.assertClean();

  // The ladder's video in a browser without Media Source Extensions.
  const noMse = () => { window.MediaSource = undefined; window.ManagedMediaSource = undefined; window.WebKitMediaSource = undefined; };
  const url = (await playLink(hd)).json.url;
  const plain = await openPage(t, browser, url, { init: noMse });
  await waitInPage(plain.page, 'the MP4 to load', () => !document.getElementById('play').disabled);
  assert.equal(await plain.page.evaluate(() => document.body.dataset.mode), 'mp4');
  assert.deepEqual(await qualities(plain.page), ['720p']);
  await plain.page.click('#play');
  await waitInPage(plain.page, 'the MP4 to play', () => document.getElementById('video').currentTime > 1);
  await plain.assertClean();

  // No H.264 at all: a message over the poster, not a black box.
  const none = await openPage(t, browser, url, { init: () => {
    window.MediaSource = undefined;
    HTMLMediaElement.prototype.canPlayType = () => '';
  } });
  await waitInPage(none.page, 'the message', () => !document.getElementById('message').hidden);
  assert.equal(await none.page.evaluate(() => document.body.dataset.mode), 'unsupported');
  assert.match(await none.page.locator('#message').textContent(), /cannot play this video: it has no H\.264\/AAC decoder/);
  assert.match(await none.page.evaluate(() => document.getElementById('video').poster), /\/renditions\/poster\.jpg\?token=/);
  assert.equal(await none.page.locator('#play').isDisabled(), true);
  await screenshot(none.page, 'play-unsupported.png');
  await none.assertClean();

  // A link that is not (or no longer) valid says so.
  const bad = await openPage(t, browser, url.replace(/#token=.*/, '#token=MXx4.eHh4'));
  await waitInPage(bad.page, 'the refusal', () => /not valid, or has expired/.test(document.getElementById('message').textContent));
  await bad.assertClean([/401 \(Unauthorized\)/]);
});

test('--store s3 with --s3-redirect: the bytes come from the bucket, and the page still plays (HLS, the MP4, poster, previews)', { timeout: T * 3 }, async (t) => {
  const s3rver = await startS3rver(t);
  const bucket = await makeBucket(s3rver.endpoint);
  const env = { AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: 'any', AWS_SESSION_TOKEN: '' };
  const s3srv = await serverFor(t, { env, workers: 1, args: ['--store', `s3://${bucket}/v`, '--s3-endpoint', s3rver.endpoint,
    '--s3-redirect', '1', '--video-preset', 'ultrafast'] });
  // What an operator sets on the bucket: GET from assetd's origin, nothing wider.
  const cors = `<CORSConfiguration><CORSRule><AllowedOrigin>${s3srv.url}</AllowedOrigin><AllowedMethod>GET</AllowedMethod>` +
    '<MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>';
  const put = await s3(s3rver.endpoint, 'PUT', `/${bucket}?cors`, cors);
  assert.equal(put.status, 200, put.body.toString());
  const up = await upload(s3srv, { file: clips.hd, filename: 'hd.mp4' });
  assert.equal(up.status, 201, up.text);
  await readyOverEvents([up.json.id], s3srv);
  const hd = (await api(s3srv, 'GET', `/v1/assets/${up.json.id}`)).json;

  const link = (await playLink(hd, {}, s3srv)).json;
  const redirected = (name) => (l) => l.path === `/v1/assets/${hd.id}/renditions/${name}` && l.status === 302;

  const { page, assertClean } = await openPage(t, browser, link.url);
  await waitInPage(page, 'the player to be ready', () => !document.getElementById('play').disabled);
  assert.equal(await page.evaluate(() => document.body.dataset.mode), 'hls');
  await page.click('#play');
  await waitInPage(page, 'currentTime to advance past 1.5 s', () => document.getElementById('video').currentTime > 1.5, null, 30000);
  assert.equal(await page.evaluate(() => document.body.dataset.mode), 'hls', 'still HLS, not the MP4 after an error');
  // The segments went to the bucket (assetd answered 302s, not bytes); the
  // playlists, which name them relative to themselves, came from here.
  assert.ok(s3srv.accessLog.some((l) => /\/renditions\/seg_\S+\.m4s$/.test(l.path) && l.status === 302), 'segments redirected');
  const playlists = s3srv.accessLog.filter((l) => /\/renditions\/hls\w*\.m3u8$/.test(l.path));
  assert.ok(playlists.length >= 2 && playlists.every((l) => l.status === 200), JSON.stringify(playlists));
  await s3srv.waitUntil((s) => s.accessLog.some(redirected('poster.jpg')), 10000 * SLOW, 'the poster, redirected');
  // A hover preview: the sprite sheet, from the bucket too.
  const box = await page.locator('#timeline').boundingBox();
  await page.mouse.move(box.x + 0.55 * box.width, box.y + box.height / 2);
  await waitInPage(page, 'the preview to show', () => !document.getElementById('preview').hidden && !document.getElementById('preview-tile').hidden);
  await s3srv.waitUntil((s) => s.accessLog.some(redirected('tilesheet.jpg')), 10000 * SLOW, 'the sprite sheet');
  await assertClean();

  // Without MSE: the MP4 itself, as the <video>'s source, from the bucket.
  const noMse = () => { window.MediaSource = undefined; window.ManagedMediaSource = undefined; window.WebKitMediaSource = undefined; };
  const plain = await openPage(t, browser, link.url, { init: noMse });
  await waitInPage(plain.page, 'the MP4 to load', () => !document.getElementById('play').disabled);
  assert.equal(await plain.page.evaluate(() => document.body.dataset.mode), 'mp4');
  await plain.page.click('#play');
  await waitInPage(plain.page, 'the MP4 to play', () => document.getElementById('video').currentTime > 1);
  assert.ok(s3srv.accessLog.some(redirected('fallback.mp4')), 'the MP4 redirected');
  await plain.assertClean();

  // The page's policy names the bucket's origin (that of every presigned
  // URL) for what the player loads, and nothing else beyond 'self'.
  const csp = (await api(s3srv, 'GET', `/play/${hd.id}`, { token: null })).headers['content-security-policy'];
  for (const d of ['img-src', 'media-src', 'connect-src']) {
    assert.match(csp, new RegExp(`${d} 'self' [^;]*${s3rver.endpoint}(;| )`), `${d} allows the bucket: ${csp}`);
  }
  assert.match(csp, /^default-src 'self';/, 'scripts, styles, frames: this origin alone');
});

test('the gallery: a video\'s cover and a Play link, a deck\'s first slide and its presenter and audience links; the key opens /play', { timeout: T * 2 }, async (t) => {
  const { hd, deck } = assets;
  // an image of the avatar profile has no `thumb`: its card shows avatar_256
  const up = await upload(srv, { data: TINY_PNG, filename: 'me.png', contentType: 'image/png', query: 'profile=avatar' });
  assert.equal(up.status, 201, up.text);
  let avatar;
  await waitFor(async () => (avatar = (await api(srv, 'GET', `/v1/assets/${up.json.id}`)).json).status === 'ready',
    { what: 'the avatar ready' });
  const { page, assertClean } = await openPage(t, browser, `${srv.url}/`);
  await useKey(page, srv.token);
  const card = (a) => page.locator(`.card[data-id="${a.id}"]`);
  const pictureOf = async (a) => {
    await waitInPage(page, `the picture of ${a.filename}`, (id) => {
      const img = document.querySelector(`.card[data-id="${id}"] .thumb img`);
      return img && img.complete && img.naturalWidth > 0;
    }, a.id);
    return card(a).locator('.thumb img').evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  };
  const cover = rendition(hd, 'cover_medium');
  assert.deepEqual(await pictureOf(hd), [cover.width, cover.height], 'the video card shows its cover');
  assert.equal(await card(hd).locator('a.play-link').getAttribute('href'), `/play/${hd.id}`);
  const face = rendition(avatar, 'avatar_256');
  assert.deepEqual(await pictureOf(avatar), [face.width, face.height], 'the avatar card shows avatar_256');
  const slide = rendition(deck, 'slide_001_thumb');
  assert.deepEqual(await pictureOf(deck), [slide.width, slide.height], 'the deck card shows its first slide');
  assert.equal(await card(deck).locator('a.present-link').getAttribute('href'), `/present/${deck.id}`);
  assert.equal(await card(deck).locator('a.watch-link').getAttribute('href'), `/watch/${deck.id}`);
  assert.equal(await card(deck).locator('a.play-link').count(), 0);
  await screenshot(page, 'play-gallery.png');

  // The audience link of a deck that is not a slideshow yet: the page,
  // with the owner's key, makes it one, then shows the first slide.
  assert.equal((await api(srv, 'GET', `/api/v1/slideshow/${deck.id}.json`, { token: null })).status, 404);
  await card(deck).locator('a.watch-link').click();
  await waitInPage(page, 'the audience page to show slide 1', () =>
    document.getElementById('slide')?.getAttribute('src')?.endsWith('/slide/001.jpg'));
  assert.ok(served((l) => l.path === `/v1/assets/${deck.id}/slideshow`).some((l) => l.status === 201), 'made by the page');
  assert.equal((await api(srv, 'GET', `/api/v1/slideshow/${deck.id}.json`, { token: null })).json.status, 'READY');
  const again = await api(srv, 'POST', `/v1/assets/${deck.id}/slideshow`);
  assert.equal(again.status, 200, 'already one: no new control token');
  assert.equal(again.json.control_token, undefined);
  await page.goBack();

  // The Play link: the page trades the gallery's key for a play token.
  await card(hd).locator('a.play-link').click();
  await page.waitForURL(`${srv.url}/play/${hd.id}`);
  await waitInPage(page, 'the player to be ready', () => !document.getElementById('play').disabled);
  assert.equal(await page.evaluate(() => document.body.dataset.mode), 'hls');
  assert.ok(served((l) => l.method === 'POST' && l.path === `/v1/assets/${hd.id}/links`).some((l) => l.status === 201));
  await page.click('#play');
  await waitInPage(page, 'currentTime to advance', () => document.getElementById('video').currentTime > 1);
  // The audience page's first look at the deck was a 404 (not a slideshow
  // yet), which the browser logs; nothing else may fail.
  await assertClean([/404 \(Not Found\)/]);

  // Neither a link nor a key: the page asks for the key.
  const bare = await openPage(t, browser, `${srv.url}/play/${hd.id}`);
  await waitInPage(bare.page, 'the key form', () => !document.getElementById('key-form').hidden);
  await bare.page.fill('#key', srv.token);
  await bare.page.click('#use-key');
  await waitInPage(bare.page, 'the player to be ready', () => !document.getElementById('play').disabled);
  assert.equal(await bare.page.evaluate(() => localStorage.getItem('assetd.key')), srv.token, 'kept where the gallery keeps it');
  await bare.assertClean();
});

test('POST /v1/assets/{id}/slideshow: only a deck, once', { timeout: T }, async () => {
  const img = await upload(srv, { data: TINY_PNG, filename: 'dot.png', contentType: 'image/png' });
  assert.equal(img.status, 201);
  const r = await api(srv, 'POST', `/v1/assets/${img.json.id}/slideshow`);
  assert.equal(r.status, 409, r.text);
  assert.equal(r.json.error.code, 'not_a_deck');
  assert.equal((await api(srv, 'POST', `/v1/assets/${assets.hd.id}/slideshow`)).status, 409);
  assert.equal((await api(srv, 'GET', `/api/v1/slideshow/${img.json.id}.json`, { token: null })).status, 404);
});
