/**
 * PostgresTimestampOracle against the oracle conformance suite, on a database of its
 * own (see test/support/postgres.ts), plus Postgres specifics: opening a fresh
 * database from many pools at once, several pools racing writeTs on one timeline,
 * readTs batching over real round trips, the error for an unreachable server, and the
 * connection scenarios of the shared pool (test/location/postgres-pool.test.ts): dropped
 * connections, a server restart, close() with calls in flight, and the password kept
 * out of messages and inspect output.
 */
import net from 'node:net';
import util from 'node:util';
import { expect } from 'chai';
import pg from 'pg';
import { PostgresTimestampOracle } from '../../src/coord/postgres-oracle.js';
import { TimestampOracleClosed } from '../../src/coord/oracle-errors.js';
import { DeterminateError, IndeterminateError } from '../../src/location/errors.js';
import { observe, rejection } from '../support/async.js';
import { expectReject } from '../support/persist.js';
import {
  connectAdmin,
  freshTestDatabaseUrl,
  restartTestPostgres,
  runDropChild,
  terminateBackends,
  waitUntilBlocked,
} from '../support/postgres.js';
import { describeOracleConformance, expectBatchedReadTs } from './timestamp-oracle-conformance.js';

describe('PostgresTimestampOracle', function () {
  let url: string;

  before(async function () {
    this.timeout(120_000);
    url = await freshTestDatabaseUrl();
  });

  describeOracleConformance(
    'PostgresTimestampOracle',
    async () => ({ open: (options) => PostgresTimestampOracle.open(url, { poolMax: 8, ...options }) }),
    { shared: true, durable: true },
  );

  describe('PostgresTimestampOracle specifics', function () {
    it('many pools open a fresh database at once (CREATE TABLE race) and share the timeline', async function () {
      for (let round = 0; round < 3; round++) {
        const fresh = await freshTestDatabaseUrl();
        const oracles = await Promise.all(
          Array.from({ length: 8 }, () => PostgresTimestampOracle.open(fresh, { poolMax: 2, now: () => 0 })),
        );
        expect((await oracles[0]!.writeTs()).timestamp).to.equal(1);
        expect((await oracles[7]!.writeTs()).timestamp).to.equal(2);
        await Promise.all(oracles.map((o) => o.close()));
      }
    });

    it('three pools racing writeTs on one timeline get distinct, gap-free timestamps', async function () {
      const timeline = `race-${Math.random()}`;
      const oracles = await Promise.all(
        [0, 1, 2].map(() => PostgresTimestampOracle.open(url, { timeline, poolMax: 4, now: () => 0 })),
      );
      const perOracle = await Promise.all(
        oracles.map(async (o) => {
          const got: number[] = [];
          // Four concurrent loops per pool: the row lock, not the client, serialises them.
          await Promise.all(
            [0, 1, 2, 3].map(async () => {
              for (let i = 0; i < 15; i++) got.push((await o.writeTs()).timestamp);
            }),
          );
          return got;
        }),
      );
      const all = perOracle.flat().sort((x, y) => x - y);
      expect(all).to.deep.equal(Array.from({ length: 180 }, (_, i) => i + 1));
      await Promise.all(oracles.map((o) => o.close()));
    });

    it('100 concurrent readTs calls cost at most 2 round trips, and still see a preceding applyWrite', async function () {
      const o = await PostgresTimestampOracle.open(url, { timeline: `batch-${Math.random()}`, now: () => 0 });
      await expectBatchedReadTs(o, 41);
      await o.close();
    });

    it('stores timestamps as bigint columns holding the exact values', async function () {
      const timeline = `types-${Math.random()}`;
      const o = await PostgresTimestampOracle.open(url, { timeline, now: () => 1_700_000_000_123 });
      await o.writeTs();
      await o.applyWrite(Number.MAX_SAFE_INTEGER - 1);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const r = await client.query(
          `SELECT pg_typeof(read_ts)::text AS t, read_ts::text AS r, write_ts::text AS w
           FROM timestamp_oracle WHERE timeline = $1`,
          [timeline],
        );
        expect(r.rows).to.deep.equal([{ t: 'bigint', r: '9007199254740990', w: '9007199254740990' }]);
      } finally {
        await client.end();
      }
      expect(await o.peekWriteTs()).to.equal(Number.MAX_SAFE_INTEGER - 1);
      expect((await o.writeTs()).timestamp).to.equal(Number.MAX_SAFE_INTEGER);
      await o.close();
    });

    it('fails determinately when the server cannot be reached, without leaking the password', async function () {
      const port = await new Promise<number>((resolve) => {
        const srv = net.createServer().listen(0, '127.0.0.1', () => {
          const { port } = srv.address() as net.AddressInfo;
          srv.close(() => resolve(port));
        });
      });
      const bad = new URL(url);
      bad.port = String(port);
      const err = await expectReject(PostgresTimestampOracle.open(bad.toString(), { connectTimeoutMs: 1000 }), DeterminateError);
      const password = new URL(url).password;
      if (password) expect(err.message).to.not.include(password);
    });
  });

  describe('PostgresTimestampOracle connections', function () {
    let admin: pg.Client;

    beforeEach(async function () {
      admin = await connectAdmin(url);
    });

    afterEach(async function () {
      await admin.end();
    });

    /** Holds the row lock of `timeline` from the admin connection, so writes to it block. */
    async function lockTimeline(timeline: string): Promise<void> {
      await admin.query('BEGIN');
      await admin.query('SELECT 1 FROM timestamp_oracle WHERE timeline = $1 FOR UPDATE', [timeline]);
    }

    it('the process survives its connections being terminated again and again under load', async function () {
      this.timeout(120_000);
      const report = await runDropChild('oracle', url);
      expect(report.unexpected).to.deep.equal([]);
      expect(Object.keys(report.failures).length).to.be.greaterThan(0);
      expect(report.afterwards).to.equal('ok');
    });

    it('a writeTs whose connection is terminated mid-statement is indeterminate, and the next one works', async function () {
      const timeline = `killed-${Math.random()}`;
      const o = await PostgresTimestampOracle.open(url, { timeline, now: () => 0 });
      try {
        expect((await o.writeTs()).timestamp).to.equal(1);
        await lockTimeline(timeline);
        const writeTs = observe(o.writeTs());
        await waitUntilBlocked(admin, '%SET write_ts%');
        expect(await terminateBackends(admin, "wait_event_type = 'Lock'")).to.equal(1);
        expect(await rejection(writeTs.promise)).to.be.instanceOf(IndeterminateError);
        await admin.query('ROLLBACK');
        // The terminated UPDATE waited on the lock, so it never committed: 2 is next.
        expect((await o.writeTs()).timestamp).to.equal(2);
      } finally {
        await o.close();
      }
    });

    it('close() settles a writeTs stuck in the server (indeterminate) and rejects later calls', async function () {
      this.timeout(10_000);
      const timeline = `close-${Math.random()}`;
      const o = await PostgresTimestampOracle.open(url, { timeline, closeGraceMs: 50 });
      await lockTimeline(timeline);
      const writeTs = observe(o.writeTs());
      await waitUntilBlocked(admin, '%SET write_ts%');
      await o.close();
      const err = await rejection(writeTs.promise);
      expect(err).to.be.instanceOf(IndeterminateError);
      expect(err.message).to.include('closed while the statement was in flight');
      await admin.query('ROLLBACK');
      expect(await rejection(o.readTs())).to.be.instanceOf(TimestampOracleClosed);
    });

    it('keeps working across a server restart without being reopened', async function () {
      this.timeout(60_000);
      const o = await PostgresTimestampOracle.open(url, { timeline: `restart-${Math.random()}`, now: () => 0 });
      try {
        expect((await o.writeTs()).timestamp).to.equal(1);
        await admin.end();
        if (!(await restartTestPostgres())) this.skip();
        expect((await o.writeTs()).timestamp).to.equal(2);
        await o.applyWrite(2);
        expect(await o.readTs()).to.equal(2);
      } finally {
        admin = await connectAdmin(url);
        await o.close();
      }
    });

    it('never shows the password: not in its name, messages, util.inspect or String()', async function () {
      const password = new URL(url).password;
      expect(password).to.not.equal('');
      const o = await PostgresTimestampOracle.open(url, { timeline: `secret-${Math.random()}` });
      try {
        for (const shown of [util.inspect(o, { depth: Infinity, showHidden: true }), String(o)]) {
          expect(shown).to.not.include(password);
        }
        expect(util.inspect(o, { depth: Infinity })).to.include('***');
      } finally {
        await o.close();
      }
      const err = await rejection(o.writeTs());
      expect(`${err.message} ${String(err)} ${err.stack}`).to.not.include(password);
    });
  });
});
