// The reference for bench/events_fanout.sh: a minimal Node WebSocket
// broadcast server (npm `ws`), the original image service's design — a
// separate process that pushes "thumbnail ready" to every connected browser
// when the service tells it to.
//
//   node --expose-gc bench/ws_reference_server.mjs DATAFILE
//
// Listens on 127.0.0.1, on a free port, and prints "listening PORT".
//   GET /v1/events (any query)  a WebSocket; headers are not checked
//   POST /event                 takes "at" (the time the request arrived, ISO,
//                               millisecond precision: the same clock and
//                               format as assetd's events), then sends
//                               {"id":N,"type":"asset.created","asset_id":...,
//                               "at":...,"data":DATA} to every open client,
//                               then answers 201.  DATA is DATAFILE's JSON (an
//                               asset as assetd's 201 gave it, in the bench),
//                               so the messages are the same size as assetd's.
//   POST /event?current=N       slideshow mode (bench/slides_fanout.sh): sends
//                               {"id":ID,"current":N,"updated":"YYYY-MM-DD
//                               HH:MM:SS -0000"} instead (ID: DATAFILE's "id"),
//                               the shape of assetd's slideshow listener
//                               messages, and keeps it as the state that every
//                               client connecting later gets first
//   GET /stats                  {"clients":N,"rss":BYTES}
//   POST /gc                    a full garbage collection (with --expose-gc),
//                               before the bench reads the idle RSS
// No durability: an "event" is a function call, where assetd's is an fsynced
// upload and a SQLite commit.  The broadcast is the one in ws's README,
// except that the text is encoded to a Buffer once, not once per client.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { WebSocketServer, WebSocket } = createRequire(path.join(repo, 'tests', 'package.json'))('ws');

const dataFile = process.argv[2];
if (!dataFile) {
  console.error('usage: ws_reference_server.mjs DATAFILE');
  process.exit(2);
}
const data = readFileSync(dataFile, 'utf8').trim();
const assetId = JSON.parse(data).id || '';

let nextId = 0;
let slideState = null;   // slideshow mode: the last change, sent on connect
const legacy = (d) => d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' -0000');
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url.startsWith('/event')) {
    const at = new Date().toISOString();
    req.resume();   // the body (the uploaded bytes) is not kept
    req.on('end', () => {
      const id = ++nextId;
      const cur = /[?&]current=(\d+)/.exec(req.url);
      if (cur) {
        slideState = Buffer.from(`{"id":"${assetId}","current":${Number(cur[1])},"updated":"${legacy(new Date())}"}`);
        wss.clients.forEach((client) => {
          if (client.readyState === WebSocket.OPEN) client.send(slideState, { binary: false });
        });
        res.writeHead(201, { 'Content-Type': 'application/json' });
        res.end(`{"id":${id}}`);
        return;
      }
      const msg = Buffer.from(`{"id":${id},"type":"asset.created","asset_id":"${assetId}","at":"${at}","data":${data}}`);
      wss.clients.forEach((client) => {
        if (client.readyState === WebSocket.OPEN) client.send(msg, { binary: false });
      });
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end(`{"id":${id}}`);
    });
  } else if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ clients: wss.clients.size, rss: process.memoryUsage.rss() }));
  } else if (req.method === 'POST' && req.url === '/gc') {
    if (global.gc) global.gc();
    res.writeHead(204);
    res.end();
  } else {
    res.writeHead(404);
    res.end();
  }
});
const wss = new WebSocketServer({ server, path: '/v1/events', perMessageDeflate: false });
wss.on('connection', (ws) => { if (slideState) ws.send(slideState, { binary: false }); });
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', 1024 * 4, () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => {
  for (const c of wss.clients) c.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
