// Operations: health/readiness, metrics, X-Request-Id, 404/405, graceful SIGTERM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
import {
  startServer, serverFor, api, upload, request, assertError, scrape, metricSum, parseMetrics,
  sleep, waitFor, healthy, SLOW, within, rawExchange, tmpFiles,
} from './lib.mjs';
import { TEST_TIMEOUT as T } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(() => srv?.cleanup());

test('/healthz and /readyz answer 200 without auth', { timeout: T }, async () => {
  for (const p of ['/healthz', '/readyz']) {
    const r = await api(srv, 'GET', p, { token: null });
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    assert.ok(r.headers['x-request-id']);
  }
});

test('every response carries a distinct X-Request-Id', { timeout: T }, async () => {
  const up = await upload(srv, { data: randomBytes(100) });
  const id = up.json.id;
  const reqs = [
    ['GET', '/healthz', {}],
    ['GET', '/readyz', {}],
    ['GET', '/metrics', {}],
    ['GET', '/nope', {}],
    ['PUT', '/v1/assets', {}],
    ['GET', '/v1/assets', { token: null }],
    ['GET', '/v1/assets', {}],
    ['GET', `/v1/assets/${id}`, {}],
    ['GET', `/v1/assets/${id}/content`, {}],
    ['HEAD', `/v1/assets/${id}/content`, {}],
    ['GET', `/v1/assets/${id}/content`, { headers: [`If-None-Match: "${up.json.sha256}"`] }],
    ['GET', `/v1/assets/${id}/content`, { headers: ['Range: bytes=0-1'] }],
    ['GET', `/v1/assets/${id}/content`, { headers: ['Range: bytes=5000-'] }],
    ['GET', '/v1/assets?limit=0', {}],
    ['GET', '/v1/assets/AAAAAAAAAAAAAAAAAAAAAA', {}],
    ['DELETE', `/v1/assets/${id}`, {}],
  ];
  const seen = new Set();
  for (const [m, p, o] of reqs) {
    const r = await api(srv, m, p, o);
    const rid = r.headers['x-request-id'];
    assert.ok(rid && rid.length >= 8, `${m} ${p} (${r.status}): X-Request-Id missing or short: ${rid}`);
    assert.ok(!seen.has(rid), `duplicate X-Request-Id ${rid}`);
    seen.add(rid);
  }
  const bad = await upload(srv, { data: Buffer.from('x'), token: 'bad' });
  assertError(bad, 401, 'unauthorized');
  assert.ok(bad.headers['x-request-id'] && !seen.has(bad.headers['x-request-id']));
});

test('X-Request-Id on the 413 and multipart 400 responses', { timeout: T }, async (t) => {
  const s = await serverFor(t, { args: ['--max-upload', '1K'] });
  const r = await upload(s, { data: randomBytes(5000), raw: true });
  assert.equal(r.status, 413);
  assert.ok(r.headers['x-request-id']);
  const r2 = await api(s, 'POST', '/v1/assets', { headers: ['Content-Type: multipart/form-data'], input: Buffer.from('x'), args: ['--data-binary', '@-'] });
  assert.equal(r2.status, 400);
  assert.ok(r2.headers['x-request-id']);
});

test('unknown routes -> 404 JSON', { timeout: T }, async () => {
  // '/' is the web page (webui.test.mjs); nothing else of web/ is a route.
  for (const p of ['/index.html', '/app.js/x', '/web/app.js', '/nope', '/v1', '/v1/nope', '/v2/assets', '/v1/assets/x/y', '/v1/assets/x/content/y', '/healthz/x', '/v1/assetsx']) {
    assertError(await api(srv, 'GET', p), 404);
  }
  assertError(await api(srv, 'GET', '/nope', { token: null }), 404);
});

