// The S3 store (--store s3://BUCKET/PREFIX): everything that works on disk
// works on S3 — uploads streamed as multipart uploads, workers reading
// sources and writing renditions there, downloads with ETag/304/Range,
// deletes that remove every object, the start-up sweep — against s3rver
// behind a proxy that checks every request's SigV4 signature (s3rver checks
// none), and against moto_server in auth mode where it is installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  api, curl, serverFor, sha256, upload, waitFor, makeTempDir, removeDir, TINY_PNG, CORPUS,
  TEST_TIMEOUT as T, SLOW,
} from './lib.mjs';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
import path from 'node:path';
import fs from 'node:fs';
import {
  keysUnder, makeBucket, s3, s3Setup, startMoto, startS3rver, S3RVER_ACCESS_KEY,
} from './s3servers.mjs';

test('S3 store: upload, process, download with validators and ranges, delete', { timeout: T * 2 }, async (t) => {
  const { server, proxy, bucket, env, args } = await s3Setup(t);
  const srv = await serverFor(t, { env, args, workers: 1 });

  // An image: stored on S3, processed by a worker reading it from there.
  const up = await upload(srv, { data: TINY_PNG, filename: 'dot.png', contentType: 'image/png' });
  assert.equal(up.status, 201, up.text);
  const id = up.json.id;
  assert.equal(up.json.content_type, 'image/png');
  let a;
  await waitFor(async () => { a = (await api(srv, 'GET', `/v1/assets/${id}`)).json; return a.status === 'ready' || a.status === 'failed'; },
    { timeoutMs: 30000 * SLOW, what: 'the image processed' });
  assert.equal(a.status, 'ready', JSON.stringify(a));
  const keys = await keysUnder(server.endpoint, bucket, `media/${id}`);
  assert.ok(keys.includes(`media/${id}`), keys.join());
  for (const r of a.renditions) assert.ok(keys.includes(`media/${id}.${r.name}`), `${r.name} in ${keys.join()}`);

  // Downloads are proxied, with the disk store's validators.
  const full = await api(srv, 'GET', `/v1/assets/${id}/content`);
  assert.equal(full.status, 200);
  assert.equal(sha256(full.body), up.json.sha256);
  const etag = `"${up.json.sha256}"`;
  assert.equal(full.headers.etag, etag);
  assert.equal(full.headers['content-type'], 'image/png');
  const notModified = await api(srv, 'GET', `/v1/assets/${id}/content`, { headers: [`If-None-Match: ${etag}`] });
  assert.equal(notModified.status, 304);
  const part = await api(srv, 'GET', `/v1/assets/${id}/content`, { headers: ['Range: bytes=1-4'] });
  assert.equal(part.status, 206);
  assert.equal(part.headers['content-range'], `bytes 1-4/${TINY_PNG.length}`);
  assert.deepEqual(part.body, TINY_PNG.subarray(1, 5));
  const r416 = await api(srv, 'GET', `/v1/assets/${id}/content`, { headers: [`Range: bytes=${TINY_PNG.length}-`] });
  assert.equal(r416.status, 416);
  const thumb = a.renditions[0];
  const rend = await api(srv, 'GET', thumb.url);
  assert.equal(rend.status, 200);
  assert.equal(rend.body.length, thumb.size);
  const head = await api(srv, 'HEAD', `/v1/assets/${id}/content`);
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers['content-length']), TINY_PNG.length);

  // A PDF: the document pipeline reads it from S3 and writes its slides there.
  const pdf = await upload(srv, { file: path.join(CORPUS, 'pdf', 'slides_context_bachotex2018_45p.pdf'), filename: 'deck.pdf', contentType: 'application/pdf' });
  assert.equal(pdf.status, 201, pdf.text);
  let doc;
  await waitFor(async () => { doc = (await api(srv, 'GET', `/v1/assets/${pdf.json.id}`)).json; return doc.status === 'ready' || doc.status === 'failed'; },
    { timeoutMs: 60000 * SLOW, what: 'the PDF processed' });
  assert.equal(doc.status, 'ready', JSON.stringify(doc));
  const slide = doc.renditions.find((x) => x.name === 'slide_001');
  assert.ok(slide, JSON.stringify(doc.renditions));
  const slideGot = await api(srv, 'GET', slide.url);
  assert.equal(slideGot.status, 200);
  assert.equal(slideGot.body.length, slide.size);
  assert.equal(slideGot.body.subarray(0, 2).toString('hex'), 'ffd8', 'a JPEG');

  // A larger upload goes as a multipart upload of 8 MiB parts, streamed.
  const big = randomBytes(20 * 1024 * 1024 + 12345);
  const bigUp = await upload(srv, { data: big, filename: 'big.bin' });
  assert.equal(bigUp.status, 201, bigUp.text);
  assert.equal(bigUp.json.sha256, sha256(big));
  assert.ok(proxy.log.some((e) => e.method === 'POST' && /\?uploads=$/.test(e.url)), 'a multipart upload');
  const bigGot = await api(srv, 'GET', `/v1/assets/${bigUp.json.id}/content`);
  assert.equal(bigGot.body.length, big.length);
  assert.equal(sha256(bigGot.body), sha256(big));
  const mid = await api(srv, 'GET', `/v1/assets/${bigUp.json.id}/content`, { headers: ['Range: bytes=9000000-9000099'] });
  assert.deepEqual(mid.body, big.subarray(9000000, 9000100));

  // Delete removes the blob and every rendition.
  assert.equal((await api(srv, 'DELETE', `/v1/assets/${id}`)).status, 204);
  assert.deepEqual(await keysUnder(server.endpoint, bucket, `media/${id}`), []);
  assert.equal((await api(srv, 'GET', `/v1/assets/${id}/content`)).status, 404);

  // Every request assetd made was correctly signed.
  const bad = proxy.log.filter((e) => e.problem);
  assert.deepEqual(bad.map((e) => `${e.method} ${e.url}: ${e.problem}`), []);
});

