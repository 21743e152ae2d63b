// The web page at / (web/, compiled into the binary): its static routes as
// a client sees them (types, CSP, ETag/304, no key needed), then the page
// itself driven in headless Chromium (Debian's chromium, through npm
// playwright-core, see browser.mjs): key, upload with progress, live
// thumbnails, failures, detail with renditions and jobs, retry, delete.
// Screenshots go to build/test-artifacts/ for a person to look at.  Large
// files and their resumption are webui_tus.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  REPO, CORPUS, TEST_TIMEOUT as T, TEXT, TINY_PNG, startServer, api, curl, upload, sha256, waitFor,
  pngBomb,
} from './lib.mjs';
import { launchBrowser, openPage as openPageAt, waitInPage, useKey, cardFor, screenshot } from './browser.mjs';

const PHOTO = path.join(CORPUS, 'photos', '30_orig_RainDrops_1920x1200.jpg');
const JS = 'text/javascript; charset=utf-8';
const WEB = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: JS },
  '/upload.js': { file: 'upload.js', type: JS },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  // npm tus-js-client's browser bundle behind its licence (the Makefile).
  '/tus.min.js': { file: '../build/gen/tus.min.js', type: JS },
};
// A name that is markup: the page must show it as text and never run it.
const HOSTILE = '<img src=x onerror=window.__xss=1>.jpg';

let srv, browser;
before(async () => { srv = await startServer({ workers: 1 }); });
// One hook, browser first: a failed hook skips the hooks after it, and a
// browser left open would keep this file's process alive for ever.
after(async () => {
  try { await browser?.close(); } finally { await srv?.cleanup(); }
});

// ------------------------------------------------------------ static routes

test('GET /, /app.js, /upload.js, /app.css, /tus.min.js: the files of web/, with types, validators and no key', { timeout: T }, async () => {
  for (const [route, { file, type }] of Object.entries(WEB)) {
    const bytes = fs.readFileSync(path.join(REPO, 'web', file));
    const r = await api(srv, 'GET', route, { token: null });
    assert.equal(r.status, 200, `${route}: ${r.text.slice(0, 200)}`);
    assert.equal(r.headers['content-type'], type, route);
    assert.ok(r.body.equals(bytes), `${route}: the binary serves a different ${file} than web/ has (rebuild?)`);
    assert.equal(r.headers.etag, `"${sha256(bytes)}"`, `${route}: ETag is the SHA-256 of the bytes`);
    assert.equal(r.headers['cache-control'], 'no-cache', route);
    assert.equal(r.headers['x-content-type-options'], 'nosniff', route);

    // Revalidation: 304 with the validator and no body, strong or weak form.
    for (const inm of [r.headers.etag, `W/${r.headers.etag}`, `"nope", ${r.headers.etag}`]) {
      const again = await api(srv, 'GET', route, { token: null, headers: [`If-None-Match: ${inm}`] });
      assert.equal(again.status, 304, `${route} If-None-Match: ${inm}`);
      assert.equal(again.body.length, 0);
      assert.equal(again.headers.etag, r.headers.etag);
      assert.equal(again.headers['cache-control'], 'no-cache');
    }
    const stale = await api(srv, 'GET', route, { token: null, headers: ['If-None-Match: "0000"'] });
    assert.equal(stale.status, 200, `${route}: a different ETag gets the file`);

    const head = await api(srv, 'HEAD', route, { token: null });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers['content-length']), bytes.length);
    // A key, even a wrong one, changes nothing: these routes are public.
    assert.equal((await api(srv, 'GET', route, { token: 'ak_wrong' })).status, 200);
    assert.equal((await api(srv, 'POST', route, { token: null })).status, 405, `POST ${route}`);
  }
  // The bundle travels with its licence, then exactly as npm installed it.
  const tusjs = (await api(srv, 'GET', '/tus.min.js', { token: null })).body;
  const npm = fs.readFileSync(path.join(REPO, 'web/vendor/node_modules/tus-js-client/dist/tus.min.js'));
  assert.match(tusjs.subarray(0, 200).toString(), /^\/\*! tus-js-client[^\n]*\nThe MIT License \(MIT\)\n\nCopyright \(c\) 2015 tus/);
  assert.ok(tusjs.subarray(tusjs.length - npm.length).equals(npm));
});

