// The cloud-asset-uploader API kept (api/cloud.c): the original's eight
// integration cases, with the bytes really sent through signed_info by curl
// (the form's fields, `file` last) and downloaded back through /api/access,
// on the disk store (assetd checks the signatures) and on S3 (s3rver: the
// URLs point at it); then the original's messages, owners, concurrency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { api, createKey, curl, makeTempDir, serverFor, TEST_TIMEOUT as T } from './lib.mjs';
import { makeBucket, S3RVER_ACCESS_KEY, startS3rver } from './s3servers.mjs';

const json = (srv, method, p, body, opts = {}) => api(srv, method, p, {
  headers: ['Content-Type: application/json'], input: body === undefined ? undefined : JSON.stringify(body),
  args: body === undefined ? [] : ['--data-binary', '@-'], ...opts,
});

/** Sends bytes through signed_info as a browser form would: fields first, file last. */
async function sendThroughForm(info, bytes) {
  const dir = makeTempDir('assetd-cloud-');
  const file = path.join(dir, 'payload.bin');
  fs.writeFileSync(file, bytes);
  const args = ['-X', 'POST'];
  for (const [k, v] of Object.entries(info.fields)) args.push('--form-string', `${k}=${v}`);
  args.push('-F', `file=@${file}`, info.url);
  const r = await curl(args);
  fs.rmSync(dir, { recursive: true, force: true });
  return r;
}

async function diskServer(t) { return serverFor(t, {}); }

async function s3Server(t) {
  const server = await startS3rver(t);
  const bucket = await makeBucket(server.endpoint);
  // Presigned transfers go from the client to S3 itself: no proxy between.
  return serverFor(t, {
    env: { AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: 'cloud/test+secret', AWS_SESSION_TOKEN: '' },
    args: ['--store', `s3://${bucket}/media`, '--s3-endpoint', server.endpoint],
  });
}

for (const [store, start] of [['disk', diskServer], ['S3', s3Server]]) {
  test(`cloud API on the ${store} store: the original's eight cases, bytes through signed_info`, { timeout: T * 2 }, async (t) => {
    const srv = await start(t);
    const bytes = randomBytes(3000);

    // 1. upload new: a pending asset with an integer id and a form to post.
    const up = await json(srv, 'POST', '/api/upload', { object_key: 'photos/cat.bin' });
    assert.equal(up.status, 200, up.text);
    assert.deepEqual(Object.keys(up.json).sort(), ['asset_id', 'signed_info']);
    assert.ok(Number.isInteger(up.json.asset_id) && up.json.asset_id > 0);
    assert.equal(typeof up.json.signed_info.url, 'string');
    assert.ok(up.json.signed_info.fields.key && up.json.signed_info.fields.policy);
    assert.ok(!up.json.signed_info.fields.key.includes('photos'), 'object_key is not the blob key');
    const id = up.json.asset_id;

    // 2. reuse pending: same key, same asset_id, a fresh signature.
    const again = await json(srv, 'POST', '/api/upload', { object_key: 'photos/cat.bin', expires_in: 50 });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.asset_id, id);

    // 8. access pending refused.
    const early = await api(srv, 'GET', `/api/access?asset_id=${id}`);
    assert.equal(early.status, 400);
    assert.equal(early.json.error.message, 'Asset upload is not yet completed.');

    // complete before any bytes: refused, nothing made.
    const missing = await json(srv, 'PUT', '/api/status', { asset_id: id, uploaded_status: 'complete' });
    assert.equal(missing.status, 409, missing.text);
    assert.match(missing.json.error.message, /not been uploaded/);

    // The bytes, through the form.
    const sent = await sendThroughForm(again.json.signed_info, bytes);
    assert.ok(sent.status >= 200 && sent.status < 300, `form upload: ${sent.status} ${sent.text}`);

    // 4. complete.
    const done = await json(srv, 'PUT', '/api/status', { asset_id: id, uploaded_status: 'complete' });
    assert.equal(done.status, 200, done.text);
    assert.deepEqual(done.json, { success: true, uploaded_status: 'complete' });

    // 7. access complete: a signed URL that gives the very bytes back.
    const acc = await api(srv, 'GET', `/api/access?asset_id=${id}&expires_in=120`);
    assert.equal(acc.status, 200, acc.text);
    assert.deepEqual(Object.keys(acc.json).sort(), ['asset_id', 'url']);
    assert.equal(acc.json.asset_id, id);
    const got = await curl([acc.json.url]);
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.body, bytes);

    // 3. completed refused.
    const used = await json(srv, 'POST', '/api/upload', { object_key: 'photos/cat.bin' });
    assert.equal(used.status, 400);
    assert.equal(used.json.error.message, 'Upload already complete, try another object_key.');

    // 6. complete -> pending allowed; the key stays used, access is refused,
    // and complete again restores it without another upload.
    const back = await json(srv, 'PUT', '/api/status', { asset_id: id, uploaded_status: 'pending' });
    assert.equal(back.status, 200, back.text);
    assert.deepEqual(back.json, { success: true, uploaded_status: 'pending' });
    assert.equal((await api(srv, 'GET', `/api/access?asset_id=${id}`)).status, 400);
    const reused = await json(srv, 'POST', '/api/upload', { object_key: 'photos/cat.bin' });
    assert.equal(reused.json.error.message, 'Upload already complete, try another object_key.');
    const restored = await json(srv, 'PUT', '/api/status', { asset_id: id, uploaded_status: 'complete' });
    assert.equal(restored.status, 200, restored.text);
    assert.deepEqual((await curl([(await api(srv, 'GET', `/api/access?asset_id=${id}`)).json.url])).body, bytes);

    // 5. unknown id: 404.
    const unknown = await json(srv, 'PUT', '/api/status', { asset_id: 1337, uploaded_status: 'complete' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.message, 'Asset with id 1337 not found');
  });
}

