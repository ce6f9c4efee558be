/**
 * The blob-deletion rule under storage faults: an operation whose state write may
 * have landed never deletes what it wrote, and its errors say it may have happened.
 *
 * Each scenario loses exactly one reply (the write lands, the caller sees an
 * IndeterminateError), sometimes followed by failing re-reads, and then checks with
 * the faults gone that the shard is still whole.
 */
import { expect } from 'chai';
import { PersistClient, PersistStorageError, newShardId, type PersistConfig } from '../../src/persist/index.js';
import { gcShard } from '../../src/persist/gc.js';
import { Field, decodeDiff } from '../../src/persist/state-codec.js';
import type { VersionedData } from '../../src/location/consensus.js';
import { FlakyLocation } from '../support/flaky-location.js';
import { STRING_UNIT, expectReject, rows, sorted } from '../support/persist.js';

const FAST_RETRY: Partial<PersistConfig> = {
  storageRetry: { attempts: 3, initialMs: 1, multiplier: 1, clampMs: 1 },
  listenPoll: { initialMs: 1, multiplier: 2, clampMs: 10 },
  // Every part goes to Blob, so a wrongly deleted part is noticed.
  inlineWritesSingleMaxBytes: 0,
};

/** True for a compare-and-set whose diff records a new rollup after the first (an `add_rollup`). */
function addsRollup(_key: string, _expected: number | undefined, next: VersionedData): boolean {
  const { diffs } = decodeDiff(next.data, 'test');
  return next.seqno > 1 && diffs.some((f) => f.field === Field.ROLLUPS && f.to !== undefined);
}

/** True for a compare-and-set that removes spine batches (a compaction's `merge_res`). */
function mergesBatches(_key: string, _expected: number | undefined, next: VersionedData): boolean {
  return decodeDiff(next.data, 'test').diffs.some((f) => f.field === Field.BATCHES && f.to === undefined);
}

describe('persist: blob deletion under lost replies', () => {
  let flaky: FlakyLocation;
  const clients: PersistClient[] = [];
  async function open(config: Partial<PersistConfig> = {}): Promise<PersistClient> {
    const c = await PersistClient.open(flaky, { config: { ...FAST_RETRY, ...config } });
    clients.push(c);
    return c;
  }
  beforeEach(async () => {
    flaky = await FlakyLocation.mem();
  });
  afterEach(async () => {
    flaky.disarm();
    for (const c of clients.splice(0)) await c.close();
    await flaky.close();
  });

  it('a compaction whose merge landed but whose reply was lost keeps its output: the shard stays readable', async () => {
    const client = await open({ compaction: true });
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(0, 'a'), 0, 1);
    await client.flushMaintenance();
    // A bigger newer batch: the one-update batch folds into it, a real merge whose
    // output is a new Blob part.
    flaky.arm('compareAndSet', { mode: 'after', when: mergesBatches });
    await w.compareAndAppend(rows(1, 'b', 'c', 'd', 'e'), 1, 2);
    await client.flushMaintenance();
    expect(flaky.fired.get('compareAndSet')).to.equal(1);
    expect(client.shardMachine(id).state.spine).to.have.length(1, 'the merge landed');

    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect(sorted(await r.snapshotAndFetch(1))).to.deep.equal(sorted(rows(1, 'a', 'b', 'c', 'd', 'e')));
  });

  it('a rollup whose add_rollup landed but whose reply was lost is kept: GC and a rebuild from it work', async () => {
    const client = await open({ compaction: false, rollupThreshold: 3, gcMinVersions: 1_000_000, awaitMaintenance: true });
    const id = newShardId();
    flaky.arm('compareAndSet', { mode: 'after', when: addsRollup });
    const w = await client.openWriter(id, STRING_UNIT);
    // Stop writing once that rollup is in: it is then the newest, and GC truncates to it.
    let t = 0;
    for (; !flaky.fired.get('compareAndSet'); t++) await w.compareAndAppend(rows(t, `k${t}`), t, t + 1);
    await client.flushMaintenance();
    const machine = client.shardMachine(id);
    expect(machine.state.rollups.size).to.equal(2, 'the rollup was recorded');

    // GC truncates Consensus to the new rollup: a rebuild now has to start from it.
    const report = await gcShard(machine);
    expect(report.truncatedBelow).to.be.greaterThan(1);
    const fresh = await open();
    const r = await fresh.openLeasedReader(id, STRING_UNIT);
    const last = t - 1;
    expect(sorted(await r.snapshotAndFetch(last))).to.deep.equal(
      sorted(Array.from({ length: t }, (_, i) => [`k${i}`, null, last, 1] as const)),
    );
  });

  it('an append that landed, lost its reply, and then could not re-read state says it may have happened and keeps its data', async () => {
    const client = await open({ compaction: false });
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(0, 'a'), 0, 1);
    flaky.arm('compareAndSet', {
      mode: 'after',
      when: (key: string) => key === id,
      // The write landed; every re-read of state fails from now on.
      onFault: () => flaky.arm('scan', { mode: 'before', count: 1_000, when: (key: string) => key === id }),
    });
    const err = (await expectReject(w.compareAndAppend(rows(1, 'b'), 1, 2), PersistStorageError)) as PersistStorageError;
    expect(err.mayHaveHappened, err.message).to.equal(true);

    flaky.disarm();
    expect(await w.fetchRecentUpper()).to.equal(2);
    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect(sorted(await r.snapshotAndFetch(1))).to.deep.equal(sorted(rows(1, 'a', 'b')));
  });

  it('an append whose write was lost before landing, and whose re-read failed, says it did not happen', async () => {
    const client = await open({ compaction: false });
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(0, 'a'), 0, 1);
    flaky.arm('compareAndSet', { mode: 'before', count: 1_000, when: (key: string) => key === id });
    const err = (await expectReject(w.compareAndAppend(rows(1, 'b'), 1, 2), PersistStorageError)) as PersistStorageError;
    expect(err.mayHaveHappened, err.message).to.equal(false);
    flaky.disarm();
    expect(await w.fetchRecentUpper()).to.equal(1);
  });
});
