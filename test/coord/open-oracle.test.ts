/**
 * openTimestampOracle: each location URL form opens the right oracle, laid out the way
 * `openLocation` lays out the same URL, and the shared `mem://<name>` clock passes the
 * conformance suite as a shared, in-process-durable oracle.
 */
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import util from 'node:util';
import { expect } from 'chai';
import { LogicalClock } from '../../src/coord/logical-clock.js';
import { ORACLE_FILE_NAME, SharedClockHandle, openTimestampOracle } from '../../src/coord/open-oracle.js';
import { InvalidOracleConfig } from '../../src/coord/oracle-errors.js';
import { PostgresTimestampOracle } from '../../src/coord/postgres-oracle.js';
import { SqliteTimestampOracle } from '../../src/coord/sqlite-oracle.js';
import { openLocation } from '../../src/location/location.js';
import { InvalidUsage } from '../../src/persist/errors.js';
import { rejection } from '../support/async.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';
import { describeOracleConformance } from './timestamp-oracle-conformance.js';

describe('openTimestampOracle', function () {
  describeOracleConformance(
    'mem://<name> shared clock',
    async () => {
      const name = `conformance-${randomBytes(6).toString('hex')}`;
      return { open: (options) => openTimestampOracle(`mem://${name}`, options) };
    },
    { shared: true, durable: true },
  );

  describe('URL forms', function () {
    let root: string;

    before(async function () {
      root = await mkdtemp(path.join(os.tmpdir(), 'txnwal-open-oracle-'));
    });

    after(async function () {
      await rm(root, { recursive: true, force: true });
    });

    it('mem:// is a fresh private LogicalClock each time', async function () {
      const a = await openTimestampOracle('mem://', { now: () => 0 });
      const b = await openTimestampOracle('mem://', { now: () => 0 });
      expect(a).to.be.instanceOf(LogicalClock);
      await a.writeTs();
      await a.writeTs();
      expect((await b.writeTs()).timestamp).to.equal(1);
    });

    it('mem://<name> shares one clock per (name, timeline) and offers getTimestamp', async function () {
      const name = `shared-${randomBytes(4).toString('hex')}`;
      const a = await openTimestampOracle(`mem://${name}`, { now: () => 0 });
      const b = await openTimestampOracle(`mem://${name}`);
      const otherTimeline = await openTimestampOracle(`mem://${name}`, { timeline: 'other', now: () => 0 });
      const otherName = await openTimestampOracle(`mem://${name}-2`, { now: () => 0 });
      expect(a).to.be.instanceOf(SharedClockHandle);
      expect((await a.writeTs()).timestamp).to.equal(1);
      // b shares the clock, and so the `now` of the open that created it.
      expect((await (b as SharedClockHandle).getTimestamp(async (ts) => ts))).to.equal(2);
      expect((await otherTimeline.writeTs()).timestamp).to.equal(1);
      expect((await otherName.writeTs()).timestamp).to.equal(1);
      await a.close();
      // A later open still finds the clock where the others left it.
      const c = await openTimestampOracle(`mem://${name}`);
      expect(await c.peekWriteTs()).to.equal(2);
    });

    it('file:<dir> keeps the oracle at <dir>/oracle.sqlite, beside the location files', async function () {
      const dir = path.join(root, 'nested', 'data');
      const url = `file:${dir}`;
      const location = await openLocation(url);
      const oracle = await openTimestampOracle(url, { now: () => 0 });
      try {
        expect(oracle).to.be.instanceOf(SqliteTimestampOracle);
        expect((oracle as SqliteTimestampOracle).path).to.equal(path.join(dir, ORACLE_FILE_NAME));
        await oracle.writeTs();
        const names = await readdir(dir);
        expect(names).to.include.members(['consensus.sqlite', 'blob', 'oracle.sqlite']);
      } finally {
        await oracle.close();
        await location.close();
      }
      // The same location through a file:/// URL is the same timeline.
      const again = await openTimestampOracle(pathToFileURL(dir).href, { now: () => 0 });
      expect((await again.writeTs()).timestamp).to.equal(2);
      await again.close();
    });

    it('file:<relative dir> resolves against the working directory and creates the directory', async function () {
      const rel = path.relative(process.cwd(), path.join(root, 'relative-dir'));
      const oracle = await openTimestampOracle(`file:${rel}`, { now: () => 0 });
      await oracle.close();
      await access(path.join(root, 'relative-dir', ORACLE_FILE_NAME));
    });

    it('postgres:// opens a PostgresTimestampOracle and ignores the location blob parameter', async function () {
      this.timeout(120_000);
      const url = new URL(await freshTestDatabaseUrl());
      url.searchParams.set('blob', 'mem://whatever');
      const a = await openTimestampOracle(url.toString(), { now: () => 0 });
      const b = await openTimestampOracle(url.toString().replace(/^postgres:/, 'postgresql:'), { now: () => 0 });
      try {
        expect(a).to.be.instanceOf(PostgresTimestampOracle);
        expect((await a.writeTs()).timestamp).to.equal(1);
        expect((await b.writeTs()).timestamp).to.equal(2);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('rejects unsupported or malformed URLs with InvalidOracleConfig naming the accepted forms', async function () {
      const cases: [unknown, RegExp][] = [
        ['http://example.com', /unsupported location URL.*mem:\/\/.*file:.*postgres:\/\//],
        ['file:', /needs a directory, e.g. file:\.\/data/],
        ['file://relative/dir', /absolute path/],
        ['postgres://[broken', /not a valid Postgres URL/],
        [42, /URL string/],
      ];
      for (const [url, message] of cases) {
        const err = await rejection(openTimestampOracle(url as string));
        expect(err, String(url)).to.be.instanceOf(InvalidOracleConfig);
        expect(err, String(url)).to.be.instanceOf(InvalidUsage);
        expect(err.message, String(url)).to.match(message);
      }
    });

    it('keeps the Postgres password out of its errors: mistyped scheme, unparseable URL, unreachable server', async function () {
      const secret = 'hunter2';
      const port = await new Promise<number>((resolve) => {
        const srv = net.createServer().listen(0, '127.0.0.1', () => {
          const { port } = srv.address() as net.AddressInfo;
          srv.close(() => resolve(port));
        });
      });
      const cases: [string, RegExp][] = [
        [`postgress://u:${secret}@127.0.0.1:${port}/db`, /unsupported location URL "postgress:\/\/u:\*\*\*@127\.0\.0\.1/],
        [`postgres://u:${secret}@[broken/db`, /"postgres:\/\/u:\*\*\*@\[broken\/db" is not a valid Postgres URL/],
        [`postgres://u:${secret}@127.0.0.1:${port}/db?blob=mem://`, /cannot open postgres:\/\/u:\*\*\*@127\.0\.0\.1/],
      ];
      for (const [url, message] of cases) {
        const err = await rejection(openTimestampOracle(url, { connectTimeoutMs: 1000 }));
        expect(err.message, url).to.match(message);
        for (const shown of [err.message, String(err), err.stack ?? '', util.inspect(err, { depth: Infinity })]) {
          expect(shown, url).to.not.include(secret);
        }
      }
    });
  });
});