test('wrong method on a known route -> 405 JSON', { timeout: T }, async () => {
  const up = await upload(srv, { data: randomBytes(10) });
  const id = up.json.id;
  const cases = [
    ['PUT', '/v1/assets'], ['DELETE', '/v1/assets'], ['PATCH', '/v1/assets'],
    ['POST', `/v1/assets/${id}`], ['PUT', `/v1/assets/${id}`],
    ['POST', `/v1/assets/${id}/content`], ['DELETE', `/v1/assets/${id}/content`], ['PUT', `/v1/assets/${id}/content`],
    ['POST', '/healthz'], ['DELETE', '/readyz'], ['POST', '/metrics'],
    ['POST', '/'], ['PUT', '/app.js'], ['DELETE', '/app.css'],
  ];
  for (const [m, p] of cases) assertError(await api(srv, m, p), 405);
  // nothing happened to the asset
  assert.equal((await api(srv, 'GET', `/v1/assets/${id}/content`)).status, 200);
});

test('metrics: exposition contains the documented series', { timeout: T }, async () => {
  await api(srv, 'GET', '/healthz');
  await upload(srv, { data: randomBytes(1000) });
  const { res, metrics } = await scrape(srv);
  assert.match(res.headers['content-type'] || '', /^text\/plain/);
  const text = res.text;
  assert.match(text, /^assetd_http_requests_total\{[^}]*route="[^"]+"[^}]*status="\d{3}"[^}]*\} \d/m);
  for (const name of ['assetd_http_requests_total', 'assetd_http_request_bytes_total', 'assetd_http_response_bytes_total',
    'assetd_upload_seconds_bucket', 'assetd_http_open_connections']) {
    assert.ok(metrics.some((m) => m.name === name), `missing ${name}`);
  }
  assert.ok(metrics.some((m) => m.name === 'assetd_upload_seconds_bucket' && m.labels.le === '+Inf'), 'histogram needs le="+Inf"');
  assert.ok(metrics.some((m) => m.name === 'assetd_upload_seconds_count'), 'histogram needs _count');
  assert.ok(metrics.some((m) => m.name === 'assetd_upload_seconds_sum'), 'histogram needs _sum');
  // TYPE lines
  assert.match(text, /^# TYPE assetd_http_requests_total counter$/m);
  assert.match(text, /^# TYPE assetd_upload_seconds histogram$/m);
  assert.match(text, /^# TYPE assetd_http_open_connections gauge$/m);
  // buckets are cumulative
  const buckets = metrics.filter((m) => m.name === 'assetd_upload_seconds_bucket')
    .map((m) => [m.labels.le === '+Inf' ? Infinity : Number(m.labels.le), m.value]).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1], 'buckets must be cumulative');
  assert.equal(buckets[buckets.length - 1][1], metricSum(metrics, 'assetd_upload_seconds_count'));
});

test('metrics: counters move', { timeout: T }, async () => {
  const m0 = (await scrape(srv)).metrics;
  const N = 7;
  for (let i = 0; i < N; i++) assert.equal((await api(srv, 'GET', '/healthz')).status, 200);
  const body = randomBytes(20000);
  for (let i = 0; i < 3; i++) assert.equal((await upload(srv, { data: body, raw: true })).status, 201);
  const dl = await upload(srv, { data: body, raw: true });
  for (let i = 0; i < 2; i++) assert.equal((await api(srv, 'GET', dl.json.url)).status, 200);

  const health = (l) => /healthz/.test(l.route) && l.status === '200';
  const created = (l) => l.status === '201';
  const inf = (l) => l.le === '+Inf';
  const deltas = (m1) => ({
    health: metricSum(m1, 'assetd_http_requests_total', health) - metricSum(m0, 'assetd_http_requests_total', health),
    created: metricSum(m1, 'assetd_http_requests_total', created) - metricSum(m0, 'assetd_http_requests_total', created),
    bytesIn: metricSum(m1, 'assetd_http_request_bytes_total') - metricSum(m0, 'assetd_http_request_bytes_total'),
    bytesOut: metricSum(m1, 'assetd_http_response_bytes_total') - metricSum(m0, 'assetd_http_response_bytes_total'),
    uploads: metricSum(m1, 'assetd_upload_seconds_count') - metricSum(m0, 'assetd_upload_seconds_count'),
    infBucket: metricSum(m1, 'assetd_upload_seconds_bucket', inf) - metricSum(m0, 'assetd_upload_seconds_bucket', inf),
  });
  // counters may be bumped when the request completes, just after the
  // client saw the response: poll briefly
  let d;
  await waitFor(async () => {
    d = deltas((await scrape(srv)).metrics);
    return d.health >= N && d.created >= 4 && d.bytesIn >= 4 * body.length && d.bytesOut >= 2 * body.length && d.uploads >= 4 && d.infBucket >= 4;
  }, { timeoutMs: 3000, what: 'counters to move' }).catch(() => {});
  assert.ok(d.health >= N, `healthz 200 count grew by ${d.health}, expected >= ${N}`);
  assert.equal(d.created, 4, `201 count grew by ${d.created}, expected 4`);
  assert.ok(d.bytesIn >= 4 * body.length, `request bytes grew by ${d.bytesIn}, expected >= ${4 * body.length}`);
  assert.ok(d.bytesOut >= 2 * body.length, `response bytes grew by ${d.bytesOut}, expected >= ${2 * body.length}`);
  assert.equal(d.uploads, 4, `upload histogram count grew by ${d.uploads}`);
  assert.equal(d.infBucket, 4);
  // 404s are counted too, by status, including unknown routes
  const s404 = (l) => l.status === '404';
  const b404 = metricSum((await scrape(srv)).metrics, 'assetd_http_requests_total', s404);
  await api(srv, 'GET', '/nope');
  await api(srv, 'GET', '/v1/assets/AAAAAAAAAAAAAAAAAAAAAA');
  let d404 = 0;
  await waitFor(async () => {
    d404 = metricSum((await scrape(srv)).metrics, 'assetd_http_requests_total', s404) - b404;
    return d404 >= 2;
  }, { timeoutMs: 3000, what: '404 count' }).catch(() => {});
  assert.equal(d404, 2);
});

test('metrics: route labels are bounded (ids are not labels)', { timeout: T }, async () => {
  for (let i = 0; i < 5; i++) await api(srv, 'GET', `/v1/assets/${randomBytes(16).toString('base64url')}`);
  for (let i = 0; i < 5; i++) await api(srv, 'GET', `/random-path-${i}-${randomBytes(4).toString('hex')}`);
  const { metrics } = await scrape(srv);
  const routes = new Set(metrics.filter((m) => m.name === 'assetd_http_requests_total').map((m) => m.labels.route));
  for (const r of routes) {
    assert.ok(!/random-path/.test(r), `unknown paths must not become route labels: ${r}`);
    assert.ok(!/[A-Za-z0-9_-]{22}/.test(r), `asset ids must not be in route labels: ${r}`);
  }
});

test('metrics: open connections gauge tracks idle keep-alive connections', { timeout: T }, async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
  const get = () => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: srv.port, path: '/healthz', agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); }).on('error', reject);
  });
  try {
    await Promise.all(Array.from({ length: 5 }, get));
    const base = (await scrape(srv)).metrics;
    const open = metricSum(base, 'assetd_http_open_connections');
    assert.ok(open >= 5, `open connections ${open} with 5 idle keep-alive connections + the scrape`);
  } finally {
    agent.destroy();
  }
  await waitFor(async () => metricSum((await scrape(srv)).metrics, 'assetd_http_open_connections') <= 2,
    { what: 'open connections to drop after closing them', timeoutMs: 5000 });
});