test('S3 store: a 720p video\'s fallback, HLS/DASH ladder and segments are S3 objects, served and probed through the server, and deleted with it', { timeout: T * 2 }, async (t) => {
  const { server, proxy, bucket, env, args } = await s3Setup(t);
  const srv = await serverFor(t, { env, args: [...args, '--video-preset', 'ultrafast'], workers: 1 });
  const dir = makeTempDir('assetd-s3video-');
  t.after(() => removeDir(dir));
  const clip = path.join(dir, 'hd.mp4');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '7', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '38',
    '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', clip], { timeout: 60000 });
  const up = await upload(srv, { file: clip, filename: 'hd.mp4' });
  assert.equal(up.status, 201, up.text);
  const id = up.json.id;
  let a;
  await waitFor(async () => { a = (await api(srv, 'GET', `/v1/assets/${id}`)).json; return a.status === 'ready' || a.status === 'failed'; },
    { timeoutMs: 120000 * SLOW, what: 'the video transcoded' });
  assert.equal(a.status, 'ready', JSON.stringify(a.error));
  const keys = await keysUnder(server.endpoint, bucket, `media/${id}`);
  for (const name of ['fallback', 'hls', 'dash', 'poster', 'cover_large', 'tilesheet', 'timeline', 'init_0', 'seg_0_00001', 'seg_1_00002'])
    assert.ok(keys.includes(`media/${id}.${name}`), `${name} in ${keys.join()}`);
  // ffprobe plays the HLS master through the server: playlists and segments
  // from S3 (asynchronously: the signature-checking proxy runs in this process)
  const probe = JSON.parse((await execFileAsync('ffprobe', ['-v', 'error', '-headers', `Authorization: Bearer ${srv.token}\r\n`,
    '-print_format', 'json', '-show_streams', `${srv.url}/v1/assets/${id}/renditions/hls`], { timeout: 60000 })).stdout);
  const sizes = probe.streams.filter((x) => x.codec_type === 'video').map((x) => `${x.width}x${x.height}`).sort();
  assert.deepEqual(sizes, ['1280x720', '854x480']);
  const seg = await api(srv, 'GET', `/v1/assets/${id}/renditions/seg_0_00001`, { headers: ['Range: bytes=0-7'] });
  assert.equal(seg.status, 206);
  assert.equal(seg.body.length, 8);
  assert.equal((await api(srv, 'DELETE', `/v1/assets/${id}`)).status, 204);
  assert.deepEqual(await keysUnder(server.endpoint, bucket, `media/${id}`), [], 'every part went with the asset');
  const bad = proxy.log.filter((e) => e.problem);
  assert.deepEqual(bad.map((e) => `${e.method} ${e.url}: ${e.problem}`), []);
});

test('S3 store: the start-up sweep removes objects no asset names; storage failures are clear errors', { timeout: T * 2 }, async (t) => {
  const { server, proxy, bucket, env, args } = await s3Setup(t);
  const srv = await serverFor(t, { env, args });
  const kept = await upload(srv, { data: Buffer.from('kept bytes\n'), filename: 'k.txt' });
  assert.equal(kept.status, 201);
  const leftover = 'A'.repeat(22);
  assert.equal((await s3(server.endpoint, 'PUT', `/${bucket}/media/${leftover}`, 'orphan')).status, 200);
  assert.equal((await s3(server.endpoint, 'PUT', `/${bucket}/elsewhere/keep`, 'not ours')).status, 200);
  // a leftover is judged once an hour old (a younger one may be another
  // process's upload in flight); a recent one stays
  const hourAgo = new Date(Date.now() - 3700 * 1000);
  fs.utimesSync(server.objectFile(bucket, `media/${leftover}`), hourAgo, hourAgo);
  const young = 'B'.repeat(22);
  assert.equal((await s3(server.endpoint, 'PUT', `/${bucket}/media/${young}`, 'in flight')).status, 200);
  await srv.stop();
  const again = await serverFor(t, { env, args, dataDir: srv.dataDir });
  await again.waitUntil((s) => s.logs.find((j) => j.msg === 'recovery sweep done'), 10000, 'sweep');
  const keys = await keysUnder(server.endpoint, bucket, '');
  assert.ok(keys.includes(`media/${kept.json.id}`), keys.join());
  assert.ok(!keys.includes(`media/${leftover}`), keys.join());
  assert.ok(keys.includes(`media/${young}`), 'a recent object stays');
  assert.ok(keys.includes('elsewhere/keep'), 'objects outside the prefix are not touched');
  const got = await api(again, 'GET', `/v1/assets/${kept.json.id}/content`);
  assert.equal(got.body.toString(), 'kept bytes\n');

  // S3 gone: an upload is a 507, a download a 502, both JSON; readiness says so.
  await proxy.stop();
  const failed = await upload(again, { data: Buffer.from('x'.repeat(1000)), filename: 'f.txt' });
  assert.equal(failed.status, 507, failed.text);
  assert.equal(failed.json.error.code, 'storage_failed');
  const down = await api(again, 'GET', `/v1/assets/${kept.json.id}/content`);
  assert.equal(down.status, 502, down.text);
  assert.equal(down.json.error.code, 'storage_failed');
  assert.equal((await api(again, 'GET', '/readyz', { token: null })).status, 503);
  const list = await api(again, 'GET', '/v1/assets');
  assert.equal(list.json.items.length, 1, 'the failed upload left no asset');
});

