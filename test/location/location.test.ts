/**
 * openLocation: URL forms, the mem://<name> registry, the embedded file: default,
 * postgres URLs with a blob parameter, and the error messages for bad URLs.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocationUsageError } from '../../src/location/errors.js';
import { FileBlob } from '../../src/location/file-blob.js';
import { openLocation, type Location } from '../../src/location/location.js';
import { MemBlob } from '../../src/location/mem-blob.js';
import { MemConsensus } from '../../src/location/mem-consensus.js';
import { PostgresConsensus } from '../../src/location/postgres-consensus.js';
import { SqliteConsensus } from '../../src/location/sqlite-consensus.js';
import { expectBytes, utf8 } from '../support/bytes.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';

async function expectOpenError(url: string, ...fragments: string[]): Promise<Error> {
  try {
    const loc = await openLocation(url);
    await loc.close();
  } catch (err) {
    // Misuse of a location URL is the location layer's typed misuse error.
    expect(err, String(err)).to.be.instanceOf(LocationUsageError);
    for (const f of fragments) expect((err as Error).message).to.include(f);
    return err as Error;
  }
  return expect.fail(`openLocation(${JSON.stringify(url)}) should have failed`);
}

/** Writes one version and one blob through `a`, checks `b` sees both. */
async function expectShared(a: Location, b: Location): Promise<void> {
  const key = `k${randomBytes(4).toString('hex')}`;
  expect(await a.consensus.compareAndSet(key, undefined, { seqno: 1, data: utf8('c') })).to.equal('committed');
  await a.blob.set(`${key}/b`, utf8('b'));
  expect((await b.consensus.head(key))?.seqno).to.equal(1);
  expectBytes(await b.blob.get(`${key}/b`), utf8('b'));
}

const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

