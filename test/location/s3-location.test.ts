/**
 * Locations with their blobs in S3: `postgres://…?blob=s3://…` (the many-machines
 * form) and `file:<dir>?blob=s3://…` (one machine's consensus, object storage for the
 * data), opened by URL, shared by two clients, and the misuse that `openLocation`
 * refuses with a message saying what to write instead.
 */
import { expect } from 'chai';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocationUsageError } from '../../src/location/errors.js';
import { openLocation } from '../../src/location/location.js';
import { PostgresConsensus } from '../../src/location/postgres-consensus.js';
import { S3Blob } from '../../src/location/s3-blob.js';
import { SqliteConsensus } from '../../src/location/sqlite-consensus.js';
import { PersistClient } from '../../src/persist/client.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { expectBytes, utf8 } from '../support/bytes.js';
import { STRING_UNIT, sorted } from '../support/persist.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';
import { freshTestS3Url } from '../support/s3.js';

async function expectOpenError(url: string, ...fragments: string[]): Promise<Error> {
  try {
    const loc = await openLocation(url);
    await loc.close();
  } catch (err) {
    expect(err).to.be.instanceOf(LocationUsageError);
    for (const f of fragments) expect((err as Error).message).to.include(f);
    return err as Error;
  }
  return expect.fail(`openLocation(${JSON.stringify(url)}) should throw`);
}

/** `postgres://…?blob=s3://b/p?endpoint=…&region=…`, the S3 parameters left unescaped as a user would type them. */
function pgWithS3(pgUrl: string, s3Url: string): string {
  return `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}blob=${s3Url}`;
}

describe('locations with blobs in S3', function () {
  this.timeout(60_000);
  let pgUrl: string;
  let dir: string;

  before(async () => {
    pgUrl = await freshTestDatabaseUrl();
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-s3loc-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('postgres://…?blob=s3://… opens Postgres consensus and an S3 blob; the S3 parameters never reach Postgres', async () => {
    const s3 = await freshTestS3Url();
    const url = pgWithS3(pgUrl, s3);
    const a = await openLocation(url);
    const b = await openLocation(url);
    try {
      expect(a.consensus).to.be.instanceOf(PostgresConsensus);
      expect(a.blob).to.be.instanceOf(S3Blob);
      await a.blob.set('s1/p1', utf8('shared'));
      expectBytes(await b.blob.get('s1/p1'), utf8('shared'));
      await a.consensus.compareAndSet('k', undefined, { seqno: 1, data: utf8('x') });
      expect((await b.consensus.head('k'))?.seqno).to.equal(1);
      // The same bytes seen straight through S3.
      const direct = await S3Blob.open(s3);
      expectBytes(await direct.get('s1/p1'), utf8('shared'));
      await direct.close();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a shard written through Postgres + S3 by one client is read back by another', async () => {
    const url = pgWithS3(pgUrl, await freshTestS3Url());
    const id = newShardId();
    // Batches always in Blob (no inline writes), so the parts really live in S3.
    const config = { inlineWritesSingleMaxBytes: 0 };
    const c1 = await PersistClient.open(url, { config });
    const w = await c1.openWriter(id, STRING_UNIT);
    for (let t = 0; t < 10; t++) expect(await w.compareAndAppend([[`k${t}`, null, t, 1]], t, t + 1)).to.deep.equal({ ok: true });
    await c1.close();
    const c2 = await PersistClient.open(url, { config });
    try {
      const r = await c2.openLeasedReader(id, STRING_UNIT);
      const snap = await r.snapshotAndFetch(9);
      expect(sorted(snap)).to.deep.equal(sorted(Array.from({ length: 10 }, (_, t) => [`k${t}`, null, 9, 1] as const)));
      const parts: string[] = [];
      const look = await openLocation(url);
      await look.blob.listKeysAndMetadata('', (k) => parts.push(k));
      await look.close();
      expect(parts.length, 'parts in S3').to.be.greaterThan(0);
      await r.expire();
    } finally {
      await c2.close();
    }
  });

  it('file:<dir>?blob=s3://… keeps consensus in <dir> and the blobs in S3', async () => {
    const s3 = await freshTestS3Url();
    const loc = await openLocation(`file:${dir}/data?blob=${s3}`);
    try {
      expect(loc.consensus).to.be.instanceOf(SqliteConsensus);
      expect(loc.blob).to.be.instanceOf(S3Blob);
      await loc.blob.set('k', utf8('in s3'));
      await access(path.join(dir, 'data', 'consensus.sqlite'));
      expect(await readdir(path.join(dir, 'data'))).to.not.include('blob');
      const direct = await S3Blob.open(s3);
      expectBytes(await direct.get('k'), utf8('in s3'));
      await direct.close();
    } finally {
      await loc.close();
    }
  });

  it('refuses what does not make a location, saying what to write instead', async () => {
    await expectOpenError('s3://bucket/prefix?region=us-east-1', 'names only a blob store', 'postgres://', 'file:<dir>?blob=s3://');
    await expectOpenError(`file:${dir}?blob=file:${dir}/b`, 'accepts only s3://', 'drop ?blob=');
    await expectOpenError(`file:${dir}?blob=mem://x`, 'accepts only s3://');
    const withKey = await expectOpenError(pgWithS3(pgUrl, 's3://AKIA:hunter2xyz@bucket/p'), 'credentials never go in the URL', 'AWS_ACCESS_KEY_ID');
    expect(withKey.message).to.not.include('hunter2xyz');
    await expectOpenError(pgWithS3(pgUrl, 's3://bucket/p?secretAccessKey=x'), 'credentials never go in the URL');
    await expectOpenError(pgWithS3(pgUrl, 's3://bucket/p?regoin=us-east-1'), 'unknown parameter "regoin"', 'endpoint, region');
    await expectOpenError(pgWithS3(pgUrl, 's3://bucket/p?forcePathStyle=yes'), 'forcePathStyle must be true or false');
    await expectOpenError(pgWithS3(pgUrl, 's3://bucket/p?endpoint=ftp://x'), 'endpoint must be an http:// or https:// URL');
    await expectOpenError(pgWithS3(pgUrl, 's3://B_ad/p'), 'bad bucket name');
    await expectOpenError(pgWithS3(pgUrl, 's3://bucket/p?region=a&region=b'), 'given twice');
  });

  it('an S3 store with no region anywhere is refused with the fix', async () => {
    const saved = { region: process.env.AWS_REGION, def: process.env.AWS_DEFAULT_REGION, profile: process.env.AWS_PROFILE };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    process.env.AWS_PROFILE = 'txnwal-test-no-such-profile';
    const url = (await freshTestS3Url()).replace(/[?&]region=[^&]*/, (m) => (m.startsWith('?') ? '?' : ''));
    try {
      await expectOpenError(pgWithS3(pgUrl, url), 'no region', '&region=', 'AWS_REGION');
    } finally {
      for (const [k, v] of [['AWS_REGION', saved.region], ['AWS_DEFAULT_REGION', saved.def], ['AWS_PROFILE', saved.profile]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
