/**
 * Child for the S3Blob lifecycle test: opens an S3Blob on the URL in argv[2], writes and
 * reads a key, closes the blob unless argv[3] is "leave-open", then simply returns. The
 * test expects the process to exit on its own: no timer or socket of S3Blob may keep
 * it alive.
 */
import { S3Blob } from '../../src/location/s3-blob.js';

const [url, mode] = process.argv.slice(2);
const blob = await S3Blob.open(url!);
await blob.set('k', new Uint8Array([1, 2, 3]));
const got = await blob.get('k');
if (got?.byteLength !== 3) throw new Error('read back the wrong value');
if (mode !== 'leave-open') await blob.close();
process.stdout.write('finished\n');
