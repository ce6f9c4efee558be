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
 *
 * One repair: s3rver writes an object in place and answers before the file is fully
 * written, so a concurrent or immediately following GET can see a torn object, which
 * S3 never shows (a PUT is atomic). The store's putObject (multipart completion goes
 * through it too) is replaced here by one that streams into a temp file and renames it
 * over the object once the bytes are written; listing skips the temp names (it only
 * takes files ending in `._S3rver_object`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import S3rver from 's3rver';
import FilesystemStore from 's3rver/lib/stores/filesystem.js';

interface StoredObject {
  bucket: string;
  key: string;
  metadata: unknown;
  content: Buffer | Readable;
}

FilesystemStore.prototype.putObject = async function (this: FilesystemStore, object: StoredObject) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await mkdir(path.dirname(objectPath), { recursive: true });
  const tmp = `${objectPath}.${randomBytes(6).toString('hex')}.tmp`;
  const md5 = createHash('md5');
  let size = 0;
  const content = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  try {
    await pipeline(
      content,
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          md5.update(chunk);
          size += chunk.length;
          callback(null, chunk);
        },
      }),
      createWriteStream(tmp),
    );
    await rename(tmp, objectPath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};

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
