// Documents: every page of a PDF becomes a slide and a thumbnail, listed as
// the asset's renditions, with progress events; broken and encrypted PDFs fail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { CORPUS, SANITIZED, SLOW, TEST_TIMEOUT as T, startServer, api, upload, waitFor, blobFiles } from './lib.mjs';

const PDFS = path.join(CORPUS, 'pdf');
let srv;
before(async () => { srv = await startServer({ workers: 2 }); });
after(async () => { await srv?.stop(); });

async function settled(id, ms = 120000) {
  let a;
  await waitFor(async () => {
    a = (await api(srv, 'GET', `/v1/assets/${id}`)).json;
    return a.status === 'ready' || a.status === 'failed';
  }, { timeoutMs: ms * SLOW, intervalMs: 200, what: `asset ${id} to settle` });
  return a;
}

function jpegSize(buf) {
  let i = 2;
  while (i < buf.length) {
    const marker = buf[i + 1];
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
    }
    i += 2 + buf.readUInt16BE(i + 2);
  }
  return null;
}

// [file, pages, first slide size]; the 403-page manual only in release builds.
const decks = [
  ['slides_context_bachotex2018_45p.pdf', 45, [1280, 960]],
  ['slides_impress_photos_40p.pdf', 40, [1280, 720]],
  ...(SANITIZED ? [] : [['text_autoconf_manual_403p.pdf', 403, [1280, 1656]]]),
];

for (const [file, pages, [w, h]] of decks) {
  test(`${file}: ${pages} slides and thumbnails with the right sizes`, { timeout: T * 3 }, async () => {
    const r = await upload(srv, { file: path.join(PDFS, file), filename: file });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.kind, 'pdf');
    const a = await settled(r.json.id, 300000);
    assert.equal(a.status, 'ready', JSON.stringify(a.error));
    assert.deepEqual(a.meta, { pages, width: w, height: h });
    assert.equal(a.renditions.length, 2 * pages);
    const names = a.renditions.map((x) => x.name);
    assert.equal(names[0], 'slide_001');
    assert.equal(names[1], 'slide_001_thumb');
    assert.equal(names.at(-2), `slide_${String(pages).padStart(3, '0')}`);
    const first = a.renditions[0], thumb = a.renditions[1];
    assert.deepEqual([first.width, first.height], [w, h]);
    assert.equal(thumb.width, 320);
    assert.equal(thumb.height, Math.round(h * 320 / w));
    for (const x of [a.renditions[0], a.renditions[1], a.renditions.at(-1)]) {
      const got = await api(srv, 'GET', x.url);
      assert.equal(got.status, 200, x.url);
      assert.equal(got.headers['content-type'], 'image/jpeg');
      assert.equal(got.body.length, x.size);
      assert.deepEqual(jpegSize(got.body), { width: x.width, height: x.height });
    }
    const jobs = (await api(srv, 'GET', `/v1/jobs?asset=${a.id}`)).json.items;
    assert.equal(jobs[0].type, 'document');
    assert.equal(jobs[0].state, 'succeeded');
    assert.equal((await api(srv, 'GET', `/v1/assets/${a.id}/renditions/slide_${String(pages + 1).padStart(3, '0')}`)).status, 404);
  });
}

const FODP = `<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.presentation"><office:body><office:presentation>
${[1, 2, 3].map((n) => `<draw:page draw:name="p${n}"><draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="3cm"><draw:text-box><text:p>Slide ${n}</text:p></draw:text-box></draw:frame></draw:page>`).join('')}
</office:presentation></office:body></office:document>`;

test('a PPTX made by LibreOffice becomes three slides', { timeout: T * 2 }, async () => {
  const dir = fs.mkdtempSync(path.join(srv.dataDir, 'pptx-'));
  fs.writeFileSync(path.join(dir, 'deck.fodp'), FODP);
  execFileSync('soffice', [`-env:UserInstallation=file://${dir}/profile`, '--headless', '--convert-to', 'pptx', '--outdir', dir, path.join(dir, 'deck.fodp')], { stdio: 'ignore', timeout: 120000 });
  const r = await upload(srv, { file: path.join(dir, 'deck.pptx'), filename: 'deck.pptx' });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.kind, 'presentation');
  const a = await settled(r.json.id);
  assert.equal(a.status, 'ready', JSON.stringify(a.error));
  assert.equal(a.meta.pages, 3);
  assert.equal(a.renditions.length, 6);
  assert.equal(a.renditions[0].width, 1280);
  // A truncated PPTX still sniffs as a presentation (its first zip entry
  // is intact); LibreOffice cannot read it, and the asset says so.
  const bad = await upload(srv, { data: fs.readFileSync(path.join(dir, 'deck.pptx')).subarray(0, 3000), filename: 'cut.pptx' });
  assert.equal(bad.json.kind, 'presentation');
  const b = await settled(bad.json.id);
  assert.equal(b.status, 'failed');
  assert.equal(b.error.code, 'corrupt_input', JSON.stringify(b.error));
});

test('a truncated PDF and an encrypted PDF fail with clear codes', { timeout: T }, async () => {
  const deck = fs.readFileSync(path.join(PDFS, 'slides_context_bachotex2018_45p.pdf'));
  const cases = [['half.pdf', deck.subarray(0, 2000), 'corrupt_input']];
  try {
    const out = path.join(srv.dataDir, 'locked.pdf');
    execFileSync('qpdf', ['--encrypt', 'user', 'owner', '256', '--', path.join(PDFS, 'slides_context_bachotex2018_45p.pdf'), out]);
    cases.push(['locked.pdf', fs.readFileSync(out), 'encrypted_pdf']);
  } catch (e) {
    assert.fail(`qpdf is needed to make an encrypted PDF (scripts/install-deps.sh --test): ${e.message}`);
  }
  for (const [name, data, code] of cases) {
    const r = await upload(srv, { data, filename: name });
    assert.equal(r.status, 201, r.text);
    const a = await settled(r.json.id);
    assert.equal(a.status, 'failed', `${name}: ${JSON.stringify(a)}`);
    assert.equal(a.error.code, code, `${name}: ${JSON.stringify(a.error)}`);
    assert.deepEqual(a.renditions, []);
  }
});

test('deleting a document removes its slides', { timeout: T }, async () => {
  const r = await upload(srv, { file: path.join(PDFS, 'slides_context_bachotex2018_45p.pdf'), filename: 'gone.pdf' });
  const a = await settled(r.json.id);
  assert.equal(a.status, 'ready');
  assert.equal((await api(srv, 'DELETE', `/v1/assets/${a.id}`)).status, 204);
  assert.equal((await api(srv, 'GET', a.renditions[0].url)).status, 404);
  const left = blobFiles(srv.dataDir).filter((f) => path.basename(f).startsWith(a.id));
  assert.deepEqual(left, []);
});
