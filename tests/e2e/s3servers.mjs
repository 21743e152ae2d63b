// s3servers.mjs — S3 servers for the tests, each private to the test that
// starts it, on a free 127.0.0.1 port, stopped by t.after:
//
//   startS3rver(t)      s3rver (npm): S3 behaviour, but it checks no
//                       signature at all; makeBucket(endpoint) makes a
//                       fresh bucket there.
//   startMoto(t)        moto_server in authentication mode: an IAM user
//                       with s3:* is made while auth is still off, then
//                       every request must carry a valid SigV4 header
//                       signature.  null where moto_server is not installed.
//   startS3Proxy(t, o)  a proxy in front of another server that checks
//                       every request's SigV4 signature itself, strictly
//                       (the path and query must be sent canonical, the
//                       payload hash must match the body, every signed
//                       header must be present), injects faults on request
//                       (503 SlowDown, a GET cut half-way) and logs what it
//                       saw.  With s3rver behind it, s3rver's behaviour
//                       meets a signature check that does not depend on
//                       moto being installed.
//
// The store's own tests start servers through these same helpers.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeDir, SLOW, within } from './lib.mjs';

export const S3_REGION = 'us-east-1';
/** The one access key id s3rver knows; it checks no V4 signature, so any
 *  secret goes (startS3Proxy is what checks it). */
export const S3RVER_ACCESS_KEY = 'S3RVER';

const sha256hex = (b) => createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => createHmac('sha256', k).update(s).digest();

// Children started here die with the test process at the latest.
const children = new Set();
process.on('exit', () => { for (const p of children) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

/** Starts a server process and waits for the line match() turns into a
 *  port; stopped when test t ends, if there is one. */
async function startChild(t, cmd, args, stream, match, what) {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let exited = false;
  const gone = new Promise((r) => proc.on('exit', () => { exited = true; children.delete(proc); r(); }));
  const stop = async () => {
    if (!exited) { proc.kill('SIGTERM'); await within(gone, 10000); }
    if (!exited) { proc.kill('SIGKILL'); await gone; }
  };
  t?.after(stop);
  let output = '';
  const port = await within(new Promise((resolve) => {
    const rl = readline.createInterface({ input: proc[stream] });
    rl.on('line', (l) => { output += l + '\n'; const p = match(l); if (p) resolve(p); });
    proc.on('exit', () => resolve(null));
  }), 60000 * SLOW);
  (stream === 'stdout' ? proc.stderr : proc.stdout).on('data', (d) => { output += d; });
  if (!port) { await stop(); throw new Error(`${what} did not start: ${output}`); }
  return { port, stop };
}

/** s3rver on a free port (access key S3RVER_ACCESS_KEY), stopped and its
 *  directory removed when test t ends; without a test (the suite's one,
 *  with-services.mjs), by stop().
 *  -> {endpoint, stop(), objectFile(bucket, key)}: the file holding an object
 *  (its mtime is the object's LastModified, so a test can age it). */
export async function startS3rver(t = null) {
  const dir = makeTempDir('assetd-s3rver-');
  const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 's3rver-child.mjs');
  let started;
  try {
    started = await startChild(t, process.execPath, ['--openssl-legacy-provider', child, dir], 'stdout',
      (l) => { try { return JSON.parse(l).port; } catch { return null; } }, 's3rver');
  } finally {
    if (t) t.after(() => removeDir(dir));
    else if (!started) removeDir(dir);
  }
  const { port } = started;
  const stop = t ? started.stop : async () => { await started.stop(); removeDir(dir); };
  const objectFile = (bucket, key) => {
    const parts = key.split('/');
    return path.join(dir, bucket, ...parts.slice(0, -1), `${parts.at(-1)}._S3rver_object`);
  };
  return { endpoint: `http://127.0.0.1:${port}`, stop, objectFile };
}

/** A fresh bucket on a server that checks no signature (s3rver): its name.
 *  Throws unless the server made it (200). */
export function makeBucket(endpoint) {
  const bucket = 'assetd-' + randomBytes(5).toString('hex');
  return new Promise((resolve, reject) => {
    const u = new URL(`${endpoint}/${bucket}`);
    http.request({ host: u.hostname, port: u.port, method: 'PUT', path: u.pathname }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(bucket) : reject(new Error(`bucket ${bucket}: ${res.statusCode}`))));
    }).on('error', reject).end();
  });
}

// ------------------------------------------------------------ a store on s3rver

