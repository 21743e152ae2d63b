// The slideshow pages (web/present.html, web/watch.html, web/slides.js):
// their static routes, then both driven in headless Chromium (Debian's
// chromium, through npm playwright-core): a presenter window changes the
// slide with the keyboard and an audience window follows live.  Screenshots
// go to build/test-artifacts/present.png and watch.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, CORPUS, SLOW, TEST_TIMEOUT as T, startServer, api, curl, sha256, waitFor } from './lib.mjs';

const DECK = path.join(CORPUS, 'pdf', 'slides_context_bachotex2018_45p.pdf');
const ARTIFACTS = path.join(REPO, 'build', 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

let srv, browser, deck;
before(async () => { srv = await startServer({ workers: 1 }); });
after(async () => {
  try { await browser?.close(); } finally { await srv?.cleanup(); }
});

test('GET /present/{id}, /watch/{id}, /slides.js, /slides.css: embedded files, no key, the CSP of /', { timeout: T }, async () => {
  const csp = (await curl(['--noproxy', '*', `${srv.url}/`])).headers['content-security-policy'];
  assert.ok(csp);
  const routes = {
    '/present/AAAAAAAAAAAAAAAAAAAAAA': ['present.html', 'text/html; charset=utf-8'],
    '/watch/AAAAAAAAAAAAAAAAAAAAAA': ['watch.html', 'text/html; charset=utf-8'],
    '/slides.js': ['slides.js', 'text/javascript; charset=utf-8'],
    '/slides.css': ['slides.css', 'text/css; charset=utf-8'],
  };
  for (const [route, [file, type]] of Object.entries(routes)) {
    const bytes = fs.readFileSync(path.join(REPO, 'web', file));
    const r = await api(srv, 'GET', route, { token: null });
    assert.equal(r.status, 200, `${route}: ${r.text.slice(0, 200)}`);
    assert.equal(r.headers['content-type'], type, route);
    assert.ok(r.body.equals(bytes), `${route}: the binary serves a different ${file} than web/ has (rebuild?)`);
    assert.equal(r.headers.etag, `"${sha256(bytes)}"`);
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    const again = await api(srv, 'GET', route, { token: null, headers: [`If-None-Match: ${r.headers.etag}`] });
    assert.equal(again.status, 304, route);
    if (file.endsWith('.html')) {
      assert.equal(r.headers['content-security-policy'], csp, `${route}: the same CSP as /`);
      assert.equal(r.headers['referrer-policy'], 'no-referrer');
      const html = r.text;
      for (const [, attrs, body] of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
        assert.match(attrs, /\bsrc="\/slides\.js"/);
        assert.equal(body.trim(), '', 'no inline script');
      }
      assert.ok(!/<style\b|\sstyle=|\son[a-z]+=|javascript:/i.test(html), 'no inline style or handlers');
    } else {
      assert.equal(r.headers['content-security-policy'], undefined);
    }
  }
  assert.equal((await api(srv, 'GET', '/present/', { token: null })).status, 404, 'an id is needed');
  assert.equal((await api(srv, 'GET', '/present/anything', { token: null })).status, 404, 'a well-formed one');
  const js = fs.readFileSync(path.join(REPO, 'web', 'slides.js'), 'utf8');
  assert.ok(!/\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function/.test(js));
});

test('upload a deck: READY', { timeout: T * 2 }, async () => {
  const up = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${srv.token}`, '-F', `file=@${DECK}`, `${srv.url}/api/v1/slideshow/upload`]);
  assert.equal(up.status, 200, up.text);
  deck = { id: up.json.id, token: up.json.control_token };
  let s;
  await waitFor(async () => {
    s = (await api(srv, 'GET', `/api/v1/slideshow/${deck.id}.json`, { token: null })).json;
    return s.status === 'READY' || s.status === 'ERROR';
  }, { timeoutMs: 60000, intervalMs: 200, what: 'the deck to be READY' });
  assert.equal(s.status, 'READY', JSON.stringify(s));
  deck.count = s.slides.length;
  assert.equal(deck.count, 45);
});

async function launchBrowser() {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`npm playwright-core is missing (run scripts/install-deps.sh --test): ${e.message}`);
  }
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30000 * SLOW });
}

/** A page with its script errors, console errors and CSP violations recorded. */
async function openPage(t, context, url) {
  const page = await context.newPage();
  page.setDefaultTimeout(15000 * SLOW);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  await page.goto(url);
  return {
    page, problems,
    async assertClean() {
      assert.deepEqual(await page.evaluate(() => window.__csp), [], 'CSP violations');
      assert.deepEqual(problems, [], 'errors in the page');
    },
  };
}

async function waitInPage(page, what, fn, arg, timeoutMs) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: timeoutMs * SLOW, polling: 20 });
  } catch (e) {
    const state = await page.evaluate(() => ({
      slide: document.getElementById('slide')?.getAttribute('src'),
      current: document.getElementById('current')?.getAttribute('src'),
      badge: document.getElementById('badge')?.hidden === false,
      notice: document.getElementById('notice')?.textContent,
      preparing: document.getElementById('preparing')?.hidden === false,
    })).catch(() => ({}));
    throw new Error(`timed out after ${timeoutMs * SLOW} ms: ${what}; page state: ${JSON.stringify(state)} (${e.message.split('\n')[0]})`);
  }
}

const watchSrc = (page) => page.evaluate(() => document.getElementById('slide').getAttribute('src'));
const slidePath = (n) => `/slide/${String(n).padStart(3, '0')}.jpg`;

function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return page.screenshot({ path: path.join(ARTIFACTS, name) });
}

test('presenter keys move the audience page live; End goes to the last slide', { timeout: T * 2 }, async (t) => {
  assert.ok(deck, 'the upload test made the deck');
  const { id, token } = deck;
  // Start from the first slide whatever happened before.
  const reset = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${token}`, '--data-binary', '{"current":0}', `${srv.url}/api/v1/slideshow/${id}/control`]);
  assert.equal(reset.status, 200, reset.text);

  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  t.after(() => context.close());
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });

  const watch = await openPage(t, context, `${srv.url}/watch/${id}`);
  await waitInPage(watch.page, 'the audience page to show slide 1',
    (p) => document.getElementById('slide').getAttribute('src')?.endsWith(p), slidePath(1), 15000);
  assert.equal(await watch.page.title(), 'Slideshow');

  const present = await openPage(t, context, `${srv.url}/present/${id}#token=${token}`);
  await waitInPage(present.page, 'the presenter to show slide 1 and 45 thumbnails',
    (p) => document.getElementById('current').getAttribute('src')?.endsWith(p)
      && document.querySelectorAll('#strip li').length === 45, slidePath(1), 15000);
  assert.equal(await present.page.evaluate(() => location.hash), '', 'the token is taken out of the address bar');
  assert.ok((await present.page.evaluate(() => document.getElementById('next').getAttribute('src'))).endsWith(slidePath(2)));
  assert.equal(await present.page.evaluate(() => document.getElementById('token-form').hidden), true);

  // No race if the audience socket is not open yet: the server sends the
  // current slide first on every connection.
  await present.page.keyboard.press('ArrowRight');
  const t0 = Date.now();
  await waitInPage(watch.page, 'the audience slide to become 002.jpg within 1 s of ArrowRight',
    (p) => document.getElementById('slide').getAttribute('src')?.endsWith(p), slidePath(2), 1000);
  const followedMs = Date.now() - t0;
  const s1 = (await api(srv, 'GET', `/api/v1/slideshow/${id}.json`, { token: null })).json;
  assert.equal(s1.current, 1, 'the server has slide index 1');
  assert.ok((await present.page.evaluate(() => document.getElementById('current').getAttribute('src'))).endsWith(slidePath(2)));

  await present.page.keyboard.press('End');
  await waitInPage(watch.page, `the audience slide to become the last (${slidePath(45)})`,
    (p) => document.getElementById('slide').getAttribute('src')?.endsWith(p), slidePath(45), 1000);
  await waitFor(async () => (await api(srv, 'GET', `/api/v1/slideshow/${id}.json`, { token: null })).json.current === 44,
    { timeoutMs: 2000, what: 'the server to say current 44' });
  assert.equal(await present.page.evaluate(() => document.getElementById('advance').disabled), true, 'no next after the last');

  // Home, then a thumbnail click.
  await present.page.keyboard.press('Home');
  await waitInPage(watch.page, 'Home: slide 1', (p) => document.getElementById('slide').getAttribute('src')?.endsWith(p), slidePath(1), 1000);
  await present.page.locator('#strip li').nth(9).locator('button').click();
  await waitInPage(watch.page, 'thumbnail 10 click: slide 10', (p) => document.getElementById('slide').getAttribute('src')?.endsWith(p), slidePath(10), 1000);

  // A second presenter window (same tab storage is per page: give it the fragment too) stays in step.
  const present2 = await openPage(t, context, `${srv.url}/present/${id}#token=${token}`);
  await waitInPage(present2.page, 'a second presenter to start on slide 10',
    (p) => document.getElementById('current').getAttribute('src')?.endsWith(p), slidePath(10), 15000);
  await present.page.keyboard.press('PageUp');
  await waitInPage(present2.page, 'the second presenter to follow PageUp to slide 9',
    (p) => document.getElementById('current').getAttribute('src')?.endsWith(p), slidePath(9), 1000);

  // A wrong token: the change is refused (403), the page goes back to the
  // slide the deck is on and asks for the token.
  const intruder = await openPage(t, context, `${srv.url}/present/${id}#token=ct_${'x'.repeat(43)}`);
  await waitInPage(intruder.page, 'a third presenter to start on slide 9',
    (p) => document.getElementById('current').getAttribute('src')?.endsWith(p), slidePath(9), 15000);
  await intruder.page.keyboard.press('ArrowRight');
  await waitInPage(intruder.page, 'the refused change to be undone and the token asked for',
    (p) => document.getElementById('current').getAttribute('src')?.endsWith(p)
      && !document.getElementById('token-form').hidden, slidePath(9), 5000);
  assert.equal((await api(srv, 'GET', `/api/v1/slideshow/${id}.json`, { token: null })).json.current, 8);
  await intruder.page.close();

  // The audience count: the watcher and two presenter windows listen.  The
  // server sees the closed intruder's socket go when it sees it: wait for
  // its count first (the page may still show a 3 from before the intruder
  // was counted), then for the page to show it.
  await waitFor(async () => (await api(srv, 'GET', `/api/v1/slideshow/${id}.json`, { token: null })).json.listeners === 3,
    { timeoutMs: 8000 * SLOW, what: 'the server to count 3 listeners once the intruder left' });
  await waitInPage(present.page, 'the presenter to count 3 watching windows',
    () => document.getElementById('audience').textContent === '3 watching', null, 8000);

  // Images must really load (not a broken src).
  await waitInPage(watch.page, 'the audience image to be decoded',
    () => { const i = document.getElementById('slide'); return i.complete && i.naturalWidth > 0; }, null, 5000);
  await waitInPage(present.page, 'the presenter images to be decoded',
    () => ['current', 'next'].every((id) => { const i = document.getElementById(id); return i.complete && i.naturalWidth > 0; }), null, 5000);
  await screenshot(present.page, 'present.png');
  await screenshot(watch.page, 'watch.png');
  t.diagnostic(`audience followed ArrowRight in ${followedMs} ms`);
  await watch.assertClean();
  await present.assertClean();
  await present2.assertClean();
});

