/**
 * PostgresConsensus against the Consensus conformance suite, on a database of its own
 * (see test/support/postgres.ts), plus Postgres specifics: the racing-create of the
 * table, bigint seqnos arriving as numbers, and the error mapping for an unreachable
 * server.
 */
import { expect } from 'chai';
import net from 'node:net';
import pg from 'pg';
import { DeterminateError, IndeterminateError } from '../../src/location/errors.js';
import { PostgresConsensus } from '../../src/location/postgres-consensus.js';
import { utf8 } from '../support/bytes.js';
import { freshTestDatabaseUrl, terminateBackends, waitUntilBlocked } from '../support/postgres.js';
import { describeConsensusConformance } from './consensus-conformance.js';

describe('PostgresConsensus', function () {
  let url: string;

  before(async function () {
    this.timeout(60_000);
    url = await freshTestDatabaseUrl();
  });

  describeConsensusConformance('PostgresConsensus', () => PostgresConsensus.open(url), {
    modelRuns: 15,
    // Known limitation of the single-statement CaS under READ COMMITTED.
    racingJumps: false,
  });

  describe('PostgresConsensus specifics', function () {
    it('opens concurrently against a fresh database (CREATE TABLE race)', async function () {
      // Several rounds: the race only shows up in some of them.
      for (let round = 0; round < 4; round++) {
        const fresh = await freshTestDatabaseUrl();
        const opened = await Promise.all(
          Array.from({ length: 8 }, () => PostgresConsensus.open(fresh, { poolMax: 2 })),
        );
        expect(await opened[0]?.compareAndSet('k', undefined, { seqno: 1, data: utf8('x') })).to.equal('committed');
        expect((await opened[7]?.head('k'))?.seqno).to.equal(1);
        await Promise.all(opened.map((c) => c.close()));
      }
    });

    it('several pools racing CaS on one key commit every seqno once', async function () {
      const clients = await Promise.all([0, 1, 2].map(() => PostgresConsensus.open(url, { poolMax: 4 })));
      const key = `race-${Date.now()}-${Math.random()}`;
      const target = 60;
      const claims = new Map<number, number>();
      await Promise.all(
        clients.flatMap((c, i) =>
          [0, 1].map(async (j) => {
            const id = i * 2 + j;
            for (;;) {
              const head = await c.head(key);
              const next = (head?.seqno ?? 0) + 1;
              if (next > target) return;
              const r = await c.compareAndSet(key, head?.seqno, { seqno: next, data: utf8(String(id)) });
              if (r === 'committed') {
                expect(claims.has(next), `seqno ${next} committed twice`).to.equal(false);
                claims.set(next, id);
              }
            }
          }),
        ),
      );
      const all = await clients[0]!.scan(key, 0, Infinity);
      expect(all.map((x) => x.seqno)).to.deep.equal(Array.from({ length: target }, (_, i) => i + 1));
      for (const x of all) expect(new TextDecoder().decode(x.data)).to.equal(String(claims.get(x.seqno)));
      await Promise.all(clients.map((c) => c.close()));
    });

    it('a statement error on a write is determinate', async function () {
      const c = await PostgresConsensus.open(url);
      try {
        // Postgres text cannot hold NUL: the server rejects the statement (22021).
        await c.compareAndSet('nul\0key', undefined, { seqno: 1, data: utf8('x') });
        expect.fail('expected an error');
      } catch (err) {
        expect(err).to.be.instanceOf(DeterminateError);
      } finally {
        await c.close();
      }
    });

    it('a write whose connection is killed mid-statement is indeterminate', async function () {
      const c = await PostgresConsensus.open(url);
      const key = `killed-${Math.random()}`;
      await c.compareAndSet(key, undefined, { seqno: 1, data: utf8('x') });
      // Hold the head row's lock so the CaS blocks inside the server...
      const holder = new pg.Client({ connectionString: url });
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM consensus WHERE shard = $1 FOR UPDATE', [key]);
      const cas = c.compareAndSet(key, 1, { seqno: 2, data: utf8('y') }).then(
        () => undefined,
        (err: unknown) => err,
      );
      // ...then terminate its backend, as a failover or an admin would.
      await waitUntilBlocked(holder, '%last_seq%');
      expect(await terminateBackends(holder, "wait_event_type = 'Lock' AND query LIKE '%last_seq%'")).to.equal(1);
      const err = await cas;
      expect(err).to.be.instanceOf(IndeterminateError);
      await holder.query('ROLLBACK');
      await holder.end();
      // The pool dropped the dead connection; the store keeps working.
      expect(await c.compareAndSet(key, 1, { seqno: 2, data: utf8('z') })).to.equal('committed');
      await c.close();
    });

    it('fails determinately when the server cannot be reached', async function () {
      // A port nothing listens on: bind one, then close it.
      const port = await new Promise<number>((resolve) => {
        const srv = net.createServer().listen(0, '127.0.0.1', () => {
          const { port } = srv.address() as net.AddressInfo;
          srv.close(() => resolve(port));
        });
      });
      const bad = new URL(url);
      bad.port = String(port);
      try {
        await PostgresConsensus.open(bad.toString(), { connectTimeoutMs: 1000 });
        expect.fail('expected an error');
      } catch (err) {
        expect(err).to.be.instanceOf(DeterminateError);
        expect((err as Error).message).to.not.include(new URL(url).password);
      }
    });
  });
});
