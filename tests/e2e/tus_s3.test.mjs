// Resumable uploads (tus 1.0) on the S3 store: an upload in progress is an
// S3 multipart upload left open between PATCHes, with a checkpoint object
// per acknowledged offset holding what S3 cannot take yet (a tail under one
// part).  Against s3rver behind the signature-checking proxy: tus-js-client
// uploads (plain, chunked across part boundaries, parallel), resume after
// an abort and after kill -9 mid-PATCH, a checksum mismatch that sent parts
// S3 then replaces, termination and expiry; the bytes never become an
// object before the completion, and nothing is left under tus/ after it.
// Against moto_server (signatures checked, and multipart uploads listable):
// an upload in progress is an open S3 upload, and none is left after it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  TUS, b64, digest, idOf, tusUpload, head, create, patch, slowPatch, assertAsset,
} from './tuslib.mjs';
import { TEST_TIMEOUT as T, serverFor, startServer, api, waitFor, assertError, runCli, curl } from './lib.mjs';
import fs from 'node:fs';
import { keysUnder, s3 as s3raw, s3Setup, startMoto } from './s3servers.mjs';

const MiB = 1024 * 1024;

/** The checkpoints of an upload: their offsets, in order. */
async function checkpoints(s3, id) {
  const keys = await keysUnder(s3.server.endpoint, s3.bucket, `media/tus/${id}/`);
  return keys.map((k) => Number(k.split('/').pop()));
}

/** An upload's object is there only once it is complete. */
async function objectExists(s3, id) {
  return (await keysUnder(s3.server.endpoint, s3.bucket, `media/${id}`)).includes(`media/${id}`);
}

async function assertDone(s3, srv, url, data, filename) {
  const a = await assertAsset(srv, url, data, filename);
  assert.deepEqual(await checkpoints(s3, a.id), [], 'no checkpoint left after the completion');
  return a;
}

test('S3: tus-js-client plain, chunked across part boundaries, and parallel uploads become assets', { timeout: T * 2 }, async (t) => {
  const s3 = await s3Setup(t);
  const srv = await serverFor(t, { env: s3.env, args: s3.args });
  const plain = randomBytes(100 * 1024);
  const plainUrl = await tusUpload(srv, plain);
  await assertDone(s3, srv, plainUrl, plain);

  // 3 MiB PATCHes into 8 MiB parts: tails carried over in checkpoints.
  const chunked = randomBytes(19 * MiB + 5);
  const seen = [];
  const url = await tusUpload(srv, chunked, { chunkSize: 3 * MiB }, {
    onChunkComplete: async (up, size, accepted) => {
      if (seen.length < 3) seen.push({ accepted, object: objectExists(s3, idOf(up.url)), cps: checkpoints(s3, idOf(up.url)) });
    },
  });
  for (const s of seen) {
    assert.equal(await s.object, false, 'no object before the completion');
    assert.ok((await s.cps).length >= 1, 'a checkpoint per acknowledged offset');
  }
  await assertDone(s3, srv, url, chunked);

  const parallel = randomBytes(12 * MiB + 3);
  const final = await tusUpload(srv, parallel, { parallelUploads: 3,
    metadata: { filename: 'par.bin', filetype: 'application/octet-stream' } });
  await assertDone(s3, srv, final, parallel, 'par.bin');
  // The parts were read back through objects of their own; all gone now.
  const keys = await keysUnder(s3.server.endpoint, s3.bucket, 'media/');
  assert.deepEqual(keys.sort(), [url, final, plainUrl].map((u) => `media/${idOf(u)}`).sort(),
    'only the assets\' objects are left');
});

