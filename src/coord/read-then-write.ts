/**
 * Read-then-write: read some collections and write them back with nobody else
 * writing them in between, through a group committer (seed 002).
 *
 * The operation:
 *  1. takes the write locks of every collection it names, exclusively and all at
 *     once, waiting in line ({@link WriteLocks.acquire});
 *  2. picks its read timestamp: the oracle's read timestamp, or later if the
 *     committer knows of a commit the oracle did not hear of;
 *  3. calls `fn(readTs, read)` exactly once (never retried optimistically); `read(id)`
 *     waits until the txns shard is readable at `readTs`, makes sure everything
 *     committed up to `readTs` is applied, and returns `id`'s consolidated contents;
 *  4. hands what `fn` returned, locks included, to the next group commit, which
 *     releases the locks only after telling the oracle its timestamp is applied.
 *
 * Invariants:
 * - Nobody else (in this process) writes the locked collections between the read
 *   and the write: the locks are held from before the read until after the write's
 *   timestamp is readable.
 * - `fn` reads and writes only the collections it locked (OutsideLockedCollections).
 * - Writing nothing (`undefined`, or no rows) or failing (`fn` throws, the signal
 *   fires before the hand-off) releases the locks at once and writes nothing.
 *
 * Worked example (the committer's last commit at 11 put ('k', +2) in A):
 * ```ts
 * await readThenWrite(host, [A], async (readTs, read) => {
 *   const rows = await read(A);            // readTs 11: [['k', null, 2]]
 *   return { [A]: [['k', null, -2]] };     // committed at 12, say; nobody wrote A in between
 * }, undefined);                            // → { readTs: 11, commitTs: 12 }
 * ```
 */
import type { ShardId } from '../persist/shard-id.js';
import type { Timestamp } from '../persist/time.js';
import type { RowEncoder } from '../txn/row-encoder.js';
import type { TxnsHandle } from '../txn/txns-handle.js';
import { checkWrites, type CheckedWrites, type WritesByCollection } from './collection-writes.js';
import { OutsideLockedCollections } from './group-commit-errors.js';
import type { WriteLockGuard, WriteLocks } from './write-locks.js';

/**
 * What a read-then-write function may read: the collection's contents at the read timestamp.
 *
 * Example:
 * ```ts
 * await gc.readThenWrite([A], async (readTs, read: ReadCollection<string, null>) => {
 *   const rows = await read(A);   // [['k', null, 2]]
 * });
 * ```
 */
export type ReadCollection<K, V> = (collection: ShardId) => Promise<[key: K, val: V, diff: number][]>;

/**
 * Computes the writes of a read-then-write operation; `undefined` means "write nothing".
 *
 * Example:
 * ```ts
 * const drain: ReadThenWriteFn<string, null> = async (readTs, read) => ({
 *   [A]: (await read(A)).map(([k, v, d]) => [k, v, -d] as const),
 * });
 * await gc.readThenWrite([A], drain);
 * ```
 */
export type ReadThenWriteFn<K, V> = (
  readTs: Timestamp,
  read: ReadCollection<K, V>,
) => Promise<WritesByCollection<K, V> | undefined | void>;

/**
 * What `readThenWrite` resolves with: the time it read at and the time its writes committed at.
 *
 * Example:
 * ```ts
 * const { readTs, commitTs } = await gc.readThenWrite([A], fn);
 * ```
 */
export interface ReadThenWriteResult {
  /** The timestamp the function read at. */
  readTs: Timestamp;
  /** The commit's timestamp; undefined when the function wrote nothing. */
  commitTs: Timestamp | undefined;
}

/** What a read-then-write needs from the group committer it runs in. */
export interface ReadThenWriteHost<K, V> {
  readonly txns: TxnsHandle<K, V>;
  /** Encodes the rows `fn` returns (the committer's, with its string slabs). */
  readonly encoder: RowEncoder<K, V>;
  readonly locks: WriteLocks;
  /** The timestamp to read at: the oracle's read timestamp, or later. */
  readTs(): Promise<Timestamp>;
  /** Makes sure every commit at or below `ts` is applied (a read at `ts` waits for it otherwise). */
  applyThrough(ts: Timestamp): Promise<void>;
  /** Hands `writes` and their locks to the next group commit; resolves with its commit timestamp. */
  submitLocked(writes: CheckedWrites<K, V>, locks: WriteLockGuard): Promise<Timestamp>;
}

/** Runs one read-then-write operation over `ids` (already checked: distinct, registered). */
export async function readThenWrite<K, V>(
  host: ReadThenWriteHost<K, V>,
  ids: ShardId[],
  fn: ReadThenWriteFn<K, V>,
  signal: AbortSignal | undefined,
): Promise<ReadThenWriteResult> {
  const guard = await host.locks.acquire(ids, { signal });
  let handedOff = false;
  try {
    const readTs = await host.readTs();
    const read: ReadCollection<K, V> = (id) => {
      if (!guard.covers(id)) return Promise.reject(new OutsideLockedCollections('read', id, ids));
      return readCollection(host, id, readTs, signal);
    };
    const returned = await fn(readTs, read);
    if (returned === undefined) return { readTs, commitTs: undefined };
    const writes = checkWrites(returned, host.encoder);
    for (const id of writes.keys()) {
      if (!guard.covers(id)) throw new OutsideLockedCollections('write', id, ids);
    }
    if (writes.size === 0) return { readTs, commitTs: undefined };
    // The locks travel with the write and are released by its group commit.
    handedOff = true;
    const commitTs = await host.submitLocked(writes, guard);
    return { readTs, commitTs };
  } finally {
    if (!handedOff) guard.release();
  }
}

/** `id`'s contents at `readTs`, consolidated. */
async function readCollection<K, V>(
  host: ReadThenWriteHost<K, V>,
  id: ShardId,
  readTs: Timestamp,
  signal: AbortSignal | undefined,
): Promise<[K, V, number][]> {
  const { txns } = host;
  const cache = txns.readCache();
  // Waits without holding the handle: the commit that made readTs readable is landed.
  await cache.updateGt(readTs, { signal });
  await host.applyThrough(readTs);
  const snapshot = cache.dataSnapshot(id, readTs);
  const reader = await txns.client.openLeasedReader(id, txns.dataCodecs, { purpose: 'group commit read-then-write' });
  try {
    const rows = await snapshot.snapshotAndFetch(reader, { signal });
    return rows.map(([k, v, , d]) => [k, v, d]);
  } finally {
    await reader.expire();
  }
}
