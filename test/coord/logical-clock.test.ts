/**
 * LogicalClock: the conformance suite, `getTimestamp(fn)` holding the clock, and the
 * snapshot-isolation scenario of seed 003 replayed against a small MVCC store.
 *
 * The store's visibility rule (Hekaton-style, with speculative reads): a transaction
 * that began at `b` sees a write iff its writer is Preparing or Committed with
 * `endTs < b`. A committer takes its end timestamp from the clock and then publishes
 * `Preparing(endTs)`. If a reader can take its begin timestamp between those two
 * steps, its begin is above the end timestamp while the write is not yet visible; the
 * write then appears halfway through the reader's transaction. `getTimestamp(fn)`
 * with the publish inside `fn` rules that out; the naive "take, then publish" does not,
 * and the tests show both.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { LogicalClock } from '../../src/coord/logical-clock.js';
import { openTimestampOracle } from '../../src/coord/open-oracle.js';
import type { Timestamp } from '../../src/persist/time.js';
import { flush } from '../support/async.js';
import { describeOracleConformance } from './timestamp-oracle-conformance.js';

describeOracleConformance(
  'LogicalClock (mem://)',
  async () => ({
    async open(options) {
      const oracle = await openTimestampOracle('mem://', options);
      expect(oracle).to.be.instanceOf(LogicalClock);
      return oracle;
    },
  }),
  { shared: false, durable: false },
);

describe('LogicalClock.getTimestamp', function () {
  it('holds the clock while fn runs: a concurrent writeTs waits for fn and gets a higher timestamp', async function () {
    const clock = new LogicalClock({ now: () => 0 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const events: string[] = [];
    const first = clock.getTimestamp(async (ts) => {
      events.push(`fn(${ts}) start`);
      await gate;
      events.push(`fn(${ts}) end`);
      return `result of ${ts}`;
    });
    const second = clock.writeTs().then((w) => {
      events.push(`writeTs → ${w.timestamp}`);
      return w;
    });
    await flush(20);
    expect(events).to.deep.equal(['fn(1) start']);
    release();
    expect(await first).to.equal('result of 1');
    expect((await second).timestamp).to.equal(2);
    expect(events).to.deep.equal(['fn(1) start', 'fn(1) end', 'writeTs → 2']);
  });

  it('a throwing fn releases the clock; its timestamp stays used', async function () {
    const clock = new LogicalClock({ now: () => 0 });
    let failed = false;
    await clock.getTimestamp(() => {
      throw new Error('publish failed');
    }).catch(() => (failed = true));
    expect(failed).to.equal(true);
    expect(await clock.peekWriteTs()).to.equal(1);
    expect((await clock.writeTs()).timestamp).to.equal(2);
  });

  it('callers queued on the clock get timestamps in the order they called', async function () {
    const clock = new LogicalClock({ now: () => 0 });
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => clock.getTimestamp(async (ts) => void order.push(ts * 100 + i))),
    );
    expect(order).to.deep.equal(Array.from({ length: 20 }, (_, i) => (i + 1) * 100 + i));
  });

  it('a caller queued behind a getTimestamp when close() comes gets TimestampOracleClosed', async function () {
    const clock = new LogicalClock({ now: () => 0 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let holding = false;
    const holder = clock.getTimestamp(() => {
      holding = true;
      return gate;
    });
    while (!holding) await Promise.resolve();
    const queued = clock.writeTs().then(
      () => 'allocated',
      (err: Error) => err.name,
    );
    await clock.close();
    release();
    await holder;
    expect(await queued).to.equal('TimestampOracleClosed');
  });
});

// ---------------------------------------------------------------------------------
// Seed 003: the snapshot-isolation gotcha.

type WriterState =
  | { kind: 'active' }
  | { kind: 'preparing'; endTs: Timestamp }
  | { kind: 'committed'; endTs: Timestamp };

/** The smallest MVCC store that has the seed's visibility rule. */
class MvccStore {
  private readonly writers = new Map<string, WriterState>();

  /** `writer` wrote its row while Active: invisible to everyone until it prepares. */
  write(writer: string): void {
    this.writers.set(writer, { kind: 'active' });
  }

  setState(writer: string, state: WriterState): void {
    this.writers.set(writer, state);
  }

  /** The writers whose rows a transaction that began at `beginTs` sees. */
  read(beginTs: Timestamp): string[] {
    const visible: string[] = [];
    for (const [writer, state] of this.writers) {
      if (state.kind !== 'active' && state.endTs < beginTs) visible.push(writer);
    }
    return visible.sort();
  }
}

type Pause = (label: string) => Promise<unknown>;
type CommitProtocol = 'atomic getTimestamp' | 'naive take-then-publish';

