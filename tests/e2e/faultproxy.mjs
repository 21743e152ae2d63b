// faultproxy.mjs — a TCP proxy on 127.0.0.1:0 in front of a remote service
// (S3, a webhook receiver, RabbitMQ), whose behaviour a test switches while
// it runs, to see what the server does when the service misbehaves:
//
//   const p = await startFaultProxy(t, { target: 'http://127.0.0.1:9000' });
//   p.port, p.url                      // where the server under test connects
//   p.setMode('pass')                  // forward both ways (the default)
//   p.setMode('reset')                 // accept, then destroy with a RST
//   p.setMode('stall')                 // accept, read and drop, never answer
//   p.setMode('slow', { rate: 16384 }) // forward, each way at most rate bytes/s
//   p.setMode('status', { status: 503, body: '...' })   // HTTP targets: answer
//                                      // each request head with that status
//                                      // (Connection: close), forward nothing
//   p.setMode(m, { times: N })         // only the next N connections, then pass
//   p.cut()                            // RST every open connection now
//   p.accepted                         // connections accepted so far
//   p.events                           // [{at, mode, closed}] one per connection
//                                      // accepted (closed: when; 0 while open)
//
// A mode applies to the connections accepted after the switch; those already
// open follow it where that makes sense: a forwarding connection (pass,
// slow) becomes stalled or slowed, and is reset by a switch to reset or
// status (a client cannot tell where its next request starts); a stalled
// one is reset by any switch (its stream lost bytes: it cannot go on).  A
// `times` count is of connections accepted: the (N+1)th one passes.
//
// The proxy is closed by t.after: every connection is destroyed with it.
import net from 'node:net';

// A reset (SO_LINGER 0), except on a socket whose end() was called: while
// that shutdown is pending, libuv refuses the reset (EINVAL) and Node 20
// marks the handle closing anyway, so it is never closed and the process
// spins at exit in its handle cleanup; destroy() closes such a socket (its
// FIN is sent or on the way: the peer sees an end, not a reset).
const RST = (s) => {
  if (s.writableEnded || typeof s.resetAndDestroy !== 'function') s.destroy();
  else s.resetAndDestroy();
};

export async function startFaultProxy(t, { target }) {
  const u = new URL(target.includes('://') ? target : `tcp://${target}`);
  const host = u.hostname, port = Number(u.port);
  let mode = 'pass', opts = {}, left = Infinity;
  const live = new Set();   // {client, upstream, mode, timers}
  const proxy = { accepted: 0, events: [], port: 0, url: '', mode: () => mode };

  // Writes `data` to `to` at most opts.rate bytes/s (slices every 50 ms).
  function throttle(conn, from, to) {
    const queue = [];
    let timer = null;
    const pump = () => {
      timer = null;
      if (conn.mode !== 'slow') {   // back to pass: flush the rest
        for (const d of queue.splice(0)) to.write(d);
        from.resume();
        return;
      }
      let budget = Math.max(1, Math.floor((conn.rate || 16384) / 20));
      while (budget > 0 && queue.length) {
        const d = queue[0];
        const n = Math.min(budget, d.length);
        to.write(d.subarray(0, n));
        budget -= n;
        if (n === d.length) queue.shift(); else queue[0] = d.subarray(n);
      }
      if (queue.length) timer = setTimeout(pump, 50);
      else from.resume();
    };
    conn.timers.add(() => clearTimeout(timer));
    return (d) => {
      queue.push(d);
      from.pause();
      if (!timer) timer = setTimeout(pump, 50);
    };
  }

  function forward(conn) {
    const { client } = conn;
    const upstream = net.connect({ host, port });
    conn.upstream = upstream;
    const pending = [];
    let connected = false;
    upstream.on('connect', () => { connected = true; for (const d of pending.splice(0)) upstream.write(d); });
    const slowUp = throttle(conn, client, upstream), slowDown = throttle(conn, upstream, client);
    client.on('data', (d) => {
      if (conn.mode === 'stall') return;
      if (conn.mode === 'slow') return slowUp(d);
      if (connected) upstream.write(d); else pending.push(d);
    });
    upstream.on('data', (d) => {
      if (conn.mode === 'stall') return;
      if (conn.mode === 'slow') return slowDown(d);
      client.write(d);
    });
    // A close on one side closes the other the same way.
    upstream.on('end', () => { if (conn.mode !== 'stall') client.end(); });
    client.on('end', () => { if (conn.mode !== 'stall') upstream.end(); });
    upstream.on('error', () => RST(client));
    client.on('error', () => RST(upstream));
    upstream.on('close', () => { if (conn.mode !== 'stall') client.destroy(); });
  }

  // status: read the request head, answer, close; nothing goes upstream.
  function answer(conn) {
    const { client } = conn;
    let head = '';
    client.on('data', (d) => {
      if (head === null) return;
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      head = null;
      const body = conn.body ?? `{"fault":"injected ${conn.status}"}`;
      client.end(`HTTP/1.1 ${conn.status} Injected\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
  }

  const server = net.createServer((client) => {
    proxy.accepted++;
    const m = mode;
    const conn = { client, upstream: null, mode: m, rate: opts.rate, status: opts.status ?? 503, body: opts.body, timers: new Set() };
    const ev = { at: Date.now(), mode: m, closed: 0 };
    proxy.events.push(ev);
    if (left !== Infinity && --left <= 0) { mode = 'pass'; opts = {}; left = Infinity; }
    client.on('error', () => {});
    live.add(conn);
    client.on('close', () => { ev.closed = Date.now(); live.delete(conn); for (const f of conn.timers) f(); conn.upstream?.destroy(); });
    if (m === 'reset') { RST(client); return; }
    if (m === 'stall') { client.on('data', () => {}); return; }
    if (m === 'status') { answer(conn); return; }
    forward(conn);   // pass, slow
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  proxy.port = server.address().port;
  proxy.url = `${u.protocol === 'tcp:' ? 'tcp:' : u.protocol}//127.0.0.1:${proxy.port}`;

  proxy.setMode = (m, o = {}) => {
    if (!['pass', 'reset', 'stall', 'slow', 'status'].includes(m)) throw new Error(`unknown mode ${m}`);
    mode = m;
    opts = o;
    left = o.times ?? Infinity;
    for (const conn of [...live]) {
      const forwarding = conn.mode === 'pass' || conn.mode === 'slow';
      if (forwarding && (m === 'pass' || m === 'slow' || m === 'stall')) {
        conn.mode = m;
        conn.rate = o.rate;
      } else if (!(conn.mode === 'status' && m === 'status')) {
        RST(conn.client);
        conn.upstream?.destroy();
      }
    }
  };
  proxy.cut = () => { for (const conn of [...live]) { RST(conn.client); conn.upstream?.destroy(); } };
  proxy.open = () => live.size;
  proxy.close = () => new Promise((r) => { proxy.cut(); server.close(() => r()); });
  t?.after(proxy.close);
  return proxy;
}