test('access log route matches the metrics route label', { timeout: T }, async () => {
  const r = await api(srv, 'GET', '/healthz');
  const line = await srv.waitUntil((s) => s.accessLog.find((j) => j.request_id === r.headers['x-request-id']), 5000, 'access line');
  const { metrics } = await scrape(srv);
  assert.ok(metrics.some((m) => m.name === 'assetd_http_requests_total' && m.labels.route === line.route && m.labels.status === '200'),
    `no assetd_http_requests_total{route="${line.route}",status="200"}`);
});

// ---------------------------------------------------------------- SIGTERM

/** Starts a streamed raw upload; returns {sendRest(), result} */
function slowUpload(s, total, firstPart) {
  const hash = createHash('sha256');
  let resolveRes;
  const result = new Promise((r) => { resolveRes = r; });
  const req = http.request({
    host: '127.0.0.1', port: s.port, method: 'POST', path: '/v1/assets?filename=slow.bin', agent: false,
    headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream', 'content-length': total },
  }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => { body += d; });
    res.on('end', () => resolveRes({ status: res.statusCode, body }));
    res.on('error', (e) => resolveRes({ status: 0, error: e.message, body }));
  });
  req.on('error', (e) => resolveRes({ status: 0, error: e.message }));
  req.setTimeout(30000 * SLOW, () => req.destroy(new Error('client timeout')));
  const first = randomBytes(firstPart);
  hash.update(first);
  req.write(first);
  return {
    result,
    async sendRest(chunks = 8) {
      const rest = total - firstPart;
      for (let i = 0; i < chunks; i++) {
        const n = i === chunks - 1 ? rest - Math.floor(rest / chunks) * (chunks - 1) : Math.floor(rest / chunks);
        const b = randomBytes(n);
        hash.update(b);
        req.write(b);
        await sleep(20);
      }
      req.end();
      return hash.digest('hex');
    },
  };
}

