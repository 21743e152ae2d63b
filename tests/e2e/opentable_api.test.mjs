// The open-table API kept (api/opentable.c): multipart uploads of images
// answer the original's URL, anything else {"data": "bad request"}; the
// list gives the 640x480-fit renditions oldest first, in the source's
// format; a WebSocket sends each new rendition's URL as plain text; on the
// disk store and on S3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { api, CORPUS, serverFor, TEST_TIMEOUT as T, TEXT, TINY_PNG, within, SLOW } from './lib.mjs';
import { makeBucket, S3RVER_ACCESS_KEY, startS3rver } from './s3servers.mjs';

// A 1x1 GIF.
const TINY_GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const JPEG = `${CORPUS}/photos/01_Path_6000x4000.jpg`;

function postApi(srv, { data, file, filename, contentType = 'application/octet-stream', token = srv.token, part = 'file' }) {
  const args = ['-X', 'POST', '-F', `${part}=@${file || '-'};filename=${filename};type=${contentType}`];
  if (token) args.push('-H', `Authorization: Bearer ${token}`);
  return api(srv, 'POST', '/api/upload', { token: null, args, input: file ? undefined : data });
}

/** A socket on /api/images/live that collects text frames. */
async function live(srv, query = '', headers = { Authorization: `Bearer ${srv.token}` }) {
  const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/api/images/live${query}`, { headers });
  const frames = [];
  const waiters = [];
  ws.on('message', (d, binary) => {
    frames.push({ text: d.toString(), binary });
    for (const w of waiters.splice(0)) w();
  });
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); ws.on('unexpected-response', (_, res) => reject(new Error(`HTTP ${res.statusCode}`))); });
  ws.next = (n) => within(new Promise((resolve) => {
    const check = () => (frames.length >= n ? resolve(frames.slice(0, n)) : waiters.push(check));
    check();
  }), 60000 * SLOW);
  return ws;
}

async function s3Args(t) {
  const server = await startS3rver(t);
  const bucket = await makeBucket(server.endpoint);
  return {
    env: { AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: 'ot/test+secret', AWS_SESSION_TOKEN: '' },
    args: ['--store', `s3://${bucket}/media`, '--s3-endpoint', server.endpoint],
  };
}

for (const store of ['disk', 'S3']) {
  test(`open-table API on the ${store} store: upload, live URLs, the list oldest first`, { timeout: T * 2 }, async (t) => {
    const opts = store === 'S3' ? await s3Args(t) : {};
    const srv = await serverFor(t, { ...opts, workers: 1 });
    const ws = await live(srv);

    const uploads = [
      await postApi(srv, { file: JPEG, filename: 'path.jpg', contentType: 'image/jpeg' }),
      await postApi(srv, { data: TINY_PNG, filename: 'dot.PNG', contentType: 'image/png' }),
      await postApi(srv, { data: TINY_GIF, filename: 'dot.gif', contentType: 'image/gif' }),
    ];
    const ids = [];
    for (const r of uploads) {
      assert.equal(r.status, 200, r.text);
      const m = /^http:\/\/127\.0\.0\.1:\d+\/v1\/assets\/([A-Za-z0-9_-]{22})\/content$/.exec(r.json.data);
      assert.ok(m, r.json.data);
      ids.push(m[1]);
      const original = await api(srv, 'GET', new URL(r.json.data).pathname);
      assert.equal(original.status, 200);
    }

    // One plain-text frame per rendition, as each image is ready.
    const frames = await ws.next(3);
    assert.ok(frames, 'three live frames');
    const expect = (id) => `${srv.url}/v1/assets/${id}/renditions/fit640`;
    assert.deepEqual(frames.map((f) => f.text).sort(), ids.map(expect).sort());
    assert.ok(frames.every((f) => !f.binary), 'text frames');
    ws.close();

    // The list: the same URLs, oldest first; each fits 640x480 in the source's format.
    const list = await api(srv, 'GET', '/api/images');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.data, ids.map(expect));
    const types = ['image/jpeg', 'image/png', 'image/gif'];
    for (const [i, id] of ids.entries()) {
      const a = (await api(srv, 'GET', `/v1/assets/${id}`)).json;
      const r = a.renditions.find((x) => x.name === 'fit640');
      assert.equal(r.content_type, types[i], `${id}: ${JSON.stringify(r)}`);
      assert.ok(r.width <= 640 && r.height <= 480, JSON.stringify(r));
      const body = await api(srv, 'GET', new URL(list.json.data[i]).pathname);
      assert.equal(body.status, 200);
      assert.equal(body.headers['content-type'], types[i]);
    }
    const big = (await api(srv, 'GET', `/v1/assets/${ids[0]}`)).json.renditions.find((x) => x.name === 'fit640');
    assert.deepEqual([big.width, big.height], [640, 427], '6000x4000 fits 640x480 as 640x427');
  });
}

test('open-table API: bad requests, no key, the size limit; nothing refused is kept', { timeout: T }, async (t) => {
  const srv = await serverFor(t, { args: ['--max-upload', '64K'] });
  const bad = [
    ['a text file', { data: TEXT, filename: 'notes.txt', contentType: 'text/plain' }],
    ['text named .png', { data: TEXT, filename: 'fake.png', contentType: 'image/png' }],
    ['a PNG named .txt', { data: TINY_PNG, filename: 'dot.txt', contentType: 'image/png' }],
    ['no file part', { data: TINY_PNG, filename: 'dot.png', part: 'picture' }],
  ];
  for (const [what, opts] of bad) {
    const r = await postApi(srv, opts);
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    assert.deepEqual(r.json, { data: 'bad request' }, what);
  }
  const anon = await postApi(srv, { data: TINY_PNG, filename: 'dot.png', token: null });
  assert.equal(anon.status, 401);
  assert.equal(anon.json.error.code, 'unauthorized');
  const large = await postApi(srv, { data: Buffer.concat([TINY_PNG, randomBytes(70 * 1024)]), filename: 'big.png' });
  assert.equal(large.status, 413, large.text);
  assert.equal((await api(srv, 'GET', '/api/images', { token: null })).status, 401);
  await assert.rejects(live(srv, '', {}), /401/);
  const none = await api(srv, 'GET', '/api/images');
  assert.deepEqual(none.json, { data: [] }, 'nothing refused was kept');
  const assets = await api(srv, 'GET', '/v1/assets');
  assert.deepEqual(assets.json.items, []);
});
