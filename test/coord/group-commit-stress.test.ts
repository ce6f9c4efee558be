/**
 * Group commit stress: many concurrent submitters on a handful of collections, each
 * doing a random mix of blind writes (random lock sets), read-then-write counter
 * updates (random lock sets, some giving up while waiting for locks) and internal
 * system writes. Afterwards:
 * - every acknowledged write appears exactly once, at its acknowledged timestamp
 *   (each collection read back through a txn-aware subscription, against the log);
 * - nothing else appears (no write of a rejected or abandoned operation);
 * - read-then-write operations were isolated: each collection's counter, bumped by
 *   every read-then-write that locked it, ends at exactly the number of them (a lost
 *   update or a double bump leaves a different value or extra rows);
 * - acknowledgements of each collection arrived in timestamp order;
 * - the whole run finished before a deadline (no deadlock).
 *
 * The seed is printed; replay a run with TXNWAL_COORD_STRESS_SEED=<seed>. Bigger runs:
 * TXNWAL_COORD_STRESS_SUBMITTERS (50), TXNWAL_COORD_STRESS_OPS (12 per submitter).
 */
import { expect } from 'chai';
import type { ShardId } from '../../src/persist/shard-id.js';
import { sleep } from '../../src/persist/wait.js';
import { xorshift32 } from '../support/rng.js';
import { consolidateRows, type LoggedWrite, type Row } from '../support/txn.js';
import { setup, type Env } from './group-commit-support.js';

const SUBMITTERS = Number(process.env.TXNWAL_COORD_STRESS_SUBMITTERS ?? 50);
const OPS = Number(process.env.TXNWAL_COORD_STRESS_OPS ?? 12);
const COLLECTIONS = 6;
const DEADLINE_MS = 45_000;

class Run {
  private readonly written: LoggedWrite[] = [];
  /** Commit timestamps in the order their acknowledgements arrived, per collection. */
  readonly ackOrder = new Map<ShardId, number[]>();
  readonly problems: string[] = [];
  readonly bumps = new Map<ShardId, number>();
  readonly inFlight = new Set<string>();
  lastTs = 0;
  stats = { blind: 0, rtw: 0, rtwEmpty: 0, rtwAbandoned: 0, internal: 0, fnCalls: 0 };

  constructor(readonly env: Env) {
    for (const id of env.ids) this.ackOrder.set(id, []);
  }

  acked(ts: number, rows: LoggedWrite[]): void {
    this.lastTs = Math.max(this.lastTs, ts);
    const touched = new Set<ShardId>();
    for (const [id, k, , d] of rows) {
      const w: LoggedWrite = [id, k, ts, d];
      this.written.push(w);
      this.env.log.record(w);
      touched.add(id);
    }
    for (const id of touched) this.ackOrder.get(id)!.push(ts);
  }

  /** Everything acknowledged for `id`, consolidated over all times, counter rows only. */
  counterRows(id: ShardId): Row[] {
    return consolidateRows(this.written.filter(([i, k]) => i === id && k.startsWith('#')).map(([, k, , d]) => [k, 0, d] as Row));
  }

  async submitter(idx: number, next: () => number): Promise<void> {
    const pickSet = () => {
      const n = 1 + (next() % 3);
      const set = new Set<ShardId>();
      while (set.size < n) set.add(this.env.ids[next() % this.env.ids.length]!);
      return [...set];
    };
    for (let op = 0; op < OPS; op++) {
      if (next() % 4 === 0) await sleep(next() % 4);
      const tag = `s${idx}.${op}`;
      const roll = next() % 20;
      this.inFlight.add(tag);
      try {
        if (roll < 10) await this.blind(tag, pickSet(), next);
        else if (roll < 17) await this.readThenWrite(tag, pickSet(), next, false);
        else if (roll < 18) await this.readThenWrite(tag, pickSet(), next, true);
        else await this.internal(tag, this.env.ids[next() % this.env.ids.length]!);
      } finally {
        this.inFlight.delete(tag);
      }
    }
  }

  private async blind(tag: string, ids: ShardId[], next: () => number): Promise<void> {
    const rows: LoggedWrite[] = [];
    const writes = new Map<ShardId, [string, null, number][]>();
    for (const id of ids) {
      const list: [string, null, number][] = [];
      for (let r = 0, n = 1 + (next() % 3); r < n; r++) {
        const key = `${tag}.${r}`;
        const diff = 1 + (next() % 2);
        list.push([key, null, diff]);
        rows.push([id, key, -1, diff]);
      }
      writes.set(id, list);
    }
    const { commitTs } = await this.env.gc.submitWrite(writes);
    this.stats.blind++;
    this.acked(commitTs, rows);
  }

  private async internal(tag: string, id: ShardId): Promise<void> {
    const out = await this.env.gc.submitInternal({ [id]: [[tag, null, 1]] });
    if (out.buffered) throw new Error('not in read-only mode, yet buffered');
    this.stats.internal++;
    this.acked(out.commitTs, [[id, tag, -1, 1]]);
  }

