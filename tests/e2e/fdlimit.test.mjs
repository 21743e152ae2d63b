// File-descriptor exhaustion (issue #15): the server runs under a small
// RLIMIT_NOFILE (prlimit) and idle connections take every descriptor.  Then
// requests on connections opened before need a descriptor they cannot get:
// an upload's temp file, a download's blob.  They must answer a JSON 503
// `overloaded` with Retry-After — never a 500 or a 507, a crash or a hang —
// while reads that need no new descriptor still answer; the server must not
// spin (libmicrohttpd 0.9.75 busy-waits on accept() in a thread with no
// connection: src/http/fdlimit.c), and once the idle connections close,
// uploads and downloads work again with nothing left behind.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { startServer, sha256, tmpFiles, waitFor, SLOW, TEST_TIMEOUT as T, pinDiskStore } from './lib.mjs';

// About the disk store's descriptors (a temp file per upload, a blob per
// download): its servers keep the disk store in every suite, on PostgreSQL too.
pinDiskStore();

// Many HTTP threads and few descriptors: some threads get no connection
// before the descriptors run out (the case where libmicrohttpd busy-waits).
const NOFILE = 128;
const HTTP_THREADS = 32;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

const openFds = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
/** CPU time (user + system) of the whole process, in seconds. */
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes one request on socket s and reads one response (Content-Length
 *  framed); null if the server neither answers nor closes within ms. */
function exchange(s, payload, ms = 10000) {
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    const done = (res) => { clearTimeout(timer); s.off('data', onData); s.off('close', onClose); resolve(res); };
    const timer = setTimeout(() => done(null), ms * SLOW);
    const parse = () => {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return null;
      const lines = data.subarray(0, end).toString('latin1').split('\r\n');
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const len = Number(headers['content-length'] || 0);
      if (data.length < end + 4 + len) return null;
      const body = data.subarray(end + 4, end + 4 + len);
      let json = null;
      try { json = JSON.parse(body.toString('utf8')); } catch { /* not JSON */ }
      return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1]), headers, body, json };
    };
    const onData = (d) => { data = Buffer.concat([data, d]); const r = parse(); if (r) done(r); };
    const onClose = () => done(parse());
    s.on('data', onData);
    s.on('close', onClose);
    s.write(payload);
  });
}

