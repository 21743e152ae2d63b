// Video: uploads are probed and transcoded by the workers with ffmpeg: the
// fallback MP4 sized by the displayed short side, the HLS/DASH ladder for
// 720p and up (both manifests read by ffprobe through the rendition route),
// the poster and five 16:9 covers; broken files fail with clear codes.
// The owner may replace the covers with an image (PUT .../cover): checked
// at once where the header tells, rendered by a worker, kept by a re-run
// of the transcode.
// Clips are made here with ffmpeg's lavfi sources, a few seconds each; the
// corpus's 1080p 30 s clip runs only with ASSETD_HEAVY=1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  CORPUS, SLOW, TEST_TIMEOUT as T, TEXT, TINY_PNG, makeTempDir, removeDir, startServer, api, upload, waitFor,
  assertError, createKey, blobFiles, S3_URL,
} from './lib.mjs';
import http from 'node:http';

let srv, dir;

// The events of /v1/events (SSE) as they arrive, parsed.
function sse(query = '') {
  const events = [];
  let req;
  const ready = new Promise((resolve, reject) => {
    req = http.get(`${srv.url}/v1/events${query}`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${srv.token}` } }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2)) {
          const data = buf.slice(0, i).split('\n').find((l) => l.startsWith('data: '));
          if (data) events.push(JSON.parse(data.slice(6)));
        }
      });
      res.on('error', () => {});
      resolve(res);
    });
    req.on('error', reject);
  });
  return {
    events, ready,
    close: () => req.destroy(),
    until: (pred, what) => waitFor(() => pred(events), { timeoutMs: 60000 * SLOW, intervalMs: 20, what }),
  };
}
const clips = {};
const images = {};

// A JPEG with an EXIF APP1 segment saying `orientation`, right after SOI.
function withOrientation(jpeg, orientation) {
  const tiff = Buffer.from([0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0, 0, 0, 0, 0]);
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length + 2);
  return Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xe1]), len, body, jpeg.subarray(2)]);
}

function ffmpeg(args) {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: 'inherit', timeout: 60000 });
}

before(async () => {
  dir = makeTempDir('assetd-video-');
  const tone = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];
  const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '38', '-pix_fmt', 'yuv420p'];
  clips.landscape = path.join(dir, 'landscape.mp4');
  // its first 0.3 s are black: the poster must not be one of them
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', ...tone, '-t', '4',
    '-vf', "drawbox=c=black:t=fill:enable='lt(t,0.3)'", ...x264, '-c:a', 'aac', '-shortest', clips.landscape]);
  // a phone's portrait clip: coded 1920x1080, displayed turned by 90 degrees
  const coded = path.join(dir, 'coded.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30', ...tone, '-t', '2', ...x264, '-c:a', 'aac', '-shortest', coded]);
  clips.portrait = path.join(dir, 'portrait.mp4');
  ffmpeg(['-i', coded, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', clips.portrait]);
  clips.small = path.join(dir, 'small.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-t', '3', ...x264, clips.small]);
  clips.qhd = path.join(dir, 'qhd.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=2560x1440:rate=30', '-t', '1', ...x264, clips.qhd]);
  // 30 s: five segments, so a player can start long before the end
  clips.long = path.join(dir, 'long.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', ...tone, '-t', '30', ...x264, '-c:a', 'aac', '-shortest', clips.long]);
  clips.silent = path.join(dir, 'silent.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-t', '0.5', ...x264, clips.silent]);
  // a 1 s video stream muxed with 20 s of audio (no -shortest): the picture
  // ends long before 10% of the container's duration, where the poster looks
  // (its first frame is the test pattern, every later one white)
  clips.stub = path.join(dir, 'stub.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30:d=1', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:d=20',
    '-vf', "drawbox=c=white:t=fill:enable='gte(n,1)'", ...x264, '-c:a', 'aac', clips.stub]);
  // cover images: noise, so no two are alike
  const image = (name, w, h) => {
    images[name] = path.join(dir, name);
    // [strip]: no EXIF of vips' own (withOrientation adds one)
    execFileSync('vips', ['gaussnoise', `${images[name]}[strip]`, String(w), String(h)], { timeout: 30000 });
  };
  image('cover.jpg', 1600, 900);
  image('second.png', 1280, 720);
  image('small.jpg', 400, 200);
  image('small.tif', 400, 200);      // a header we do not read: the worker refuses it
  image('portrait.jpg', 270, 480);   // stored turned: EXIF below shows it 480x270
  images['turned.jpg'] = path.join(dir, 'turned.jpg');
  fs.writeFileSync(images['turned.jpg'], withOrientation(fs.readFileSync(images['portrait.jpg']), 6));
  srv = await startServer({ workers: 2 });
});
after(async () => {
  await srv?.cleanup();   // fails on a sanitizer report at exit
  if (dir) removeDir(dir);
});

async function settled(id, ms = 120000) {
  let a;
  await waitFor(async () => {
    a = (await api(srv, 'GET', `/v1/assets/${id}`)).json;
    return a.status === 'ready' || a.status === 'failed';
  }, { timeoutMs: ms * SLOW, intervalMs: 200, what: `asset ${id} to settle` });
  return a;
}

// ffprobe over HTTP, with the key: the streams it finds behind a URL.
function probe(url) {
  const out = execFileSync('ffprobe', ['-v', 'error', '-headers', `Authorization: Bearer ${srv.token}\r\n`,
    '-print_format', 'json', '-show_streams', '-show_format', srv.url + url], { timeout: 60000 });
  return JSON.parse(out.toString());
}

// The sizes of the video packets ffprobe reads behind a URL, in order.
function videoPackets(url) {
  const out = execFileSync('ffprobe', ['-v', 'error', '-headers', `Authorization: Bearer ${srv.token}\r\n`,
    '-select_streams', 'v:0', '-show_entries', 'packet=size', '-of', 'csv=p=0', srv.url + url], { timeout: 60000 });
  return out.toString().trim().split('\n').map(Number);
}

// The mean of an image's pixels (libvips): a black frame is about 0.
function meanOf(file) {
  return Number(execFileSync('vips', ['avg', file], { timeout: 30000 }).toString());
}

const byName = (a) => Object.fromEntries(a.renditions.map((r) => [r.name, r]));
const videoSizes = (streams) => streams.filter((s) => s.codec_type === 'video')
  .map((s) => `${s.width}x${s.height}`).sort();

const vttTime = (t) => new Date(Math.round(t * 1000)).toISOString().slice(11, 23);
const COVERS = { cover_large: [1280, 720], cover_medium: [640, 360], cover_small: [480, 270], cover_tiny: [320, 180], cover_nano: [160, 90] };

async function uploadClip(file, name) {
  const r = await upload(srv, { file, filename: name });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.kind, 'video');
  const a = await settled(r.json.id);
  assert.equal(a.status, 'ready', JSON.stringify(a.error));
  return a;
}

// The processes whose command line names this server's data directory:
// ffmpeg runs there (its scratch directory is DATA/tmp/video-*).
function toolsOf(dataDir) {
  const out = execFileSync('ps', ['-eo', 'pid=,args=']).toString();
  return out.split('\n').filter((l) => /\b(ffmpeg|ffprobe)\b/.test(l) && l.includes(dataDir));
}

test('landscape 720p with audio: fallback 720p, 480/720 ladder in HLS and DASH, poster and covers', { timeout: T * 2 }, async () => {
  const a = await uploadClip(clips.landscape, 'landscape.mp4');
  assert.equal(a.meta.width, 1280);
  assert.equal(a.meta.height, 720);
  assert.equal(a.meta.rotation, 0);
  assert.equal(a.meta.has_audio, true);
  assert.equal(a.meta.video_codec, 'h264');
  assert.equal(a.meta.audio_codec, 'aac');
  assert.ok(Math.abs(a.meta.duration - 4) < 0.2, `duration ${a.meta.duration}`);
  const r = byName(a);
  assert.deepEqual([r.fallback.width, r.fallback.height, r.fallback.content_type], [1280, 720, 'video/mp4']);
  // the fallback: H.264 + AAC, moov before mdat (+faststart), served with ranges
  const mp4 = await api(srv, 'GET', r.fallback.url);
  assert.equal(mp4.status, 200);
  assert.equal(mp4.body.length, r.fallback.size);
  assert.ok(mp4.body.indexOf('moov') < mp4.body.indexOf('mdat'), 'moov first');
  const ranged = await api(srv, 'GET', `${r.fallback.url}.mp4`, { headers: ['Range: bytes=0-99'] });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers['content-type'], 'video/mp4');
  const fb = probe(r.fallback.url);
  assert.deepEqual(fb.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
  // its video is the 720 rung's (copied from its segments): the same packets
  const fbPackets = videoPackets(r.fallback.url);
  assert.equal(fbPackets.length, 120);
  assert.deepEqual(fbPackets, videoPackets(`/v1/assets/${a.id}/renditions/hls_1.m3u8`));
  // both manifests read, over the same renditions
  for (const m of ['hls', 'dash']) {
    const p = probe(r[m].url);
    assert.deepEqual(videoSizes(p.streams), ['1280x720', '854x480'], m);
    assert.ok(p.streams.some((s) => s.codec_type === 'audio'), `${m} has audio`);
  }
  const master = (await api(srv, 'GET', r.hls.url)).body.toString();
  assert.match(master, /^#EXTM3U/);
  // each variant's BANDWIDTH is its rung's peak (maxrate) plus the audio:
  // players start from it (ffmpeg's own figure once gave 1080p the audio's)
  const variants = [...master.matchAll(/#EXT-X-STREAM-INF:BANDWIDTH=(\d+),RESOLUTION=(\d+x\d+)[^\n]*\n(hls_\d+\.m3u8)/g)]
    .map((m) => [m[2], Number(m[1]), m[3]]);
  assert.deepEqual(variants, [['854x480', 1528000, 'hls_0.m3u8'], ['1280x720', 3128000, 'hls_1.m3u8']], master);
  // every rung shows 16:9 exactly (854x480 through its sample aspect ratio)
  const rung = probe(`/v1/assets/${a.id}/renditions/hls_0.m3u8`).streams.find((x) => x.codec_type === 'video');
  assert.equal(rung.display_aspect_ratio, '16:9');
  assert.equal((await api(srv, 'GET', r.hls.url)).headers['content-type'], 'application/vnd.apple.mpegurl');
  // segments are served but not listed
  assert.equal((await api(srv, 'GET', `/v1/assets/${a.id}/renditions/seg_0_00001.m4s`)).status, 200);
  assert.ok(!a.renditions.some((x) => x.name.startsWith('seg_')));
  assert.equal((await api(srv, 'GET', `/v1/assets/${a.id}/renditions/seg_0_99999.m4s`)).status, 404);
  // poster and the five cover sizes; the poster is from 10% of the way on,
  // not the black first frame (written first, then over, by ffmpeg)
  assert.deepEqual([r.poster.width, r.poster.height], [1280, 720]);
  const poster = path.join(dir, `${a.id}-poster.jpg`);
  fs.writeFileSync(poster, (await api(srv, 'GET', r.poster.url)).body);
  assert.ok(meanOf(poster) > 40, `the poster's mean ${meanOf(poster)}`);
  for (const [name, [w, h]] of Object.entries(COVERS)) {
    assert.deepEqual([r[name].width, r[name].height], [w, h], name);
    const img = await api(srv, 'GET', r[name].url);
    assert.equal(img.headers['content-type'], 'image/jpeg');
    assert.equal(img.body.length, r[name].size);
  }
  // the timeline: 4 s at one frame a second, 4 letterboxed 240x135 tiles
  // in one row, and a WebVTT track cutting them out of the sheet
  assert.deepEqual(a.meta.timeline, { count: 4, interval: 1 });
  assert.deepEqual([r.tilesheet.width, r.tilesheet.height, r.tilesheet.content_type], [960, 135, 'image/jpeg']);
  const sheet = probe(r.tilesheet.url).streams[0];
  assert.deepEqual([sheet.width, sheet.height], [960, 135]);
  assert.equal(r.timeline.content_type, 'text/vtt');
  const vtt = await api(srv, 'GET', `${r.timeline.url}.vtt`);
  assert.equal(vtt.status, 200);
  assert.equal(vtt.headers['content-type'], 'text/vtt');
  assert.equal(vtt.body.toString(), 'WEBVTT\n' +
    '\n00:00:00.000 --> 00:00:01.000\ntilesheet.jpg#xywh=0,0,240,135\n' +
    '\n00:00:01.000 --> 00:00:02.000\ntilesheet.jpg#xywh=240,0,240,135\n' +
    '\n00:00:02.000 --> 00:00:03.000\ntilesheet.jpg#xywh=480,0,240,135\n' +
    `\n00:00:03.000 --> ${vttTime(a.meta.duration)}\ntilesheet.jpg#xywh=720,0,240,135\n`);
  // the manifest: the original's shape plus formats.hls, URLs relative to it
  const m = await api(srv, 'GET', `/v1/assets/${a.id}/manifest.json`);
  assert.equal(m.status, 200, m.text);
  assert.deepEqual(m.json, {
    formats: { 'mpeg-dash': 'renditions/dash.mpd', hls: 'renditions/hls.m3u8', fallback: 'renditions/fallback.mp4' },
    cover: 'renditions/cover_large.jpg',
    covers: Object.fromEntries(Object.keys(COVERS).map((n) => [n.slice(6), `renditions/${n}.jpg`])),
    poster: 'renditions/poster.jpg',
    timeline: { sprite: 'renditions/tilesheet.jpg', vtt: 'renditions/timeline.vtt', name: 'tilesheet_4_1_240_135.jpg',
      count: 4, interval: 1, columns: 10, tile_width: 240, tile_height: 135 },
    is_nsfw: null,
    info: { duration: a.meta.duration, width: 1280, height: 720 },
    status: 'ready',
  });
  const base = new URL(`${srv.url}/v1/assets/${a.id}/manifest.json`);
  for (const u of [m.json.formats.fallback, m.json.timeline.sprite, m.json.timeline.vtt, m.json.cover]) {
    const got = await api(srv, 'GET', new URL(u, base).pathname);
    assert.equal(got.status, 200, u);
  }
  assert.deepEqual(probe(new URL(m.json.formats['mpeg-dash'], base).pathname).streams.length, 3);
  const jobs = (await api(srv, 'GET', `/v1/jobs?asset=${a.id}`)).json.items;
  assert.equal(jobs[0].type, 'video');
  assert.equal(jobs[0].state, 'succeeded');
  // ffmpeg's progress became job.progress events, rising, below 1
  const s = sse(`?asset=${a.id}&since=0`);
  await s.until((evs) => evs.some((e) => e.type === 'asset.ready'), 'the replay up to asset.ready');
  s.close();
  const progress = s.events.filter((e) => e.type === 'job.progress').map((e) => e.data.progress);
  assert.ok(progress.length >= 1, `progress events: ${s.events.map((e) => e.type)}`);
  assert.deepEqual(progress, [...progress].sort((x, y) => x - y));
  assert.ok(progress.every((p) => p > 0 && p < 1), String(progress));
});


// The transcode's ffmpeg of a server, found by its output (its scratch
// directory's dash.mpd), stopped or let go on: what a player sees while a
// video is processing, held still.
function signalTranscode(dataDir, signal) {
  const line = toolsOf(dataDir).find((l) => /\bffmpeg\b/.test(l) && l.includes('dash.mpd'));
  assert.ok(line, 'the transcode runs');
  process.kill(Number(line.trim().split(/\s+/)[0]), signal);
}

test('a ladder is playable while it is transcoded: asset.playable, then EVENT playlists that grow, segments before the playlists naming them', { timeout: T * 3 }, async () => {
  const s = sse();
  await s.ready;
  const r = await upload(srv, { file: clips.long, filename: 'long.mp4' });
  const id = r.json.id;
  await s.until((evs) => evs.some((e) => e.asset_id === id && ['asset.playable', 'asset.ready'].includes(e.type)), 'asset.playable');
  const ev = s.events.find((e) => e.asset_id === id && e.type === 'asset.playable');
  assert.ok(ev, `asset.playable before asset.ready: ${s.events.filter((e) => e.asset_id === id).map((e) => e.type)}`);
  signalTranscode(srv.dataDir, 'SIGSTOP');
  let live;
  try {
    assert.equal(ev.data.status, 'processing');
    assert.equal((await api(srv, 'GET', `/v1/assets/${id}`)).json.status, 'processing');
    // the manifest: the HLS master alone, nothing made yet
    const m = await api(srv, 'GET', `/v1/assets/${id}/manifest.json`);
    assert.equal(m.status, 200, m.text);
    assert.deepEqual(m.json, {
      formats: { 'mpeg-dash': null, hls: 'renditions/hls.m3u8', fallback: null },
      cover: null, covers: {}, poster: null, timeline: null, is_nsfw: null,
      info: { duration: null, width: null, height: null }, status: 'processing',
    });
    const master = await api(srv, 'GET', `/v1/assets/${id}/renditions/hls.m3u8`);
    assert.equal(master.status, 200);
    assert.match(master.headers['cache-control'], /no-cache/);
    assert.deepEqual([...master.text.matchAll(/^(hls_\d)\.m3u8$/gm)].map((x) => x[1]), ['hls_0', 'hls_1']);
    assert.match(master.text, /URI="hls_2\.m3u8"/, 'the audio rendition');
    live = {};
    for (const n of ['hls_0', 'hls_1', 'hls_2']) {
      const p = await api(srv, 'GET', `/v1/assets/${id}/renditions/${n}.m3u8`);
      assert.equal(p.status, 200, n);
      assert.match(p.headers['cache-control'], /no-cache/, `${n} is revalidated while it grows`);
      live[n] = p.text;
      assert.match(p.text, /^#EXT-X-PLAYLIST-TYPE:EVENT$/m, n);
      assert.doesNotMatch(p.text, /#EXT-X-ENDLIST/, `${n} is not finished`);
      const segs = [...p.text.matchAll(/^(seg_\d_\d{5})\.m4s$/gm)].map((x) => x[1]);
      assert.ok(segs.length >= 1 && segs.length < 5, `${n}: ${segs}`);
      // every piece a playlist names is there already
      for (const piece of [`init_${n.slice(4)}`, ...segs]) {
        const got = await api(srv, 'GET', `/v1/assets/${id}/renditions/${piece}.m4s`);
        assert.equal(got.status, 200, piece);
        assert.ok(got.body.length > 0, piece);
      }
    }
    // The end stores each playlist anew before the commit that records it
    // and the segments it adds: until then a reader gets the version its
    // row names, not the newer text naming segments not there yet.  Acted
    // out on the disk store's blob (the S3 proxy sends the row's size).
    if (!S3_URL) {
      const blob = path.join(srv.dataDir, 'blobs', id.slice(0, 2), `${id}.hls_0`);
      fs.appendFileSync(blob, '#EXTINF:6.000000,\nseg_0_00099.m4s\n');
      const p = await api(srv, 'GET', `/v1/assets/${id}/renditions/hls_0.m3u8`);
      assert.equal(p.text, live.hls_0, 'the version the row names');
    }
  } finally {
    signalTranscode(srv.dataDir, 'SIGCONT');
  }
  await s.until((evs) => evs.some((e) => e.asset_id === id && e.type === 'asset.ready'), 'asset.ready');
  s.close();
  const mine = s.events.filter((e) => e.asset_id === id && e.type.startsWith('asset.'));
  assert.equal(mine.filter((e) => e.type === 'asset.playable').length, 1, 'asset.playable once');
  // the final playlists extend the live ones (a reader holding an older
  // size reads that version whole) and end
  for (const [n, text] of Object.entries(live)) {
    const final = (await api(srv, 'GET', `/v1/assets/${id}/renditions/${n}.m3u8`)).text;
    assert.ok(final.startsWith(text), `${n}: the final one extends the live one`);
    assert.match(final, /#EXT-X-ENDLIST\n$/);
  }
  const a = (await api(srv, 'GET', `/v1/assets/${id}`)).json;
  assert.deepEqual(videoSizes(probe(byName(a).hls.url).streams), ['1280x720', '854x480']);
  assert.equal(videoPackets(`/v1/assets/${id}/renditions/hls_0.m3u8`).length, 900);
});

test('deleting a video mid-transcode stops ffmpeg and leaves nothing behind', { timeout: T * 2 }, async () => {
  const s = sse();
  await s.ready;
  const r = await upload(srv, { file: clips.portrait, filename: 'gone.mp4' });
  const id = r.json.id;
  await s.until((evs) => evs.some((e) => e.asset_id === id && e.type === 'job.progress'), 'the transcode to start');
  assert.ok(toolsOf(srv.dataDir).length >= 1, 'ffmpeg runs');
  // progress comes while ffmpeg encodes, from its start (not only once the
  // timeline's last frame is in: ffmpeg reports after every output started)
  const first = s.events.find((e) => e.asset_id === id && e.type === 'job.progress').data.progress;
  assert.ok(first < 0.5, `the first progress: ${first}`);
  const early = await api(srv, 'GET', `/v1/assets/${id}/manifest.json`);
  assert.equal(early.status, 409);
  assert.equal(early.json.error.code, 'not_ready');
  assert.equal((await api(srv, 'DELETE', `/v1/assets/${id}`)).status, 204);
  await waitFor(() => toolsOf(srv.dataDir).length === 0, { timeoutMs: 3000 * SLOW, what: 'ffmpeg to be killed (checked every second)' });
  const scratch = () => fs.readdirSync(path.join(srv.dataDir, 'tmp')).filter((f) => f.startsWith('video-'));
  await waitFor(() => scratch().length === 0, { timeoutMs: 10000 * SLOW, what: 'the scratch directory to go' });
  const shard = path.join(srv.dataDir, 'blobs', id.slice(0, 2));
  const left = fs.existsSync(shard) ? fs.readdirSync(shard).filter((f) => f.startsWith(id)) : [];
  assert.deepEqual(left, []);
  s.close();
});

test('kill -9 of the worker mid-transcode: its ffmpeg dies with it, the job is retried, the video ends ready', { timeout: T * 3 }, async () => {
  const own = await startServer({ workers: 1, args: ['--job-lease', '2'] });
  try {
    const r = await upload(own, { file: clips.portrait, filename: 'crash.mp4' });
    let tools = [];
    await waitFor(() => (tools = toolsOf(own.dataDir)).some((l) => /\bffmpeg\b/.test(l)), { timeoutMs: 30000 * SLOW, intervalMs: 20, what: 'ffmpeg to run' });
    const ffmpegPid = Number(tools.find((l) => /\bffmpeg\b/.test(l)).trim().split(/\s+/)[0]);
    const workerPid = Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(ffmpegPid)]).toString().trim());
    assert.ok(workerPid > 1 && workerPid !== process.pid && workerPid !== own.pid, `worker pid ${workerPid}`);
    process.kill(workerPid, 'SIGKILL');
    await waitFor(() => toolsOf(own.dataDir).every((l) => !l.trim().startsWith(`${ffmpegPid} `)), { timeoutMs: 3000 * SLOW, what: 'the orphan ffmpeg to die' });
    let a;
    await waitFor(async () => {
      a = (await api(own, 'GET', `/v1/assets/${r.json.id}`)).json;
      return a.status === 'ready' || a.status === 'failed';
    }, { timeoutMs: 60000 * SLOW, intervalMs: 200, what: 'the retried job' });
    assert.equal(a.status, 'ready', JSON.stringify(a.error));
    const job = (await api(own, 'GET', `/v1/jobs?asset=${a.id}`)).json.items[0];
    assert.equal(job.attempts, 2);
  } finally {
    await own.cleanup();
  }
});

test('portrait 1080x1920 (rotation metadata): portrait fallback 720x1280 and ladder up to 1080x1920', { timeout: T * 2 }, async () => {
  const a = await uploadClip(clips.portrait, 'portrait.mp4');
  assert.deepEqual([a.meta.width, a.meta.height], [1080, 1920]);
  assert.ok([90, 270].includes(a.meta.rotation), `rotation ${a.meta.rotation}`);
  const r = byName(a);
  assert.deepEqual([r.fallback.width, r.fallback.height], [720, 1280]);
  const fb = probe(r.fallback.url).streams.find((s) => s.codec_type === 'video');
  assert.deepEqual([fb.width, fb.height], [720, 1280]);
  assert.deepEqual(videoSizes(probe(r.dash.url).streams), ['1080x1920', '480x854', '720x1280']);
  assert.deepEqual([r.poster.width, r.poster.height], [1080, 1920]);
  // a portrait frame's largest 16:9 crop is 1080x607: large is that, never upscaled
  assert.ok(r.cover_large.width <= 1080 && Math.abs(r.cover_large.width / r.cover_large.height - 16 / 9) < 0.01);
  assert.deepEqual([r.cover_medium.width, r.cover_medium.height], [640, 360]);
  // 2 s: two tiles; a portrait frame is letterboxed into each, not cropped
  assert.deepEqual(a.meta.timeline, { count: 2, interval: 1 });
  assert.deepEqual([r.tilesheet.width, r.tilesheet.height], [480, 135]);
});

test('640x360 without audio: fallback 360p, no ladder', { timeout: T }, async () => {
  const a = await uploadClip(clips.small, 'small.mp4');
  assert.equal(a.meta.has_audio, false);
  assert.equal(a.meta.audio_codec, null);
  const r = byName(a);
  assert.deepEqual([r.fallback.width, r.fallback.height], [640, 360]);
  assert.equal(r.hls, undefined);
  assert.equal(r.dash, undefined);
  assert.deepEqual(probe(r.fallback.url).streams.map((s) => s.codec_type), ['video']);
  assert.deepEqual([r.cover_medium.width, r.cover_medium.height], [640, 360]);
  assert.deepEqual([r.cover_large.width, r.cover_large.height], [640, 360], 'never upscaled');
  const m = (await api(srv, 'GET', `/v1/assets/${a.id}/manifest.json`)).json;
  assert.deepEqual(m.formats, { 'mpeg-dash': null, hls: null, fallback: 'renditions/fallback.mp4' });
  assert.equal(m.timeline.name, 'tilesheet_3_1_240_135.jpg');
  // without a ladder nothing plays before the end: asset.playable commits
  // with the result, once, just before asset.ready
  const s = sse(`?asset=${a.id}&since=0&types=asset.playable,asset.ready`);
  await s.until((evs) => evs.some((e) => e.type === 'asset.ready'), 'the replay up to asset.ready');
  s.close();
  assert.deepEqual(s.events.map((e) => e.type), ['asset.playable', 'asset.ready']);
  assert.equal(s.events[1].id, s.events[0].id + 1);
});

test('a 1440p clip: ladder up to 1080p, and a poster of at most 1080p (its frames are held in the transcode)', { timeout: T }, async () => {
  const a = await uploadClip(clips.qhd, 'qhd.mp4');
  const r = byName(a);
  assert.deepEqual([r.fallback.width, r.fallback.height], [1280, 720]);
  assert.deepEqual([r.poster.width, r.poster.height], [1920, 1080]);
  assert.deepEqual(probe(r.poster.url).streams.map((x) => [x.width, x.height]), [[1920, 1080]]);
  assert.deepEqual([r.cover_large.width, r.cover_large.height], [1280, 720]);
  assert.deepEqual(videoSizes(probe(r.dash.url).streams), ['1280x720', '1920x1080', '854x480']);
});

test('a silent 0.5 s 720p clip: a ladder without audio, both manifests read, a poster', { timeout: T }, async () => {
  const a = await uploadClip(clips.silent, 'silent.mp4');
  assert.equal(a.meta.has_audio, false);
  const r = byName(a);
  for (const m of ['hls', 'dash']) {
    const p = probe(r[m].url);
    assert.deepEqual(videoSizes(p.streams), ['1280x720', '854x480'], m);
    assert.ok(!p.streams.some((x) => x.codec_type === 'audio'), `${m} has no audio`);
  }
  assert.deepEqual([r.poster.width, r.poster.height], [1280, 720]);
  // under a second: no timeline
  assert.equal(a.meta.timeline, null);
  assert.equal(r.tilesheet, undefined);
  assert.equal(r.timeline, undefined);
  const m = (await api(srv, 'GET', `/v1/assets/${a.id}/manifest.json`)).json;
  assert.equal(m.timeline, null);
  assert.equal(m.formats.hls, 'renditions/hls.m3u8');
});

test('1 s of video in 20 s of audio: ready, the poster is the first frame, tiles over all 20 s hold the last one', { timeout: T }, async () => {
  const a = await uploadClip(clips.stub, 'stub.mp4');
  assert.ok(Math.abs(a.meta.duration - 20) < 0.2, `the container's duration: ${a.meta.duration}`);
  const r = byName(a);
  // The poster looks from 10% (2 s) on, past the picture's end: it keeps
  // the first frame (the pattern; every later frame is white).
  assert.deepEqual([r.poster.width, r.poster.height], [1280, 720]);
  const poster = path.join(dir, `${a.id}-poster.jpg`);
  fs.writeFileSync(poster, (await api(srv, 'GET', r.poster.url)).body);
  const mean = meanOf(poster);
  assert.ok(mean > 40 && mean < 200, `the poster's mean ${mean}: the first frame`);
  assert.equal((await api(srv, 'GET', r.cover_large.url)).status, 200);
  // The timeline spans the container: 7 tiles at 3 s, the last frame held
  // after the picture ends (what a player shows meanwhile), none blank.
  assert.deepEqual(a.meta.timeline, { count: 7, interval: 3 });
  assert.deepEqual([r.tilesheet.width, r.tilesheet.height], [7 * 240, 135]);
  const sheet = path.join(dir, `${a.id}-sheet.jpg`);
  fs.writeFileSync(sheet, (await api(srv, 'GET', r.tilesheet.url)).body);
  for (let i = 1; i < 7; i++) {
    const tile = path.join(dir, `${a.id}-tile${i}.png`);
    execFileSync('vips', ['extract_area', sheet, tile, String(i * 240 + 8), '8', '224', '119'], { timeout: 30000 });
    assert.ok(meanOf(tile) > 200, `tile ${i}: the held white frame, mean ${meanOf(tile)}`);
  }
  const vtt = (await api(srv, 'GET', r.timeline.url)).body.toString();
  assert.equal(vtt.match(/-->/g).length, 7);
  assert.ok(vtt.includes(`00:00:18.000 --> ${vttTime(a.meta.duration)}\ntilesheet.jpg#xywh=1440,0,240,135`), vtt);
  // The ladder and the fallback as for any 720p clip, with all the audio.
  for (const m of ['hls', 'dash']) {
    const p = probe(r[m].url);
    assert.deepEqual(videoSizes(p.streams), ['1280x720', '854x480'], m);
    assert.ok(p.streams.some((x) => x.codec_type === 'audio'), `${m} has audio`);
  }
  const fb = probe(r.fallback.url);
  assert.deepEqual(fb.streams.map((x) => x.codec_type).sort(), ['audio', 'video']);
  assert.ok(Number(fb.format.duration) > 19, `the fallback lasts ${fb.format.duration} s`);
});

test('a truncated MP4, a text file named .mp4, an over-long and an over-large video fail with clear codes', { timeout: T }, async () => {
  const whole = fs.readFileSync(clips.landscape);
  const cut = await upload(srv, { data: whole.subarray(0, Math.floor(whole.length / 2)), filename: 'cut.mp4' });
  assert.equal(cut.json.kind, 'video');
  const c = await settled(cut.json.id);
  assert.equal(c.status, 'failed');
  assert.equal(c.error.code, 'corrupt_video', JSON.stringify(c.error));
  assert.deepEqual(c.renditions, []);

  assert.equal((await api(srv, 'GET', `/v1/assets/${c.id}/manifest.json`)).json.error.code, 'not_ready');

  const text = await upload(srv, { data: Buffer.from('not a video at all\n'.repeat(50)), filename: 'clip.mp4' });
  assert.equal(text.status, 201);
  assert.equal(text.json.status, 'failed');
  assert.equal(text.json.error.code, 'not_a_video');
  const notVideo = await api(srv, 'GET', `/v1/assets/${text.json.id}/manifest.json`);
  assert.equal(notVideo.status, 404);
  assert.equal(notVideo.json.error.code, 'not_found');

  // 640x360 (230,400 pixels) for 3 s; 1280x720 (921,600) for 0.5 s
  const strict = await startServer({ workers: 1, args: ['--max-video-duration', '2', '--max-video-pixels', '500000'] });
  try {
    for (const [clip, code] of [[clips.small, 'video_too_long'], [clips.silent, 'video_too_large']]) {
      const r = await upload(strict, { file: clip, filename: 'refused.mp4' });
      let a;
      await waitFor(async () => {
        a = (await api(strict, 'GET', `/v1/assets/${r.json.id}`)).json;
        return a.status === 'failed' || a.status === 'ready';
      }, { timeoutMs: 60000 * SLOW, intervalMs: 200, what: `${code}: the video to fail` });
      assert.equal(a.error?.code, code, JSON.stringify(a));
      assert.deepEqual(a.renditions, [], 'no transcode');
    }
  } finally {
    await strict.cleanup();
  }
});

test('--video-preset is checked at start', { timeout: T }, async () => {
  await assert.rejects(startServer({ args: ['--video-preset', 'warp'] }));
});

// ---------- the owner's cover ----------

let seq = 0;
// What the server sends, decoded by vips: its real size, whatever the JSON says.
async function decoded(url, s = srv) {
  const r = await api(s, 'GET', url);
  assert.equal(r.status, 200, `${url}: ${r.text}`);
  const f = path.join(dir, `got-${++seq}`);
  fs.writeFileSync(f, r.body);
  const m = /: (\d+)x(\d+) .*\b(\w+)load/.exec(execFileSync('vipsheader', [f]).toString());
  assert.ok(m, `vips reads ${url}`);
  return { width: Number(m[1]), height: Number(m[2]), format: m[3], res: r };
}

const putCover = (id, file, { s = srv, token = s.token } = {}) =>
  api(s, 'PUT', `/v1/assets/${id}/cover`, { token, headers: ['Content-Type: application/octet-stream'], args: ['--data-binary', `@${file}`] });

// The asset once its cover record has left `processing`.
async function coverSettled(id, s = srv) {
  let a;
  await waitFor(async () => {
    a = (await api(s, 'GET', `/v1/assets/${id}`)).json;
    return a.cover && a.cover.status !== 'processing';
  }, { timeoutMs: 60000 * SLOW, intervalMs: 100, what: `the cover of ${id}` });
  return a;
}

// The blobs of an owner's covers: the image sent (coversrc_V) and its sizes (cover_large_V …).
const coverBlobs = (s, id) => blobFiles(s.dataDir).map((f) => path.basename(f))
  .filter((f) => f.startsWith(`${id}.cover`) && /_[0-9a-f]{12}$/.test(f));

test('an owner\'s cover replaces the five sizes: asset JSON, manifest and asset.updated show it under new URLs', { timeout: T * 2 }, async () => {
  const a = await uploadClip(clips.small, 'cover.mp4');
  assert.equal(a.cover, null);
  const auto = byName(a);
  const autoLarge = await api(srv, 'GET', auto.cover_large.url);
  assert.equal(autoLarge.headers['cache-control'], 'private, no-cache', 'a name an owner may replace is revalidated');
  const s = sse(`?asset=${a.id}`);
  await s.ready;
  const put = await putCover(a.id, images['cover.jpg']);
  assert.equal(put.status, 202, put.text);
  assert.deepEqual(put.json.cover, { status: 'processing', error: null });
  assert.equal(put.json.status, 'ready', 'the video itself is untouched');
  await s.until((evs) => evs.some((e) => e.type === 'asset.updated' && e.data.cover?.status === 'ready'), 'asset.updated with the cover ready');
  const updates = s.events.filter((e) => e.type === 'asset.updated').map((e) => e.data.cover.status);
  assert.deepEqual(updates, ['processing', 'ready']);
  assert.ok(!s.events.some((e) => e.type === 'asset.processing'), 'the video never went back to processing');
  s.close();

  const b = (await api(srv, 'GET', `/v1/assets/${a.id}`)).json;
  assert.equal(b.status, 'ready');
  const r = byName(b);
  const version = r.cover_large.version;
  assert.match(version, /^[0-9a-f]{12}$/);
  for (const [name, [w, h]] of Object.entries(COVERS)) {
    assert.equal(r[name].version, version, name);
    assert.equal(r[name].url, `/v1/assets/${a.id}/renditions/${name}?v=${version}`);
    assert.deepEqual([r[name].width, r[name].height], [w, h], name);
    const got = await decoded(r[name].url);
    assert.deepEqual([got.width, got.height, got.format], [w, h, 'jpeg'], name);
    assert.equal(got.res.body.length, r[name].size);
    assert.equal(got.res.headers['cache-control'], 'private, max-age=31536000, immutable', 'a versioned URL never changes');
  }
  assert.deepEqual(r.poster, auto.poster, 'the poster frame stays');
  assert.deepEqual(r.fallback, auto.fallback);
  // the plain name now sends the owner's cover, under another ETag
  const plain = await api(srv, 'GET', `/v1/assets/${a.id}/renditions/cover_large`, { headers: [`If-None-Match: ${autoLarge.headers.etag}`] });
  assert.equal(plain.status, 200, 'the old ETag no longer matches');
  assert.notEqual(plain.headers.etag, autoLarge.headers.etag);
  assert.equal(plain.headers['cache-control'], 'private, no-cache');
  assert.equal(plain.body.length, r.cover_large.size);

  const m = (await api(srv, 'GET', `/v1/assets/${a.id}/manifest.json`)).json;
  assert.equal(m.cover, `renditions/cover_large.jpg?v=${version}`);
  assert.deepEqual(m.covers, Object.fromEntries(Object.keys(COVERS).map((n) => [n.slice(6), `renditions/${n}.jpg?v=${version}`])));
  const viaManifest = await api(srv, 'GET', new URL(m.cover, `${srv.url}/v1/assets/${a.id}/manifest.json`).pathname + `?v=${version}`);
  assert.equal(viaManifest.status, 200);
  assert.equal(viaManifest.headers['content-type'], 'image/jpeg');
  assert.equal(viaManifest.body.length, r.cover_large.size);
  assert.deepEqual(coverBlobs(srv, a.id).filter((f) => f.includes('coversrc_')), [], 'the image sent is gone once made');

  // another cover: new version, new URLs; the replaced sizes' blobs go
  const again = await putCover(a.id, images['second.png']);
  assert.equal(again.status, 202, again.text);
  const c = await coverSettled(a.id);
  assert.equal(c.cover.status, 'ready', JSON.stringify(c.cover));
  const v2 = byName(c).cover_large.version;
  assert.notEqual(v2, version);
  assert.deepEqual([byName(c).cover_large.width, byName(c).cover_large.height], [1280, 720]);
  await waitFor(() => coverBlobs(srv, a.id).every((f) => !f.endsWith(version)), { timeoutMs: 5000 * SLOW, what: 'the first cover\'s blobs to go' });
  const jobs = (await api(srv, 'GET', `/v1/jobs?asset=${a.id}`)).json.items.map((j) => [j.type, j.state]);
  assert.deepEqual(jobs.sort(), [['cover', 'succeeded'], ['cover', 'succeeded'], ['video', 'succeeded']]);
});

test('a cover is refused with a clear error: too small, not an image, not a video, not yours', { timeout: T * 2 }, async () => {
  const a = await uploadClip(clips.small, 'refusals.mp4');
  const small = await putCover(a.id, images['small.jpg']);
  const e = assertError(small, 422, 'cover_too_small');
  assert.match(e.message, /400x200.*480x270/);
  assertError(await putCover(a.id, path.join(dir, 'landscape.mp4')), 415, 'unsupported_format', 'a video as a cover');
  const text = path.join(dir, 'cover.txt');
  fs.writeFileSync(text, TEXT);
  assertError(await putCover(a.id, text), 415, 'unsupported_format', 'text');
  const empty = path.join(dir, 'empty');
  fs.writeFileSync(empty, '');
  assertError(await putCover(a.id, empty), 400, 'missing_body');
  const png = path.join(dir, 'tiny.png');
  fs.writeFileSync(png, TINY_PNG);
  const image = await upload(srv, { file: png, filename: 'tiny.png' });
  assertError(await putCover(image.json.id, images['cover.jpg']), 409, 'not_a_video', 'an image');
  const other = await createKey(srv.dataDir, 'someone', 'someone-else');
  assertError(await putCover(a.id, images['cover.jpg'], { token: other }), 404, 'not_found', 'another owner');
  assertError(await putCover('AAAAAAAAAAAAAAAAAAAAAA', images['cover.jpg']), 404, 'not_found', 'no such asset');
  // nothing changed, nothing queued, nothing left behind
  const b = (await api(srv, 'GET', `/v1/assets/${a.id}`)).json;
  assert.equal(b.cover, null);
  assert.equal(b.updated, a.updated);
  assert.deepEqual((await api(srv, 'GET', `/v1/jobs?asset=${a.id}`)).json.items.map((j) => j.type), ['video']);
  assert.deepEqual(coverBlobs(srv, a.id), []);

  // a header we do not read (TIFF): accepted, then the worker refuses it;
  // the covers stay the frame's
  const tif = await putCover(a.id, images['small.tif']);
  assert.equal(tif.status, 202, tif.text);
  const c = await coverSettled(a.id);
  assert.equal(c.cover.status, 'failed');
  assert.equal(c.cover.error.code, 'cover_too_small', JSON.stringify(c.cover));
  assert.deepEqual(c.renditions, a.renditions);
  assert.equal(c.status, 'ready');
  // its job failed; a retry puts the cover (never the video) back to processing
  const job = (await api(srv, 'GET', `/v1/jobs?asset=${a.id}`)).json.items.find((j) => j.type === 'cover');
  assert.deepEqual([job.state, job.error?.code], ['failed', 'cover_too_small']);
  const retried = await api(srv, 'POST', `/v1/jobs/${job.id}/retry`);
  assert.equal(retried.status, 200, retried.text);
  assert.equal((await api(srv, 'GET', `/v1/assets/${a.id}`)).json.status, 'ready');
  const again = await coverSettled(a.id);
  assert.deepEqual([again.status, again.cover.status, again.cover.error?.code], ['ready', 'failed', 'cover_too_small']);
  // stored 270x480 but shown turned (EXIF 6): 480x270 is big enough
  const turned = await putCover(a.id, images['turned.jpg']);
  assert.equal(turned.status, 202, turned.text);
  const d = await coverSettled(a.id);
  assert.equal(d.cover.status, 'ready', JSON.stringify(d.cover));
  const r = byName(d);
  assert.deepEqual([r.cover_large.width, r.cover_large.height], [480, 270], 'turned, never upscaled');
  const got = await decoded(r.cover_small.url);
  assert.deepEqual([got.width, got.height], [480, 270]);
});

test('a re-run of the transcode keeps the owner\'s cover', { timeout: T * 4 }, async () => {
  // Two workers: one transcodes and is frozen mid-way (SIGSTOP), the other
  // makes the cover; then the first is killed, and the transcode runs again
  // once its lease (long enough for the cover to be claimed first) is over.
  const own = await startServer({ workers: 2, args: ['--job-lease', String(10 * SLOW)] });
  const stopped = [];
  try {
    const r = await upload(own, { file: clips.portrait, filename: 'rerun.mp4' });
    let tools = [];
    await waitFor(() => (tools = toolsOf(own.dataDir)).some((l) => /\bffmpeg\b/.test(l)), { timeoutMs: 30000 * SLOW, intervalMs: 20, what: 'ffmpeg to run' });
    const ffmpegPid = Number(tools.find((l) => /\bffmpeg\b/.test(l)).trim().split(/\s+/)[0]);
    const workerPid = Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(ffmpegPid)]).toString().trim());
    for (const pid of [ffmpegPid, workerPid]) { process.kill(pid, 'SIGSTOP'); stopped.push(pid); }
    const put = await putCover(r.json.id, images['cover.jpg'], { s: own });
    assert.equal(put.status, 202, put.text);
    const withCover = await coverSettled(r.json.id, own);
    assert.equal(withCover.cover.status, 'ready', JSON.stringify(withCover.cover));
    assert.equal(withCover.status, 'processing', 'the transcode is still in hand');
    const version = byName(withCover).cover_large.version;
    for (const pid of stopped.splice(0)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    let a;
    await waitFor(async () => {
      a = (await api(own, 'GET', `/v1/assets/${r.json.id}`)).json;
      return a.status === 'ready' || a.status === 'failed';
    }, { timeoutMs: 90000 * SLOW, intervalMs: 200, what: 'the transcode to run again' });
    assert.equal(a.status, 'ready', JSON.stringify(a.error));
    const video = (await api(own, 'GET', `/v1/jobs?asset=${a.id}`)).json.items.find((j) => j.type === 'video');
    assert.equal(video.attempts, 2, 'the transcode ran twice');
    const rr = byName(a);
    for (const [name, [w, h]] of Object.entries(COVERS)) {
      assert.equal(rr[name].version, version, `${name} is the owner's`);
      assert.deepEqual([rr[name].width, rr[name].height], [w, h], name);
    }
    assert.deepEqual([rr.poster.width, rr.poster.height], [1080, 1920], 'the frame is the new transcode\'s');
    const m = (await api(own, 'GET', `/v1/assets/${a.id}/manifest.json`)).json;
    assert.equal(m.cover, `renditions/cover_large.jpg?v=${version}`);
    const large = await decoded(rr.cover_large.url, own);
    assert.deepEqual([large.width, large.height], [1280, 720], 'not the portrait frame\'s crop');
  } finally {
    for (const pid of stopped) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    await own.cleanup();
  }
});

const HEAVY = process.env.ASSETD_HEAVY === '1';
test('the corpus 1080p clip: fallback 720p, ladder 480/720/1080 (ASSETD_HEAVY=1)', { timeout: T * 6, skip: !HEAVY && 'set ASSETD_HEAVY=1' }, async () => {
  const a = await uploadClip(path.join(CORPUS, 'video', 'clip_1080p30_30s.mp4'), 'clip.mp4');
  const r = byName(a);
  assert.deepEqual([r.fallback.width, r.fallback.height], [1280, 720]);
  for (const m of ['hls', 'dash']) assert.deepEqual(videoSizes(probe(r[m].url).streams), ['1280x720', '1920x1080', '854x480'], m);
});
