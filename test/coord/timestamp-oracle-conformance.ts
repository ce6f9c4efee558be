/**
 * The TimestampOracle conformance suite: the contract of
 * `src/coord/timestamp-oracle.ts`, run against every oracle.
 *
 * `describeOracleConformance(name, freshStore, options)` defines a mocha `describe`
 * block. `freshStore()` is called once per test and returns a store: every
 * `store.open(opts)` within that test opens an oracle on the same storage (the same
 * SQLite file, the same Postgres database, the same in-process registry entry). Each
 * test uses its own random timeline names, so a store may be shared between tests.
 *
 * Every test drives the wall clock itself through `now`, starting frozen at 0 so that
 * write timestamps are plain counters unless the test moves the clock.
 *
 * Example:
 * ```ts
 * describeOracleConformance('LogicalClock', async () => ({ open: async (o) => new LogicalClock(o) }),
 *   { shared: false, durable: false });
 * ```
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { DurableTimestampOracle } from '../../src/coord/durable-oracle.js';
import type { TimestampOracle, NowFn } from '../../src/coord/timestamp-oracle.js';
import { InvalidOracleConfig, TimestampOracleClosed } from '../../src/coord/oracle-errors.js';
import { InvalidTimestamp, InvalidUsage } from '../../src/persist/errors.js';
import { rejection } from '../support/async.js';

export interface OracleOpenOptions {
  timeline: string;
  now: NowFn;
  initialTs?: number;
}

export interface OracleStore {
  open(options: OracleOpenOptions): Promise<TimestampOracle>;
  /** Called after the test, once every oracle it opened is closed. */
  dispose?(): Promise<void>;
}

export interface OracleConformanceOptions {
  /** Two oracles opened on one store and timeline share it (false for a bare LogicalClock). */
  shared: boolean;
  /** The timeline outlives closing every oracle on it. */
  durable: boolean;
}

function isStrictlyIncreasing(xs: number[]): boolean {
  return xs.every((x, i) => i === 0 || x > (xs[i - 1] as number));
}

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

/**
 * Checks readTs batching on a durable oracle: after `applyWrite(ts)`, 100 concurrent
 * `readTs()` calls all see `ts` and cost at most 2 queries.
 */
export async function expectBatchedReadTs(o: DurableTimestampOracle, ts: number): Promise<void> {
  await o.applyWrite(ts);
  const before = o.statementCounts;
  const got = await Promise.all(Array.from({ length: 100 }, () => o.readTs()));
  expect(new Set(got)).to.deep.equal(new Set([ts]));
  const after = o.statementCounts;
  expect(after.readTsCalls - before.readTsCalls).to.equal(100);
  expect(after.readTsQueries - before.readTsQueries).to.be.within(1, 2);
}

