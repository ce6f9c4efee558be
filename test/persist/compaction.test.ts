/**
 * Compaction merges inputs that cannot overlap without consolidating them (their
 * updates, one input after another), and consolidates when the since moved times so
 * that updates of different inputs meet; both read back as the naive answer.
 */
import { expect } from 'chai';
import { cannotOverlap, compactShard } from '../../src/persist/compaction.js';
import { newShardId, type PersistClient, type Update } from '../../src/persist/index.js';
import type { SpineBatch } from '../../src/persist/state.js';
import { STRING_UNIT, memClient, sorted } from '../support/persist.js';

function spineBatch(id: number, lower: number, upper: number, parts = 1): SpineBatch {
  const part = { encodedSizeBytes: 1, updateCount: 1, inline: new Uint8Array(1) };
  return { id, batch: { lower, upper, since: 0, parts: Array.from({ length: parts }, () => part), updateCount: parts } };
}

describe('persist: compaction of inputs that cannot overlap', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient({ compaction: false });
  });
  afterEach(() => client.close());

  it('cannotOverlap: no time moves and every input is one part', () => {
    const inputs = [spineBatch(0, 0, 2), spineBatch(1, 2, 3), spineBatch(2, 3, 5)];
    expect(cannotOverlap(inputs, 0)).to.equal(true);
    expect(cannotOverlap(inputs, 1), 'times of the first input move to 1').to.equal(false);
    expect(cannotOverlap([spineBatch(0, 4, 6), spineBatch(1, 6, 7)], 4)).to.equal(true);
    expect(cannotOverlap([spineBatch(0, 0, 2, 2), spineBatch(1, 2, 3)], 0), 'two parts of one batch may hold one update twice').to.equal(false);
  });

  it('merges four writes with since 0 into their updates one after another; with the since past an insert and its retraction they cancel', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    const reader = await client.openLeasedReader(id, STRING_UNIT);
    const writes: Update<string, null>[][] = [
      [['a', null, 0, 1]],
      [['b', null, 1, 1]],
      [['a', null, 2, -1]],
      [['c', null, 3, 1]],
    ];
    for (const [t, rows] of writes.entries()) expect(await w.compareAndAppend(rows, t, t + 1)).to.deep.equal({ ok: true });
    const machine = client.shardMachine(id);
    expect(cannotOverlap(machine.state.spine, machine.state.meta.since)).to.equal(true);
    await compactShard(machine);
    expect(machine.state.spine.map((b) => [b.batch.lower, b.batch.upper, b.batch.updateCount])).to.deep.equal([[0, 4, 4]]);
    // Unconsolidated across times, as written: a at 0 and its retraction at 2 both kept.
    expect(sorted(await reader.snapshotAndFetch(3))).to.deep.equal([
      ['b', null, 3, 1],
      ['c', null, 3, 1],
    ]);

    // Four more writes, the first two an insert and its retraction; the since passes
    // both, so the merge moves them to one time, where they cancel.
    const more: Update<string, null>[][] = [[['e', null, 4, 1]], [['e', null, 5, -1]], [['d', null, 6, 1]], [['d', null, 7, 1]]];
    for (const [i, rows] of more.entries()) expect(await w.compareAndAppend(rows, 4 + i, 5 + i)).to.deep.equal({ ok: true });
    await reader.downgradeSince(6);
    expect(machine.state.meta.since).to.equal(6);
    expect(cannotOverlap(machine.state.spine.slice(1), 6)).to.equal(false);
    await compactShard(machine);
    expect(machine.state.spine.map((b) => [b.batch.lower, b.batch.upper, b.batch.updateCount])).to.deep.equal([
      [0, 4, 4],
      [4, 8, 2],
    ]);
    expect(sorted(await reader.snapshotAndFetch(7))).to.deep.equal([
      ['b', null, 7, 1],
      ['c', null, 7, 1],
      ['d', null, 7, 2],
    ]);
    await reader.expire();
  });

  for (const since of [0, 4]) {
    it(`a part whose keep bounds drop some of its rows is merged in the runs it keeps (since ${since}: ${since === 0 ? 'copied' : 'consolidated'})`, async () => {
      const id = newShardId();
      const w = await client.openWriter(id, STRING_UNIT);
      const reader = await client.openLeasedReader(id, STRING_UNIT);
      const machine = client.shardMachine(id);
      expect(await w.compareAndAppend([['before', null, 0, 1]], 0, 4)).to.deep.equal({ ok: true });
      // Built for [0, 10), appended at [4, 6): only the rows at 4 and 5 survive, in
      // three runs between rows the keep bounds drop.
      const times = [1, 4, 4, 8, 5, 9, 2, 5];
      const wide = await w.batch(times.map((t, i): Update<string, null> => [`w${i}@${t}`, null, t, 1]), 0, 10);
      expect(await w.compareAndAppendBatch([wide], 4, 6)).to.deep.equal({ ok: true });
      expect(machine.state.spine.at(-1)!.batch.parts[0]!.keep).to.deep.equal({ lower: 4, upper: 6 });
      const want = sorted(await reader.snapshotAndFetch(5));
      expect(want.map(([k]) => k)).to.deep.equal(['before', 'w1@4', 'w2@4', 'w4@5', 'w7@5']);
      if (since > 0) await reader.downgradeSince(since);
      expect(cannotOverlap(machine.state.spine, machine.state.meta.since)).to.equal(since === 0);
      await compactShard(machine);
      // One batch holding only the kept rows.
      expect(machine.state.spine.map((b) => [b.batch.lower, b.batch.upper, b.batch.updateCount])).to.deep.equal([[0, 6, 5]]);
      expect(sorted(await reader.snapshotAndFetch(5))).to.deep.equal(want);
      // A listen from the since sees the kept rows after it at their own times.
      const listen = await (await client.openLeasedReader(id, STRING_UNIT)).listen(since);
      const seen: Update<string, null>[] = [];
      for (let upper = 0; upper < 6; ) {
        for (const ev of await listen.next()) {
          if (ev.kind === 'updates') seen.push(...ev.updates);
          else upper = ev.upper;
        }
      }
      const afterSince = since === 0 ? ['w1@4:4', 'w2@4:4', 'w4@5:5', 'w7@5:5'] : ['w4@5:5', 'w7@5:5'];
      expect(sorted(seen).map(([k, , t]) => `${k}:${t}`)).to.deep.equal(afterSince);
      await listen.expire();
      await reader.expire();
    });
  }

  it('streams its output in parts of about the target size, whether it consolidates or not, and reads back the same', async () => {
    const target = 300;
    // A 9-byte key and no value: 33 bytes a row as parts are cut, so 10 rows reach the target.
    const row = 9 + 24;
    const small = await memClient({ compaction: false, blobTargetSizeBytes: target });
    try {
      const id = newShardId();
      const w = await small.openWriter(id, STRING_UNIT);
      const reader = await small.openLeasedReader(id, STRING_UNIT);
      const machine = small.shardMachine(id);
      const key = (t: number, i: number) => `key-${t}-${String(i).padStart(3, '0')}`;
      const write = async (t: number, rows: Update<string, null>[]) =>
        expect(await w.compareAndAppend(rows, t, t + 1)).to.deep.equal({ ok: true });
      const mergedParts = () => {
        const withData = machine.state.spine.filter((b) => b.batch.updateCount > 0);
        const parts = withData[withData.length - 1]!.batch.parts;
        expect(parts.reduce((n, p) => n + p.updateCount, 0)).to.equal(withData[withData.length - 1]!.batch.updateCount);
        // A part is cut as soon as it reaches the target: at most one row past it.
        for (const p of parts) expect(p.updateCount * row).to.be.below(target + row);
        return parts;
      };

      // Four writes of 9 rows, one part each: they cannot overlap, and stream through.
      for (let t = 0; t < 4; t++) await write(t, Array.from({ length: 9 }, (_, i) => [key(t, i), null, t, 1]));
      expect(cannotOverlap(machine.state.spine, 0)).to.equal(true);
      await compactShard(machine);
      expect(machine.state.spine.map((b) => b.batch.updateCount)).to.deep.equal([36]);
      expect(mergedParts().length).to.equal(4);
      expect((await reader.snapshotAndFetch(3)).length).to.equal(36);

      // Four writes of 25 rows (three parts each, so the merge consolidates); the first
      // also retracts 20 of the first rows. With the since past them all, those cancel.
      for (let t = 4; t < 8; t++) {
        const rows: Update<string, null>[] = Array.from({ length: 25 }, (_, i) => [key(t, i), null, t, 1]);
        if (t === 4) for (let i = 0; i < 20; i++) rows.push([key(i % 4, Math.floor(i / 4)), null, t, -1]);
        await write(t, rows);
      }
      await reader.downgradeSince(7);
      await compactShard(machine);
      const after = await reader.snapshotAndFetch(7);
      expect(after.length).to.equal(36 - 20 + 100);
      expect(after.every(([, , , d]) => d === 1)).to.equal(true);
      expect(mergedParts().length).to.be.greaterThan(1);
      await reader.expire();
    } finally {
      await small.close();
    }
  });
});