test('S3: an aborted upload resumes from its checkpoint; a bad checksum changes nothing', { timeout: T * 2 }, async (t) => {
  const s3 = await s3Setup(t);
  const srv = await serverFor(t, { env: s3.env, args: s3.args });
  const data = randomBytes(14 * MiB);
  const where = await create(srv, data.length, [`Upload-Metadata: filename ${b64('data.bin')}`]);
  const id = idOf(where);
  assert.equal((await patch(srv, where, 0, data.subarray(0, 9 * MiB))).status, 204);
  // Checkpoint 9 MiB: one part sent, a 1 MiB tail kept.  The one before
  // stays until a later write proves the database moved past it.
  assert.deepEqual(await checkpoints(s3, id), [0, 9 * MiB]);
  // A chunk that sends a whole part, then fails its checksum: not acknowledged.
  const bad = await patch(srv, where, 9 * MiB, data.subarray(9 * MiB, 13 * MiB),
    [`Upload-Checksum: sha256 ${digest('sha256', 'something else')}`]);
  assertError(bad, 460, 'checksum_mismatch');
  assert.equal((await api(srv, 'HEAD', where, { headers: [TUS] })).headers['upload-offset'], String(9 * MiB));
  assert.equal(await objectExists(s3, id), false);
  // The client resumes at 9 MiB: part 2 is sent again, this time for good.
  const url = await tusUpload(srv, data, { uploadUrl: `${srv.url}${where}`, chunkSize: 4 * MiB });
  await assertDone(s3, srv, url, data);
});

test('S3: kill -9 mid-PATCH, restart: the offset is the last checkpoint and the resumed upload is right', { timeout: T * 2 }, async (t) => {
  const s3 = await s3Setup(t);
  const args = [...s3.args, '--tus-lease', '1'];
  const first = await startServer({ env: s3.env, args });
  let srv = first;
  t.after(async () => { if (srv !== first) await srv.cleanup(); await first.cleanup(); });
  const data = randomBytes(20 * MiB);
  const where = await create(srv, data.length, [`Upload-Metadata: filename ${b64('data.bin')}`]);
  const id = idOf(where);
  assert.equal((await patch(srv, where, 0, data.subarray(0, 6 * MiB))).status, 204);
  const p = slowPatch(srv, where, 6 * MiB, data.length - 6 * MiB);
  p.req.write(data.subarray(6 * MiB, 15 * MiB));
  // Bytes past the checkpoint reach S3 as parts before any acknowledgement:
  // kill the server once part 1 (bytes 0..8 MiB: the 6 MiB tail and 2 MiB
  // of this PATCH) is in S3.
  const partSent = () => s3.proxy.log.some((e) => e.method === 'PUT' && /[?&]partNumber=1&/.test(e.url + '&') && e.status === 200);
  await waitFor(partSent, { what: 'part 1 uploaded mid-PATCH' });
  await srv.kill9();
  p.req.destroy();
  srv = await startServer({ dataDir: first.dataDir, env: s3.env, args });
  const h = await api(srv, 'HEAD', where, { headers: [TUS] });
  assert.equal(h.status, 200);
  assert.equal(h.headers['upload-offset'], String(6 * MiB), 'only the acknowledged bytes count');
  assert.ok((await checkpoints(s3, id)).includes(6 * MiB));
  const url = await tusUpload(srv, data, { uploadUrl: `${srv.url}${where}`, retryDelays: [200, 400, 800, 1000, 1000, 2000] });
  await assertDone(s3, srv, url, data);
});

test('S3: termination and gc remove checkpoints, never an asset\'s object', { timeout: T * 2 }, async (t) => {
  const s3 = await s3Setup(t);
  const srv = await serverFor(t, { env: s3.env, args: [...s3.args, '--tus-expiry', '1'] });
  const gone = await create(srv, 10 * MiB);
  assert.equal((await patch(srv, gone, 0, randomBytes(6 * MiB))).status, 204);
  assert.deepEqual(await checkpoints(s3, idOf(gone)), [0, 6 * MiB]);
  assert.equal((await api(srv, 'DELETE', gone, { headers: [TUS] })).status, 204);
  assert.deepEqual(await checkpoints(s3, idOf(gone)), [], 'terminated: checkpoints removed');

  const stale = await create(srv, 10 * MiB);
  assert.equal((await patch(srv, stale, 0, randomBytes(MiB))).status, 204);
  const done = await create(srv, 4);
  assert.equal((await patch(srv, done, 0, 'done')).status, 204);
  await waitFor(async () => (await api(srv, 'HEAD', stale, { headers: [TUS] })).status === 410,
    { timeoutMs: 10000, intervalMs: 200, what: 'the upload to expire' });
  await srv.stop();
  const gc = await runCli(['gc', '--data', srv.dataDir, ...s3.args], { env: s3.env });
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /removed 1 expired tus uploads/);
  assert.deepEqual(await checkpoints(s3, idOf(stale)), []);
  assert.deepEqual(await keysUnder(s3.server.endpoint, s3.bucket, 'media/'), [`media/${idOf(done)}`],
    'the finished upload\'s object stays');
});

