/**
 * Arrangement scenarios (point reads, scans, change detection, compaction, waits)
 * and the property: after any stream and any compactions, every read equals a naive
 * replay of the whole stream.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Subject } from 'rxjs';
import { Arrangement, ReadOutsideArrangement } from '../../src/db/arrangement.js';
import { InvalidUsage } from '../../src/persist/errors.js';
import type { Update } from '../../src/persist/update.js';
import type { ShardEvent } from '../../src/sources/shard-source.js';
import { yieldMacrotask } from '../../src/persist/wait.js';
import { observe } from '../support/async.js';

type Ev = ShardEvent<string, number>;
const updates = (...us: Update<string, number>[]): Ev => ({ kind: 'updates', updates: us });
const progress = (upper: number): Ev => ({ kind: 'progress', upper });

describe('db: arrangement', () => {
  it('answers point reads at every readable time, and refuses the others naming the readable range', () => {
    const arr = new Arrangement<string, number>({ asOf: 5 });
    arr.push(updates(['alice', 10, 5, 1], ['bob', 3, 5, 1]));
    arr.push(progress(6));
    arr.push(updates(['alice', 10, 9, -1], ['alice', 7, 9, 1]));
    arr.push(progress(10));
    expect(arr.get('alice', 5)).to.deep.equal([[10, 1]]);
    expect(arr.get('alice', 8)).to.deep.equal([[10, 1]]);
    expect(arr.get('alice', 9)).to.deep.equal([[7, 1]]);
    expect(arr.get('carol', 9)).to.deep.equal([]);
    expect(() => arr.get('alice', 10)).to.throw(ReadOutsideArrangement, /\[5, 10\).*not complete yet/);
    expect(() => arr.get('alice', 4)).to.throw(ReadOutsideArrangement, /compacted/);
  });

  it('scans a key range in key order, bounds inclusive below and exclusive above', () => {
    const arr = new Arrangement<string, number>({ asOf: 0 });
    arr.push(updates(['d', 4, 0, 1], ['b', 2, 0, 1], ['a', 1, 0, 1], ['c', 3, 0, 1], ['c', 3, 1, -1]));
    arr.push(progress(2));
    expect([...arr.scan({}, 0)].map(([k]) => k)).to.deep.equal(['a', 'b', 'c', 'd']);
    expect([...arr.scan({ from: 'b', to: 'd' }, 0)]).to.deep.equal([
      ['b', 2, 1],
      ['c', 3, 1],
    ]);
    expect([...arr.scan({ from: 'b' }, 1)]).to.deep.equal([
      ['b', 2, 1],
      ['d', 4, 1],
    ]);
  });

  it('orders numeric keys by value, not by their text', () => {
    const arr = new Arrangement<number, string>({ asOf: 0 });
    arr.push({ kind: 'updates', updates: [[10, 'x', 0, 1], [9, 'y', 0, 1], [100, 'z', 0, 1]] });
    arr.push({ kind: 'progress', upper: 1 });
    expect([...arr.scan({}, 0)].map(([k]) => k)).to.deep.equal([9, 10, 100]);
  });

  it('lastChange finds a write after a read time (seed 004: read at 23, written at 24), and ignores writes that cancel out', () => {
    const arr = new Arrangement<string, number>({ asOf: 20 });
    arr.push(updates(['k', 1, 20, 1]));
    arr.push(progress(24));
    expect(arr.lastChange('k', 23, 24)).to.equal(undefined);
    arr.push(updates(['k', 1, 24, -1], ['k', 2, 24, 1]));
    arr.push(updates(['k', 2, 25, 1], ['k', 2, 25, -1])); // net zero at 25
    arr.push(progress(26));
    expect(arr.lastChange('k', 23, 26)).to.equal(24);
    expect(arr.lastChange('k', 24, 26), 'a read refreshed to 24 sees nothing newer').to.equal(undefined);
    expect(arr.lastChange('other', 20, 26)).to.equal(undefined);
    expect(() => arr.lastChange('k', 23, 27)).to.throw(ReadOutsideArrangement, /not complete/);
  });

  it('compaction keeps reads at and above the since exact, frees keys that cancel out, and refuses a since at the frontier', () => {
    const arr = new Arrangement<string, number>({ asOf: 0 });
    arr.push(updates(['gone', 1, 0, 1], ['kept', 1, 0, 1]));
    arr.push(updates(['gone', 1, 2, -1], ['kept', 1, 3, -1], ['kept', 2, 3, 1]));
    arr.push(progress(5));
    arr.compactTo(2);
    expect(arr.since).to.equal(2);
    expect(arr.keyCount).to.equal(1);
    expect(arr.get('kept', 2)).to.deep.equal([[1, 1]]);
    expect(arr.get('kept', 4)).to.deep.equal([[2, 1]]);
    expect([...arr.scan({}, 2)]).to.deep.equal([['kept', 1, 1]]);
    expect(() => arr.get('kept', 1)).to.throw(ReadOutsideArrangement);
    expect(() => arr.compactTo(5)).to.throw(InvalidUsage, /at most 4/);
    expect(() => arr.push(updates(['late', 1, 1, 1]))).to.throw(InvalidUsage, /below the since 2/);
  });

  it('waitForFrontier resolves once the time is readable, and rejects when the followed stream fails', async () => {
    const arr = new Arrangement<string, number>({ asOf: 0 });
    const events = new Subject<Ev>();
    const sub = arr.follow(events);
    const ready = observe(arr.waitForFrontier(3));
    events.next(progress(3));
    await yieldMacrotask();
    expect(ready.settled, '3 is not below the frontier 3').to.equal(false);
    events.next(progress(4));
    await ready.promise;
    const failed = arr.waitForFrontier(10);
    events.error(new Error('shard gone'));
    let caught: unknown;
    await failed.catch((e: unknown) => (caught = e));
    expect((caught as Error).message).to.equal('shard gone');
    sub.unsubscribe();
  });

  it('waitForFrontier stops on abort', async () => {
    const arr = new Arrangement<string, number>({ asOf: 0 });
    const ac = new AbortController();
    const wait = arr.waitForFrontier(1, ac.signal);
    ac.abort(new Error('stop'));
    let caught: unknown;
    await wait.catch((e: unknown) => (caught = e));
    expect((caught as Error).message).to.equal('stop');
  });

  describe('property: every read equals a naive replay of the stream', () => {
    /** One step: a window of updates closed by a progress event, or a compaction. */
    type Step = { kind: 'window'; rows: { key: number; val: number; dt: number; diff: number }[]; width: number } | { kind: 'compact'; back: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('window' as const),
          rows: fc.array(
            fc.record({ key: fc.nat(5), val: fc.nat(2), dt: fc.nat(3), diff: fc.integer({ min: -2, max: 2 }) }),
            { maxLength: 6 },
          ),
          width: fc.integer({ min: 1, max: 4 }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const), back: fc.nat(4) }) },
    );

    it('get, scan and lastChange, after any compactions, at random times', () => {
      fc.assert(
        fc.property(fc.nat(10), fc.array(step, { maxLength: 12 }), fc.boolean(), (asOf, steps, split) => {
          const arr = new Arrangement<number, number>({ asOf });
          const log: Update<number, number>[] = [];
          let lower = asOf;
          for (const s of steps) {
            if (s.kind === 'compact') {
              const target = Math.max(arr.since, arr.frontier - 1 - s.back);
              if (target < arr.frontier) arr.compactTo(target);
              continue;
            }
            const upper = lower + s.width;
            const window: Update<number, number>[] = s.rows.map((r) => [r.key, r.val, lower + (r.dt % s.width), r.diff]);
            log.push(...window);
            // The same window delivered whole or one update at a time gives the same reads.
            if (split) for (const u of window) arr.push({ kind: 'updates', updates: [u] });
            else arr.push({ kind: 'updates', updates: window });
            arr.push({ kind: 'progress', upper });
            lower = upper;
          }
          for (let t = arr.since; t < arr.frontier; t++) {
            const all: [number, number, number][] = [];
            for (let key = 0; key <= 5; key++) {
              const expected = naiveRows(log, key, t);
              expect(sortRows(arr.get(key, t)), `get(${key}, ${t})`).to.deep.equal(expected);
              for (const [val, diff] of expected) all.push([key, val, diff]);
              for (let after = arr.since; after < arr.frontier; after++) {
                expect(arr.lastChange(key, after, arr.frontier), `lastChange(${key}, ${after})`).to.equal(
                  naiveLastChange(log, key, after, arr.frontier),
                );
              }
            }
            const scanned = [...arr.scan({ from: 1, to: 4 }, t)];
            expect(
              scanned.map(([k]) => k),
              'scan keys are in order',
            ).to.deep.equal([...scanned.map(([k]) => k)].sort((a, b) => a - b));
            expect(sortTriples(scanned)).to.deep.equal(sortTriples(all.filter(([k]) => k >= 1 && k < 4)));
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});

function naiveRows(log: Update<number, number>[], key: number, t: number): [number, number][] {
  const sums = new Map<number, number>();
  for (const [k, v, ts, d] of log) if (k === key && ts <= t) sums.set(v, (sums.get(v) ?? 0) + d);
  return sortRows([...sums].filter(([, d]) => d !== 0));
}

function naiveLastChange(log: Update<number, number>[], key: number, after: number, before: number): number | undefined {
  for (let t = before - 1; t > after; t--) {
    const net = new Map<number, number>();
    for (const [k, v, ts, d] of log) if (k === key && ts === t) net.set(v, (net.get(v) ?? 0) + d);
    if ([...net.values()].some((d) => d !== 0)) return t;
  }
  return undefined;
}

const sortRows = (rows: [number, number][]) => [...rows].sort((a, b) => a[0] - b[0]);
const sortTriples = (rows: [number, number, number][]) => [...rows].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
