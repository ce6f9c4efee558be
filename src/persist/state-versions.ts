/**
 * StateVersions: how one shard's state is stored, and the only code that reads or
 * writes it (Materialize's `state_versions.rs`). The machine (machine.ts) decides
 * *what* to write and when; this module knows *where* it lives.
 *
 * Layout: under the shard id, Consensus holds versions; version `n` is the diff from
 * state `n-1` to state `n` (state-codec.ts). Full copies of some states (rollups) are
 * Blob objects `<shard>/v<seqno>/<uuid>`, and the `rollups` entry of state names them.
 *
 * Invariants:
 * - Consensus holds a contiguous run of diffs `s0..head` that starts at a rollup:
 *   GC truncates only up to a rollup (gc.ts), so the state at `s0` is in Blob, and
 *   some diff of the run (or a state we already hold) names its key.
 * - Version 1 only records the first rollup: it is the diff from the empty state at
 *   seqno 0 (never stored; a compare-and-set from it expects an empty register) to
 *   that state plus its own rollup entry. A rebuild always starts from a rollup, so
 *   it is the one diff that is never applied.
 * - A rollup that is missing during a rebuild means GC raced us (truncated past our
 *   `s0` and deleted its rollup between our scan and our read): read again, a bounded
 *   number of times; past that the shard is broken (StoredFormatError).
 * - Catching up from a state at seqno `n` reads versions from `n+1`; a run that
 *   starts later means GC truncated what we need, so it rebuilds instead.
 * - A compare-and-set reports `'unknown'` when an attempt may have landed (a lost
 *   reply, or a mismatch after one, which may be our own write): the caller must
 *   treat the write as maybe-happened (blob-deletion.ts).
 *
 * Worked example: rollups at 1 and 129, GC truncated below 129, head 140. Consensus
 * holds 129..140; the diff that recorded rollup 129 (say version 131) is in the run.
 * `rebuild()` scans 129..140, reads rollup 129 from Blob, and applies diffs 130..140.
 * A process holding state 125 that calls `catchUp` sees the run start at 129, not
 * 126, and rebuilds the same way.
 * ```ts
 * const versions = new StateVersions({ shardId, blob, consensus, cfg });
 * const state = await versions.rebuild();    // undefined: the shard does not exist yet
 * ```
 */
import { randomUUID } from 'node:crypto';
import type { Blob } from '../location/blob.js';
import type { Consensus, VersionedData } from '../location/consensus.js';
import type { PersistConfig } from './config.js';
import { deleteUnreferenced } from './blob-deletion.js';
import { InvariantViolation, PersistStorageError, StoredFormatError } from './errors.js';
import {
  Field,
  EntryCache,
  applyDiff,
  computeDiff,
  decodeDiff,
  decodeRollup,
  decodeRollupState,
  encodeDiff,
  encodeRollupState,
  type StateDiff,
} from './state-codec.js';
import { initialState, type ShardState } from './state.js';
import { mayHaveHappenedError, withStorageRetry, withStorageRetryOutcome } from './storage-retry.js';

/** Versions read from Consensus per scan call. */
const SCAN_LIMIT = 1000;

/** Rebuild attempts that may find their rollup deleted by a concurrent GC before the shard counts as broken. */
const REBUILD_ATTEMPTS = 7;

/** Where one shard's state lives. */
export interface StateStore {
  readonly shardId: string;
  readonly blob: Blob;
  readonly consensus: Consensus;
  readonly cfg: PersistConfig;
}

/** What a compare-and-set of a new version came to; `'unknown'`: it may have landed. */
export type VersionWrite = 'committed' | 'mismatch' | 'unknown';

/** The rollup state of the first of a run of versions, and every diff of the run decoded. */
export interface LoadedVersions {
  first: ShardState;
  diffs: StateDiff[];
}

export class StateVersions {
  /** This shard's memo of encoded state objects (state-codec.ts EntryCache). */
  private readonly cache = new EntryCache();