test('S3 store against moto_server with signatures checked', { timeout: T * 2 }, async (t) => {
  const moto = await startMoto(t);
  if (!moto) return t.skip('moto_server is not installed here');
  const bucket = 'assetd-' + randomBytes(5).toString('hex');
  const made = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '--aws-sigv4', 'aws:amz:us-east-1:s3',
    '--user', `${moto.accessKey}:${moto.secretKey}`,
    '-H', 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    `${moto.endpoint}/${bucket}`]);
  assert.equal(made.body.toString(), '200');
  const env = { AWS_ACCESS_KEY_ID: moto.accessKey, AWS_SECRET_ACCESS_KEY: moto.secretKey, AWS_SESSION_TOKEN: '' };
  const srv = await serverFor(t, { env, args: ['--store', `s3://${bucket}`, '--s3-endpoint', moto.endpoint], workers: 1 });
  const photo = fs.readFileSync(path.join(CORPUS, 'photos', fs.readdirSync(path.join(CORPUS, 'photos')).filter((f) => /\.jpe?g$/i.test(f)).sort()[0]));
  const up = await upload(srv, { data: photo, filename: 'photo.jpg', contentType: 'image/jpeg' });
  assert.equal(up.status, 201, up.text);
  let a;
  await waitFor(async () => { a = (await api(srv, 'GET', `/v1/assets/${up.json.id}`)).json; return a.status === 'ready' || a.status === 'failed'; },
    { timeoutMs: 60000 * SLOW, what: 'the photo processed' });
  assert.equal(a.status, 'ready', JSON.stringify(a));
  const got = await api(srv, 'GET', `/v1/assets/${up.json.id}/content`);
  assert.equal(sha256(got.body), sha256(photo));
  assert.equal((await api(srv, 'DELETE', `/v1/assets/${up.json.id}`)).status, 204);
  // A wrong secret: the server starts, but is not ready and cannot store.
  const wrong = await serverFor(t, { env: { ...env, AWS_SECRET_ACCESS_KEY: 'wrong' }, args: ['--store', `s3://${bucket}`, '--s3-endpoint', moto.endpoint] });
  assert.equal((await api(wrong, 'GET', '/readyz', { token: null })).status, 503);
  const refused = await upload(wrong, { data: Buffer.from('hello'), filename: 'h.txt' });
  assert.equal(refused.status, 507, refused.text);
});

test('S3 store with --s3-redirect: downloads are 302s to presigned GETs', { timeout: T }, async (t) => {
  const server = await startS3rver(t);
  const bucket = await makeBucket(server.endpoint);
  const env = { AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: 'any', AWS_SESSION_TOKEN: '' };
  const srv = await serverFor(t, { env, args: ['--store', `s3://${bucket}/r`, '--s3-endpoint', server.endpoint, '--s3-redirect', '1'] });
  const data = randomBytes(100000);
  const up = await upload(srv, { data, filename: 'r.bin' });
  assert.equal(up.status, 201, up.text);
  const r = await api(srv, 'GET', `/v1/assets/${up.json.id}/content`);
  assert.equal(r.status, 302, r.text);
  const location = r.headers.location;
  assert.ok(location.startsWith(`${server.endpoint}/${bucket}/r/${up.json.id}?`), location);
  assert.match(location, /X-Amz-Expires=300&/);
  assert.match(location, /response-content-disposition=attachment/);
  assert.match(r.headers['cache-control'], /no-store/);
  const followed = await curl(['-L', '-H', `Authorization: Bearer ${srv.token}`, `${srv.url}/v1/assets/${up.json.id}/content`]);
  assert.equal(followed.status, 200);
  assert.equal(sha256(followed.body), sha256(data));
  // Validators still answer here: a cached copy needs no redirect.
  const cached = await api(srv, 'GET', `/v1/assets/${up.json.id}/content`, { headers: [`If-None-Match: "${up.json.sha256}"`] });
  assert.equal(cached.status, 304);
});
