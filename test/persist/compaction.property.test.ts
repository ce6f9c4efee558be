import { expect } from 'chai';
import fc from 'fast-check';
import { compactShard, pickMerge } from '../../src/persist/compaction.js';
import { newShardId, type Update } from '../../src/persist/index.js';
import type { SpineBatch } from '../../src/persist/state.js';
import { STRING_UNIT, memClient, sorted } from '../support/persist.js';

type Row = Update<string, null>;

/** The naive answer: sum every update with t <= asOf, per key, dropping zeros; all at asOf. */
function naiveSnapshot(all: Row[], asOf: number): Row[] {
  const sums = new Map<string, number>();
  for (const [k, , t, d] of all) if (t <= asOf) sums.set(k, (sums.get(k) ?? 0) + d);
  return sorted([...sums].filter(([, d]) => d !== 0).map(([k, d]) => [k, null, asOf, d] as const));
}

const step = fc.record({
  width: fc.integer({ min: 1, max: 4 }),
  updates: fc.array(
    fc.record({ key: fc.constantFrom('a', 'b', 'c', 'd'), offset: fc.nat(3), diff: fc.integer({ min: -2, max: 2 }) }),
    { maxLength: 6 },
  ),
  sinceBump: fc.nat(3),
});

describe('persist: compaction (property)', () => {
  it('every snapshot at asOf >= since equals a naive recomputation, before and after compaction', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        const client = await memClient({ compaction: false });
        try {
          const id = newShardId();
          const w = await client.openWriter(id, STRING_UNIT);
          // The only reader: its since is the shard's since, so compaction may advance
          // times all the way to it.
          const reader = await client.openLeasedReader(id, STRING_UNIT);
          const all: Row[] = [];
          let upper = 0;
          let since = 0;
          for (const s of steps) {
            const rows: Row[] = s.updates
              .filter((u) => u.diff !== 0)
              .map((u) => [u.key, null, upper + (u.offset % s.width), u.diff] as const);
            expect(await w.compareAndAppend(rows, upper, upper + s.width)).to.deep.equal({ ok: true });
            all.push(...rows);
            upper += s.width;
            since = Math.min(upper - 1, since + s.sinceBump);
            await reader.downgradeSince(since);
          }
          const check = async (label: string) => {
            for (let asOf = since; asOf < upper; asOf++) {
              const got = sorted(await reader.snapshotAndFetch(asOf));
              expect(got, `${label}: snapshot at ${asOf} (since ${since}, upper ${upper})`).to.deep.equal(
                naiveSnapshot(all, asOf),
              );
            }
          };
          await check('before compaction');
          const machine = client.shardMachine(id);
          expect(machine.state.meta.since).to.equal(since);
          const batchesBefore = machine.state.spine.length;
          await compactShard(machine);
          expect(pickMerge(machine.state.spine), 'compaction leaves the spine in shape').to.equal(undefined);
          expect(machine.state.spine.length).to.be.at.most(batchesBefore);
          await check('after compaction');
          // A listen from the since sees exactly the updates after it, at their own times.
          const l = await reader.listen(since);
          const listened: Row[] = [];
          while (l.frontier < upper) {
            for (const e of await l.next()) if (e.kind === 'updates') listened.push(...e.updates);
          }
          const expected = all.filter(([, , t]) => t > since);
          expect(consolidate(listened)).to.deep.equal(consolidate(expected));
        } finally {
          await client.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  it('the merge policy keeps the spine logarithmic and merges rarely for equal writes', () => {
    const spine: SpineBatch[] = [];
    let id = 0;
    let merges = 0;
    const n = 5000;
    for (let i = 0; i < n; i++) {
      spine.push({ id: id++, batch: { lower: i, upper: i + 1, since: 0, parts: [], updateCount: 1 } });
      for (let m = pickMerge(spine); m; m = pickMerge(spine)) {
        merges++;
        const at = spine.findIndex((b) => b.id === m[0]!.id);
        const last = m[m.length - 1]!.batch;
        const count = m.reduce((sum, b) => sum + b.batch.updateCount, 0);
        spine.splice(at, m.length, { id: id++, batch: { ...m[0]!.batch, upper: last.upper, updateCount: count } });
      }
      expect(spine.length).to.be.at.most(3 * (Math.floor(Math.log(i + 1) / Math.log(4)) + 1));
      // Levels never increase from oldest to newest.
      for (let j = 0; j + 1 < spine.length; j++) {
        expect(spine[j]!.batch.updateCount).to.be.at.least(spine[j + 1]!.batch.updateCount);
      }
    }
    // Each merge is one state change: about one per three writes, not one per write.
    expect(merges).to.be.below(n / 2.5);
  });
});

function consolidate(rows: Row[]): Row[] {
  const sums = new Map<string, number>();
  for (const [k, , t, d] of rows) sums.set(JSON.stringify([k, t]), (sums.get(JSON.stringify([k, t])) ?? 0) + d);
  return sorted(
    [...sums].filter(([, d]) => d !== 0).map(([kt, d]) => {
      const [k, t] = JSON.parse(kt) as [string, number];
      return [k, null, t, d] as const;
    }),
  );
}