test('the page has a strict Content-Security-Policy and nothing inline that it would block', { timeout: T }, async () => {
  const r = await curl(['--noproxy', '*', `${srv.url}/`]);
  const csp = r.headers['content-security-policy'] || '';
  const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
  assert.deepEqual(directives['default-src'], ["'self'"], csp);
  assert.deepEqual(directives['img-src'], ["'self'", 'blob:', 'data:'], csp);
  assert.deepEqual(directives['connect-src'], ["'self'"], csp);
  assert.deepEqual(directives['frame-ancestors'], ["'none'"], csp);
  assert.deepEqual(directives['object-src'], ["'none'"], csp);
  assert.ok(!directives['script-src'] && !directives['style-src'], 'scripts and styles fall back to default-src');
  assert.ok(!/unsafe-(inline|eval)|\*/.test(csp), `no wildcard or unsafe-*: ${csp}`);
  // The JS and CSS need no CSP of their own (not documents), but keep their types.
  assert.equal((await api(srv, 'GET', '/app.js', { token: null })).headers['content-security-policy'], undefined);

  // What the policy would block must not be in the page: inline script,
  // style attributes or elements, inline handlers, javascript: URLs, and
  // anything loaded from another origin.
  const html = r.text;
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
  assert.deepEqual(scripts.map(([, attrs]) => /\bsrc="([^"]*)"/.exec(attrs)?.[1]), ['/tus.min.js', '/app.js'],
    'only our own scripts, tus-js-client first');
  for (const [, , body] of scripts) assert.equal(body.trim(), '', 'no inline script');
  assert.ok(!/<style\b|\sstyle=|\son[a-z]+=|javascript:/i.test(html), 'no inline style or handlers');
  assert.ok(!/(src|href)="(https?:)?\/\//i.test(html), 'nothing from another origin (works without a CDN)');
  for (const file of ['app.js', 'upload.js']) {
    const js = fs.readFileSync(path.join(REPO, 'web', file), 'utf8');
    assert.ok(!/\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function/.test(js),
      `${file} builds the DOM from text only`);
  }
});

// ------------------------------------------------------------ the page in Chromium

const openPage = (t, b) => openPageAt(t, b, `${srv.url}/`);

before(async () => { browser = await launchBrowser(); });

