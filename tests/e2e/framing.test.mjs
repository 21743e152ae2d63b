// HTTP/1.1 request framing (RFC 9112 §6-7) where libmicrohttpd alone falls
// short: transfer codings other than chunked, chunk lines that do not fit,
// chunk sizes past the body limit, malformed chunking.  Every refusal is a
// prompt JSON error that closes the connection and is accounted (access
// log) with the status the client saw; valid chunked traffic — extensions,
// trailers, pipelining, keep-alive — still works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, healthy, tmpFiles, waitFor, SLOW, TEST_TIMEOUT as T } from './lib.mjs';

const MAX_UPLOAD = 10 * 1024 * 1024;
const JSON_MAX = 64 * 1024;

let srv;
before(async () => { srv = await startServer({ args: ['--max-upload', '10M'] }); });
after(() => srv?.cleanup());

let seq = 0;
const newId = () => `framing-${process.pid}-${++seq}`;

/** Splits raw response bytes into responses (interim 1xx included). */
function parseResponses(buf) {
  const out = [];
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = buf.subarray(at, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m) break;
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const status = Number(m[1]);
    const len = status >= 200 && headers['content-length'] ? Number(headers['content-length']) : 0;
    const body = buf.subarray(end + 4, end + 4 + len);
    if (body.length < len) break;
    let json = null;
    try { json = JSON.parse(body.toString('utf8')); } catch { /* not JSON */ }
    out.push({ status, headers, body, json });
    at = end + 4 + len;
  }
  return out;
}

/** One connection: `steps` are bytes to write or { until: RegExp } to wait
 *  for in what was received so far.  Ends when the server closes, or after
 *  timeoutMs (timedOut: the server neither answered in full nor closed). */
function converse(steps, { timeoutMs = 5000, final = 1 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: srv.port });
    let data = Buffer.alloc(0), closed = false, timedOut = false, waiting = null, done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ responses: parseResponses(data), text: data.toString('latin1'), closed, timedOut });
    };
    const timer = setTimeout(() => { timedOut = true; finish(); }, timeoutMs * SLOW);
    const next = (i) => {
      for (; i < steps.length; i++) {
        const st = steps[i];
        if (st.until) { waiting = { re: st.until, i }; check(); return; }
        s.write(st);
      }
    };
    const check = () => {
      if (waiting && waiting.re.test(data.toString('latin1'))) {
        const i = waiting.i;
        waiting = null;
        next(i + 1);
      }
    };
    s.on('data', (d) => {
      data = Buffer.concat([data, d]);
      check();
      // enough final responses and keep-alive: no close will come
      if (!waiting && final > 0 && parseResponses(data).filter((r) => r.status >= 200).length >= final &&
          !/connection:\s*close/i.test(data.toString('latin1'))) finish();
    });
    s.on('end', () => { closed = true; finish(); });
    s.on('close', () => { closed = true; finish(); });
    s.on('error', () => { closed = true; finish(); });
    s.on('connect', () => next(0));
  });
}

const auth = () => `Authorization: Bearer ${srv.token}\r\n`;
const post = (path, id, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\n${auth()}X-Request-Id: ${id}\r\n${extra}`;
const upload = (id, extra = '') =>
  post('/v1/assets?filename=f.bin', id, `Content-Type: application/octet-stream\r\n${extra}`);
const chunked = 'Transfer-Encoding: chunked\r\n';

/** The exchange ended with one JSON error, the connection closed by the
 *  server, and the access log has the request with that status. */
async function assertRefused(r, id, status, code, label) {
  const ctx = `${label}: ${JSON.stringify(r.text.slice(0, 300))} (closed=${r.closed}, timedOut=${r.timedOut})`;
  assert.ok(!r.timedOut, `no answer and no close: ${ctx}`);
  const finals = r.responses.filter((x) => x.status >= 200);
  assert.equal(finals.length, 1, `one final response expected: ${ctx}`);
  const res = finals[0];
  assert.equal(res.status, status, ctx);
  assert.match(res.headers['content-type'] || '', /^application\/json\b/, ctx);
  assert.equal(res.json?.error?.code, code, ctx);
  assert.ok(typeof res.json.error.message === 'string' && res.json.error.message.length > 0, ctx);
  assert.equal(res.headers['x-request-id'], id, ctx);
  assert.match(res.headers.connection || '', /close/i, ctx);
  assert.ok(r.closed, `connection left open: ${ctx}`);
  const line = await srv.waitUntil((s) => s.accessLog.find((l) => l.request_id === id), 5000, `access log line ${id}`);
  assert.equal(line.status, status, `${label}: access log says ${JSON.stringify(line)}`);
}

async function stillFine(label) {
  assert.ok(srv.alive(), `${label}: server died; stderr:\n${srv.stderrLines.slice(-10).join('\n')}`);
  assert.ok(await healthy(srv), `${label}: /healthz did not answer`);
  await waitFor(() => tmpFiles(srv.dataDir).length === 0, { what: `no upload left after ${label}` });
}

// Two ways to send a request: all at once (the server sees the head and the
// offending bytes together), or the head first with Expect: 100-continue
// and the body only once the server asked for it (the request has begun).
const modes = {
  'at once': (head, body) => [head + '\r\n' + body],
  'after 100-continue': (head, body) => [head + 'Expect: 100-continue\r\n\r\n', { until: /^HTTP\/1\.1 100 / }, body],
};

test('a transfer coding other than exactly chunked -> 400 and close (RFC 9112 §6.3)', { timeout: T }, async () => {
  const body = '5\r\nhello\r\n0\r\n\r\n';
  for (const te of ['gzip', 'chunked, gzip', 'xchunked', 'gzip, chunked', 'identity', 'chunked;q=1', 'chunked ']) {
    const id = newId();
    const r = await converse([upload(id, `Transfer-Encoding: ${te}\r\n`) + '\r\n' + body]);
    await assertRefused(r, id, 400, 'bad_request', `TE ${JSON.stringify(te)}`);
    await stillFine(`TE ${te}`);
  }
  // two Transfer-Encoding fields are one list: "chunked, chunked"
  const id = newId();
  const r = await converse([upload(id, chunked + chunked) + '\r\n' + body]);
  await assertRefused(r, id, 400, 'bad_request', 'two TE fields');
  // the coding name is case-insensitive
  for (const te of ['Chunked', 'CHUNKED']) {
    const ok = await converse([upload(newId(), `Transfer-Encoding: ${te}\r\nConnection: close\r\n`) + '\r\n' + body]);
    assert.equal(ok.responses.at(-1)?.status, 201, `TE ${te}: ${ok.text.slice(0, 300)}`);
    assert.equal(ok.responses.at(-1).json.size, 5);
  }
});

test('a JSON route refuses a Content-Length past its limit before the body', { timeout: T }, async () => {
  for (const path of ['/v1/webhooks', '/api/v1/slideshow/nope/control']) {
    const id = newId();
    // no body is sent: the answer must not wait for it
    const r = await converse([post(path, id, `Content-Type: application/json\r\nContent-Length: ${JSON_MAX + 1}\r\n\r\n`)]);
    await assertRefused(r, id, 413, 'payload_too_large', path);
  }
});

