// GET /v1/assets: order, paging, filters, parameter validation, and paging
// stability under concurrent inserts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  serverFor, api, upload, uploadRaw, request, assertError, assertAsset, TINY_JPEG, TINY_PDF, TEXT,
} from './lib.mjs';
import { TEST_TIMEOUT as T } from './lib.mjs';

async function uploadN(srv, n, token = srv.token) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const r = await uploadRaw(srv, randomBytes(64 + i), { filename: `f${i}.bin`, token });
    assert.equal(r.status, 201, r.text);
    ids.push(r.json.id);
  }
  return ids;
}

/** Follows next_cursor; bounded. -> array of pages (each an items array) */
async function allPages(srv, query, { maxPages = 200, between } = {}) {
  const pages = [];
  let cursor = null;
  for (let i = 0; i < maxPages; i++) {
    const q = query + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
    const r = await request(srv, { path: `/v1/assets?${q}` });
    assert.equal(r.status, 200, `${q}: ${r.text}`);
    const j = r.json;
    assert.ok(Array.isArray(j.items));
    assert.ok('next_cursor' in j, 'next_cursor must be present (string or null)');
    pages.push(j.items);
    if (j.next_cursor === null) return pages;
    assert.equal(typeof j.next_cursor, 'string');
    if (between) await between(i);
    cursor = j.next_cursor;
  }
  throw new Error(`more than ${maxPages} pages`);
}

test('empty listing', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const r = await api(srv, 'GET', '/v1/assets');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'] || '', /^application\/json/);
  assert.deepEqual(r.json, { items: [], next_cursor: null });
});

test('newest first, items are full asset JSON equal to GET', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const ids = await uploadN(srv, 5);
  const r = await api(srv, 'GET', '/v1/assets');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.items.map((i) => i.id), [...ids].reverse());
  assert.equal(r.json.next_cursor, null);
  for (const it of r.json.items) {
    assertAsset(it);
    const g = await api(srv, 'GET', `/v1/assets/${it.id}`);
    assert.deepEqual(it, g.json);
  }
  const created = r.json.items.map((i) => i.created);
  assert.deepEqual(created, [...created].sort().reverse(), 'created must be non-increasing');
});

test('paging with limit follows next_cursor to the end, no gaps or duplicates', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const ids = await uploadN(srv, 11);
  for (const limit of [1, 2, 5, 10, 11, 12]) {
    const pages = await allPages(srv, `limit=${limit}`);
    for (const p of pages.slice(0, -1)) assert.equal(p.length, limit, 'non-final pages are full');
    assert.ok(pages[pages.length - 1].length <= limit);
    assert.deepEqual(pages.flat().map((i) => i.id), [...ids].reverse(), `limit=${limit}`);
  }
});

test('default limit is 50, max 1000', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const ids = await uploadN(srv, 53);
  const r = await api(srv, 'GET', '/v1/assets');
  assert.equal(r.json.items.length, 50);
  assert.equal(typeof r.json.next_cursor, 'string');
  const r2 = await api(srv, 'GET', `/v1/assets?cursor=${encodeURIComponent(r.json.next_cursor)}`);
  assert.deepEqual(r2.json.items.map((i) => i.id), ids.slice(0, 3).reverse());
  const big = await api(srv, 'GET', '/v1/assets?limit=1000');
  assert.equal(big.status, 200);
  assert.equal(big.json.items.length, 53);
  assert.equal(big.json.next_cursor, null);
});

test('bad parameters -> 400 invalid_parameter / invalid_cursor', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  await uploadN(srv, 2);
  for (const q of ['limit=0', 'limit=1001', 'limit=abc', 'limit=-1', 'limit=', 'limit=10abc', 'limit=1.5',
    'limit=99999999999999999999', 'kind=bogus', 'kind=', 'kind=IMAGE', 'status=bogus', 'status=']) {
    assertError(await api(srv, 'GET', `/v1/assets?${q}`), 400, 'invalid_parameter', q);
  }
  for (const c of ['garbage', 'AAAA', 'x'.repeat(5000), '!!!!', '%ff%fe']) {
    assertError(await api(srv, 'GET', `/v1/assets?cursor=${c}`), 400, 'invalid_cursor', `cursor=${c.slice(0, 40)}`);
  }
  // a valid cursor, tampered with
  const p = await api(srv, 'GET', '/v1/assets?limit=1');
  const cur = p.json.next_cursor;
  assert.equal(typeof cur, 'string');
  const tampered = cur.slice(0, -2) + (cur.endsWith('AA') ? 'BB' : 'AA');
  const r = await api(srv, 'GET', `/v1/assets?cursor=${encodeURIComponent(tampered)}`);
  assert.ok(r.status === 400 || r.status === 200, `tampered cursor: ${r.status}`);
  if (r.status === 400) assertError(r, 400, 'invalid_cursor');
  assert.ok(srv.alive());
});