// The disk store in every suite: its temp file says the upload is under way.
test('SIGTERM during an in-flight upload: upload completes (201), new connections refused, exit 0', { timeout: T }, async (t) => {
  const s = await serverFor(t, { args: ['--store', 'disk'] });
  const total = 4 * 1024 * 1024;
  const up = slowUpload(s, total, 256 * 1024);
  // The server is receiving this request: its first bytes are on disk.
  await waitFor(() => tmpFiles(s.dataDir).length > 0, { what: 'the upload under way' });
  s.signal('SIGTERM');
  await s.waitUntil((x) => x.logs.find((j) => j.msg === 'shutting down'), 5000 * SLOW, '"shutting down"');
  // It stops accepting: soon a new request is not served, while it lives on.
  const probe = () => request(s, { path: '/healthz', token: null, timeoutMs: 1000 }).then((r) => r.status, (e) => e.code || e.message);
  await waitFor(async () => (await probe()) !== 200, { what: 'new requests refused after SIGTERM' });
  assert.ok(s.alive(), 'server exited while a request was in flight');
  const sha = await up.sendRest();
  const res = await up.result;
  assert.equal(res.status, 201, `in-flight upload after SIGTERM: ${JSON.stringify(res)}`);
  const asset = JSON.parse(res.body);
  assert.equal(asset.size, total);
  assert.equal(asset.sha256, sha);
  const ex = await within(s.exited, 15000 * SLOW);
  assert.ok(ex, 'server did not exit within 15 s after the in-flight request finished');
  assert.equal(ex.code, 0, `exit ${JSON.stringify(ex)}`);
  // and the upload is really there after a restart
  const s2 = await serverFor(t, { dataDir: s.dataDir, args: ['--store', 'disk'] });
  const g = await api(s2, 'GET', `/v1/assets/${asset.id}/content`, { token: s.token });
  assert.equal(g.status, 200);
  assert.equal(createHash('sha256').update(g.body).digest('hex'), sha);
});

test('SIGTERM with an idle keep-alive connection open still exits 0 promptly', { timeout: T }, async (t) => {
  const s = await serverFor(t);
  const sock = net.connect({ host: '127.0.0.1', port: s.port });
  t.after(() => sock.destroy());
  await new Promise((r) => sock.once('connect', r));
  sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((r) => sock.once('data', r));
  const t0 = Date.now();
  const ex = await s.stop('SIGTERM', 15000);
  assert.equal(ex.timedOut, undefined, 'did not exit within 15 s');
  assert.equal(ex.code, 0, JSON.stringify(ex));
  assert.ok(Date.now() - t0 < 12000 * SLOW, `took ${Date.now() - t0} ms`);
});