describe('openLocation', function () {
  let root: string;

  before(async function () {
    root = await mkdtemp(path.join(os.tmpdir(), 'txnwal-location-'));
  });

  after(async function () {
    await rm(root, { recursive: true, force: true });
  });

  describe('mem://', function () {
    it('mem:// opens a fresh private pair every time', async function () {
      const a = await openLocation('mem://');
      const b = await openLocation('mem://');
      expect(a.blob).to.be.instanceOf(MemBlob);
      expect(a.consensus).to.be.instanceOf(MemConsensus);
      expect(a.consensus).to.not.equal(b.consensus);
      expect(a.blob).to.not.equal(b.blob);
      await a.consensus.compareAndSet('k', undefined, { seqno: 1, data: utf8('x') });
      expect(await b.consensus.head('k')).to.equal(undefined);
      expect(a.url).to.equal('mem://');
      await a.close();
      await b.close();
    });

    it('mem://<name> returns the same pair for the same name', async function () {
      const name = unique('shared');
      const a = await openLocation(`mem://${name}`);
      const b = await openLocation(`mem://${name}`);
      const other = await openLocation(`mem://${unique('other')}`);
      expect(a.consensus).to.equal(b.consensus);
      expect(a.blob).to.equal(b.blob);
      expect(other.consensus).to.not.equal(a.consensus);
      await expectShared(a, b);
      expect(await other.consensus.listKeys()).to.deep.equal([]);
    });

    it('closing a mem://<name> location keeps the data for the next open', async function () {
      const name = unique('keep');
      const a = await openLocation(`mem://${name}`);
      await a.consensus.compareAndSet('k', undefined, { seqno: 1, data: utf8('x') });
      await a.close();
      await a.close();
      const b = await openLocation(`mem://${name}`);
      expect((await b.consensus.head('k'))?.seqno).to.equal(1);
      await b.close();
    });

    it('closing a plain mem:// location closes its stores', async function () {
      const a = await openLocation('mem://');
      await a.close();
      try {
        await a.consensus.head('k');
        expect.fail('expected an error');
      } catch (err) {
        expect(err).to.be.instanceOf(LocationUsageError);
      }
    });
  });

  describe('file:', function () {
    it('file:<dir> creates the directory with SQLite consensus and a blob directory', async function () {
      const dir = path.join(root, 'nested', 'loc1');
      const loc = await openLocation(`file:${dir}`);
      expect(loc.consensus).to.be.instanceOf(SqliteConsensus);
      expect(loc.blob).to.be.instanceOf(FileBlob);
      await loc.consensus.compareAndSet('k', undefined, { seqno: 1, data: utf8('x') });
      await loc.blob.set('s/p', utf8('y'));
      await access(path.join(dir, 'consensus.sqlite'));
      await access(path.join(dir, 'blob', 's\u2215p'));
      await loc.close();
      // Reopening the same directory sees the data.
      const again = await openLocation(`file:${dir}`);
      expect((await again.consensus.head('k'))?.seqno).to.equal(1);
      expectBytes(await again.blob.get('s/p'), utf8('y'));
      await again.close();
    });

    it('file:<relative dir> resolves against the working directory', async function () {
      const dir = path.join(root, 'relative');
      const loc = await openLocation(`file:${path.relative(process.cwd(), dir)}`);
      await loc.blob.set('k', utf8('x'));
      await access(path.join(dir, 'blob', 'k'));
      await loc.close();
    });

    it('file:///<absolute dir> is a file URL (percent-decoded)', async function () {
      const dir = path.join(root, 'with space');
      const url = pathToFileURL(dir).href;
      expect(url).to.include('%20');
      const loc = await openLocation(url);
      await loc.blob.set('k', utf8('x'));
      await access(path.join(dir, 'blob', 'k'));
      expect(loc.url).to.equal(url);
      await loc.close();
    });

    it('two file: locations on one directory share the data', async function () {
      const dir = path.join(root, 'two');
      const a = await openLocation(`file:${dir}`);
      const b = await openLocation(`file:${dir}`);
      await expectShared(a, b);
      await a.close();
      await b.close();
    });

    it('closing a file: location closes both stores, idempotently', async function () {
      const loc = await openLocation(`file:${path.join(root, 'closing')}`);
      await loc.close();
      await loc.close();
      for (const call of [() => loc.consensus.head('k'), () => loc.blob.get('k')]) {
        try {
          await call();
          expect.fail('expected an error');
        } catch (err) {
          expect(err).to.be.instanceOf(LocationUsageError);
        }
      }
    });

    it('rejects file: without a directory and file:// with a host', async function () {
      await expectOpenError('file:', 'file: needs a directory');
      await expectOpenError('file://relative/dir', 'absolute path', 'file:<dir>');
    });
  });

  describe('postgres://', function () {
    let pgUrl: string;

    before(async function () {
      this.timeout(60_000);
      pgUrl = await freshTestDatabaseUrl();
    });

    function withBlob(url: string, blob: string): string {
      const u = new URL(url);
      u.searchParams.set('blob', blob);
      return u.toString();
    }

    it('requires a blob parameter and says how to give one', async function () {
      const err = await expectOpenError('postgres://user@localhost:5432/db', 'blob', '?blob=file:', 'mem://');
      expect(err.message).to.match(/blob store/);
      await expectOpenError('postgresql://user@localhost:5432/db?blob=', 'blob');
    });

    it('rejects an unsupported blob URL', async function () {
      await expectOpenError('postgres://user@localhost:5432/db?blob=gs://bucket', 'unsupported blob', 'gs://bucket', 's3://');
    });

    it('?blob=mem://<name> shares the blob of that named mem location', async function () {
      const name = unique('pgblob');
      const loc = await openLocation(withBlob(pgUrl, `mem://${name}`));
      const mem = await openLocation(`mem://${name}`);
      expect(loc.consensus).to.be.instanceOf(PostgresConsensus);
      expect(loc.blob).to.equal(mem.blob);
      await loc.consensus.compareAndSet('k', undefined, { seqno: 1, data: utf8('x') });
      expect((await loc.consensus.head('k'))?.seqno).to.equal(1);
      await loc.close();
      await loc.close();
    });

    it('?blob=file:<dir> keeps blobs directly in <dir>; postgresql:// works too', async function () {
      const dir = path.join(root, 'pgfiles');
      const url = withBlob(pgUrl.replace(/^postgres:/, 'postgresql:'), `file:${dir}`);
      const a = await openLocation(url);
      const b = await openLocation(url);
      expect(a.blob).to.be.instanceOf(FileBlob);
      await expectShared(a, b);
      await a.blob.set('direct', utf8('x'));
      await access(path.join(dir, 'direct'));
      await a.close();
      await b.close();
    });
  });

  it('rejects other URLs, naming the accepted forms', async function () {
    for (const url of ['', 'redis://localhost', 'mem:', 'mem:name', '/var/lib/txnwal', 's3://bucket/path']) {
      await expectOpenError(url, 'mem://', 'file:<dir>', 'postgres://', 'blob');
    }
  });
});