test('cloud API: every message of the original, strict integers and expiries', { timeout: T }, async (t) => {
  const srv = await diskServer(t);
  const cases = [
    ['POST', '/api/upload', {}, 400, 'Missing key: object_key'],
    ['POST', '/api/upload', { object_key: 1 }, 400, 'Invalid key: object_key, Value: 1 is not a string'],
    ['POST', '/api/upload', { object_key: 'k', expires_in: 'mamajama' }, 400, 'Invalid key: expires_in, Value: mamajama is not an int'],
    ['POST', '/api/upload', { object_key: 'k', expires_in: true }, 400, 'Invalid key: expires_in, Value: True is not an int'],
    ['POST', '/api/upload', { object_key: 'k', expires_in: 1.5 }, 400, 'Invalid key: expires_in, Value: 1.5 is not an int'],
    ['POST', '/api/upload', { object_key: 'k', expires_in: 0 }, 400, 'Invalid key: expires_in, Value: 0 is not an int'],
    ['POST', '/api/upload', { object_key: 'k', expires_in: -5 }, 400, 'Invalid key: expires_in, Value: -5 is not an int'],
    ['POST', '/api/upload', { object_key: 'k', expires_in: 1801 }, 400,
      'Could not create a signed URL for post_object request: expiration time was too long. Try a shorter duration.'],
    ['PUT', '/api/status', { uploaded_status: 'complete' }, 400, 'Missing key: asset_id'],
    ['PUT', '/api/status', { asset_id: 1 }, 400, 'Missing key: uploaded_status'],
    ['PUT', '/api/status', { asset_id: 'some string?', uploaded_status: 'complete' }, 400, 'Invalid key: asset_id, Value: some string? is not an int'],
    ['PUT', '/api/status', { asset_id: true, uploaded_status: 'complete' }, 400, 'Invalid key: asset_id, Value: True is not an int'],
    ['PUT', '/api/status', { asset_id: 0, uploaded_status: 'complete' }, 400, 'Invalid key: asset_id, Value: 0 is not an int'],
    ['PUT', '/api/status', { asset_id: 1, uploaded_status: 'hello' }, 400,
      "Invalid key: uploaded_status, Value: hello is not one of ['pending', 'complete']"],
    ['PUT', '/api/status', { asset_id: 1337, uploaded_status: 'complete' }, 404, 'Asset with id 1337 not found'],
  ];
  for (const [method, p, body, status, message] of cases) {
    const r = await json(srv, method, p, body);
    assert.equal(r.status, status, `${method} ${p} ${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.error.message, message);
  }
  const ok = await json(srv, 'POST', '/api/upload', { object_key: 'k', expires_in: 1800 });
  assert.equal(ok.status, 200, '1800 s is the limit, inclusive');
  const gets = [
    ['', 'Missing key: asset_id'],
    ['asset_id=some%20string%3F', 'Invalid key: asset_id, Value: some string? is not an int'],
    ['asset_id=-1', 'Invalid key: asset_id, Value: -1 is not an int'],
    [`asset_id=${ok.json.asset_id}&expires_in=mamajama`, 'Invalid key: expires_in, Value: mamajama is not an int'],
    [`asset_id=${ok.json.asset_id}&expires_in=1801`,
      'Could not create a signed URL for get_object request: expiration time was too long. Try a shorter duration.'],
  ];
  for (const [q, message] of gets) {
    const r = await api(srv, 'GET', `/api/access?${q}`);
    assert.equal(r.status, 400, `${q}: ${r.text}`);
    assert.equal(r.json.error.message, message);
  }
  assert.equal((await api(srv, 'GET', '/api/access?asset_id=999')).json.error.message, 'Asset with id 999 not found');
  // No key, no API.
  const anon = await json(srv, 'POST', '/api/upload', { object_key: 'k' }, { token: null });
  assert.equal(anon.status, 401);
  assert.equal((await api(srv, 'GET', `/api/access?asset_id=${ok.json.asset_id}`, { token: null })).status, 401);
});

test('cloud API: per owner, and two concurrent first uploads of a key give one asset', { timeout: T }, async (t) => {
  const srv = await diskServer(t);
  const other = await createKey(srv.dataDir, 'other', 'someone-else');
  const mine = await json(srv, 'POST', '/api/upload', { object_key: 'same.txt' });
  const theirs = await json(srv, 'POST', '/api/upload', { object_key: 'same.txt' }, { token: other });
  assert.equal(mine.status, 200);
  assert.equal(theirs.status, 200, 'the same object_key for another owner');
  assert.notEqual(theirs.json.asset_id, mine.json.asset_id);
  const foreign = await json(srv, 'PUT', '/api/status', { asset_id: mine.json.asset_id, uploaded_status: 'pending' }, { token: other });
  assert.equal(foreign.status, 404);
  assert.equal(foreign.json.error.message, `Asset with id ${mine.json.asset_id} not found`);
  assert.equal((await api(srv, 'GET', `/api/access?asset_id=${mine.json.asset_id}`, { token: other })).status, 404);

  const racers = await Promise.all(Array.from({ length: 8 }, () => json(srv, 'POST', '/api/upload', { object_key: 'raced.bin' })));
  for (const r of racers) assert.equal(r.status, 200, r.text);
  assert.equal(new Set(racers.map((r) => r.json.asset_id)).size, 1, 'one asset for one key');
});