test('upload through the page: the bar reaches 100 %, the thumbnail arrives live; failures say why', { timeout: T * 2 }, async (t) => {
  const { page, assertClean, ...session } = await openPage(t, browser);
  assert.equal(await page.title(), 'assetd');
  await useKey(page, srv.token);
  await page.evaluate(() => { window.__samePage = true; });

  // Every value the progress bar takes, from the page's side.
  await page.evaluate(() => {
    window.__progress = [];
    new MutationObserver((ms) => {
      for (const m of ms) {
        if (m.target.tagName === 'PROGRESS' && m.attributeName === 'value') window.__progress.push(m.target.value);
        for (const n of m.addedNodes || []) if (n.querySelector?.('progress')) window.__progress.push(n.querySelector('progress').value);
      }
    }).observe(document.getElementById('uploads'), { subtree: true, childList: true, attributes: true, attributeFilter: ['value'] });
  });

  await page.setInputFiles('#files', PHOTO);
  const name = path.basename(PHOTO);
  await waitInPage(page, 'the upload to finish (201)', () => document.querySelector('.upload')?.dataset.state === 'done');
  const row = page.locator('.upload').first();
  assert.equal(await row.locator('.upload-name').textContent(), name);
  assert.equal(await row.locator('progress').evaluate((p) => p.value), 100);
  assert.equal(await row.locator('progress').evaluate((p) => p.max), 100);
  assert.equal(await row.locator('.upload-pct').textContent(), '100 %');
  const seen = await page.evaluate(() => window.__progress);
  assert.equal(seen.at(-1), 100, `progress values: ${seen}`);
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b), `the bar only moves forward: ${seen}`);

  // The card is there at once (from the upload's reply); the thumbnail comes
  // only with the asset.ready event: the page has no polling and no reload.
  const card = cardFor(page, name);
  await card.waitFor();
  const id = await card.getAttribute('data-id');
  await waitInPage(page, `the thumbnail of ${name} to appear without reload (asset.ready over /v1/events)`, (assetId) => {
    const img = document.querySelector(`.card[data-id="${assetId}"] .thumb img`);
    return img && img.complete && img.naturalWidth > 0 && img.src.startsWith('blob:');
  }, id, 60000);
  const img = card.locator('.thumb img');
  assert.equal(await img.getAttribute('alt'), `Thumbnail of ${name}`);
  const asset = (await api(srv, 'GET', `/v1/assets/${id}`)).json;
  assert.equal(asset.status, 'ready');
  const thumb = asset.renditions.find((r) => r.name === 'thumb');
  assert.equal(await img.evaluate((i) => i.naturalWidth), thumb.width, 'the picture is the thumb rendition');
  assert.equal(await card.getAttribute('data-status'), 'ready');
  assert.equal(await page.evaluate(() => window.__samePage), true, 'the page was not reloaded');
  assert.equal(session.navigations, 1);

  // Bytes that are not an image, named .jpg, and named with markup.
  await page.setInputFiles('#files', { name: HOSTILE, mimeType: 'image/jpeg', buffer: TEXT });
  const bad = cardFor(page, HOSTILE);
  await waitInPage(page, 'the non-image .jpg to show as failed', () =>
    [...document.querySelectorAll('.card[data-status="failed"] .card-error')].some((e) => e.textContent.includes('unsupported_format')));
  assert.match(await bad.locator('.card-error').textContent(), /^unsupported_format: \S/);
  assert.equal(await bad.locator('.card-name').textContent(), HOSTILE, 'the name is shown as text');
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'the name did not become an element');

  // A failure that happens later, in a worker, for an upload made elsewhere:
  // both the card and its failure arrive over the event stream.
  const up = await upload(srv, { data: pngBomb(), filename: 'bomb.png', contentType: 'image/png' });
  assert.equal(up.status, 201, up.text);
  await waitInPage(page, 'the worker\'s failure of bomb.png to arrive live', (assetId) => {
    const c = document.querySelector(`.card[data-id="${assetId}"]`);
    return c && c.dataset.status === 'failed' && c.querySelector('.card-error').textContent.startsWith('image_too_large: ');
  }, up.json.id, 60000);

  // The gallery, newest first.
  const names = await page.locator('.card .card-name').allTextContents();
  assert.deepEqual(names.slice(0, 3), ['bomb.png', HOSTILE, name]);
  await screenshot(page, 'webui.png');
  await assertClean();
});