/** A writer: write while Active, take an end timestamp and publish Preparing, then Committed. */
async function committer(
  clock: LogicalClock,
  store: MvccStore,
  id: string,
  protocol: CommitProtocol,
  pause: Pause,
): Promise<void> {
  await pause(`${id} starts`);
  store.write(id);
  await pause(`${id} commits`);
  let endTs: Timestamp;
  if (protocol === 'atomic getTimestamp') {
    endTs = await clock.getTimestamp(async (ts) => {
      // Anything may happen elsewhere here, except taking a timestamp.
      await pause(`${id} holds end_ts ${ts}`);
      store.setState(id, { kind: 'preparing', endTs: ts });
      return ts;
    });
  } else {
    endTs = (await clock.writeTs()).timestamp;
    await pause(`${id} took end_ts ${endTs}`);
    store.setState(id, { kind: 'preparing', endTs });
  }
  await pause(`${id} finishes`);
  store.setState(id, { kind: 'committed', endTs });
}

/** A reader: take a begin timestamp (no-op fn, as the seed does), then read `reads` times. */
async function reader(clock: LogicalClock, store: MvccStore, id: string, reads: number, pause: Pause) {
  await pause(`${id} starts`);
  const beginTs = await clock.getTimestamp((ts) => ts);
  const seen: string[][] = [];
  for (let i = 0; i < reads; i++) {
    await pause(`${id} read ${i}`);
    seen.push(store.read(beginTs));
  }
  return { id, beginTs, seen };
}

interface Scenario {
  writers: number;
  readers: number;
  reads: number;
}

/**
 * A scheduler that lets every runnable step reach its next pause before choosing the
 * next one: the clock's lock hands over through promise callbacks, and without the
 * settling the scheduler would choose while some steps are still on their way to a
 * pause, so it would rarely see them as choices (and miss the seed's window).
 */
const settlingScheduler = fc.scheduler({
  act: async (release) => {
    await release();
    await flush(50);
  },
});

const scenarios = fc.record({
  writers: fc.integer({ min: 1, max: 3 }),
  readers: fc.integer({ min: 1, max: 3 }),
  reads: fc.integer({ min: 2, max: 3 }),
});

/** Runs writers and readers concurrently, with every step's order chosen by `scheduler`. */
async function runScheduled(scheduler: fc.Scheduler, protocol: CommitProtocol, scenario: Scenario) {
  const clock = new LogicalClock({ now: () => 0 });
  const store = new MvccStore();
  const pause: Pause = (label) => scheduler.schedule(Promise.resolve(label), label);
  const writers = Array.from({ length: scenario.writers }, (_, i) =>
    committer(clock, store, `tx${i + 1}`, protocol, pause),
  );
  const readers = Array.from({ length: scenario.readers }, (_, i) =>
    reader(clock, store, `reader${i + 1}`, scenario.reads, pause),
  );
  const [, results] = await scheduler.waitFor(Promise.all([Promise.all(writers), Promise.all(readers)]));
  return results;
}

function readsAgree(seen: string[][]): boolean {
  return seen.every((s) => JSON.stringify(s) === JSON.stringify(seen[0]));
}