test('the audience page shows "reconnecting" while the server is down, then resyncs', { timeout: T * 2 }, async (t) => {
  assert.ok(browser && deck, 'the tests above ran');
  const { id, token } = deck;
  const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
  t.after(() => context.close());
  const watch = await openPage(t, context, `${srv.url}/watch/${id}`);
  await waitInPage(watch.page, 'the audience page to show slide 9',
    (p) => document.getElementById('slide').getAttribute('src')?.endsWith(p), slidePath(9), 15000);
  assert.equal(await watch.page.evaluate(() => document.getElementById('badge').hidden), true);

  // Stop the server, change the slide while this page cannot hear it (on a
  // second server over the same data and port), and expect the page to
  // reconnect and show it.
  const { port, dataDir } = srv;
  const r = await srv.stop('SIGTERM', 10000);
  assert.ok(!r.timedOut, 'the server stopped');
  await waitInPage(watch.page, 'the "reconnecting" badge while the server is down',
    () => document.getElementById('badge').hidden === false, null, 5000);
  const srv2 = await startServer({ dataDir, listen: `127.0.0.1:${port}`, workers: 1 });
  t.after(() => srv2.cleanup());
  const c = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${token}`, '--data-binary', '{"current":20}', `${srv2.url}/api/v1/slideshow/${id}/control`]);
  assert.equal(c.status, 200, c.text);
  await waitInPage(watch.page, 'the page to reconnect (backoff up to 10 s) and show slide 21',
    (p) => document.getElementById('slide').getAttribute('src')?.endsWith(p)
      && document.getElementById('badge').hidden, slidePath(21), 15000);
  // The WebSocket drop is logged by Chromium as a console error: expected here.
  assert.deepEqual(watch.problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED/.test(p)), []);
});

test('the audience page says "preparing slides" while the deck is not READY', { timeout: T }, async (t) => {
  assert.ok(browser, 'the tests above launched the browser');
  const idle = await startServer({ workers: 0 });   // nothing renders: the deck stays PENDING
  t.after(() => idle.cleanup());
  const up = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${idle.token}`, '-F', `file=@${DECK}`, `${idle.url}/api/v1/slideshow/upload`]);
  assert.equal(up.json.status, 'PENDING', up.text);
  const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
  t.after(() => context.close());
  const watch = await openPage(t, context, `${idle.url}/watch/${up.json.id}`);
  await waitInPage(watch.page, '"preparing slides" to show',
    () => document.getElementById('preparing').hidden === false, null, 5000);
  assert.equal(await watch.page.evaluate(() => document.getElementById('slide').hidden), true, 'no slide yet');
  // It keeps polling (once a second) rather than giving up.
  const jsonGets = () => idle.accessLog.filter((l) => JSON.stringify(l).includes(`${up.json.id}.json`)).length;
  await waitFor(() => jsonGets() >= 2, { timeoutMs: 5000, what: 'the page to poll the JSON again' });
  assert.deepEqual(watch.problems, []);
});
