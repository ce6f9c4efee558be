/**
 * StateVersions on its own, over an in-memory Blob and Consensus: the first version,
 * compare-and-set of later ones, rebuilding from a rollup, catching up across a GC
 * truncation, paging past one scan, and a rollup that went missing.
 */
import { expect } from 'chai';
import { MemBlob } from '../../src/location/mem-blob.js';
import { MemConsensus } from '../../src/location/mem-consensus.js';
import { defaultConfig, type PersistConfig } from '../../src/persist/config.js';
import { InvariantViolation, StoredFormatError } from '../../src/persist/errors.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { addRollup } from '../../src/persist/state-commands.js';
import type { ShardState } from '../../src/persist/state.js';
import { StateVersions, type StateStore } from '../../src/persist/state-versions.js';
import { expectReject } from '../support/persist.js';

const CFG: PersistConfig = {
  ...defaultConfig(),
  storageRetry: { attempts: 3, initialMs: 1, multiplier: 1, clampMs: 1 },
};

/** `state` one version later, with its upper moved up by one (a change every diff carries). */
function bumped(state: ShardState): ShardState {
  return { ...state, seqno: state.seqno + 1, meta: { ...state.meta, upper: state.meta.upper + 1 } };
}

async function blobKeys(blob: MemBlob, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  await blob.listKeysAndMetadata(prefix, (k) => keys.push(k));
  return keys.sort();
}

describe('persist: state versions', () => {
  let store: StateStore & { blob: MemBlob; consensus: MemConsensus };
  let versions: StateVersions;
  /** Another process's view of the same shard. */
  const other = () => new StateVersions(store);

  beforeEach(() => {
    store = { shardId: newShardId(), blob: new MemBlob(), consensus: new MemConsensus(), cfg: CFG };
    versions = new StateVersions(store);
  });

  /** Creates the shard and writes `n` more versions; returns the head state. */
  async function withVersions(n: number): Promise<ShardState> {
    const first = (await versions.createInitial('string', 'unit', () => versions.rebuild()))!;
    return advance(first, n);
  }

  /** Writes `n` versions after `state` (the head); returns the new head. */
  async function advance(state: ShardState, n: number): Promise<ShardState> {
    for (let i = 0; i < n; i++) {
      const next = bumped(state);
      expect(await versions.compareAndSet(state, next, 'test write')).to.equal('committed');
      state = next;
    }
    return state;
  }

  it('an empty shard rebuilds to nothing; version 1 records only the first rollup, and rebuilds to the first state', async () => {
    expect(await versions.rebuild()).to.equal(undefined);
    const first = (await versions.createInitial('string', 'unit', () => versions.rebuild()))!;
    expect(first.seqno).to.equal(1);
    expect([...first.rollups.keys()]).to.deep.equal([1]);
    expect(await blobKeys(store.blob, store.shardId)).to.deep.equal([first.rollups.get(1)]);
    const [v1] = await versions.scanAll();
    expect(v1!.seqno).to.equal(1);
    expect(await other().rebuild()).to.deep.equal(first);
  });

  it('a creation that loses the race returns the winner state and deletes its own rollup', async () => {
    const winner = (await versions.createInitial('string', 'unit', () => versions.rebuild()))!;
    const loser = other();
    const got = await loser.createInitial('string', 'unit', () => loser.rebuild());
    expect(got).to.deep.equal(winner);
    expect(await blobKeys(store.blob, store.shardId), 'only the winner rollup is left').to.deep.equal([
      winner.rollups.get(1),
    ]);
  });

  it('compare-and-set commits the successor of the head, reports a stale one as a mismatch, and refuses a gap', async () => {
    const head = await withVersions(3);
    const stale = (await other().rebuild())!;
    expect(stale).to.deep.equal(head);
    expect(await versions.compareAndSet(head, bumped(head), 'ahead')).to.equal('committed');
    expect(await other().compareAndSet(stale, bumped(stale), 'behind')).to.equal('mismatch');
    await expectReject(versions.compareAndSet(head, bumped(bumped(head)), 'gap'), InvariantViolation, /writes version 6 after 4/);
  });

  it('rebuilds and catches up past one scan of versions', async () => {
    const held = await withVersions(0);
    const head = await advance(held, 1005);
    expect((await versions.scanAll()).length).to.equal(1006);
    expect(await other().rebuild()).to.deep.equal(head);
    expect(await other().catchUp(held)).to.deep.equal(head);
  });

  it('catching up across a truncation rebuilds from the rollup the run starts at', async () => {
    const held = await withVersions(0);
    let head = await advance(held, 3);
    // A rollup of state 3, recorded by version 5, then GC truncates below 3.
    const three = (await rebuildAt(3))!;
    const key = await versions.writeRollup(three);
    const recorded = { ...addRollup(head, 3, key).next!, seqno: head.seqno + 1 };
    expect(await versions.compareAndSet(head, recorded, 'add_rollup')).to.equal('committed');
    head = recorded;
    await store.consensus.truncate(store.shardId, 3);
    expect((await versions.scanAll())[0]!.seqno).to.equal(3);
    expect(await other().catchUp(held)).to.deep.equal(head);
    expect(await other().rebuild()).to.deep.equal(head);
  });

  it('a run whose first rollup no diff names loads only with a held state that names it, and checks its seqno', async () => {
    const head = await withVersions(2);
    const laterRun = (await versions.scanAll()).slice(1);
    await expectReject(versions.loadVersions(laterRun), StoredFormatError, /no rollup is recorded for its earliest live version 2/);
    const two = (await rebuildAt(2))!;
    const key = await versions.writeRollup(two);
    const loaded = (await versions.loadVersions(laterRun, { ...head, rollups: new Map([[2, key]]) }))!;
    expect(loaded.first).to.deep.equal(two);
    expect(loaded.diffs.map((d) => d.seqnoTo)).to.deep.equal([2, 3]);
    const wrong = { ...head, rollups: new Map([[2, head.rollups.get(1)!]]) };
    await expectReject(versions.loadVersions(laterRun, wrong), StoredFormatError, /holds seqno 1, expected 2/);
  });

  it('a rollup missing on every read is a broken shard, after a bounded number of reads', async () => {
    const head = await withVersions(2);
    await store.blob.delete(head.rollups.get(1)!);
    let scans = 0;
    const scan = store.consensus.scan.bind(store.consensus);
    store.consensus.scan = (...args) => {
      scans++;
      return scan(...args);
    };
    await expectReject(other().rebuild(), StoredFormatError, /the rollup of its earliest live version is missing/);
    expect(scans).to.be.greaterThan(1).and.lessThan(10);
  });

  /** The state at `seqno`, replayed from the rollup of version 1. */
  async function rebuildAt(seqno: number): Promise<ShardState | undefined> {
    const run = (await versions.scanAll()).filter((v) => v.seqno <= seqno);
    const copy = new MemConsensus();
    for (const v of run) await copy.compareAndSet(store.shardId, v.seqno === 1 ? undefined : v.seqno - 1, v);
    return new StateVersions({ ...store, consensus: copy }).rebuild();
  }
});