test('X-Request-Id: a sane client id is echoed and logged; an insane one is replaced', { timeout: T }, async () => {
  const mine = 'client-req-' + randomBytes(6).toString('hex');
  const r = await api(srv, 'GET', '/healthz', { headers: [`X-Request-Id: ${mine}`] });
  assert.equal(r.headers['x-request-id'], mine);
  const line = await srv.waitUntil((s) => s.accessLog.find((j) => j.request_id === mine), 5000, 'access line with the client id');
  assert.equal(line.path, '/healthz');
  for (const bad of ['x'.repeat(1000)]) {
    const r2 = await api(srv, 'GET', '/healthz', { headers: [`X-Request-Id: ${bad}`] });
    assert.ok(r2.headers['x-request-id'] && r2.headers['x-request-id'] !== bad, 'a 1000-char request id must be replaced');
  }
  const raw = await rawExchange(srv.port, Buffer.concat([Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\xff\xfe"b\r\nConnection: close\r\n\r\n', 'latin1')]), { timeoutMs: 3000 });
  assert.equal(raw.status, 200);
  const echoed = /\r\nX-Request-Id: ([^\r]*)\r\n/i.exec(raw.text)?.[1];
  assert.ok(echoed && /^[\x21-\x7e]+$/.test(echoed) && !echoed.includes('"'), `non-ASCII request id must be replaced, got ${JSON.stringify(echoed)}`);
});

test('--shutdown-timeout bounds the drain: a stalled upload does not keep the server alive', { timeout: T }, async (t) => {
  const s = await serverFor(t, { args: ['--shutdown-timeout', '2', '--store', 'disk'] });   /* its temp file: under way */
  const req = http.request({
    host: '127.0.0.1', port: s.port, method: 'POST', path: '/v1/assets?filename=stalled', agent: false,
    headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream', 'content-length': 10 * 1024 * 1024 },
  });
  req.on('error', () => {});
  req.on('response', (res) => res.resume());
  t.after(() => req.destroy());
  req.write(randomBytes(256 * 1024));
  await waitFor(() => tmpFiles(s.dataDir).length > 0, { what: 'the upload under way' });
  const t0 = Date.now();
  s.signal('SIGTERM');
  const ex = await within(s.exited, 15000 * SLOW);
  assert.ok(ex, 'server still running 15 s after SIGTERM with --shutdown-timeout 2');
  const took = Date.now() - t0;
  assert.ok(took >= 1500, `exited after ${took} ms: did not wait for the in-flight request`);
  assert.ok(took < 8000 * SLOW, `exited after ${took} ms, expected about 2 s`);
  assert.equal(ex.code, 0, JSON.stringify(ex));
  req.destroy();
  const s2 = await serverFor(t, { dataDir: s.dataDir });
  assert.deepEqual((await api(s2, 'GET', '/v1/assets', { token: s.token })).json.items, []);
  await waitFor(() => tmpFiles(s.dataDir).length === 0, { what: 'tmp/ empty' });
});

test('--header-timeout closes connections that never finish their headers', { timeout: T }, async (t) => {
  const s = await serverFor(t, { args: ['--header-timeout', '1'] });
  const t0 = Date.now();
  const r = await rawExchange(s.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ', { timeoutMs: 8000 });
  const took = Date.now() - t0;
  assert.equal(r.timedOut, false, 'slow client not cut off within 8 s');
  assert.ok(r.closed || r.reset);
  assert.ok(took >= 700, `closed after ${took} ms, before the 1 s deadline`);
  assert.ok(await healthy(s));
});

test('one serve per data directory: a second one fails fast, the first keeps serving', { timeout: T }, async (t) => {
  const s = await serverFor(t);
  const { runCli } = await import('./lib.mjs');
  const r = await runCli(['serve', '--listen', '127.0.0.1:0', '--data', s.dataDir], { timeoutMs: 10000 });
  assert.equal(r.signal, null, 'second serve kept running (it was killed by the timeout)');
  assert.notEqual(r.code, 0);
  assert.ok(await healthy(s));
  assert.equal((await upload(s, { data: randomBytes(10) })).status, 201);
});