test('S3: gc removes checkpoints no upload names once an hour old, never a live upload\'s', { timeout: T * 2 }, async (t) => {
  const s3 = await s3Setup(t);
  const srv = await serverFor(t, { env: s3.env, args: s3.args });
  const live = await create(srv, 10 * MiB);
  assert.equal((await patch(srv, live, 0, randomBytes(MiB))).status, 204);
  await srv.stop();
  // Checkpoints of uploads whose rows are gone (a crash between the row's
  // removal and theirs): one old, one recent.
  const body = 'assetd-append 1\nupload gone-upload-id\nparts 0\ntail 0\n';
  const old = 'media/tus/oldorphanoldorphan0001/00000000000000000000';
  const young = 'media/tus/neworphanneworphan0001/00000000000000000000';
  for (const key of [old, young]) assert.equal((await s3raw(s3.server.endpoint, 'PUT', `/${s3.bucket}/${key}`, body)).status, 200);
  const hourAgo = new Date(Date.now() - 3700 * 1000);
  fs.utimesSync(s3.server.objectFile(s3.bucket, old), hourAgo, hourAgo);
  // The live upload's checkpoints are old too: its row keeps them.
  for (const off of await checkpoints(s3, idOf(live))) {
    fs.utimesSync(s3.server.objectFile(s3.bucket, `media/tus/${idOf(live)}/${String(off).padStart(20, '0')}`), hourAgo, hourAgo);
  }
  const gc = await runCli(['gc', '--data', srv.dataDir, ...s3.args], { env: s3.env });
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /removed 1 abandoned tus uploads no row names/);
  const left = await keysUnder(s3.server.endpoint, s3.bucket, 'media/tus/');
  assert.ok(!left.includes(old), 'the old orphan is removed');
  assert.ok(left.includes(young), 'a recent one stays: a writer may hold it');
  assert.deepEqual(await checkpoints(s3, idOf(live)), [0, MiB], 'a live upload\'s stay');
});

test('S3 (moto, signatures checked): an upload in progress is an open S3 upload, none is left once complete', { timeout: T * 2 }, async (t) => {
  const moto = await startMoto(t);
  if (!moto) return t.skip('moto_server is not installed here');
  const bucket = 'assetd-tus';
  const sig = ['--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', `${moto.accessKey}:${moto.secretKey}`,
    '-H', 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'];
  assert.equal((await curl(['-X', 'PUT', ...sig, `${moto.endpoint}/${bucket}`])).status, 200);
  const env = { AWS_ACCESS_KEY_ID: moto.accessKey, AWS_SECRET_ACCESS_KEY: moto.secretKey, AWS_SESSION_TOKEN: '' };
  const srv = await serverFor(t, { env, args: ['--store', `s3://${bucket}`, '--s3-endpoint', moto.endpoint] });
  const uploads = async () => {
    const r = await curl([...sig, `${moto.endpoint}/${bucket}?uploads=`]);
    assert.equal(r.status, 200, r.body.toString());
    return [...r.body.toString().matchAll(/<UploadId>([^<]+)<\/UploadId>/g)].map((m) => m[1]);
  };
  const data = randomBytes(11 * MiB);
  await assertAsset(srv, await tusUpload(srv, data, { chunkSize: 5 * MiB }), data);
  assert.deepEqual(await uploads(), [], 'completed: no S3 upload left open');

  // In progress, an upload is an open S3 multipart upload (moto, unlike
  // s3rver, lists them).  Not tested here: termination aborting it, because
  // moto refuses the signature of any query with %2F (ListObjectsV2 of
  // "tus/<id>/"), as it does for botocore's own requests; s3rver covers
  // the checkpoints' removal above.
  const where = await create(srv, 10 * MiB);
  assert.equal((await patch(srv, where, 0, randomBytes(MiB))).status, 204);
  assert.equal((await uploads()).length, 1);
});
