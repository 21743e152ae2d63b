// The web page's large uploads (web/upload.js): a file over 16 MiB goes
// through tus (/v1/tus/, npm tus-js-client's browser bundle embedded as
// /tus.min.js) and survives what breaks a long upload.  One upload is cut
// twice: the server is killed (kill -9) and restarted on the same data dir
// and port while the tab stays, and the tab retries by itself; then the
// server is killed again with the tab closed, and after the restart the tab
// is opened again and the same file chosen again.  Each time it goes on from
// the bytes the server had acknowledged (the first PATCH's Upload-Offset is
// past 0, no new upload is created, and the restarted server receives less
// than the file), and the asset ends as POST /v1/assets would make it, with
// the file's SHA-256.  A small file still goes in one POST; a large one on
// the S3 store goes through tus too.
//
// The file is 200 MiB of random bytes, in both builds (about 12 s either way).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import {
  TEST_TIMEOUT as T, startServer, api, upload, prng, makeTempDir,
} from './lib.mjs';
import { launchBrowser, openPage, waitInPage, useKey, cardFor, screenshot } from './browser.mjs';
import { makeBucket, S3RVER_ACCESS_KEY, startS3rver } from './s3servers.mjs';

const MiB = 1024 * 1024;
const SIZE = 200 * MiB;
const TUS = 'Tus-Resumable: 1.0.0';
// What a browser logs when its server is killed under it or a dead writer's
// lease still holds (423): expected here, nothing else is.
const EXPECTED_ERRORS = [/net::ERR_/, /status of 423/];

let browser, dir;
before(async () => {
  browser = await launchBrowser();
  dir = makeTempDir('assetd-webui-tus-');
});
after(async () => { await browser?.close(); });

/** Writes size random bytes to dir/name, after a fixed header that no
 *  format claims (random bytes starting "MZ" are a DOS executable to
 *  libmagic); -> {file, sha256}. */
function randomFile(name, size) {
  const file = path.join(dir, name);
  const next = prng();
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'w');
  try {
    for (let left = size; left > 0;) {
      const chunk = next(Math.min(left, 8 * MiB));
      if (left === size) Buffer.from('\x00\xffASSETD-TEST\x01', 'latin1').copy(chunk);
      hash.update(chunk);
      fs.writeSync(fd, chunk);
      left -= chunk.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { file, sha256: hash.digest('hex') };
}

/** Every request the page makes to the upload routes (not the gallery's
 *  GET /v1/assets), with the phase it came in. */
function recordUploads(page, log, phase) {
  page.on('request', (req) => {
    const { pathname } = new URL(req.url());
    if (!pathname.startsWith('/v1/tus') && !(pathname === '/v1/assets' && req.method() === 'POST')) return;
    const offset = req.headers()['upload-offset'];
    log.push({ phase: phase(), method: req.method(), path: pathname, offset: offset === undefined ? null : Number(offset) });
  });
}

/** Every value the upload row's bar takes, from the page's side. */
const watchProgress = (page) => page.evaluate(() => {
  window.__progress = [];
  new MutationObserver((ms) => {
    for (const m of ms) {
      if (m.target.tagName === 'PROGRESS' && m.attributeName === 'value') window.__progress.push(m.target.value);
    }
  }).observe(document.getElementById('uploads'), { subtree: true, attributes: true, attributeFilter: ['value'] });
});

const committedPatch = (s) => s.accessLog.find((l) => l.method === 'PATCH' && l.route === '/v1/tus/{id}' && l.status === 204);

test('a large file goes up with tus and resumes after kill -9 of the server, in the same tab and after reopening it', { timeout: T * 2 }, async (t) => {
  const big = randomFile('big.bin', SIZE);
  const args = ['--tus-lease', '1'];   // a killed writer's lease runs out quickly
  const first = await startServer({ args });
  const servers = [first];
  t.after(async () => { for (const s of servers.reverse()) await s.cleanup(); });
  const { port, dataDir } = first;
  const restart = async () => {
    const s = await startServer({ dataDir, args, listen: `127.0.0.1:${port}` });
    servers.push(s);
    return s;
  };

  let phase = 'first';
  const requests = [];
  const { page, assertClean } = await openPage(t, browser, `${first.url}/`);
  recordUploads(page, requests, () => phase);
  await useKey(page, first.token);
  await page.setInputFiles('#files', big.file);

  // 1. Killed once its first chunk is committed; the tab retries on its own.
  await first.waitUntil(committedPatch, 30000, 'the first chunk to be committed');
  await first.kill9();
  phase = 'same tab';
  const second = await restart();
  const where = requests.find((r) => r.phase === 'first' && r.method === 'PATCH').path;
  const id = where.split('/').pop();
  const head1 = await api(second, 'HEAD', where, { headers: [TUS] });
  assert.equal(head1.status, 200, head1.text);
  const offset1 = Number(head1.headers['upload-offset']);
  assert.ok(offset1 > 0 && offset1 < SIZE, `some but not all committed: ${offset1} of ${SIZE}`);
  await second.waitUntil(committedPatch, 30000, 'the same tab to resume on the restarted server');
  await second.kill9();
  phase = 'closed';
  await page.goto('about:blank');   // the tab goes, with the server

  const sameTab = requests.filter((r) => r.phase === 'same tab');
  assert.ok(!sameTab.some((r) => r.method === 'POST'), `no new upload: ${JSON.stringify(sameTab)}`);
  const firstPatch = sameTab.find((r) => r.method === 'PATCH' && r.path === where);
  assert.ok(firstPatch, JSON.stringify(sameTab));
  assert.equal(firstPatch.offset, offset1, 'the first PATCH after the restart starts at the committed offset');

  // 2. Reopened after the restart, the same file chosen again: it resumes.
  const third = await restart();
  const head2 = await api(third, 'HEAD', where, { headers: [TUS] });
  const offset2 = Number(head2.headers['upload-offset']);
  assert.ok(offset2 > offset1 && offset2 < SIZE, `more committed, not all: ${offset1} then ${offset2} of ${SIZE}`);
  phase = 'reopened';
  await page.goto(`${third.url}/`);
  await waitInPage(page, 'the kept key to reconnect', () => document.getElementById('connection').textContent === 'Live');
  await watchProgress(page);
  await page.setInputFiles('#files', big.file);
  await waitInPage(page, 'the resumed upload to finish', () => document.querySelector('.upload')?.dataset.state === 'done', undefined, 60000);

  const reopened = requests.filter((r) => r.phase === 'reopened');
  assert.ok(!reopened.some((r) => r.method === 'POST'), `no new upload: ${JSON.stringify(reopened)}`);
  const patches = reopened.filter((r) => r.method === 'PATCH');
  assert.ok(patches.length > 0 && patches.every((r) => r.path === where), JSON.stringify(reopened));
  assert.equal(patches[0].offset, offset2, 'the first PATCH after reopening starts at the committed offset');
  const received = third.accessLog.filter((l) => l.method === 'PATCH' && l.route === '/v1/tus/{id}');
  const accepted = received.filter((l) => l.status === 204).reduce((n, l) => n + l.bytes_in, 0);
  const sent = received.reduce((n, l) => n + l.bytes_in, 0);
  assert.equal(accepted, SIZE - offset2, 'only the bytes the server lacked were accepted');
  assert.ok(sent < SIZE, `the restarted server received ${sent} bytes, less than the file's ${SIZE}`);

  // The bar went on from where the upload was, not from 0, and ended full.
  const seen = await page.evaluate(() => window.__progress);
  assert.ok(seen.length > 0 && seen.at(-1) === 100, `progress values: ${seen}`);
  assert.ok(Math.min(...seen) >= Math.floor((offset2 * 100) / SIZE), `the bar starts at the resumed offset: ${seen}`);

  // The asset: the upload's id, the file's bytes, and what POST makes of random bytes.
  const row = page.locator('.upload').first();
  assert.equal(await row.locator('.upload-name').textContent(), 'big.bin');
  assert.equal(await row.locator('.upload-result').textContent(), `uploaded · ${SIZE / MiB} MiB`);
  const asset = (await api(third, 'GET', `/v1/assets/${id}`)).json;
  assert.equal(asset.sha256, big.sha256);
  assert.equal(asset.size, SIZE);
  assert.equal(asset.filename, 'big.bin');
  const small = prng()(4096);
  Buffer.from('\x00\xffASSETD-TEST\x01', 'latin1').copy(small);   // randomFile's header: no format claims it
  const posted = await upload(third, { data: small, filename: 'small.bin' });
  assert.equal(posted.status, 201, posted.text);
  assert.deepEqual([asset.kind, asset.status, asset.content_type],
    [posted.json.kind, posted.json.status, posted.json.content_type], 'as POST /v1/assets makes it');
  await cardFor(page, 'big.bin').waitFor();
  assert.equal(await cardFor(page, 'big.bin').getAttribute('data-id'), id);
  // Finished: nothing left to resume, so choosing the file again would make a new asset.
  assert.deepEqual(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('tus::'))), []);
  await screenshot(page, 'webui-tus.png');
  await assertClean(EXPECTED_ERRORS);
});

