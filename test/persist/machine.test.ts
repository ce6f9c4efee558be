/**
 * Machine: maintenance rides along with writes. A merge result (or any command
 * queued with `applyDeferred`) is written inside the shard's next write, in the same
 * compare-and-set; with no write coming it writes alone after the ride wait, or at
 * once when maintenance is flushed. A rider that throws fails alone; a write that
 * certainly did not land keeps its riders for the next one.
 */
import { expect } from 'chai';
import { compactShard } from '../../src/persist/compaction.js';
import { PersistClient, newShardId, type PersistConfig, type ShardId, type WriteHandle } from '../../src/persist/index.js';
import type { Machine } from '../../src/persist/machine.js';
import { yieldMacrotask } from '../../src/persist/wait.js';
import { FlakyLocation, flakyClient } from '../support/flaky-location.js';
import { STRING_UNIT, expectReject, rows } from '../support/persist.js';

const CONFIG: Partial<PersistConfig> = {
  // Compaction is started by hand, so the test decides when a merge is pending.
  compaction: false,
  storageRetry: { attempts: 1, initialMs: 1, multiplier: 1, clampMs: 1 },
};

/** Waits (event by event, no fixed sleep) until `machine` holds `n` queued riders. */
async function ridersQueued(machine: Machine, n: number): Promise<void> {
  while (machine.riderCount < n) await yieldMacrotask();
}

describe('persist: Machine maintenance rides along with writes', () => {
  let flaky: FlakyLocation;
  let client: PersistClient;
  let id: ShardId;
  let w: WriteHandle<string, null>;
  let machine: Machine;
  /** Four one-row batches at [0,1) … [3,4): compaction wants to merge them. */
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ flaky, client, close } = await flakyClient(CONFIG));
    id = newShardId();
    w = await client.openWriter(id, STRING_UNIT);
    for (let t = 0; t < 4; t++) expect(await w.compareAndAppend(rows(t, `k${t}`), t, t + 1)).to.deep.equal({ ok: true });
    machine = client.shardMachine(id);
    expect(machine.state.spine.length).to.equal(4);
  });
  afterEach(async () => {
    await close();
  });

  it('a merge result is written inside the next append: one new version for both', async () => {
    machine.rideWaitDefaultMs = 60_000;
    const compacting = compactShard(machine);
    await ridersQueued(machine, 1);
    const before = machine.state.seqno;
    expect(await w.compareAndAppend(rows(4, 'k4'), 4, 5)).to.deep.equal({ ok: true });
    await compacting;
    expect(machine.state.seqno).to.equal(before + 1);
    expect(machine.state.spine.map((b) => [b.batch.lower, b.batch.upper, b.batch.updateCount])).to.deep.equal([
      [0, 4, 4],
      [4, 5, 1],
    ]);
    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect((await r.snapshotAndFetch(4)).map(([k]) => k).sort()).to.deep.equal(['k0', 'k1', 'k2', 'k3', 'k4']);
    await r.expire();
  });

  it('with no write coming, the merge writes alone after the ride wait', async () => {
    machine.rideWaitDefaultMs = 5;
    const before = machine.state.seqno;
    await compactShard(machine);
    expect(machine.state.seqno).to.equal(before + 1);
    expect(machine.state.spine.map((b) => [b.batch.lower, b.batch.upper])).to.deep.equal([[0, 4]]);
  });

  it('flushMaintenance writes a waiting rider at once', async () => {
    machine.rideWaitDefaultMs = 600_000;
    const compacting = compactShard(machine);
    await ridersQueued(machine, 1);
    await Promise.all([machine.flushMaintenance(), compacting]);
    expect(machine.riderCount).to.equal(0);
    expect(machine.state.spine.map((b) => [b.batch.lower, b.batch.upper])).to.deep.equal([[0, 4]]);
  });

  it('a rider that throws fails alone; the write it rode with lands', async () => {
    machine.rideWaitDefaultMs = 60_000;
    const bad = machine.applyDeferred('broken', () => {
      throw new Error('boom');
    });
    const failed = expectReject(bad, Error, /boom/);
    expect(await w.compareAndAppend(rows(4, 'k4'), 4, 5)).to.deep.equal({ ok: true });
    await failed;
    expect(machine.state.meta.upper).to.equal(5);
  });

  it('a write that certainly did not land keeps its riders for the next write', async () => {
    machine.rideWaitDefaultMs = 60_000;
    const compacting = compactShard(machine);
    await ridersQueued(machine, 1);
    // The append's compare-and-set is refused before it reaches the store.
    flaky.arm('compareAndSet', { mode: 'before', when: (key: string) => key === id });
    await expectReject(w.compareAndAppend(rows(4, 'k4'), 4, 5), Error);
    expect(machine.riderCount).to.equal(1);
    const before = machine.state.seqno;
    expect(await w.compareAndAppend(rows(4, 'k4'), 4, 5)).to.deep.equal({ ok: true });
    await compacting;
    expect(machine.state.seqno).to.equal(before + 1);
    expect(machine.state.spine.map((b) => [b.batch.lower, b.batch.upper])).to.deep.equal([
      [0, 4],
      [4, 5],
    ]);
  });
});