  /**
   * Bumps the counter of each locked collection: reads the single `#n` row, retracts it
   * and writes `#n+1`. Sometimes writes nothing; `impatient` gives up on the locks
   * after a moment.
   */
  private async readThenWrite(tag: string, ids: ShardId[], next: () => number, impatient: boolean): Promise<void> {
    const writeNothing = next() % 8 === 0;
    const signal = impatient ? AbortSignal.timeout(1) : undefined;
    let calls = 0;
    const rows: LoggedWrite[] = [];
    let result;
    try {
      result = await this.env.gc.readThenWrite(
        ids,
        async (_readTs, read) => {
          calls++;
          this.stats.fnCalls++;
          if (writeNothing) return undefined;
          const writes = new Map<ShardId, [string, null, number][]>();
          for (const id of ids) {
            const counter = (await read(id)).filter(([k]) => k.startsWith('#'));
            if (counter.length > 1 || (counter.length === 1 && counter[0]![2] !== 1)) {
              this.problems.push(`${tag}: counter of ${id} read as ${JSON.stringify(counter)}`);
            }
            const n = counter.length === 0 ? 0 : Number(counter[0]![0].slice(1));
            const list: [string, null, number][] = [[`#${n + 1}`, null, 1]];
            if (n > 0) list.push([`#${n}`, null, -1]);
            writes.set(id, list);
          }
          // Whole rows are logged only once acknowledged.
          for (const [id, list] of writes) for (const [k, , d] of list) rows.push([id, k, -1, d]);
          return writes;
        },
        { signal },
      );
    } catch (err) {
      // Gave up waiting for the locks, or during its reads: nothing may be written
      // (checked at the end: every shard holds exactly the acknowledged writes).
      if (impatient && (err as Error).name === 'TimeoutError') {
        this.stats.rtwAbandoned++;
        return;
      }
      throw err;
    }
    if (calls !== 1) this.problems.push(`${tag}: function ran ${calls} times`);
    if (result.commitTs === undefined) {
      this.stats.rtwEmpty++;
      if (!writeNothing) this.problems.push(`${tag}: wrote something but got no commit timestamp`);
      return;
    }
    if (!(result.readTs < result.commitTs)) this.problems.push(`${tag}: read at ${result.readTs}, committed at ${result.commitTs}`);
    this.stats.rtw++;
    for (const id of ids) this.bumps.set(id, (this.bumps.get(id) ?? 0) + 1);
    this.acked(result.commitTs, rows);
  }
}

describe('coord: group commit stress', function () {
  this.timeout(DEADLINE_MS + 30_000);

  it('concurrent blind writes, read-then-writes and system writes: exactly once, isolated, in order, no deadlock', async () => {
    const seed = Number(process.env.TXNWAL_COORD_STRESS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`      coord stress seed ${seed} (replay: TXNWAL_COORD_STRESS_SEED=${seed}); ${SUBMITTERS} submitters × ${OPS} ops`);
    const master = xorshift32(seed);
    const ack = master() % 2 === 0 ? 'commit' : 'apply';
    const env = await setup({ collections: COLLECTIONS, committer: { ack } });
    const run = new Run(env);
    try {
      const work = Promise.all(Array.from({ length: SUBMITTERS }, (_, i) => run.submitter(i, xorshift32(seed * 7919 + i + 1))));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`deadlock? still running after ${DEADLINE_MS} ms (seed ${seed}): ${[...run.inFlight].join(', ')}`)),
          DEADLINE_MS,
        );
      });
      try {
        await Promise.race([work, deadline]);
      } finally {
        clearTimeout(timer);
      }
      await env.gc.close();
      console.log(`      ack '${ack}': ${JSON.stringify(run.stats)}; ${JSON.stringify(env.gc.stats)}`);

      expect(run.problems, `seed ${seed}`).to.deep.equal([]);
      expect(run.stats.rtw + run.stats.blind, 'the run did something').to.be.greaterThan(0);
      for (const id of env.ids) {
        const order = run.ackOrder.get(id)!;
        for (let i = 1; i < order.length; i++) {
          if (order[i]! < order[i - 1]!) expect.fail(`seed ${seed}: ${id} acknowledged ${order[i]} after ${order[i - 1]}`);
        }
        const bumps = run.bumps.get(id) ?? 0;
        const counter = run.counterRows(id);
        expect(counter, `seed ${seed}: counter of ${id} after ${bumps} bumps`).to.deep.equal(bumps === 0 ? [] : [[`#${bumps}`, 0, 1]]);
        // Exactly once, at the acknowledged time, and nothing else.
        await env.log.assertSubscribe(id, env.registerTs, run.lastTs + 1);
      }
    } finally {
      await env.close();
    }
  });
});