test('a file up to 16 MiB is one POST /v1/assets, not tus', { timeout: T }, async (t) => {
  const small = randomFile('small.bin', 16 * MiB);
  const srv = await startServer();
  t.after(() => srv.cleanup());
  const requests = [];
  const { page, assertClean } = await openPage(t, browser, `${srv.url}/`);
  recordUploads(page, requests, () => 'only');
  await useKey(page, srv.token);
  await page.setInputFiles('#files', small.file);
  await waitInPage(page, 'the upload to finish', () => document.querySelector('.upload')?.dataset.state === 'done');
  assert.deepEqual(requests.map((r) => `${r.method} ${r.path}`), ['POST /v1/assets']);
  const id = await cardFor(page, 'small.bin').getAttribute('data-id');
  assert.equal((await api(srv, 'GET', `/v1/assets/${id}`)).json.sha256, small.sha256);
  await assertClean();
});

test('on the S3 store a large file goes up through tus as well', { timeout: T }, async (t) => {
  const big = randomFile('s3.bin', 17 * MiB);
  const s3 = await startS3rver(t);
  const bucket = await makeBucket(s3.endpoint);
  const env = { AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: '' };
  const srv = await startServer({ env, args: ['--store', `s3://${bucket}`, '--s3-endpoint', s3.endpoint] });
  t.after(() => srv.cleanup());
  const requests = [];
  const { page, assertClean } = await openPage(t, browser, `${srv.url}/`);
  recordUploads(page, requests, () => 'only');
  await useKey(page, srv.token);
  await page.setInputFiles('#files', big.file);
  await waitInPage(page, 'the upload to finish', () => document.querySelector('.upload')?.dataset.state === 'done', undefined, 60000);
  assert.deepEqual(requests.map((r) => `${r.method} ${r.offset}`), ['POST null', 'PATCH 0', 'PATCH 16777216']);
  const id = await cardFor(page, 's3.bin').getAttribute('data-id');
  assert.equal((await api(srv, 'GET', `/v1/assets/${id}`)).json.sha256, big.sha256);
  await assertClean();
});