describe('seed 003: publishing the commit timestamp while holding the clock', function () {
  /** Steps the seed's interleaving by hand, with gates instead of a scheduler. */
  it("replays the seed's interleaving: the naive protocol lets tx2 see tx1 appear mid-transaction", async function () {
    const clock = new LogicalClock({ now: () => 0 });
    const store = new MvccStore();
    store.write('tx1');
    // tx1 (Active): generates end_ts.
    const endTs = (await clock.writeTs()).timestamp;
    // tx2 (Active): gets begin_ts.
    const beginTs = await clock.getTimestamp((ts) => ts);
    expect([endTs, beginTs]).to.deep.equal([1, 2]);
    // tx2 reads: tx1 is still Active, so invisible.
    const firstRead = store.read(beginTs);
    // tx1 (Preparing): stores Preparing(end_ts).
    store.setState('tx1', { kind: 'preparing', endTs });
    // tx2 reads again: end_ts 1 < begin_ts 2, and tx1 is Preparing: visible now.
    const secondRead = store.read(beginTs);
    expect(firstRead).to.deep.equal([]);
    expect(secondRead).to.deep.equal(['tx1']);
    // The violation: two reads in one transaction disagree.
    expect(firstRead).to.not.deep.equal(secondRead);
  });

  it("replays the seed's interleaving with getTimestamp: tx2's begin waits, and both its reads agree", async function () {
    const clock = new LogicalClock({ now: () => 0 });
    const store = new MvccStore();
    store.write('tx1');
    let publish!: () => void;
    const publishGate = new Promise<void>((r) => (publish = r));
    // tx1 generates end_ts and, still holding the clock, waits before publishing.
    const tx1 = clock.getTimestamp(async (ts) => {
      await publishGate;
      store.setState('tx1', { kind: 'preparing', endTs: ts });
      return ts;
    });
    // tx2 asks for begin_ts in the seed's window...
    let beginTs: Timestamp | undefined;
    const tx2Begin = clock.getTimestamp((ts) => (beginTs = ts));
    await flush(20);
    // ...and does not get one: it cannot begin (and read) inside the window.
    expect(beginTs).to.equal(undefined);
    publish();
    const endTs = await tx1;
    await tx2Begin;
    expect(endTs).to.equal(1);
    expect(beginTs).to.equal(2);
    const firstRead = store.read(beginTs as number);
    store.setState('tx1', { kind: 'committed', endTs });
    const secondRead = store.read(beginTs as number);
    expect(firstRead).to.deep.equal(['tx1']);
    expect(secondRead).to.deep.equal(firstRead);
  });

  it('with getTimestamp, every reader sees the same rows in all its reads, under any schedule', async function () {
    this.timeout(120_000);
    // The property must not hold vacuously: some readers see writers, some do not.
    let readsSeeingWriters = 0;
    let readsSeeingNone = 0;
    await fc.assert(
      fc.asyncProperty(settlingScheduler, scenarios, async (scheduler, scenario) => {
        const results = await runScheduled(scheduler, 'atomic getTimestamp', scenario);
        for (const r of results) {
          if ((r.seen[0] as string[]).length > 0) readsSeeingWriters++;
          else readsSeeingNone++;
          if (!readsAgree(r.seen)) {
            throw new Error(`${r.id} (begin ${r.beginTs}) read ${JSON.stringify(r.seen)}\n${scheduler.report()}`);
          }
        }
      }),
      { numRuns: 300 },
    );
    expect(readsSeeingWriters).to.be.greaterThan(0);
    expect(readsSeeingNone).to.be.greaterThan(0);
  });

  it('the naive take-then-publish protocol fails the same property (fast-check finds a schedule)', async function () {
    this.timeout(120_000);
    const outcome = await fc.check(
      fc.asyncProperty(settlingScheduler, scenarios, async (scheduler, scenario) => {
        const results = await runScheduled(scheduler, 'naive take-then-publish', scenario);
        return results.every((r) => readsAgree(r.seen));
      }),
      { numRuns: 300 },
    );
    expect(outcome.failed, 'expected a schedule that breaks snapshot isolation').to.equal(true);
  });

  it('every interleaving of one writer and one reader: atomic never disagrees, naive sometimes does', async function () {
    // Exhaustive over the order in which the pending steps are released: at each point,
    // try every pending step first (depth-first over the choice sequence).
    for (const protocol of ['atomic getTimestamp', 'naive take-then-publish'] as const) {
      let schedules = 0;
      let violations = 0;
      const stack: number[][] = [[]];
      while (stack.length > 0) {
        const prefix = stack.pop() as number[];
        const { agree, choicesAt, complete } = await runWithChoices(protocol, prefix);
        if (!complete) {
          for (let c = 0; c < choicesAt; c++) stack.push([...prefix, c]);
          continue;
        }
        schedules++;
        if (!agree) violations++;
      }
      expect(schedules, protocol).to.be.greaterThan(10);
      if (protocol === 'atomic getTimestamp') expect(violations, protocol).to.equal(0);
      else expect(violations, protocol).to.be.greaterThan(0);
    }
  });
});

/**
 * Runs one writer and one reader, releasing pending steps in the order `prefix`
 * chooses; once the prefix is used up it reports how many steps were pending at that
 * point (so the caller can extend the prefix), or that the run completed.
 */
async function runWithChoices(
  protocol: CommitProtocol,
  prefix: number[],
): Promise<{ agree: boolean; choicesAt: number; complete: boolean }> {
  const clock = new LogicalClock({ now: () => 0 });
  const store = new MvccStore();
  const pending: (() => void)[] = [];
  const pause: Pause = () => new Promise<void>((resolve) => pending.push(resolve));
  let done = false;
  const run = Promise.all([
    committer(clock, store, 'tx1', protocol, pause),
    reader(clock, store, 'tx2', 2, pause),
  ]).then(([, r]) => {
    done = true;
    return r;
  });
  // Enough turns of the microtask queue for every runnable step to reach its next pause.
  const settle = () => flush(50);
  await settle();
  for (const choice of prefix) {
    const [next] = pending.splice(choice, 1);
    next?.();
    await settle();
  }
  if (!done) {
    // Out of prefix: say how many choices there are here, and abandon this run.
    return { agree: true, choicesAt: pending.length, complete: false };
  }
  const r = await run;
  return { agree: readsAgree(r.seen), choicesAt: 0, complete: true };
}
