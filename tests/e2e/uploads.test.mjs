// Signed direct transfers (POST /v1/uploads, complete, links) on both
// stores: the client sends its bytes straight to the store — a POST form
// (fields, `file` last) or a presigned PUT, with curl — then says
// "complete", and assetd checks the object before the asset exists.  On
// disk the URLs point at assetd's own /v1/store routes, which check the
// signatures themselves; on S3 they point at s3rver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import {
  api, curl, createKey, serverFor, sha256, sleep, runCli, upload, TINY_PNG, SLOW, TEST_TIMEOUT as T,
} from './lib.mjs';
import { makeBucket, S3RVER_ACCESS_KEY, startS3rver } from './s3servers.mjs';

const json = (srv, method, p, body, token = srv.token) => api(srv, method, p, {
  token, headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'], input: JSON.stringify(body),
});

// The bytes through the signed POST form, with curl: fields first, file last.
function postForm(post, data, filename = 'f.bin') {
  const args = ['-X', 'POST'];
  for (const [k, v] of Object.entries(post.fields)) args.push('--form-string', `${k}=${v}`);
  args.push('-F', `file=@-;filename=${filename}`, post.url);
  return curl(args, { input: data });
}
const putUrl = (put, data) => curl(['-X', 'PUT', '--data-binary', '@-', '-H', 'Content-Type:', put.url], { input: data });

