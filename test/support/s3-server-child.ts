/**
 * Child process that runs an s3rver (an S3 API over a local directory) for tests,
 * started by test/support/s3.ts. Usage:
 *
 *   node --openssl-legacy-provider --import tsx s3-server-child.ts <dir> <port|0> <bucket>
 *
 * It prints one JSON line `{"port":N}` once it listens on 127.0.0.1, and exits when its
 * stdin closes, so a test process that dies takes its server with it.
 *
 * Why a child process with --openssl-legacy-provider: s3rver 3.7 encrypts ListObjectsV2
 * continuation tokens with DES, which Node 20's OpenSSL 3 only offers through the legacy
 * provider; a flag for this one process keeps the test process itself on defaults. A
 * separate process is also what a real store is: tests can SIGKILL it mid-request and
 * start it again on the same directory and port.
 */
import S3rver from 's3rver';

const [dir, portArg, bucket] = process.argv.slice(2);
if (dir === undefined || portArg === undefined || bucket === undefined) {
  process.stderr.write('usage: s3-server-child.ts <dir> <port|0> <bucket>\n');
  process.exit(2);
}
const server = new S3rver({
  address: '127.0.0.1',
  port: Number(portArg),
  directory: dir,
  silent: true,
  configureBuckets: [{ name: bucket, configs: [] }],
});
const address = (await server.run()) as { port: number };
process.stdout.write(JSON.stringify({ port: address.port }) + '\n');
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
