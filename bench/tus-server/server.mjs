// The tus reference server for bench/tus.sh: @tus/server (the tus project's
// Node.js server) with @tus/file-store, as its README sets them up.
//
//   node bench/tus-server/server.mjs DIR
//
// Serves tus 1.0 at /files/ on 127.0.0.1, on a port the kernel picks, and
// prints {"port":N} on stdout once it listens.  Uploads go to DIR (a file per
// upload plus its .json metadata).  FileStore writes through a Node stream
// into the page cache: it neither fsyncs nor hashes, where assetd does both
// before it acknowledges an offset; the benchmark says so next to its figures.
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node server.mjs DIR');
  process.exit(2);
}
const tus = new Server({ path: '/files', datastore: new FileStore({ directory: dir }) });
const http = tus.listen({ host: '127.0.0.1', port: 0 }, () => {
  console.log(JSON.stringify({ port: http.address().port }));
});