test('detail view: fields, renditions and the succeeded job; retry a failed job; delete', { timeout: T * 2 }, async (t) => {
  // Fixtures made over the API: a processed photo and an image whose job failed.
  const photo = await upload(srv, { file: PHOTO, filename: 'detail.jpg', contentType: 'image/jpeg' });
  const bomb = await upload(srv, { data: pngBomb(), filename: 'retry-me.png', contentType: 'image/png' });
  assert.equal(photo.status, 201, photo.text);
  assert.equal(bomb.status, 201, bomb.text);
  const settled = (id) => waitFor(async () => {
    const a = (await api(srv, 'GET', `/v1/assets/${id}`)).json;
    return (a.status === 'ready' || a.status === 'failed') && a;
  }, { timeoutMs: 60000, intervalMs: 100, what: `asset ${id} to be processed` });
  const asset = await settled(photo.json.id);
  assert.equal(asset.status, 'ready', JSON.stringify(asset.error));
  assert.equal((await settled(bomb.json.id)).status, 'failed');

  const { page, assertClean } = await openPage(t, browser);
  await useKey(page, srv.token);
  await page.locator(`.card[data-id="${asset.id}"] .card-open`).click();
  const dialog = page.locator('#detail');
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await page.locator('#detail-title').textContent(), 'detail.jpg');
  const fields = Object.fromEntries(await page.locator('#detail .fields dt').evaluateAll((dts) =>
    dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
  assert.equal(fields.ID, asset.id);
  assert.equal(fields.Status, 'ready');
  assert.equal(fields['SHA-256'], asset.sha256);
  assert.equal(fields.Dimensions, `${asset.meta.width} × ${asset.meta.height}`);

  // Each rendition, with its size and a link to its bytes (a blob: URL,
  // since the rendition route needs the key).
  await waitInPage(page, 'a link for every rendition', (n) =>
    document.querySelectorAll('#detail .renditions a[href^="blob:"]').length === n, asset.renditions.length);
  const items = await page.locator('#detail .renditions li').allTextContents();
  assert.equal(items.length, asset.renditions.length);
  for (const r of asset.renditions) {
    const line = items.find((l) => l.startsWith(r.name));
    assert.ok(line, `${r.name} listed: ${items}`);
    assert.ok(line.includes(`${r.width} × ${r.height}`) && line.includes(r.content_type), line);
  }
  // Following a link saves the rendition's bytes, as a person clicking it would.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#detail .renditions a').first().click()]);
  const saved = fs.readFileSync(await download.path());
  const first = asset.renditions[0];
  assert.equal(saved.length, first.size, 'the link holds the rendition');
  assert.equal(download.suggestedFilename(), `${asset.id}-${first.name}.${first.content_type === 'image/jpeg' ? 'jpg' : 'webp'}`);
  await waitInPage(page, 'the preview picture', () => {
    const img = document.querySelector('#detail .detail-picture img');
    return img && img.complete && img.naturalWidth > 0;
  });

  // Its job: succeeded, nothing to retry.
  await waitInPage(page, 'the jobs table', () => document.querySelectorAll('#detail .jobs tbody tr').length > 0);
  const jobRows = page.locator('#detail .jobs tbody tr');
  assert.equal(await jobRows.count(), 1);
  assert.equal(await jobRows.first().getAttribute('data-state'), 'succeeded');
  assert.equal(await jobRows.first().locator('button').count(), 0, 'no Retry for a succeeded job');
  await page.setViewportSize({ width: 1280, height: 1400 });   // the whole dialog in the picture
  await screenshot(page, 'webui-detail.png');
  await page.locator('#detail-close').click();
  await dialog.waitFor({ state: 'hidden' });

  // A failed job offers Retry, which asks the server to run it again.
  await page.locator(`.card[data-id="${bomb.json.id}"] .card-open`).click();
  await waitInPage(page, 'the failed job with a Retry button', () =>
    document.querySelector('#detail .jobs tr[data-state="failed"] button') !== null);
  assert.match(await page.locator('#detail .jobs tr[data-state="failed"]').textContent(), /image_too_large: /);
  const job = (await api(srv, 'GET', `/v1/jobs?asset=${bomb.json.id}`)).json.items[0];
  await page.locator('#detail .jobs button', { hasText: 'Retry' }).click();
  await srv.waitUntil((s) => s.accessLog.find((l) => l.route === '/v1/jobs/{id}/retry' && l.status === 200
    && l.path === `/v1/jobs/${job.id}/retry`), 10000, 'POST /v1/jobs/{id}/retry from the page');
  // It fails again (a bomb stays a bomb), and the page follows: the job's
  // row is back to failed with Retry offered again.
  await waitFor(async () => (await api(srv, 'GET', `/v1/jobs/${job.id}`)).json.state === 'failed',
    { timeoutMs: 30000, what: 'the retried job to fail again' });
  await waitInPage(page, 'the retried job to show as failed again', () =>
    document.querySelector('#detail .jobs tr[data-state="failed"] button') !== null);
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });

  // Delete, after the browser's confirmation.
  await page.locator(`.card[data-id="${asset.id}"] .card-open`).click();
  page.once('dialog', (d) => d.accept());
  await page.locator('#detail button', { hasText: 'Delete' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await waitInPage(page, 'the deleted card to go', (id) => !document.querySelector(`.card[data-id="${id}"]`), asset.id);
  assert.equal((await api(srv, 'GET', `/v1/assets/${asset.id}`)).status, 404);
  await assertClean();
});

test('drag and drop several files at once', { timeout: T }, async (t) => {
  const { page, assertClean } = await openPage(t, browser);
  await useKey(page, srv.token);
  const names = ['dropped-1.png', 'dropped-2.png'];
  const transfer = await page.evaluateHandle(({ b64, files }) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    for (const n of files) dt.items.add(new File([bytes], n, { type: 'image/png' }));
    return dt;
  }, { b64: TINY_PNG.toString('base64'), files: names });
  await page.dispatchEvent('#drop', 'dragenter', { dataTransfer: transfer });
  assert.equal(await page.locator('#drop.over').count(), 1, 'the drop zone shows it will take the files');
  await page.dispatchEvent('#drop', 'drop', { dataTransfer: transfer });
  await waitInPage(page, 'both dropped files to upload and turn ready', (n) =>
    n.every((name) => [...document.querySelectorAll('.card')].some((c) =>
      c.querySelector('.card-name').textContent === name && c.dataset.status === 'ready' && c.querySelector('.thumb img'))),
  names, 60000);
  const rows = await page.locator('.upload').evaluateAll((rs) => rs.map((r) => [r.querySelector('.upload-name').textContent, r.dataset.state, r.querySelector('progress').value]));
  for (const n of names) assert.ok(rows.some(([name, st, v]) => name === n && st === 'done' && v === 100), JSON.stringify(rows));
  assert.equal(await page.locator('#drop.over').count(), 0);
  await assertClean();
});

