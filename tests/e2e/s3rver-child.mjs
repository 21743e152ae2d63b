// s3rver-child.mjs — runs s3rver for s3servers.mjs in a process of its own:
//     node --openssl-legacy-provider s3rver-child.mjs DIR
// prints {"port": N} once listening and serves until killed.  A process of
// its own because s3rver's ListObjectsV2 continuation tokens use DES, which
// OpenSSL 3 has only in its legacy provider (the flag above), and the test
// processes should not run with that provider.
import S3rver from 's3rver';

const server = new S3rver({ port: 0, address: '127.0.0.1', directory: process.argv[2], silent: true });
const addr = await server.run();
process.stdout.write(JSON.stringify({ port: addr.port }) + '\n');
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close().finally(() => process.exit(0)); });