// A plain request to the S3 server itself (s3rver: unsigned is fine).
export function s3(endpoint, method, p, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(endpoint + p);
    const req = http.request({ host: u.hostname, port: u.port, method, path: u.pathname + u.search }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function keysUnder(endpoint, bucket, prefix) {
  const r = await s3(endpoint, 'GET', `/${bucket}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
  if (r.status !== 200) throw new Error(`list ${prefix}: ${r.status} ${r.body}`);
  return [...r.body.toString().matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]);
}

/** s3rver behind the signature-checking proxy, a fresh bucket, and what a
 *  server needs to use it as its store (under PREFIX media/). */
export async function s3Setup(t) {
  const SECRET = 'assetd-store/test+secret';
  const server = await startS3rver(t);
  const proxy = await startS3Proxy(t, { target: server.endpoint, accessKey: S3RVER_ACCESS_KEY, secretKey: SECRET });
  const bucket = await makeBucket(server.endpoint);
  const env = { AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: SECRET, AWS_SESSION_TOKEN: '' };
  const args = ['--store', `s3://${bucket}/media`, '--s3-endpoint', proxy.endpoint];
  return { server, proxy, bucket, env, args };
}


/** Where moto_server is, or null. */
export function motoPath() {
  for (const p of [process.env.MOTO_SERVER, '/root/.pyenv/shims/moto_server']) {
    if (p && fs.existsSync(p)) return p;
  }
  const r = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

function post(endpoint, pathname, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(pathname, endpoint);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', agent: false,
      headers: { 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** An IAM Query API call while moto's auth is still off (the signature is
 *  not checked then, but the credential scope routes it to IAM). */
async function iam(endpoint, params) {
  const body = new URLSearchParams({ Version: '2010-05-08', ...params }).toString();
  const r = await post(endpoint, '/', body, {
    'content-type': 'application/x-www-form-urlencoded',
    authorization: `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/${S3_REGION}/iam/aws4_request, SignedHeaders=host, Signature=0`,
  });
  if (r.status !== 200) throw new Error(`moto IAM ${params.Action}: ${r.status} ${r.body}`);
  return r.body;
}

/** moto_server with signatures checked. -> {endpoint, accessKey, secretKey, stop()} or null */
export async function startMoto(t) {
  const bin = motoPath();
  if (!bin) return null;
  // werkzeug prints the port it bound on stderr: " * Running on http://127.0.0.1:PORT"
  const { port, stop } = await startChild(t, bin, ['-H', '127.0.0.1', '-p', '0'], 'stderr',
    (l) => Number(/Running on http:\/\/127\.0\.0\.1:(\d+)/.exec(l)?.[1]) || null, 'moto_server');
  const endpoint = `http://127.0.0.1:${port}`;
  await iam(endpoint, { Action: 'CreateUser', UserName: 'assetd' });
  await iam(endpoint, { Action: 'PutUserPolicy', UserName: 'assetd', PolicyName: 's3',
    PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] }) });
  const keyXml = await iam(endpoint, { Action: 'CreateAccessKey', UserName: 'assetd' });
  const accessKey = /<AccessKeyId>([^<]+)</.exec(keyXml)?.[1];
  const secretKey = /<SecretAccessKey>([^<]+)</.exec(keyXml)?.[1];
  if (!accessKey || !secretKey) throw new Error('moto CreateAccessKey: ' + keyXml);
  // From now on every request is authenticated (INITIAL_NO_AUTH_ACTION_COUNT = 0).
  const r = await post(endpoint, '/moto-api/reset-auth', '0');
  if (r.status !== 200) throw new Error(`moto reset-auth: ${r.status} ${r.body}`);
  return { endpoint, accessKey, secretKey, stop };
}

// ------------------------------------------------------------ SigV4 check

/** S3's URI encoding: every byte but unreserved ones (and '/' in paths). */
export function s3Encode(s, keepSlash) {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

const decode = (s) => Buffer.from(s.replace(/%([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');

/** Why req (with its whole body) is not validly signed, or null if it is. */
export function sigv4Problem(req, body, { accessKey, secretKey, region = S3_REGION }) {
  const auth = req.headers.authorization || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return `malformed Authorization: ${auth}`;
  const [, ak, date, reg, service, signedHeaders, signature] = m;
  if (ak !== accessKey) return `unknown access key ${ak}`;
  if (reg !== region || service !== 's3') return `credential scope ${reg}/${service}, not ${region}/s3`;
  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
  // The path and query must travel canonical: that is what libcurl 7.88 signs.
  const canonPath = s3Encode(decode(rawPath), true);
  if (canonPath !== rawPath) return `path not canonical: ${rawPath} (canonical ${canonPath})`;
  const canonQuery = rawQuery === '' ? '' : rawQuery.split('&').map((p) => {
    const i = p.indexOf('=');
    const [k, v] = i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
    return [s3Encode(decode(k), false), s3Encode(decode(v), false)];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join('&');
  if (canonQuery !== rawQuery) return `query not canonical: ${rawQuery} (canonical ${canonQuery})`;
  const payload = req.headers['x-amz-content-sha256'];
  if (!payload) return 'no x-amz-content-sha256 header';
  if (payload !== 'UNSIGNED-PAYLOAD' && payload !== sha256hex(body)) return `x-amz-content-sha256 ${payload} is not the body's`;
  const names = signedHeaders.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date') || !names.includes('x-amz-content-sha256')) {
    return `signed headers ${signedHeaders} lack host, x-amz-date or x-amz-content-sha256`;
  }
  for (const n of names) if (req.headers[n] === undefined) return `signed header ${n} was not sent`;
  const canonHeaders = names.map((n) => `${n}:${String(req.headers[n]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const creq = [req.method, rawPath, rawQuery, canonHeaders, signedHeaders, payload].join('\n');
  const scope = `${date}/${reg}/s3/aws4_request`;
  const sts = ['AWS4-HMAC-SHA256', req.headers['x-amz-date'], scope, sha256hex(creq)].join('\n');
  const key = hmac(hmac(hmac(hmac('AWS4' + secretKey, date), reg), 's3'), 'aws4_request');
  if (hmac(key, sts).toString('hex') !== signature) return 'signature does not match';
  return null;
}

const s3ErrorXml = (code, message) => `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;

/** A signature-checking, fault-injecting proxy to target.
 *  Faults are keyed by a marker in the request path:
 *    "fail503x<N>"  the first N requests with that exact method + URL get 503 SlowDown
 *    "fail503always" every request gets 503 SlowDown
 *    "fail503part<N>" every upload of part N (?partNumber=N) gets 503 SlowDown
 *    "cutget"       the first GET of that URL is cut after half its body
 *  -> {endpoint, log: [{method, url, headers, status, problem}], stop()} */
export async function startS3Proxy(t, { target, accessKey, secretKey, region = S3_REGION }) {
  const tu = new URL(target);
  const log = [];
  const seen = new Map();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const entry = { method: req.method, url: req.url, headers: req.headers, status: 0, problem: null };
      log.push(entry);
      const answer = (status, code, message) => {
        entry.status = status;
        const xml = s3ErrorXml(code, message);
        res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
        res.end(req.method === 'HEAD' ? undefined : xml);
      };
      entry.problem = sigv4Problem(req, body, { accessKey, secretKey, region });
      if (entry.problem) return answer(403, 'SignatureDoesNotMatch', entry.problem.replace(/[<&>]/g, '_'));
      const id = `${req.method} ${req.url}`;
      const n = (seen.get(id) || 0) + 1;
      seen.set(id, n);
      const fails = /fail503x(\d+)/.exec(req.url);
      const failPart = /fail503part(\d+)/.exec(req.url);
      if (req.url.includes('fail503always') || (fails && n <= Number(fails[1])) ||
          (failPart && new URL(req.url, 'http://x').searchParams.get('partNumber') === failPart[1])) {
        return answer(503, 'SlowDown', 'Please reduce your request rate.');
      }
      const cut = req.method === 'GET' && req.url.includes('cutget') && n === 1;
      const up = http.request({ host: tu.hostname, port: tu.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (ur) => {
        entry.status = ur.statusCode;
        res.writeHead(ur.statusCode, ur.headers);
        if (!cut) { ur.pipe(res); return; }
        const half = Math.floor(Number(ur.headers['content-length'] || 0) / 2);
        let sent = 0;
        ur.on('data', (d) => {
          if (sent >= half) return;
          const piece = d.subarray(0, half - sent);
          sent += piece.length;
          res.write(piece);
          if (sent >= half) { ur.destroy(); res.socket.destroy(); }
        });
      });
      up.on('error', (e) => { if (!res.headersSent) answer(502, 'ProxyError', e.message); else res.destroy(); });
      up.end(body);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  t.after(stop);
  return { endpoint: `http://127.0.0.1:${server.address().port}`, log, stop };
}

/** A 127.0.0.1 port with nothing listening (bound, then closed). */
export async function closedPort() {
  const s = http.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}