  constructor(private readonly store: StateStore) {}

  /**
   * Creates the shard: writes the first state's rollup, then version 1. Returns the
   * first state when our version 1 committed; otherwise (someone else created the
   * shard, or our write may have landed after all) the state `readBack` reads, and
   * our rollup is deleted only when that read proves nothing references it.
   * Undefined when the read finds no shard (a concurrent creation we saw fail).
   */
  async createInitial(
    keyCodec: string,
    valCodec: string,
    readBack: () => Promise<ShardState | undefined>,
  ): Promise<ShardState | undefined> {
    const { shardId, blob, cfg } = this.store;
    const base = initialState(shardId, keyCodec, valCodec, cfg.hostname);
    const rollupKey = this.rollupKey(1);
    const first: ShardState = { ...base, seqno: 1, rollups: new Map([[1, rollupKey]]) };
    await this.writeRollupAt(rollupKey, first);
    const res = await this.compareAndSet(base, first, 'creating shard state');
    if (res === 'committed') return first;
    // Only a certain mismatch frees our rollup: after an unknown outcome the state
    // read back may name it.
    const uncertain = res === 'unknown';
    let state: ShardState | undefined;
    try {
      state = await readBack();
    } catch (err) {
      throw uncertain ? mayHaveHappenedError(`creating shard state of ${shardId}`, err) : err;
    }
    if (state) await deleteUnreferenced(blob, cfg, [rollupKey], { uncertain, state });
    return state;
  }

  /**
   * Writes version `next.seqno` as the diff from `prev`, expecting `prev` to be the
   * head (an empty register when `prev` is the unstored state at seqno 0).
   */
  async compareAndSet(prev: ShardState, next: ShardState, what: string): Promise<VersionWrite> {
    const { shardId, consensus, cfg } = this.store;
    if (next.seqno !== prev.seqno + 1) {
      throw new InvariantViolation(`shard ${shardId}: ${what} writes version ${next.seqno} after ${prev.seqno}`);
    }
    const expected = prev.seqno === 0 ? undefined : prev.seqno;
    const data = encodeDiff(computeDiff(prev, next, this.cache));
    try {
      const { value, uncertain } = await withStorageRetryOutcome(
        cfg,
        `${what} (compare-and-set of ${shardId})`,
        () => consensus.compareAndSet(shardId, expected, { seqno: next.seqno, data }),
        { write: true },
      );
      // A mismatch after an attempt whose reply was lost may be our own write.
      return value === 'mismatch' && uncertain ? 'unknown' : value;
    } catch (err) {
      if (err instanceof PersistStorageError && err.mayHaveHappened) return 'unknown';
      throw err;
    }
  }

  /** `state` with every newer version applied; a rebuild when GC truncated the versions it needs. */
  async catchUp(state: ShardState): Promise<ShardState | undefined> {
    const { shardId, consensus, cfg } = this.store;
    for (;;) {
      const from = state.seqno + 1;
      const versions = await withStorageRetry(cfg, `reading state of ${shardId}`, () =>
        consensus.scan(shardId, from, SCAN_LIMIT),
      );
      if (versions.length === 0) return state;
      if (versions[0]!.seqno !== from) return this.rebuild(state);
      for (const v of versions) state = applyVersion(state, v, this.cache);
      if (versions.length < SCAN_LIMIT) return state;
    }
  }

  /**
   * The newest state, from the earliest live version's rollup and the diffs after
   * it; undefined when the shard does not exist. `known` (a state already held) may
   * name that rollup when no diff does.
   */
  async rebuild(known?: ShardState): Promise<ShardState | undefined> {
    for (let attempt = 1; ; attempt++) {
      const versions = await this.scanAll();
      if (versions.length === 0) return undefined;
      const state = await this.replay(versions, known);
      if (state) return state;
      // GC truncated and deleted the rollup while we read: read again.
      if (attempt >= REBUILD_ATTEMPTS) {
        throw new StoredFormatError(`shard ${this.store.shardId}: the rollup of its earliest live version is missing`);
      }
    }
  }