test('the key: refused when wrong, kept across reloads, gone when forgotten', { timeout: T }, async (t) => {
  const { page, assertClean } = await openPage(t, browser);
  assert.match(await page.locator('#notice').textContent(), /Paste an API key/);
  assert.equal(await page.locator('#app').isHidden(), true);
  assert.equal(await page.locator('label[for="key"]').textContent(), 'API key');

  await page.fill('#key', `ak_${'x'.repeat(43)}`);
  await page.click('#use-key');
  await waitInPage(page, 'the wrong key to be refused', () => /refused/.test(document.getElementById('notice').textContent));
  assert.equal(await page.locator('#app').isHidden(), true);

  await useKey(page, srv.token);
  assert.equal(await page.evaluate(() => localStorage.getItem('assetd.key')), srv.token);
  const listed = (await api(srv, 'GET', '/v1/assets?limit=100')).json.items.length;
  await waitInPage(page, 'the gallery to list every asset', (n) => document.querySelectorAll('.card').length === n, listed);

  await page.reload();
  await waitInPage(page, 'the kept key to reconnect after a reload', () => document.getElementById('connection').textContent === 'Live');
  assert.equal(await page.inputValue('#key'), srv.token);
  await waitInPage(page, 'the gallery after a reload', (n) => document.querySelectorAll('.card').length === n, listed);

  await page.click('#forget-key');
  assert.equal(await page.evaluate(() => localStorage.getItem('assetd.key')), null);
  assert.equal(await page.inputValue('#key'), '');
  assert.equal(await page.locator('.card').count(), 0);
  assert.equal(await page.locator('#app').isHidden(), true);
  assert.equal(await page.locator('#connection').textContent(), 'Not connected');
  await assertClean();
});