// One byte of a URL's signature changed.
function tamper(url) {
  return url.replace(/X-Amz-Signature=([0-9a-f])/, (m, c) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
}

async function storeCases(t, srv, { disk }) {
  const data = randomBytes(300000);
  // 1. The POST form, with a declared SHA-256: complete makes the asset.
  const made = await json(srv, 'POST', '/v1/uploads', { filename: '../../etc/x.bin', size: data.length, sha256: sha256(data), content_type: 'application/octet-stream' });
  assert.equal(made.status, 201, made.text);
  const up = made.json;
  assert.equal(up.status, 'pending');
  assert.equal(up.filename, 'x.bin');
  assert.ok(up.post.url && up.post.fields.policy && up.post.fields['x-amz-signature']);
  assert.deepEqual(Object.keys(up.post.fields).slice(-2), ['policy', 'x-amz-signature']);
  assert.match(up.put.url, /X-Amz-Signature=[0-9a-f]{64}/);
  // Nothing is visible before complete.
  assert.equal((await api(srv, 'GET', `/v1/assets/${up.id}`)).status, 404);
  const early = await api(srv, 'POST', `/v1/uploads/${up.id}/complete`);
  assert.equal(early.status, 409, early.text);
  assert.equal(early.json.error.code, 'object_missing');
  const sent = await postForm(up.post, data);
  assert.ok(sent.status === 204 || sent.status === 200 || sent.status === 201, `${sent.status} ${sent.text}`);
  const done = await api(srv, 'POST', `/v1/uploads/${up.id}/complete`);
  assert.equal(done.status, 201, done.text);
  assert.equal(done.json.id, up.id);
  assert.equal(done.json.sha256, sha256(data));
  assert.equal(done.json.size, data.length);
  assert.equal((await api(srv, 'GET', `/v1/uploads/${up.id}`)).json.status, 'complete');
  const again = await api(srv, 'POST', `/v1/uploads/${up.id}/complete`);
  assert.equal(again.status, 409);
  assert.equal(again.json.error.code, 'already_complete');
  const got = await api(srv, 'GET', `/v1/assets/${up.id}/content`);
  assert.equal(sha256(got.body), sha256(data));
  if (disk) {
    // The key belongs to an asset now: its bytes never change again.
    const over = await putUrl(up.put, data);
    assert.equal(over.status, 409, over.text);
  }

  // 2. The presigned PUT, sniffed from its bytes whatever it claimed.
  const png = await json(srv, 'POST', '/v1/uploads', { filename: 'dot.txt', size: TINY_PNG.length });
  assert.equal(png.status, 201);
  const put = await putUrl(png.json.put, TINY_PNG);
  assert.ok(put.status === 200 || put.status === 204, `${put.status} ${put.text}`);
  const pngDone = await api(srv, 'POST', `/v1/uploads/${png.json.id}/complete`);
  assert.equal(pngDone.status, 201, pngDone.text);
  assert.equal(pngDone.json.content_type, 'image/png');
  assert.equal(pngDone.json.kind, 'image');

  // 3. The wrong bytes: a size or SHA-256 other than declared is refused.
  const short = await json(srv, 'POST', '/v1/uploads', { filename: 's.bin', size: 10, sha256: sha256(Buffer.alloc(10, 1)) });
  if (disk) {
    const wrong = await putUrl(short.json.put, Buffer.alloc(11));
    assert.ok(wrong.status === 413 || wrong.status === 400, `${wrong.status} ${wrong.text}`);
    const bigForm = await postForm(short.json.post, Buffer.alloc(50));
    assert.ok(bigForm.status === 413 || bigForm.status === 400 || bigForm.status === 403, `${bigForm.status} ${bigForm.text}`);
  }
  assert.ok([200, 204].includes((await putUrl(short.json.put, Buffer.alloc(10, 2))).status));
  const mismatch = await api(srv, 'POST', `/v1/uploads/${short.json.id}/complete`);
  assert.equal(mismatch.status, 422, mismatch.text);
  assert.equal(mismatch.json.error.code, 'sha256_mismatch');
  const sized = await json(srv, 'POST', '/v1/uploads', { filename: 'z.bin', size: 5 });
  const other = await json(srv, 'POST', '/v1/uploads', { filename: 'y.bin', size: 7 });
  // The other upload's bytes under this key's PUT URL: no (its own size only).
  if (!disk) {
    assert.ok([200, 204].includes((await putUrl(sized.json.put, Buffer.alloc(7))).status));
    const sm = await api(srv, 'POST', `/v1/uploads/${sized.json.id}/complete`);
    assert.equal(sm.status, 422, sm.text);
    assert.equal(sm.json.error.code, 'size_mismatch');
  }
  assert.equal((await api(srv, 'GET', `/v1/assets/${other.json.id}`)).status, 404);

  // 4. Signed downloads: usable without a key until they expire.
  const link = await json(srv, 'POST', `/v1/assets/${up.id}/links`, { expires_in: 60, disposition: 'attachment' });
  assert.equal(link.status, 201, link.text);
  const dl = await curl([link.json.url]);
  assert.equal(dl.status, 200);
  assert.equal(sha256(dl.body), sha256(data));
  assert.match(dl.headers['content-disposition'] || '', /^attachment/);
  if (disk) {
    const bad = await curl([tamper(link.json.url)]);
    assert.equal(bad.status, 403, bad.text);
    assert.equal(bad.json.error.code, 'signature_invalid');
    const otherKey = await curl([link.json.url.replace(up.id, png.json.id)]);
    assert.equal(otherKey.status, 403, 'a signature is for one asset only');
    const short1 = await json(srv, 'POST', `/v1/assets/${up.id}/links`, { expires_in: 1 });
    await sleep(2100);   // the expiry is ours to choose: one second, then past it
    const late = await curl([short1.json.url]);
    assert.equal(late.status, 403, late.text);
    assert.equal(late.json.error.code, 'signature_expired');
    // Keep-alive: a signed download, then a keyed read, on one connection
    // (the signed GET is answered on the HTTP thread, like the keyed one).
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const onAgent = (method, p, token) => new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: srv.port, method, path: p, agent,
        headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, reused: req.reusedSocket, connection: res.headers.connection }));
      });
      req.on('error', reject);
      req.end();
    });
    const u = new URL(link.json.url);
    const seq = [
      await onAgent('GET', u.pathname + u.search, null),
      await onAgent('GET', u.pathname + u.search, null),
      await onAgent('GET', `/v1/assets/${up.id}`, srv.token),
    ];
    assert.deepEqual(seq.map((x) => x.status), [200, 200, 200]);
    assert.deepEqual(seq.map((x) => x.reused), [false, true, true], JSON.stringify(seq));
    // Verified links are remembered per thread by their decoded parts: the
    // same bytes split into other parts (the disposition parameter moved
    // into the value before it with %0A) are another request, not signed.
    const resplit = u.search.replace('&response-content-disposition=', '%0Aresponse-content-disposition%0A');
    assert.notEqual(resplit, u.search);
    const moved = await onAgent('GET', u.pathname + resplit, null);
    assert.equal(moved.status, 403, 'a link whose parameters were re-split was served');
    assert.equal(moved.reused, true);
    // A deleted asset's link answers 404.
    const link2 = await json(srv, 'POST', `/v1/assets/${png.json.id}/links`, {});
    assert.equal((await api(srv, 'DELETE', `/v1/assets/${png.json.id}`)).status, 204);
    const gone = await curl([link2.json.url]);
    assert.equal(gone.status, 404, gone.text);
  }
}

