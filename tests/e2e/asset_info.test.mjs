// PATCH /v1/assets/{id}: the owner's title, description and tags, for any
// kind, validated (lengths, tag count, control characters, UTF-8, unknown
// fields) with a JSON 400 that names the field; the change is an
// asset.updated event and survives a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TEST_TIMEOUT as T, TINY_PNG, TEXT, startServer, createKey, api, upload, request } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(() => srv?.cleanup());

const patch = (id, body, opts = {}) => request(srv, {
  method: 'PATCH', path: `/v1/assets/${id}`, headers: { 'content-type': 'application/json' },
  body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), ...opts,
});

test('title, description and tags are set, kept field by field, and shown for any kind', { timeout: T }, async () => {
  const img = (await upload(srv, { data: TINY_PNG, filename: 'dot.png' })).json;
  assert.equal(img.title, '');
  assert.equal(img.description, '');
  assert.deepEqual(img.tags, []);
  const r = await patch(img.id, { title: '  Été à Paris  ', description: 'line one\n\tline two\n', tags: ['trip', 'été', 'trip'] });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.title, 'Été à Paris');
  assert.equal(r.json.description, 'line one\n\tline two');
  assert.deepEqual(r.json.tags, ['trip', 'été'], 'trimmed, duplicates dropped, order kept');
  // a field not sent stays
  const t = await patch(img.id, { tags: [] });
  assert.equal(t.status, 200);
  assert.equal(t.json.title, 'Été à Paris');
  assert.deepEqual(t.json.tags, []);
  const got = (await api(srv, 'GET', `/v1/assets/${img.id}`)).json;
  assert.equal(got.title, 'Été à Paris');
  assert.equal(got.updated >= img.updated, true);
  const listed = (await api(srv, 'GET', '/v1/assets')).json.items.find((x) => x.id === img.id);
  assert.equal(listed.description, 'line one\n\tline two');
  // any kind: a plain file too
  const other = (await upload(srv, { data: TEXT, filename: 'notes.txt' })).json;
  const o = await patch(other.id, { title: 'Notes' });
  assert.equal(o.status, 200, o.text);
  assert.equal(o.json.kind, 'other');
  assert.equal(o.json.title, 'Notes');
  // the change is an event, in the log
  const ev = (await api(srv, 'GET', `/v1/events?asset=${img.id}&since=0`, { headers: ['Accept: text/event-stream'], args: ['--max-time', '1'] })).body.toString();
  assert.match(ev, /event: asset\.updated/);
});

test('bad values get a JSON 400 naming the field and change nothing', { timeout: T }, async () => {
  const a = (await upload(srv, { data: TINY_PNG, filename: 'dot.png' })).json;
  assert.equal((await patch(a.id, { title: 'kept' })).status, 200);
  const cases = [
    [{ title: 'x'.repeat(201) }, /title is longer than 200 bytes/],
    [{ title: 'é'.repeat(101) }, /title is longer than 200 bytes/],   // bytes, not characters
    [{ title: 'two\nlines' }, /title holds a control character/],
    [{ title: 5 }, /title must be a string/],
    [{ description: 'd'.repeat(2001) }, /description is longer than 2000 bytes/],
    [{ description: 'bell\u0007' }, /description holds a control character/],
    [{ tags: 'one' }, /tags must be an array/],
    [{ tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, /at most 20 tags/],
    [{ tags: ['ok', 't'.repeat(41)] }, /tags\[1\] is longer than 40 bytes/],
    [{ tags: ['ok', '  '] }, /tags\[1\] is empty/],
    [{ tags: [1] }, /tags\[0\] must be a string/],
    [{ owner: 'mallory' }, /unknown field 'owner'/],
    [{ title: 'fine', status: 'ready' }, /unknown field 'status'/],
  ];
  for (const [body, message] of cases) {
    const r = await patch(a.id, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.json.error.code, 'invalid_parameter', r.text);
    assert.match(r.json.error.message, message);
  }
  for (const body of ['[1]', '{"title":', '', Buffer.from([0x7b, 0x22, 0x74, 0x69, 0x74, 0x6c, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])]) {
    const r = await patch(a.id, body);
    assert.equal(r.status, 400, String(body));
    assert.equal(r.json.error.code, 'invalid_json', r.text);
  }
  const got = (await api(srv, 'GET', `/v1/assets/${a.id}`)).json;
  assert.equal(got.title, 'kept');
  assert.deepEqual(got.tags, []);
});

test("another owner's asset and a missing one are 404", { timeout: T }, async () => {
  const a = (await upload(srv, { data: TINY_PNG, filename: 'dot.png' })).json;
  const bob = await createKey(srv.dataDir, 'bob', 'bob');
  const r = await patch(a.id, { title: 'mine now' }, { token: bob });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'not_found');
  assert.equal((await patch('AAAAAAAAAAAAAAAAAAAAAA', { title: 'x' })).status, 404);
  assert.equal((await api(srv, 'GET', `/v1/assets/${a.id}`)).json.title, '');
});
