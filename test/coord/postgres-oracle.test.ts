/**
 * PostgresTimestampOracle against the oracle conformance suite, on a database of its
 * own (see test/support/postgres.ts), plus Postgres specifics: opening a fresh
 * database from many pools at once, several pools racing writeTs on one timeline,
 * readTs batching over real round trips, and the error for an unreachable server.
 */
import net from 'node:net';
import { expect } from 'chai';
import pg from 'pg';
import { PostgresTimestampOracle } from '../../src/coord/postgres-oracle.js';
import { DeterminateError } from '../../src/location/errors.js';
import { expectReject } from '../support/persist.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';
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
});