test('signed uploads and links on the disk store', { timeout: T * 2 }, async (t) => {
  const srv = await serverFor(t, { args: ['--max-upload', '1M', '--max-sign-ttl', '600', '--store', 'disk'] });
  await storeCases(t, srv, { disk: true });

  // Validation: every field checked, limits before signing.
  for (const [body, status] of [
    [{ size: 1 }, 400], [{ filename: 'a', size: -1 }, 400], [{ filename: 'a', size: 1.5 }, 400],
    [{ filename: 'a', size: '1' }, 400], [{ filename: 'a', size: 1, sha256: 'abc' }, 400],
    [{ filename: 'a', size: 1, expires_in: 601 }, 400], [{ filename: 'a', size: 1, expires_in: 0 }, 400],
    [{ filename: 'a', size: 1, expires_in: true }, 400], [{ filename: 'a', size: 2 * 1024 * 1024 }, 413],
  ]) {
    const r = await json(srv, 'POST', '/v1/uploads', body);
    assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
  }
  // Without a key, and another owner's: 401, 404.
  assert.equal((await json(srv, 'POST', '/v1/uploads', { filename: 'a', size: 1 }, null)).status, 401);
  const mine = await json(srv, 'POST', '/v1/uploads', { filename: 'a', size: 1 });
  const bob = await createKey(srv.dataDir, 'bob', 'bob');
  assert.equal((await api(srv, 'GET', `/v1/uploads/${mine.json.id}`, { token: bob })).status, 404);
  assert.equal((await api(srv, 'POST', `/v1/uploads/${mine.json.id}/complete`, { token: bob })).status, 404);
  // A form signed for one key cannot upload another's bytes.
  const f = { ...mine.json.post, fields: { ...mine.json.post.fields, key: 'A'.repeat(22) } };
  const forged = await postForm(f, Buffer.from('x'));
  assert.equal(forged.status, 403, forged.text);
  const unsigned = await curl(['-X', 'PUT', '--data-binary', 'x', `${srv.url}/v1/store/${mine.json.id}`]);
  assert.equal(unsigned.status, 400, unsigned.text);
});

test('an upload never completed is removed with its bytes by gc', { timeout: T }, async (t) => {
  const srv = await serverFor(t, { args: ['--upload-grace', '0'] });
  const up = await json(srv, 'POST', '/v1/uploads', { filename: 'a.bin', size: 4, expires_in: 1 });
  assert.ok([200, 204].includes((await putUrl(up.json.put, Buffer.from('abcd'))).status));
  await sleep(1100);
  await srv.stop();
  const gc = await runCli(['gc', '--data', srv.dataDir, '--upload-grace', '0']);
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /removed 1 expired uploads/);
  const again = await serverFor(t, { dataDir: srv.dataDir });
  assert.equal((await api(again, 'GET', `/v1/uploads/${up.json.id}`)).status, 404);
  assert.equal((await api(again, 'POST', `/v1/uploads/${up.json.id}/complete`)).status, 404);
});

test('signed uploads and links on the S3 store (s3rver)', { timeout: T * 2 }, async (t) => {
  const s3 = await startS3rver(t);
  const bucket = await makeBucket(s3.endpoint);
  const env = { AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_SESSION_TOKEN: '' };
  const srv = await serverFor(t, { env, args: ['--store', `s3://${bucket}/up`, '--s3-endpoint', s3.endpoint] });
  const made = await json(srv, 'POST', '/v1/uploads', { filename: 'a.bin', size: 3 });
  assert.ok(made.json.post.url.startsWith(`${s3.endpoint}/${bucket}`), made.json.post.url);
  assert.equal(made.json.post.fields.key, `up/${made.json.id}`);
  assert.ok(made.json.put.url.startsWith(`${s3.endpoint}/${bucket}/up/${made.json.id}?`), made.json.put.url);
  await storeCases(t, srv, { disk: false });
  void SLOW;
});
