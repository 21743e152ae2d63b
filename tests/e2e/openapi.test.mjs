// docs/openapi.yaml stays true: every documented (method, path) is served,
// every documented response status of the success path is what the server
// answers, and every route the server has is documented.  A light reader of
// the file's fixed layout (two-space path keys, four-space method keys,
// eight-space quoted status codes) keeps this free of a YAML dependency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  REPO, CORPUS, TEST_TIMEOUT as T, serverFor, api, upload, waitFor, assertError, scrape, curl,
  metricSum, TEXT,
  pinDiskStore,
} from './lib.mjs';

// The routes of the disk store (/v1/store/...) answer only there: this
// file's server keeps the disk store in every suite.
pinDiskStore();

function documentedOperations() {
  const lines = fs.readFileSync(path.join(REPO, 'docs', 'openapi.yaml'), 'utf8').split('\n');
  const ops = [];
  let inPaths = false;
  let current = null;
  for (const line of lines) {
    if (/^paths:/.test(line)) { inPaths = true; continue; }
    if (inPaths && /^\S/.test(line)) break;                   // next top-level key
    const p = line.match(/^ {2}(\/\S*):\s*$/);
    if (p) { current = p[1]; continue; }
    const m = line.match(/^ {4}(get|post|delete|put|patch|head|options):\s*$/);
    if (m && current) {
      const codes = [];
      ops.push({ method: m[1].toUpperCase(), path: current, codes });
      continue;
    }
    const c = line.match(/^ {8}'(\d{3})':/);
    if (c && ops.length) ops[ops.length - 1].codes.push(Number(c[1]));
  }
  return ops;
}

