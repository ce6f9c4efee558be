import { expect } from 'chai';
import fc from 'fast-check';
import { PersistClient, newShardId, type Update, type WriteHandle, type ReadHandle } from '../../src/persist/index.js';
import { validateState } from '../../src/persist/state.js';
import { STRING_UNIT, sorted } from '../support/persist.js';

type Row = Update<string, null>;

/**
 * A model-based test of a shard driven from two clients (two cached views of the
 * state, as two processes would have), with rollups, compaction and GC tuned to run
 * all the time. After every step the shard must agree with a plain model: the list of
 * every update written and the upper. Any state version must rebuild (from a rollup
 * plus diffs) into a valid state, and a fresh client must read the same answers.
 */
const op = fc.oneof(
  fc.record({
    kind: fc.constant('append' as const),
    client: fc.nat(1),
    width: fc.integer({ min: 0, max: 3 }),
    keys: fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { maxLength: 4 }),
    retract: fc.boolean(),
    stale: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('downgrade' as const), by: fc.nat(3) }),
  fc.record({ kind: fc.constant('snapshot' as const), client: fc.nat(1), back: fc.nat(4) }),
  fc.record({ kind: fc.constant('maintain' as const) }),
  fc.record({ kind: fc.constant('reopen' as const) }),
);

function modelSnapshot(all: Row[], asOf: number): Row[] {
  const sums = new Map<string, number>();
  for (const [k, , t, d] of all) if (t <= asOf) sums.set(k, (sums.get(k) ?? 0) + d);
  return sorted([...sums].filter(([, d]) => d !== 0).map(([k, d]) => [k, null, asOf, d] as const));
}

describe('persist: a shard under random histories (property)', function () {
  this.timeout(120_000);

  it('agrees with a plain model across clients, compaction, rollups, GC and rebuilds', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const name = `mem://model-${newShardId()}`;
        const config = { rollupThreshold: 4, gcMinVersions: 2, blobTargetSizeBytes: 64, inlineWritesSingleMaxBytes: 48 };
        const clients = [await PersistClient.open(name, { config }), await PersistClient.open(name, { config })];
        const extra: PersistClient[] = [];
        try {
          const id = newShardId();
          const writers: WriteHandle<string, null>[] = [
            await clients[0]!.openWriter(id, STRING_UNIT),
            await clients[1]!.openWriter(id, STRING_UNIT),
          ];
          const readers: ReadHandle<string, null>[] = [
            await clients[0]!.openLeasedReader(id, STRING_UNIT),
            await clients[1]!.openLeasedReader(id, STRING_UNIT),
          ];
          const all: Row[] = [];
          let upper = 0;
          let since = 0;
          for (const o of ops) {
            switch (o.kind) {
              case 'append': {
                const w = writers[o.client]!;
                // A stale writer uses its cached upper, which another client may have moved.
                const expected = o.stale ? w.upper() : upper;
                const rows: Row[] = o.width === 0 ? [] : o.keys.map((k, i) => [k, null, expected + (i % o.width), o.retract && i % 2 ? -1 : 1] as const);
                const res = await w.compareAndAppend(rows, expected, expected + o.width);
                if (expected === upper) {
                  expect(res).to.deep.equal({ ok: true });
                  all.push(...rows);
                  upper += o.width;
                } else {
                  expect(res).to.deep.equal({ ok: false, current: upper });
                }
                break;
              }
              case 'downgrade': {
                since = Math.max(since, Math.min(Math.max(upper - 1, 0), since + o.by));
                for (const r of readers) await r.downgradeSince(since);
                break;
              }
              case 'snapshot': {
                if (upper === 0) break;
                const asOf = Math.max(since, upper - 1 - o.back);
                const got = sorted(await readers[o.client]!.snapshotAndFetch(asOf));
                expect(got, `snapshot at ${asOf}`).to.deep.equal(modelSnapshot(all, asOf));
                break;
              }
              case 'maintain': {
                for (const c of clients) await c.flushMaintenance();
                break;
              }
              case 'reopen': {
                // A process that starts now rebuilds the state from a rollup and diffs.
                const fresh = await PersistClient.open(name);
                extra.push(fresh);
                const m = fresh.shardMachine(id);
                const state = (await m.refresh())!;
                validateState(state);
                expect(state.meta.upper).to.equal(upper);
                break;
              }
            }
          }
          for (const c of clients) await c.flushMaintenance();
          for (const c of clients) validateState(c.shardMachine(id).state);
          if (upper > 0) {
            const fresh = await PersistClient.open(name);
            extra.push(fresh);
            const r = await fresh.openLeasedReader(id, STRING_UNIT, { useCriticalSince: false });
            for (let asOf = since; asOf < upper; asOf++) {
              expect(sorted(await r.snapshotAndFetch(asOf)), `fresh snapshot at ${asOf}`).to.deep.equal(modelSnapshot(all, asOf));
            }
          }
        } finally {
          for (const c of [...extra, ...clients]) await c.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});
