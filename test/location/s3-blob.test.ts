/**
 * S3Blob against the Blob conformance suite on a real S3 API (an s3rver child process,
 * or the store in TXNWAL_TEST_S3_URL), plus what is particular to S3: keys under a
 * prefix, paginated listing, multipart uploads, tombstones kept out of listings, the
 * bucket check at open, and credentials that never show in an error.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inspect, promisify } from 'node:util';
import { DeterminateError, LocationUsageError } from '../../src/location/errors.js';
import { S3Blob } from '../../src/location/s3-blob.js';
import { expectBytes, patternBytes, utf8 } from '../support/bytes.js';
import { freshTestS3Url } from '../support/s3.js';
import { describeBlobConformance } from './blob-conformance.js';

describe('S3Blob', function () {
  this.timeout(60_000);

  describeBlobConformance('S3Blob', async ({ tombstone }) => S3Blob.open(await freshTestS3Url(), { tombstone }));
  // The suite's values stay below the 8 MiB multipart threshold, so run it again with
  // everything above 1 KiB going up as a multipart upload.
  describeBlobConformance('S3Blob (multipart above 1 KiB)', async ({ tombstone }) =>
    S3Blob.open(await freshTestS3Url(), { tombstone, multipartThresholdBytes: 1024 }),
  );

  it('keeps its keys under its prefix: two prefixes in one bucket do not see each other', async () => {
    const base = await freshTestS3Url();
    const [a, b] = [base.replace('?', 'a/?'), base.replace('?', 'b/?')];
    const blobA = await S3Blob.open(a);
    const blobB = await S3Blob.open(b);
    try {
      await blobA.set('k', utf8('from a'));
      expect(await blobB.get('k')).to.equal(undefined);
      await blobB.set('k', utf8('from b'));
      expectBytes(await blobA.get('k'), utf8('from a'));
      const listed: string[] = [];
      await blobA.listKeysAndMetadata('', (key) => listed.push(key));
      expect(listed).to.deep.equal(['k']);
    } finally {
      await blobA.close();
      await blobB.close();
    }
  });

  it('lists across many pages: every key once with its size', async () => {
    const blob = await S3Blob.open(await freshTestS3Url(), { listPageSize: 3 });
    try {
      const expected: Record<string, number> = {};
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          expected[`s1/p${i}`] = i;
          return blob.set(`s1/p${i}`, patternBytes(i, i + 1));
        }),
      );
      await blob.set('s2/other', utf8('x'));
      const seen: Record<string, number> = {};
      await blob.listKeysAndMetadata('s1/', (key, size) => {
        expect(seen, `${key} listed twice`).to.not.have.property(key);
        seen[key] = size;
      });
      expect(seen).to.deep.equal(expected);
    } finally {
      await blob.close();
    }
  });

  it('a 24 MiB value goes up in parts and comes back whole', async () => {
    const blob = await S3Blob.open(await freshTestS3Url(), { partSizeBytes: 5 * 1024 * 1024, partConcurrency: 2 });
    try {
      const value = patternBytes(24 * 1024 * 1024 + 17, 5);
      await blob.set('big', value);
      expectBytes(await blob.get('big'), value);
      const sizes: number[] = [];
      await blob.listKeysAndMetadata('big', (_, size) => sizes.push(size));
      expect(sizes).to.deep.equal([value.byteLength]);
    } finally {
      await blob.close();
    }
  });

  it('tombstones never show in listings, and keys starting with "." are refused', async () => {
    const blob = await S3Blob.open(await freshTestS3Url(), { tombstone: true });
    try {
      await blob.set('k', utf8('v'));
      await blob.delete('k');
      const listed: string[] = [];
      await blob.listKeysAndMetadata('', (key) => listed.push(key));
      await blob.listKeysAndMetadata('.', (key) => listed.push(key));
      expect(listed).to.deep.equal([]);
      for (const bad of ['', '.tombstone/k', '.x']) {
        try {
          await blob.set(bad, utf8('v'));
          expect.fail(`set(${JSON.stringify(bad)}) should throw`);
        } catch (err) {
          expect(err).to.be.instanceOf(LocationUsageError);
        }
      }
    } finally {
      await blob.close();
    }
  });

  it('open fails with a DeterminateError naming the bucket when it does not exist', async () => {
    const url = (await freshTestS3Url()).replace(/^s3:\/\/[^/]+/, 's3://no-such-bucket-txnwal');
    try {
      await S3Blob.open(url);
      expect.fail('open should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(DeterminateError);
      expect((err as Error).message).to.include('no-such-bucket-txnwal').and.to.include('does not exist');
    }
  });

  it('credentials never appear in an error: unknown keys are refused and neither the message nor inspect() shows them', async () => {
    const url = await freshTestS3Url();
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = 'AKIATXNWALNOSUCHKEY1';
    process.env.AWS_SECRET_ACCESS_KEY = 'not-the-secret-Zq81';
    try {
      await S3Blob.open(url);
      expect.fail('open should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(DeterminateError);
      expect((err as Error).message).to.include('access denied');
      const shown = `${(err as Error).message}\n${inspect(err, { depth: 10 })}`;
      expect(shown).to.not.include('not-the-secret-Zq81');
      expect(shown).to.not.include('AKIATXNWALNOSUCHKEY1');
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });

  for (const mode of ['close', 'leave-open'] as const) {
    it(`a process that used an S3Blob exits on its own (${mode === 'close' ? 'after close()' : 'even without close()'})`, async () => {
      const child = fileURLToPath(new URL('./s3-exit-child.ts', import.meta.url));
      // execFile resolves only when the child exits; the mocha timeout catches a hang.
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', child, await freshTestS3Url(), mode]);
      expect(stdout).to.equal('finished\n');
    });
  }

  it('refuses use after close with a LocationUsageError', async () => {
    const blob = await S3Blob.open(await freshTestS3Url());
    await blob.close();
    try {
      await blob.get('k');
      expect.fail('get after close should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(LocationUsageError);
    }
  });
});