  /** Every live version, oldest first. */
  async scanAll(): Promise<VersionedData[]> {
    const { shardId, consensus, cfg } = this.store;
    const all: VersionedData[] = [];
    let from = 0;
    for (;;) {
      const batch = await withStorageRetry(cfg, `reading state of ${shardId}`, () =>
        consensus.scan(shardId, from, SCAN_LIMIT),
      );
      all.push(...batch);
      if (batch.length < SCAN_LIMIT) return all;
      from = batch[batch.length - 1]!.seqno + 1;
    }
  }

  /**
   * Loads the rollup of the first of `versions` (contiguous, oldest first) and
   * decodes the diffs. The rollup's key comes from the diffs, else from `known` (a
   * state already held). Undefined when that rollup is gone (GC raced us).
   */
  async loadVersions(versions: VersionedData[], known?: ShardState): Promise<LoadedVersions | undefined> {
    const { shardId, blob, cfg } = this.store;
    const diffs = versions.map((v) => decodeDiff(v.data, `state version ${v.seqno} of ${shardId}`));
    const s0 = versions[0]!.seqno;
    const rollupKey = findRollupKey(diffs, s0) ?? known?.rollups.get(s0);
    if (!rollupKey) {
      throw new StoredFormatError(`shard ${shardId}: no rollup is recorded for its earliest live version ${s0}`);
    }
    const bytes = await withStorageRetry(cfg, `reading rollup ${rollupKey}`, () => blob.get(rollupKey));
    if (!bytes) return undefined;
    const first = decodeRollupState(bytes, `rollup ${rollupKey}`, this.cache);
    if (first.seqno !== s0) {
      throw new StoredFormatError(`rollup ${rollupKey} holds seqno ${first.seqno}, expected ${s0}`);
    }
    return { first, diffs };
  }

  /** Writes a full copy of `state` to Blob and returns its key; recording it in state is the caller's (add_rollup). */
  async writeRollup(state: ShardState): Promise<string> {
    const key = this.rollupKey(state.seqno);
    await this.writeRollupAt(key, state);
    return key;
  }

  private async writeRollupAt(key: string, state: ShardState): Promise<void> {
    const { blob, cfg } = this.store;
    await withStorageRetry(cfg, `writing rollup ${key}`, () => blob.set(key, encodeRollupState(state, this.cache)));
  }

  /** A fresh key per write: two processes writing a rollup of one seqno never overwrite each other. */
  private rollupKey(seqno: number): string {
    return `${this.store.shardId}/v${seqno}/${randomUUID()}`;
  }

  /** The newest state of `versions` (contiguous, oldest first), from the first one's rollup. Undefined when that rollup is gone. */
  private async replay(versions: VersionedData[], known: ShardState | undefined): Promise<ShardState | undefined> {
    const loaded = await this.loadVersions(versions, known);
    if (!loaded) return undefined;
    let state = loaded.first;
    for (let i = 1; i < loaded.diffs.length; i++) state = applyDiff(state, loaded.diffs[i]!, this.cache);
    return state;
  }
}

/** The blob key of the rollup of `seqno`, as recorded by one of `diffs`. */
function findRollupKey(diffs: StateDiff[], seqno: number): string | undefined {
  const want = String(seqno);
  for (const d of diffs) {
    for (const f of d.diffs) {
      if (f.field === Field.ROLLUPS && f.key === want && f.to) {
        return decodeRollup(f.to);
      }
    }
  }
  return undefined;
}

function applyVersion(state: ShardState, v: VersionedData, cache: EntryCache): ShardState {
  return applyDiff(state, decodeDiff(v.data, `state version ${v.seqno}`), cache);
}
