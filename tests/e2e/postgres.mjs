// postgres.mjs — a private PostgreSQL cluster for tests: Debian's
// postgresql-15 binaries run directly (no service manager), on a free
// 127.0.0.1 port, with its data and socket in a temporary directory that
// destroy() removes.
//
//   const pg = await startPostgres();   // ~2 s: initdb, then pg_ctl start
//   pg.url                              // postgres://assetd@127.0.0.1:PORT
//   await pg.destroy()                  // stopped (immediate), directory removed
//
// PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the
// `postgres` user (runuser), which owns the directory.  Trust
// authentication for the superuser `assetd`, on 127.0.0.1 only; fsync off
// (a test cluster need not survive a power cut, and it is much faster);
// lib.mjs's dbEnvFor() makes one database per data directory in it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { makeTempDir, removeDir } from './lib.mjs';

const BIN = '/usr/lib/postgresql/15/bin';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL program, as `postgres` when we are root. */
function pgRun(prog, args, timeout = 60000) {
  const root = process.getuid?.() === 0;
  const [cmd, argv] = root ? ['runuser', ['-u', 'postgres', '--', path.join(BIN, prog), ...args]]
    : [path.join(BIN, prog), args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout });
  if (r.status !== 0) throw new Error(`${prog} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

const live = new Set();
process.on('exit', () => { for (const p of live) p.killNow(); });

export async function startPostgres() {
  if (!fs.existsSync(path.join(BIN, 'initdb'))) {
    throw new Error('PostgreSQL 15 is not installed: run scripts/install-deps.sh --test');
  }
  const dir = makeTempDir('assetd-pg-');
  if (process.getuid?.() === 0) {
    const id = (flag) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout);
    fs.chownSync(dir, id('-u'), id('-g'));
  }
  const data = path.join(dir, 'data');
  pgRun('initdb', ['-D', data, '--no-sync', '-A', 'trust', '-U', 'assetd', '-E', 'UTF8', '--locale', 'C']);
  const port = await freePort();
  pgRun('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off` +
    ' -c full_page_writes=off -c max_connections=400', 'start']);
  const pg = {
    url: `postgres://assetd@127.0.0.1:${port}`,
    dir,
    killNow() {
      try { pgRun('pg_ctl', ['-D', data, '-m', 'immediate', 'stop'], 20000); } catch { /* gone */ }
    },
    async destroy() {
      live.delete(pg);
      pg.killNow();
      removeDir(dir);
    },
  };
  live.add(pg);
  return pg;
}
