// What the tus tests share (tus.test.mjs on disk, tus_s3.test.mjs on S3):
// tus-js-client in node, and the raw requests curl and node:http make.
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import * as tus from 'tus-js-client';
import { api, sha256 } from './lib.mjs';

export const TUS = 'Tus-Resumable: 1.0.0';
export const OCTETS = 'Content-Type: application/offset+octet-stream';
export const b64 = (s) => Buffer.from(s).toString('base64');
export const digest = (alg, buf) => createHash(alg).update(buf).digest('base64');
export const idOf = (url) => url.split('/').pop();

/** Uploads data with tus-js-client; resolves with the upload URL. */
export function tusUpload(srv, data, opts = {}, hooks = {}) {
  return new Promise((resolve, reject) => {
    const up = new tus.Upload(data, {
      endpoint: `${srv.url}/v1/tus/`,
      headers: { Authorization: `Bearer ${srv.token}` },
      metadata: { filename: 'data.bin', filetype: 'application/octet-stream' },
      retryDelays: [],
      ...opts,
      onError: reject,
      onSuccess: () => resolve(up.url),
      onChunkComplete: (...a) => hooks.onChunkComplete?.(up, ...a),
      onProgress: (...a) => hooks.onProgress?.(up, ...a),
    });
    hooks.created?.(up);
    up.start();
  });
}

export const head = (srv, url) => api(srv, 'HEAD', new URL(url).pathname, { headers: [TUS] });

/** POST /v1/tus: the new upload's path. */
export async function create(srv, length, extra = []) {
  const r = await api(srv, 'POST', '/v1/tus', { headers: [TUS, `Upload-Length: ${length}`, ...extra] });
  assert.equal(r.status, 201, r.text);
  return new URL(r.headers.location).pathname;
}

export const patch = (srv, where, offset, body, extra = []) => api(srv, 'PATCH', where,
  { headers: [TUS, OCTETS, `Upload-Offset: ${offset}`, ...extra], args: ['--data-binary', '@-'], input: body });

/** A PATCH whose body the test writes itself (req), and its answer (done). */
export function slowPatch(srv, where, offset, total, extra = {}) {
  const req = http.request({ host: '127.0.0.1', port: srv.port, method: 'PATCH', path: where, headers: {
    authorization: `Bearer ${srv.token}`, 'tus-resumable': '1.0.0', 'upload-offset': String(offset),
    'content-type': 'application/offset+octet-stream', 'content-length': String(total), ...extra } });
  const done = new Promise((resolve) => {
    req.on('response', (res) => { res.resume(); res.on('end', () => resolve(res)); });
    req.on('error', (e) => resolve({ statusCode: 0, error: e }));
  });
  return { req, done };
}

/** The asset a finished upload became, checked against the bytes sent. */
export async function assertAsset(srv, url, data, filename = 'data.bin') {
  const h = await head(srv, url);
  assert.equal(h.status, 200);
  assert.equal(h.headers['upload-offset'], String(data.length));
  const id = h.headers['asset-id'];
  assert.equal(id, idOf(url), 'the asset has the upload\'s id');
  assert.equal(h.headers['asset-location'], `/v1/assets/${id}`);
  const a = await api(srv, 'GET', `/v1/assets/${id}`);
  assert.equal(a.status, 200, a.text);
  assert.equal(a.json.sha256, sha256(data));
  assert.equal(a.json.size, data.length);
  assert.equal(a.json.filename, filename);
  const body = await api(srv, 'GET', `/v1/assets/${id}/content`);
  assert.ok(body.body.equals(data), 'the stored bytes are the bytes sent');
  return a.json;
}

/** The offset once no writer holds the upload (a cut-off PATCH's bytes
 *  are committed in the background): an empty PATCH at HEAD's offset goes
 *  through only then. */
export async function settledOffset(srv, where) {
  let offset = -1;
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    const h = await api(srv, 'HEAD', where, { headers: [TUS] });
    const at = Number(h.headers['upload-offset']);
    const r = await patch(srv, where, at, '');
    if (r.status === 204) { offset = at; break; }
    if (r.status !== 409 && r.status !== 423) throw new Error(`empty PATCH: ${r.status} ${r.text}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  if (offset < 0) throw new Error('the upload stayed locked');
  return offset;
}