export function describeOracleConformance(
  name: string,
  freshStore: () => Promise<OracleStore>,
  options: OracleConformanceOptions,
): void {
  describe(`${name} timestamp oracle conformance`, function () {
    let store: OracleStore;
    let opened: TimestampOracle[];
    /** The wall clock every oracle of this test reads. */
    let wallClock: number;
    const now: NowFn = () => wallClock;
    /** This test's timeline; others get a suffix. */
    let timeline: string;

    async function open(extra: Partial<OracleOpenOptions> = {}): Promise<TimestampOracle> {
      const oracle = await store.open({ timeline, now, ...extra });
      opened.push(oracle);
      return oracle;
    }

    beforeEach(async function () {
      store = await freshStore();
      opened = [];
      wallClock = 0;
      timeline = `tl-${randomBytes(6).toString('hex')}`;
    });

    afterEach(async function () {
      await Promise.all(opened.map((o) => o.close()));
      await store.dispose?.();
    });

    it('a fresh timeline starts at 0 (or initialTs) and hands out 1, 2, 3 while the clock is frozen', async function () {
      const o = await open();
      expect(await o.peekWriteTs()).to.equal(0);
      expect(await o.readTs()).to.equal(0);
      const got = [await o.writeTs(), await o.writeTs(), await o.writeTs()];
      expect(got).to.deep.equal([
        { timestamp: 1, advanceTo: 2 },
        { timestamp: 2, advanceTo: 3 },
        { timestamp: 3, advanceTo: 4 },
      ]);

      const later = await open({ timeline: `${timeline}-initial`, initialTs: 1000 });
      expect(await later.readTs()).to.equal(1000);
      expect(await later.peekWriteTs()).to.equal(1000);
      expect((await later.writeTs()).timestamp).to.equal(1001);
    });

    it('follows the wall clock when it is ahead, and stays monotonic when it goes back', async function () {
      const o = await open();
      wallClock = 1_700_000_000_000;
      expect((await o.writeTs()).timestamp).to.equal(1_700_000_000_000);
      wallClock = 1_700_000_000_500;
      expect((await o.writeTs()).timestamp).to.equal(1_700_000_000_500);
      // The clock did not move: one more than the last.
      expect((await o.writeTs()).timestamp).to.equal(1_700_000_000_501);
      // The clock jumped back (NTP correction): never hand out a lower timestamp.
      wallClock = 10;
      expect((await o.writeTs()).timestamp).to.equal(1_700_000_000_502);
      expect((await o.writeTs()).timestamp).to.equal(1_700_000_000_503);
      // Caught up and passed: follow it again.
      wallClock = 1_700_000_001_000;
      expect((await o.writeTs()).timestamp).to.equal(1_700_000_001_000);
    });

    it('peekWriteTs reports the last write timestamp without allocating one', async function () {
      const o = await open();
      wallClock = 50;
      expect((await o.writeTs()).timestamp).to.equal(50);
      wallClock = 0;
      expect(await o.peekWriteTs()).to.equal(50);
      expect(await o.peekWriteTs()).to.equal(50);
      expect((await o.writeTs()).timestamp).to.equal(51);
      expect(await o.peekWriteTs()).to.equal(51);
    });

    it('readTs moves only through applyWrite, never backwards, and is at least every applied ts', async function () {
      const o = await open();
      const a = (await o.writeTs()).timestamp;
      const b = (await o.writeTs()).timestamp;
      // Handed out but not applied: not readable yet.
      expect(await o.readTs()).to.equal(0);
      await o.applyWrite(b);
      expect(await o.readTs()).to.equal(b);
      // Applying the older one late (writes can finish out of order) does not go back.
      await o.applyWrite(a);
      expect(await o.readTs()).to.equal(b);
      await o.applyWrite(0);
      expect(await o.readTs()).to.equal(b);
    });

    it('applyWrite of an old timestamp changes nothing; of a new one raises peek and later writes', async function () {
      const o = await open();
      for (let i = 0; i < 5; i++) await o.writeTs();
      await o.applyWrite(3);
      expect(await o.peekWriteTs()).to.equal(5);
      expect(await o.readTs()).to.equal(3);
      await o.applyWrite(2);
      expect(await o.peekWriteTs()).to.equal(5);
      expect(await o.readTs()).to.equal(3);
      // A timestamp from elsewhere (another oracle, a replayed commit) pulls both up.
      await o.applyWrite(40);
      expect(await o.peekWriteTs()).to.equal(40);
      expect(await o.readTs()).to.equal(40);
      expect((await o.writeTs()).timestamp).to.equal(41);
      // Idempotent: the same apply again is a no-op.
      await o.applyWrite(40);
      expect(await o.readTs()).to.equal(40);
      expect(await o.peekWriteTs()).to.equal(41);
    });

    it('every write timestamp is above readTs, even when the clock is behind', async function () {
      const o = await open();
      wallClock = 5;
      await o.applyWrite(900);
      const { timestamp } = await o.writeTs();
      expect(timestamp).to.be.greaterThan(await o.readTs());
      expect(timestamp).to.equal(901);
    });

    it('many concurrent writeTs calls get distinct timestamps with no gaps', async function () {
      const o = await open();
      const before = await o.peekWriteTs();
      const got = await Promise.all(Array.from({ length: 64 }, () => o.writeTs()));
      const sorted = got.map((w) => w.timestamp).sort((x, y) => x - y);
      expect(sorted).to.deep.equal(range(before + 1, 64));
      for (const w of got) expect(w.advanceTo).to.equal(w.timestamp + 1);
      expect(await o.peekWriteTs()).to.equal(before + 64);
    });

    it('readTs is monotonic for each reader while writes are applied concurrently', async function () {
      const o = await open();
      let applying = true;
      const applier = (async () => {
        for (let i = 0; i < 30; i++) {
          const { timestamp } = await o.writeTs();
          await o.applyWrite(timestamp);
        }
        applying = false;
      })();
      const seen = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const mine: number[] = [];
          while (applying) mine.push(await o.readTs());
          return mine;
        }),
      );
      await applier;
      for (const mine of seen) {
        expect(mine.every((x, i) => i === 0 || x >= (mine[i - 1] as number)), `went back: ${mine}`).to.equal(true);
      }
      expect(await o.readTs()).to.equal(30);
    });

    it('a readTs called after applyWrite returned sees it, even with reads already in flight', async function () {
      const o = await open();
      for (let round = 1; round <= 10; round++) {
        const inFlight = Array.from({ length: 8 }, () => o.readTs());
        const { timestamp } = await o.writeTs();
        await o.applyWrite(timestamp);
        const after = await Promise.all(Array.from({ length: 8 }, () => o.readTs()));
        for (const r of after) expect(r).to.be.at.least(timestamp);
        for (const r of await Promise.all(inFlight)) expect(r).to.be.at.most(timestamp);
      }
    });

    it('separate timelines do not affect each other', async function () {
      const a = await open();
      const b = await open({ timeline: `${timeline}-other` });
      wallClock = 700;
      await a.writeTs();
      await a.applyWrite(800);
      wallClock = 0;
      expect(await b.peekWriteTs()).to.equal(0);
      expect(await b.readTs()).to.equal(0);
      expect((await b.writeTs()).timestamp).to.equal(1);
      expect(await a.peekWriteTs()).to.equal(800);
    });

    it('rejects bad timestamps, a bad clock and a bad timeline with InvalidUsage errors, changing nothing', async function () {
      const o = await open();
      await o.writeTs();
      for (const bad of [-1, 1.5, NaN, Infinity, Number.MAX_SAFE_INTEGER + 2, '7', 7n, undefined]) {
        const err = await rejection(o.applyWrite(bad as number));
        expect(err, String(bad)).to.be.instanceOf(InvalidTimestamp);
        expect(err.message).to.include('applyWrite');
      }
      for (const bad of [NaN, -5, 2.5, '9', 9n]) {
        wallClock = bad as number;
        const err = await rejection(o.writeTs());
        expect(err, String(bad)).to.be.instanceOf(InvalidTimestamp);
        expect(err.message).to.include('now()');
      }
      wallClock = 0;
      expect(await o.peekWriteTs()).to.equal(1);
      expect(await o.readTs()).to.equal(0);
      expect((await o.writeTs()).timestamp).to.equal(2);

      for (const badTimeline of ['', 'x'.repeat(300), 'nul\0byte', 42]) {
        const err = await rejection(open({ timeline: badTimeline as string }));
        expect(err).to.be.instanceOf(InvalidOracleConfig);
        expect(err).to.be.instanceOf(InvalidUsage);
        expect(err.message).to.match(/timeline/);
      }
      expect(await rejection(open({ initialTs: -1 }))).to.be.instanceOf(InvalidTimestamp);
    });

    it('refuses to step past Number.MAX_SAFE_INTEGER, leaving the timeline intact', async function () {
      const o = await open();
      await o.applyWrite(Number.MAX_SAFE_INTEGER);
      const err = await rejection(o.writeTs());
      expect(err).to.be.instanceOf(InvalidTimestamp);
      expect(err.message).to.include('MAX_SAFE_INTEGER');
      expect(await o.peekWriteTs()).to.equal(Number.MAX_SAFE_INTEGER);
      expect(await o.readTs()).to.equal(Number.MAX_SAFE_INTEGER);
    });

    it('a closed oracle rejects every operation with TimestampOracleClosed; close is idempotent', async function () {
      const o = await open();
      await o.writeTs();
      await o.close();
      await o.close();
      const calls: [string, () => Promise<unknown>][] = [
        ['writeTs', () => o.writeTs()],
        ['peekWriteTs', () => o.peekWriteTs()],
        ['readTs', () => o.readTs()],
        ['applyWrite', () => o.applyWrite(1)],
      ];
      for (const [op, call] of calls) {
        const err = await rejection(call());
        expect(err, op).to.be.instanceOf(TimestampOracleClosed);
        expect(err, op).to.be.instanceOf(InvalidUsage);
        expect(err.message).to.include(`${op}()`).and.to.include('close()');
      }
    });

    if (options.shared) {
      it('two oracles on one timeline share it: writes interleave, applies are visible to both', async function () {
        const a = await open();
        const b = await open();
        expect((await a.writeTs()).timestamp).to.equal(1);
        expect((await b.writeTs()).timestamp).to.equal(2);
        expect((await a.writeTs()).timestamp).to.equal(3);
        expect(await b.peekWriteTs()).to.equal(3);
        await b.applyWrite(3);
        expect(await a.readTs()).to.equal(3);

        const both = await Promise.all([
          ...Array.from({ length: 40 }, () => a.writeTs()),
          ...Array.from({ length: 40 }, () => b.writeTs()),
        ]);
        expect(both.map((w) => w.timestamp).sort((x, y) => x - y)).to.deep.equal(range(4, 80));
      });

      it('closing one oracle leaves the other on the same timeline working', async function () {
        const a = await open();
        const b = await open();
        await a.writeTs();
        await a.close();
        expect((await b.writeTs()).timestamp).to.equal(2);
      });

      it('opening with initialTs raises an existing timeline but never lowers it', async function () {
        const a = await open();
        for (let i = 0; i < 5; i++) await a.writeTs();
        await a.applyWrite(4);
        const lower = await open({ initialTs: 2 });
        expect(await lower.peekWriteTs()).to.equal(5);
        expect(await lower.readTs()).to.equal(4);
        const higher = await open({ initialTs: 500 });
        expect(await higher.peekWriteTs()).to.equal(500);
        expect(await higher.readTs()).to.equal(500);
        expect((await a.writeTs()).timestamp).to.equal(501);
      });
    }

    if (options.durable) {
      it('the timeline survives closing every oracle and reopening', async function () {
        const a = await open();
        wallClock = 1234;
        await a.writeTs();
        await a.writeTs();
        await a.applyWrite(1234);
        await a.close();
        wallClock = 0;
        const b = await open();
        expect(await b.peekWriteTs()).to.equal(1235);
        expect(await b.readTs()).to.equal(1234);
        expect((await b.writeTs()).timestamp).to.equal(1236);
      });
    }

    it('hands out strictly increasing timestamps over a long mixed run', async function () {
      const o = await open();
      const got: number[] = [];
      for (let i = 0; i < 200; i++) {
        // A clock that wanders forward and back.
        wallClock = (i * 37) % 150;
        got.push((await o.writeTs()).timestamp);
        if (i % 7 === 0) await o.applyWrite(got[got.length - 1] as number);
      }
      expect(isStrictlyIncreasing(got)).to.equal(true);
      expect(await o.readTs()).to.be.at.most(got[got.length - 1] as number);
    });
  });
}