test('parameters with an encoded NUL are rejected, not truncated', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  await uploadN(srv, 3);
  const p = await api(srv, 'GET', '/v1/assets?limit=1');
  const cur = p.json.next_cursor;
  assertError(await api(srv, 'GET', '/v1/assets?cursor=%00%01'), 400, 'invalid_cursor', 'cursor=%00%01');
  assertError(await api(srv, 'GET', `/v1/assets?cursor=${encodeURIComponent(cur)}%00junk`), 400, 'invalid_cursor', 'valid cursor + %00junk');
  assertError(await api(srv, 'GET', '/v1/assets?limit=5%00abc'), 400, 'invalid_parameter', 'limit=5%00abc');
  assertError(await api(srv, 'GET', '/v1/assets?kind=image%00junk'), 400, 'invalid_parameter', 'kind=image%00junk');
});

test('kind and status filters', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const jpg = await upload(srv, { data: TINY_JPEG, raw: true, filename: 'a.jpg' });
  const pdf = await upload(srv, { data: TINY_PDF, raw: true, filename: 'a.pdf' });
  const txt = await upload(srv, { data: TEXT, raw: true, filename: 'a.txt' });
  const bin = await upload(srv, { data: randomBytes(500), raw: true, filename: 'a.bin' });
  const ids = (r) => r.json.items.map((i) => i.id);
  assert.deepEqual(ids(await api(srv, 'GET', '/v1/assets?kind=image')), [jpg.json.id]);
  assert.deepEqual(ids(await api(srv, 'GET', '/v1/assets?kind=pdf')), [pdf.json.id]);
  assert.deepEqual(ids(await api(srv, 'GET', '/v1/assets?kind=other')), [bin.json.id, txt.json.id]);
  assert.deepEqual(ids(await api(srv, 'GET', '/v1/assets?kind=video')), []);
  assert.deepEqual(ids(await api(srv, 'GET', '/v1/assets?kind=presentation')), []);
  assert.deepEqual(ids(await api(srv, 'GET', '/v1/assets?status=uploaded')), [bin.json.id, txt.json.id, pdf.json.id, jpg.json.id]);
  assert.deepEqual(ids(await api(srv, 'GET', '/v1/assets?kind=other&status=uploaded')), [bin.json.id, txt.json.id]);
  // filter + paging
  const p1 = await api(srv, 'GET', '/v1/assets?kind=other&limit=1');
  assert.deepEqual(ids(p1), [bin.json.id]);
  const p2 = await api(srv, 'GET', `/v1/assets?kind=other&limit=1&cursor=${encodeURIComponent(p1.json.next_cursor)}`);
  assert.deepEqual(ids(p2), [txt.json.id]);
  assert.ok(p2.json.next_cursor === null || ids(await api(srv, 'GET', `/v1/assets?kind=other&limit=1&cursor=${encodeURIComponent(p2.json.next_cursor)}`)).length === 0);
});

test('paging is stable under concurrent inserts (25 originals, limit 7)', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const originals = await uploadN(srv, 25);
  const expected = [...originals].reverse();
  // a background writer keeps inserting while we page ...
  let stop = false;
  const extra = [];
  const writer = (async () => {
    for (let i = 0; i < 200 && !stop; i++) {
      const r = await uploadRaw(srv, randomBytes(32), { filename: `bg${i}` });
      assert.equal(r.status, 201);
      extra.push(r.json.id);
    }
  })();
  // ... and between pages we insert synchronously too, so an offset-based
  // implementation is caught deterministically.
  const pages = await allPages(srv, 'limit=7', {
    between: async () => {
      for (let k = 0; k < 3; k++) {
        const r = await uploadRaw(srv, randomBytes(16), { filename: 'between' });
        assert.equal(r.status, 201);
        extra.push(r.json.id);
      }
    },
  });
  stop = true;
  await writer;
  const got = pages.flat().map((i) => i.id);
  const set = new Set(got);
  assert.equal(set.size, got.length, `duplicates across pages: ${got.length - set.size}`);
  // the first page was fetched before any concurrent insert finished only
  // if the writer was slow; drop the (newer) extras that made it into page 1
  const withoutExtras = got.filter((id) => !extra.includes(id));
  assert.deepEqual(withoutExtras, expected, 'union of pages must be exactly the 25 originals, newest first');
  const extrasSeen = got.filter((id) => extra.includes(id));
  assert.ok(extrasSeen.every((id) => pages[0].some((i) => i.id === id)), 'inserts newer than the first page must not appear on later pages');
  assert.ok(extra.length >= 9, 'concurrent inserts actually happened');
});

test('paging survives deleting the item a cursor points at', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const ids = await uploadN(srv, 6);
  const p1 = await api(srv, 'GET', '/v1/assets?limit=2');
  const lastOnPage = p1.json.items[1].id;
  assert.equal((await api(srv, 'DELETE', `/v1/assets/${lastOnPage}`)).status, 204);
  const rest = await api(srv, 'GET', `/v1/assets?limit=100&cursor=${encodeURIComponent(p1.json.next_cursor)}`);
  assert.equal(rest.status, 200);
  assert.deepEqual(rest.json.items.map((i) => i.id), ids.slice(0, 4).reverse());
});
