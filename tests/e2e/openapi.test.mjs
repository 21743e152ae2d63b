// docs/openapi.yaml stays true: every documented (method, path) is served,
// and every documented response status of the success path is what the
// server answers.  A light reader of the file's fixed layout (two-space path
// keys, four-space method keys) keeps this free of a YAML dependency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, TEST_TIMEOUT as T, serverFor, api, upload, TEXT } from './lib.mjs';

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
    const m = line.match(/^ {4}(get|post|delete|put|patch|head):\s*$/);
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

test('every operation in docs/openapi.yaml is served with a documented status', { timeout: T }, async (t) => {
  const ops = documentedOperations();
  assert.ok(ops.length >= 7, `read only ${ops.length} operations from openapi.yaml`);
  const srv = await serverFor(t);
  for (const op of ops) {
    const made = await upload(srv, { data: TEXT, filename: 'doc.txt' });
    assert.equal(made.status, 201, made.text);
    const url = op.path.replace('{id}', made.json.id);
    const r = op.method === 'POST'
      ? await upload(srv, { data: TEXT, filename: 'doc.txt' })
      : await api(srv, op.method, url);
    assert.ok(op.codes.includes(r.status),
      `${op.method} ${op.path} answered ${r.status}, documented: ${op.codes.join(', ')}`);
    assert.ok(r.status < 400, `${op.method} ${op.path} failed: ${r.status} ${r.text}`);
  }
});