const uploadReq = (srv, body) => Buffer.concat([Buffer.from(
  `POST /v1/assets?filename=f.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.token}\r\n` +
  `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
const tusCreate = (srv, length) =>
  `POST /v1/tus HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.token}\r\nTus-Resumable: 1.0.0\r\n` +
  `Upload-Length: ${length}\r\nContent-Length: 0\r\n\r\n`;
const tusPatch = (srv, where, body) => Buffer.concat([Buffer.from(
  `PATCH ${where} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.token}\r\nTus-Resumable: 1.0.0\r\n` +
  `Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
const getReq = (srv, path) => `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.token}\r\n\r\n`;

function assertOverloaded(res, label) {
  assert.ok(res, `${label}: no answer`);
  assert.equal(res.status, 503, `${label}: ${res.status} ${res.body}`);
  assert.match(res.headers['content-type'] || '', /^application\/json\b/, label);
  assert.equal(res.json?.error?.code, 'overloaded', `${label}: ${res.body}`);
  assert.ok(res.json.error.message.length > 0, label);
  assert.match(res.headers['retry-after'] || '', /^\d+$/, `${label}: Retry-After`);
}

const sockets = new Set();
after(() => { for (const s of sockets) s.destroy(); });

test('out of file descriptors: uploads and downloads answer 503 overloaded, no busy loop, then recovery', { timeout: T }, async () => {
  const srv = await startServer({
    wrap: ['prlimit', `--nofile=${NOFILE}:${NOFILE}`, '--'],
    // idle connections must stay open for the whole test
    args: ['--header-timeout', '600', '--idle-timeout', '600', '--http-threads', String(HTTP_THREADS),
      '--log-level', 'debug'],
  });
  try {
    const limits = fs.readFileSync(`/proc/${srv.pid}/limits`, 'utf8');
    assert.match(limits, new RegExp(`Max open files\\s+${NOFILE}\\s+${NOFILE}`), 'prlimit did not apply');
    assert.ok(srv.logs.some((l) => l.msg?.startsWith('the open-file limit is below --max-connections')),
      'no warning about --max-connections above the open-file limit');

    const data = Buffer.from('bytes that must come back after the exhaustion\n');
    // Connections opened (and used) before the exhaustion: each has its descriptor.
    const pre = [];
    for (let i = 0; i < 5; i++) { const s = await connect(srv.port); sockets.add(s); pre.push(s); }
    const first = await exchange(pre[0], uploadReq(srv, data));
    assert.equal(first?.status, 201, `first upload: ${first?.body}`);
    const id = first.json.id;
    const content = getReq(srv, `/v1/assets/${id}/content`);
    const made = await exchange(pre[4], tusCreate(srv, data.length));
    assert.equal(made?.status, 201, `tus creation: ${made?.status} ${made?.body}`);
    const where = made.headers.location.replace(/^https?:\/\/[^/]+/, '');
    for (const s of pre.slice(1)) {
      const r = await exchange(s, getReq(srv, '/healthz'));
      assert.equal(r?.status, 200);
    }

    // Idle connections until the process has no descriptor left (more than
    // it can take: the rest wait in the listen backlog).
    const base = openFds(srv.pid);
    for (let i = 0; i < NOFILE - base + 16; i++) {
      const s = net.connect({ host: '127.0.0.1', port: srv.port });
      s.on('error', () => {});
      sockets.add(s);
    }
    await waitFor(() => openFds(srv.pid) >= NOFILE, { timeoutMs: 10000, what: `${NOFILE} open descriptors` });
    // a thread without connections met the limit: libmicrohttpd retries accept() in a loop
    await srv.waitUntil((x) => x.logs.find((l) => /resource limit at FIRST connection/.test(l.detail || '')),
      10000, "libmicrohttpd's 'resource limit at FIRST connection'");

    // No busy loop while exhausted: a few seconds of it cost almost no CPU.
    const cpu0 = cpuSeconds(srv.pid), t0 = Date.now();
    const window = 3000;
    await new Promise((r) => setTimeout(r, window));   // a measuring window, not a wait for an event
    const cpu = cpuSeconds(srv.pid) - cpu0, wall = (Date.now() - t0) / 1000;
    assert.ok(cpu < 0.2 * wall, `the exhausted server used ${cpu.toFixed(2)} s of CPU in ${wall.toFixed(2)} s`);
    assert.ok(openFds(srv.pid) >= NOFILE, 'descriptors freed during the window');

    // A download needs the blob's descriptor (asked first: it keeps the
    // connection; the refused upload closes its own, freeing one descriptor).
    const dl = await exchange(pre[1], content);
    assertOverloaded(dl, 'download');
    // Reads that need no new descriptor still answer.
    const meta = await exchange(pre[2], getReq(srv, `/v1/assets/${id}`));
    assert.equal(meta?.status, 200, `metadata read: ${meta?.status} ${meta?.body}`);
    const up = await exchange(pre[3], uploadReq(srv, data));
    assertOverloaded(up, 'upload');
    // The refused upload's connection closed: a waiting connection takes
    // its descriptor.  Then a resumable upload's PATCH, which opens its
    // bytes' file.
    await waitFor(() => openFds(srv.pid) >= NOFILE, { timeoutMs: 10000, what: 'the freed descriptor taken again' });
    const patch = await exchange(pre[4], tusPatch(srv, where, data));
    assertOverloaded(patch, 'tus PATCH');
    assert.ok(srv.alive(), 'the server died');

    // Recovery: the idle connections close; everything works again.
    for (const s of sockets) if (!pre.includes(s)) { s.destroy(); sockets.delete(s); }
    await waitFor(() => openFds(srv.pid) <= base, { timeoutMs: 10000, what: 'descriptors released' });
    const s2 = await connect(srv.port);
    sockets.add(s2);
    const again = await exchange(s2, uploadReq(srv, data));
    assert.equal(again?.status, 201, `upload after recovery: ${again?.status} ${again?.body}`);
    assert.equal(again.json.sha256, sha256(data));
    const s3 = await connect(srv.port);
    sockets.add(s3);
    for (const asset of [id, again.json.id]) {
      const back = await exchange(s3, getReq(srv, `/v1/assets/${asset}/content`));
      assert.equal(back?.status, 200, `download after recovery: ${back?.status} ${back?.body}`);
      assert.deepEqual(back.body, data);
    }
    // the resumable upload goes on where it was (its lease was given back)
    const s4 = await connect(srv.port);
    sockets.add(s4);
    const resumed = await exchange(s4, tusPatch(srv, where, data));
    assert.equal(resumed?.status, 204, `tus PATCH after recovery: ${resumed?.status} ${resumed?.body}`);
    assert.equal(resumed.headers['upload-offset'], String(data.length));
    // the download connection opened before the exhaustion still works too
    const old = await exchange(pre[1], content);
    assert.equal(old?.status, 200);
    assert.equal(tmpFiles(srv.dataDir).length, 0, 'a refused upload left a temp file');
  } finally {
    for (const s of sockets) s.destroy();
    sockets.clear();
    await srv.cleanup();
  }
});