/** The server's route table, read from src/api/routes.c: ["GET /v1/assets", ...]. */
function servedRoutes() {
  const src = fs.readFileSync(path.join(REPO, 'src', 'api', 'routes.c'), 'utf8');
  return [...src.matchAll(/^\s*\{"([A-Z]+)", "(\/[^"]*)",/gm)].map((m) => `${m[1]} ${m[2]}`);
}

// A real image, so a worker processes it and the renditions and jobs routes
// have something to answer about.
const IMAGE = path.join(CORPUS, 'png', 'arc_alpha_2140x1200.png');

// The only errors the fixtures provoke on purpose, each one documented for its
// operation: retrying the image's job, which has succeeded; and GET
// /v1/events asked without `Accept: text/event-stream` (a one-shot request
// cannot hold a stream open; events.test.mjs covers the stream itself).
// Every other operation must succeed.  A documented 4xx is not enough on its
// own: the router's "no such route" 404 is documented everywhere (docs' info
// section) and for most operations, so accepting any documented status would
// let a missing route pass (the metrics check below still proves the 406
// came from the events route, not the router).
const EXPECTED_ERRORS = {
  'POST /v1/jobs/{id}/retry': { status: 409, code: 'not_retryable' },
  'GET /v1/events': { status: 406, code: 'not_acceptable' },
  // The same for the slideshow listeners: a plain GET is not a handshake.
  'GET /api/v1/slideshow/{id}/listen': { status: 400, code: 'bad_handshake' },
  'GET /api/v1/slideshow/{id}/updates': { status: 400, code: 'bad_handshake' },
  'GET /api/images/live': { status: 400, code: 'bad_handshake' },
  // The cloud API's access without ?asset_id= (the original's message), and
  // a status change for an id nobody has (cloud_api.test.mjs drives real ones).
  'GET /api/access': { status: 400, code: 'invalid_parameter' },
  'PUT /api/status': { status: 404, code: 'not_found' },
  // The fixture is an image, and only a video has a manifest (video.test.mjs
  // reads real ones).
  'GET /v1/assets/{id}/manifest.json': { status: 404, code: 'not_found' },
  // The fixture is an image, and only a deck can be a slideshow
  // (play.test.mjs makes real ones).
  'POST /v1/assets/{id}/slideshow': { status: 409, code: 'not_a_deck' },
  // The fixture is an image, and only a video has a cover (video.test.mjs
  // sends real ones).
  'PUT /v1/assets/{id}/cover': { status: 409, code: 'not_a_video' },
  // A fresh upload has no bytes yet; uploads.test.mjs completes real ones.
  'POST /v1/uploads/{id}/complete': { status: 409, code: 'object_missing' },
  // The disk store's signed routes, asked without a signature.
  'GET /v1/store/{key}': { status: 400, code: 'signature_invalid' },
  'PUT /v1/store/{key}': { status: 400, code: 'signature_invalid' },
  'POST /v1/store': { status: 400, code: 'invalid_multipart' },
  // This server has no broker (runs.test.mjs starts one and drives real
  // runs), so no run exists to read or cancel.
  'POST /v1/runs': { status: 503, code: 'amqp_not_configured' },
  'POST /simulate/': { status: 503, code: 'amqp_not_configured' },
  // The original consumer's protocol answers plain text (runs.test.mjs
  // drives it against a broker).
  'GET /consumer/create/': { status: 503, text: true },
  'GET /consumer/process/': { status: 503, text: true },
  'GET /consumer/remove/': { status: 503, text: true },
  'GET /consumer/getSession/': { status: 400, text: true },
  'GET /v1/runs/{id}': { status: 404, code: 'not_found' },
  'GET /v1/runs/{id}/report': { status: 404, code: 'not_found' },
  'POST /v1/runs/{id}/cancel': { status: 404, code: 'not_found' },
};
const JSON_BODIES = {
  'POST /v1/webhooks': { url: 'https://example.com/hook', events: ['asset.failed'] },
  'POST /api/v1/slideshow/{id}/control': { current: 1 },
  'POST /api/upload': { object_key: 'openapi.txt' },
  'PUT /api/status': { asset_id: 1000000, uploaded_status: 'pending' },
  'POST /v1/uploads': { filename: 'later.bin', size: 5 },
  'POST /v1/assets/{id}/links': { expires_in: 60 },
  'PATCH /v1/assets/{id}': { title: 'A title', tags: ['one'] },
};
// tus routes speak with their own headers (tus.test.mjs covers the protocol):
// each gets what a well-behaved client sends.
const TUS = ['Tus-Resumable: 1.0.0'];
const TUS_OCTETS = [...TUS, 'Content-Type: application/offset+octet-stream', 'Upload-Offset: 0'];
const tusCreate = (srv, length) => api(srv, 'POST', '/v1/tus', { headers: [...TUS, `Upload-Length: ${length}`] });
const tusId = (r) => r.headers.location.split('/').pop();
const DECK = path.join(CORPUS, 'pdf', 'slides_context_bachotex2018_45p.pdf');

const requestsFor = (metrics, route, status) => metricSum(metrics, 'assetd_http_requests_total',
  (l) => l.route === route && l.status === String(status));
const unmatched = (metrics) => metricSum(metrics, 'assetd_http_requests_total', (l) => l.route === 'unmatched');

test('every route in src/api/routes.c is documented in docs/openapi.yaml', () => {
  const served = servedRoutes();
  assert.ok(served.length >= 12, `read only ${served.length} routes from routes.c`);
  const documented = new Set(documentedOperations().map((op) => `${op.method} ${op.path}`));
  const missing = served.filter((r) => !documented.has(r));
  assert.deepEqual(missing, [], `routes served but not documented: ${missing.join(', ')}`);
  const extra = [...documented].filter((d) => !served.includes(d));
  assert.deepEqual(extra, [], `operations documented but not served: ${extra.join(', ')}`);
});

// The light reader above would not notice YAML a real reader refuses: an
// unquoted flow-mapping value with a brace or ": " in it ends the mapping
// early (it once hid "{id}" in a description).
test('docs/openapi.yaml quotes every flow-mapping value that YAML would misread', () => {
  const lines = fs.readFileSync(path.join(REPO, 'docs', 'openapi.yaml'), 'utf8').split('\n');
  const bad = lines.map((l, i) => [i + 1, l]).filter(([, l]) => {
    const m = /\{(?:description|summary): ([^"'].*)\}\s*$/.exec(l);
    return m && /[{}]|: |#/.test(m[1]);
  });
  assert.deepEqual(bad, [], 'quote these values');
});

test('every operation in docs/openapi.yaml is served with a documented status', { timeout: T * 2 }, async (t) => {
  const ops = documentedOperations();
  assert.ok(ops.length >= 12, `read only ${ops.length} operations from openapi.yaml`);
  for (const k of Object.keys(EXPECTED_ERRORS)) {
    assert.ok(ops.some((op) => `${op.method} ${op.path}` === k), `EXPECTED_ERRORS names ${k}, which is not documented`);
  }
  const srv = await serverFor(t, { workers: 1 });

  // The fixture: a processed image, its succeeded job and its thumbnail.
  const made = await upload(srv, { file: IMAGE, filename: 'arc.png', contentType: 'image/png' });
  assert.equal(made.status, 201, made.text);
  assert.equal(made.json.kind, 'image');
  const assetId = made.json.id;
  let asset;
  await waitFor(async () => {
    asset = (await api(srv, 'GET', `/v1/assets/${assetId}`)).json;
    return asset.status === 'ready' || asset.status === 'failed';
  }, { timeoutMs: 60000, intervalMs: 100, what: `asset ${assetId} to be processed` });
  assert.equal(asset.status, 'ready', `asset failed: ${JSON.stringify(asset.error)}`);
  assert.ok(asset.renditions.some((x) => x.name === 'thumb'), `no thumb: ${JSON.stringify(asset.renditions)}`);
  const jobs = await api(srv, 'GET', `/v1/jobs?asset=${assetId}`);
  assert.equal(jobs.status, 200, jobs.text);
  assert.equal(jobs.json.items.length, 1, jobs.text);
  const job = jobs.json.items[0];
  assert.equal(job.asset_id, assetId);
  // the 409 below is only the documented answer while the job has succeeded
  assert.equal(job.state, 'succeeded', jobs.text);

  const hook = await api(srv, 'POST', '/v1/webhooks', { headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'], input: JSON.stringify(JSON_BODIES['POST /v1/webhooks']) });
  assert.equal(hook.status, 201, hook.text);

  const pending = await api(srv, 'POST', '/v1/uploads', { headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'], input: JSON.stringify({ filename: 'p.bin', size: 3 }) });
  assert.equal(pending.status, 201, pending.text);

  const tusUpload = await tusCreate(srv, 5);
  assert.equal(tusUpload.status, 201, tusUpload.text);

  const uploadShow = () => curl(['-X', 'POST', '-H', `Authorization: Bearer ${srv.token}`, '-F', `file=@${DECK}`, `${srv.url}/api/v1/slideshow/upload`]);
  const show = (await uploadShow()).json;
  await waitFor(async () => (await api(srv, 'GET', `/api/v1/slideshow/${show.id}.json`)).json.status === 'READY',
    { timeoutMs: 60000, intervalMs: 200, what: 'the slideshow fixture to be READY' });

  for (const op of ops) {
    const key = `${op.method} ${op.path}`;
    let id = op.path.startsWith('/v1/jobs/') ? job.id : op.path.startsWith('/v1/webhooks/') ? hook.json.id
      : op.path.startsWith('/api/v1/slideshow/') ? show.id : op.path.startsWith('/v1/uploads/') ? pending.json.id
        : op.path.startsWith('/v1/tus/') ? tusId(tusUpload) : assetId;
    // A destructive operation gets a throwaway, so the fixture survives.
    if (op.method === 'DELETE' && op.path.startsWith('/v1/webhooks/')) {
      const spare = await api(srv, 'POST', '/v1/webhooks', { headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'], input: JSON.stringify(JSON_BODIES['POST /v1/webhooks']) });
      id = spare.json.id;
    } else if (op.method === 'DELETE' && op.path.startsWith('/v1/tus/')) {
      const spare = await tusCreate(srv, 3);
      assert.equal(spare.status, 201, spare.text);
      id = tusId(spare);
    } else if (op.method === 'DELETE') {
      const spare = await upload(srv, { data: TEXT, filename: 'doc.txt' });
      assert.equal(spare.status, 201, spare.text);
      id = spare.json.id;
    }
    const url = op.path.replace('{id}', id).replace('{key}', assetId).replace('{name}', 'thumb')
      .replace('/slide/{file}', '/slide/001.jpg').replace('{file}', `${show.id}.json`);
    assert.ok(!/[{}]/.test(url), `${key}: no fixture for a parameter of ${url}`);

    const before = (await scrape(srv)).metrics;
    const body = JSON_BODIES[key];
    const token = key === 'POST /api/v1/slideshow/{id}/control' ? show.control_token : srv.token;
    const tus = op.path.startsWith('/v1/tus');
    const r = tus && op.method === 'POST'
      ? await api(srv, 'POST', op.path, { headers: [...TUS, 'Upload-Length: 4'] })
      : tus && op.method === 'PATCH'
        ? await api(srv, 'PATCH', url, { headers: TUS_OCTETS, args: ['--data-binary', '@-'], input: 'hello' })
        : tus ? await api(srv, op.method, url, { headers: TUS })
      : op.method === 'POST' && op.path === '/v1/assets'
      ? await upload(srv, { data: TEXT, filename: 'doc.txt' })
      : key === 'POST /api/v1/slideshow/upload'
        ? await uploadShow()
        : body
          ? await api(srv, op.method, url, { token, headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'], input: JSON.stringify(body) })
          // the form target answers pages; its JSON on request
          : key === 'POST /simulate/' ? await api(srv, op.method, url, { headers: ['Accept: application/json'] })
          : await api(srv, op.method, url);

    assert.ok(op.codes.includes(r.status),
      `${key} answered ${r.status}, documented: ${op.codes.join(', ')}`);
    const expected = EXPECTED_ERRORS[key];
    if (expected?.text) {
      assert.equal(r.status, expected.status, `${key}: ${r.text}`);
      assert.match(r.headers['content-type'] || '', /^text\/plain/, key);
    } else if (expected) assertError(r, expected.status, expected.code, key);
    else assert.ok(r.status < 400, `${key} failed: ${r.status} ${r.text}`);

    // The request reached this operation's route, not the router's 404/405:
    // the server counts requests by matched route (after replying, so poll).
    await waitFor(async () => {
      const after = (await scrape(srv)).metrics;
      return requestsFor(after, op.path, r.status) > requestsFor(before, op.path, r.status);
    }, { timeoutMs: 2000, what: `${key}: a ${r.status} counted for route ${op.path} in /metrics` });
    assert.equal(unmatched((await scrape(srv)).metrics), unmatched(before), `${key}: the router did not match ${url}`);
  }
});
