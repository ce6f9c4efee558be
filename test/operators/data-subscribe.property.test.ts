/**
 * dataSubscribe under random histories (fast-check):
 * - at every progress `p` it emits, the updates emitted so far, consolidated, equal
 *   a naive snapshot of the committed writes below `p` (times advanced to `asOf`);
 * - the same writes committed in one transaction or spread over many give the same
 *   `materialize()`d contents.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { filter, firstValueFrom } from 'rxjs';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import type { ReadHandle } from '../../src/persist/read-handle.js';
import { consolidateUpdates } from '../../src/operators/consolidate-updates.js';
import { dataSubscribe$ } from '../../src/operators/data-subscribe.js';
import { materialize } from '../../src/operators/materialize.js';
import type { TxnApply } from '../../src/txn/txn.js';
import type { ShardEvent } from '../../src/sources/shard-source.js';
import { STRING_UNIT, memClient } from '../support/persist.js';
import { Recorder } from '../support/rx.js';
import { openTxns } from '../support/txn.js';

const SHARDS = 2;
const KEYS = ['a', 'b', 'c'];

type Write = { shard: number; key: string; diff: number };
type Op =
  | { kind: 'commit'; writes: Write[]; applyNow: boolean }
  | { kind: 'apply' }
  | { kind: 'subscribe'; shard: number; back: number };

const writeArb = fc.record({ shard: fc.nat(SHARDS - 1), key: fc.constantFrom(...KEYS), diff: fc.constantFrom(1, -1, 2) });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('commit' as const), writes: fc.array(writeArb, { maxLength: 4 }), applyNow: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('apply' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('subscribe' as const), shard: fc.nat(SHARDS - 1), back: fc.nat(6) }) },
);

type Row = [key: string, ts: number, diff: number];

function naive(log: { shard: number; key: string; ts: number; diff: number }[], shard: number, asOf: number, upper: number): Row[] {
  return consolidateUpdates(
    log.filter((w) => w.shard === shard && w.ts < upper).map((w) => [w.key, null, Math.max(w.ts, asOf), w.diff] as const),
  ).map(([k, , t, d]) => [k, t, d] as Row);
}

function sortRows(rows: Row[]): Row[] {
  return [...rows].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

describe('operators/dataSubscribe under random histories (property)', function () {
  this.timeout(120_000);

  it('at every emitted progress, the output so far equals a naive snapshot at that time', async () => {
    let checkedFrontiers = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 14 }), async (ops) => {
        const client = await memClient();
        const holds: ReadHandle<string, null>[] = [];
        const subs: { shard: number; asOf: number; rec: Recorder<ShardEvent<string, null>> }[] = [];
        try {
          const txns = await openTxns(client);
          const ids: ShardId[] = Array.from({ length: SHARDS }, () => newShardId());
          for (const id of ids) {
            // Hold each data shard's since at 0, so a subscription may start at any earlier time.
            const hold = await client.openLeasedReader(id, STRING_UNIT);
            holds.push(hold);
          }
          let ts = 1;
          for (const id of ids) {
            const res = await txns.register(ts++, [await client.openWriter(id, STRING_UNIT)]);
            expect(res.ok).to.equal(true);
          }
          const log: { shard: number; key: string; ts: number; diff: number }[] = [];
          const pending: TxnApply[] = [];
          for (const op of ops) {
            if (op.kind === 'commit') {
              const txn = txns.begin();
              for (const w of op.writes) await txn.write(ids[w.shard]!, w.key, null, w.diff);
              const res = await txn.commitAt(txns, ts);
              expect(res.ok).to.equal(true);
              if (!res.ok) return;
              for (const w of op.writes) log.push({ ...w, ts });
              if (op.applyNow) await res.apply.apply(txns);
              else pending.push(res.apply);
              ts++;
            } else if (op.kind === 'apply') {
              for (const a of pending.splice(0)) await a.apply(txns);
            } else {
              const asOf = Math.max(0, ts - 1 - op.back);
              const rec = new Recorder(dataSubscribe$(client, txns.txnsId, ids[op.shard]!, { codecs: STRING_UNIT, asOf }));
              subs.push({ shard: op.shard, asOf, rec });
            }
          }
          for (const a of pending.splice(0)) await a.apply(txns);
          const end = ts;
          for (const s of subs) {
            await s.rec.until(() => s.rec.events.some((e) => e.kind === 'progress' && e.upper >= end), `progress ${end}`);
            s.rec.unsubscribe();
            // Check every prefix that ends at a progress event.
            let emitted: Row[] = [];
            let lower = s.asOf;
            for (const e of s.rec.events) {
              if (e.kind === 'updates') {
                for (const [k, , t, d] of e.updates) {
                  expect(t, 'an update emitted below the previous progress').to.be.at.least(lower);
                  emitted.push([k, t, d]);
                }
                continue;
              }
              expect(e.upper, 'progress strictly increases').to.be.greaterThan(lower);
              for (const [, t] of emitted) expect(t, `an update at ${t} emitted before progress ${e.upper}`).to.be.below(e.upper);
              const got = sortRows(consolidateUpdates(emitted.map(([k, t, d]) => [k, null, t, d] as const)).map(([k, , t, d]) => [k, t, d] as Row));
              expect(got, `shard ${s.shard} as of ${s.asOf} at progress ${e.upper}`).to.deep.equal(sortRows(naive(log, s.shard, s.asOf, e.upper)));
              checkedFrontiers++;
              lower = e.upper;
              emitted = consolidateUpdates(emitted.map(([k, t, d]) => [k, null, t, d] as const)).map(([k, , t, d]) => [k, t, d] as Row);
            }
          }
        } finally {
          for (const s of subs) s.rec.unsubscribe();
          for (const h of holds) await h.expire();
          await client.close();
        }
      }),
      { numRuns: 80 },
    );
    expect(checkedFrontiers, 'the histories produced frontiers to check').to.be.greaterThan(40);
  });

  it('one big commit and the same writes over many commits materialize to the same contents', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(writeArb, { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(3), { minLength: 12, maxLength: 12 }),
        async (writes, cuts) => {
          // Group sizes for the spread-out run: 1..4 writes per commit.
          const groups: Write[][] = [];
          for (let i = 0, g = 0; i < writes.length; g++) {
            const n = (cuts[g % cuts.length] ?? 0) + 1;
            groups.push(writes.slice(i, i + n));
            i += n;
          }
          const whole = await runAndMaterialize([writes]);
          const spread = await runAndMaterialize(groups);
          expect(spread).to.deep.equal(whole);
          // And both equal the naive sums per key.
          for (let shard = 0; shard < SHARDS; shard++) {
            const sums = new Map<string, number>();
            for (const w of writes) if (w.shard === shard) sums.set(w.key, (sums.get(w.key) ?? 0) + w.diff);
            const expected = [...sums].filter(([, d]) => d !== 0).sort(([a], [b]) => (a < b ? -1 : 1));
            expect(whole[shard]).to.deep.equal(expected);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

/** Commits each group at its own timestamp, then materializes every shard past the last one. */
async function runAndMaterialize(groups: Write[][]): Promise<[string, number][][]> {
  const client = await memClient();
  try {
    const txns = await openTxns(client);
    const ids: ShardId[] = Array.from({ length: SHARDS }, () => newShardId());
    let ts = 1;
    for (const id of ids) await txns.register(ts++, [await client.openWriter(id, STRING_UNIT)]);
    for (const group of groups) {
      const txn = txns.begin();
      for (const w of group) await txn.write(ids[w.shard]!, w.key, null, w.diff);
      const res = await txn.commitAt(txns, ts++);
      if (!res.ok) throw new Error('commit failed');
      await res.apply.apply(txns);
    }
    const last = ts - 1;
    const out: [string, number][][] = [];
    for (const id of ids) {
      const view = await firstValueFrom(
        dataSubscribe$(client, txns.txnsId, id, { codecs: STRING_UNIT, asOf: last }).pipe(
          materialize(),
          filter((v) => v.upper > last),
        ),
      );
      out.push(view.toArray().map(([k, , d]) => [k, d] as [string, number]).sort(([a], [b]) => (a < b ? -1 : 1)));
    }
    return out;
  } finally {
    await client.close();
  }
}
