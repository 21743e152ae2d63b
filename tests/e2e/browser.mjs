// browser.mjs — driving the upload page (web/, served at /) in headless
// Chromium: Debian's chromium through npm playwright-core.  Shared by the
// page's tests (webui*.test.mjs); every wait is bounded and scaled by SLOW.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, SLOW } from './lib.mjs';

export const ARTIFACTS = path.join(REPO, 'build', 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

let chromium;
export async function launchBrowser() {
  if (!chromium) {
    try {
      ({ chromium } = await import('playwright-core'));
    } catch (e) {
      throw new Error(`npm playwright-core is missing (run scripts/install-deps.sh --test): ${e.message}`);
    }
  }
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install chromium, or scripts/install-deps.sh --test)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30000 * SLOW });
}

/** The page at url (a fresh browser context, closed after the test), with
 *  everything that goes wrong in it recorded: script errors, console errors,
 *  CSP violations, and navigations.  init: a script run in every document
 *  before the page's own (to take a browser feature away, say). */
export async function openPage(t, browser, url, { init } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(15000 * SLOW);
  const problems = [];
  let navigations = 0;
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  // which requests failed: a console error does not say (tokens cut off)
  const refused = [];
  page.on('response', (r) => { if (r.status() >= 400) refused.push(`${r.status()} ${r.url().replace(/\?.*/, '')}`); });
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  if (init) await context.addInitScript(init);
  await page.goto(url);
  return {
    page, problems,
    get navigations() { return navigations; },
    /** ignore: problems expected on purpose (e.g. requests cut by a server killed on purpose). */
    async assertClean(ignore = []) {
      const csp = await page.evaluate(() => window.__csp);
      assert.deepEqual(csp, [], 'CSP violations');
      assert.equal(await page.evaluate(() => window.__xss), undefined, 'markup in a file name ran');
      // A deliberately refused key, if a test used one, logs a 401; nothing else may fail.
      const unexpected = problems.filter((p) => ![/401 \(Unauthorized\)/, ...ignore].some((re) => re.test(p)));
      assert.deepEqual(unexpected, [], `errors in the page (responses >= 400: ${refused.join(', ') || 'none'})`);
    },
  };
}

/** Waits for fn in the page, failing with what as the message. */
export async function waitInPage(page, what, fn, arg, timeoutMs = 30000) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: timeoutMs * SLOW, polling: 50 });
  } catch (e) {
    const state = await page.evaluate(() => ({
      csp: window.__csp,
      connection: document.getElementById('connection')?.textContent,
      notice: document.getElementById('notice')?.textContent,
      cards: [...document.querySelectorAll('.card')].map((c) => `${c.dataset.status} ${c.querySelector('.card-name')?.textContent}`),
      uploads: [...document.querySelectorAll('.upload')].map((r) =>
        `${r.dataset.state} ${r.querySelector('.upload-name')?.textContent} ${r.querySelector('.upload-pct')?.textContent} ${r.querySelector('.upload-result')?.textContent}`),
    })).catch(() => ({}));
    throw new Error(`timed out after ${timeoutMs * SLOW} ms: ${what}; page state: ${JSON.stringify(state)} (${e.message.split('\n')[0]})`);
  }
}

/** Pastes the key and waits for the live event stream. */
export async function useKey(page, key) {
  await page.fill('#key', key);
  await page.click('#use-key');
  await waitInPage(page, 'the live event stream to connect', () => document.getElementById('connection').textContent === 'Live');
}

export const cardFor = (page, name) => page.locator('.card').filter({ has: page.locator('.card-name', { hasText: name }) });

export function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
}
