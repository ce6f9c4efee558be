import { LocationUsageError } from './errors.js';

/**
 * Consensus: a versioned register per key with compare-and-set (spec §1.7).
 *
 * Persist stores each shard's state as a chain of versions under the shard id.
 * Every state change is one `compareAndSet(shard, expected = head seqno, new = seqno + 1)`;
 * the register's linearizability is what makes shard state linearizable.
 *
 * Contract, shared by every backend and checked by the conformance suite:
 * 1. `compareAndSet(key, expected, next)` with `expected !== undefined` and
 *    `next.seqno <= expected` throws LocationUsageError
 *    ("new seqno must be strictly greater than expected"); so does a seqno that is
 *    not a non-negative safe integer (SeqNos ≥ 2^63 are out of range in every backend).
 * 2. If the current head seqno (or `undefined` when the key has no data) differs from
 *    `expected`, the result is `'mismatch'`, whether `expected` is above or below it.
 * 3. Otherwise `next` becomes the head and the result is `'committed'`.
 *    Jumps are allowed (`undefined → 5`, then `5 → 10`); persist always uses `+1`.
 *    Backends are only required to be linearizable when racing CaS calls from the same
 *    `expected` propose the same `next.seqno`, as persist's `+1` (and its one fixed
 *    initial seqno) guarantees: the Postgres
 *    backend can commit two racing jumps to different seqnos (postgres-consensus.ts).
 * - `scan(key, from, limit)` returns versions with `seqno >= from`, ascending, at most `limit`.
 * - `truncate(key, seqno)` deletes versions `< seqno` and returns how many it deleted;
 *   it is idempotent. It throws LocationUsageError when the key has no data or
 *   `seqno > head.seqno`.
 *
 * Example:
 * ```ts
 * await c.compareAndSet('s1', undefined, { seqno: 1, data });   // 'committed'
 * await c.compareAndSet('s1', undefined, { seqno: 2, data });   // 'mismatch'
 * await c.compareAndSet('s1', 1, { seqno: 2, data });           // 'committed'
 * await c.scan('s1', 0, 10);                                    // [v1, v2]
 * await c.truncate('s1', 2);                                    // 1
 * ```
 *
 * SeqNos are `number`s: non-negative safe integers. Persist increments by one per state
 * change, so 2^53 is out of reach in practice; the narrower range is checked, not assumed.
 */
export type SeqNo = number;

/**
 * One version of a Consensus register: its sequence number and the bytes stored at it.
 *
 * Example:
 * ```ts
 * const v: VersionedData = { seqno: 1, data: new TextEncoder().encode('state') };
 * await consensus.compareAndSet('s1', undefined, v);
 * ```
 */
export interface VersionedData {
  /** The version's sequence number; strictly increasing per key. */
  readonly seqno: SeqNo;
  /** The bytes stored at this version (persist: an encoded shard state). */
  readonly data: Uint8Array;
}

/**
 * The outcome of {@link Consensus.compareAndSet}: `'committed'` when the new version became the
 * head, `'mismatch'` when the head was not `expected` (an expected outcome, not an error).
 *
 * Example:
 * ```ts
 * const r: CaSResult = await consensus.compareAndSet('s1', head?.seqno, { seqno: (head?.seqno ?? 0) + 1, data });
 * // 'mismatch': someone else moved the register; read the head again and retry
 * ```
 */
export type CaSResult = 'committed' | 'mismatch';

/**
 * A versioned register per key with compare-and-set: the one linearizable primitive every shard's
 * state rests on.
 *
 * Implement it to add a backend. The contract (compare-and-set, scan and truncate
 * rules) is stated on {@link SeqNo}; the conformance suite checks it, and all of
 * persist's correctness rests on it.
 *
 * Example:
 * ```ts
 * const c: Consensus = new MemConsensus();
 * await c.compareAndSet('s1', undefined, { seqno: 1, data });   // 'committed'
 * (await c.head('s1'))?.seqno;                                  // 1
 * ```
 */
export interface Consensus {
  /** The latest version of `key`, or `undefined` when it has no data. */
  head(key: string): Promise<VersionedData | undefined>;
  /**
   * Makes `next` the head iff the current head's seqno is `expected` (`undefined`: no data yet);
   * `'mismatch'` otherwise.
   */
  compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult>;
  /** Up to `limit` versions with `seqno >= from`, ascending ({@link SCAN_ALL} for all). */
  scan(key: string, from: SeqNo, limit: number): Promise<VersionedData[]>;
  /**
   * Deletes the versions below `seqno` (never the head) and resolves with how many it deleted;
   * idempotent.
   */
  truncate(key: string, seqno: SeqNo): Promise<number>;
  /** Every key that has data, in no particular order (tooling and GC of whole shards). */
  listKeys(): Promise<string[]>;
  /** Releases handles (files, connections). Further calls are misuse. */
  close(): Promise<void>;
}

/**
 * The largest `limit` worth passing to {@link Consensus.scan}: "every version".
 * `Infinity` is accepted too and means the same.
 *
 * Example:
 * ```ts
 * const versions = await consensus.scan(shardId, 0, SCAN_ALL);
 * ```
 */
export const SCAN_ALL = Number.MAX_SAFE_INTEGER;

/**
 * Throws LocationUsageError unless `seqno` is a non-negative safe integer.
 * Every backend calls this before touching storage, so a bad SeqNo is rejected the
 * same way everywhere (Postgres' bigint would accept up to 2^63 - 1, SQLite up to
 * 2^63 - 1, JS numbers lose precision above 2^53: the common range is the safe one).
 *
 * Example:
 * ```ts
 * checkSeqNo(5);          // ok
 * checkSeqNo(-1);         // throws LocationUsageError: seqno must be a non-negative safe integer, got -1
 * ```
 */
export function checkSeqNo(seqno: SeqNo, what = 'seqno'): void {
  if (!Number.isSafeInteger(seqno) || seqno < 0) {
    throw new LocationUsageError(`${what} must be a non-negative safe integer, got ${String(seqno)}`);
  }
}

/**
 * Argument checks of {@link Consensus.compareAndSet} (contract rule 1).
 *
 * A backend calls it first, so every backend refuses the same misuse with the same message.
 *
 * Example:
 * ```ts
 * async compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult> {
 *   checkCompareAndSetArgs(expected, next);   // throws LocationUsageError for 2 → 2, a bad seqno, non-bytes data
 *   // … the backend's own atomic check-and-insert …
 * }
 * ```
 */
export function checkCompareAndSetArgs(expected: SeqNo | undefined, next: VersionedData): void {
  checkSeqNo(next.seqno, 'new seqno');
  if (expected !== undefined) {
    checkSeqNo(expected, 'expected seqno');
    if (next.seqno <= expected) {
      throw new LocationUsageError(
        `new seqno must be strictly greater than expected (expected ${expected}, new ${next.seqno})`,
      );
    }
  }
  if (!(next.data instanceof Uint8Array)) {
    throw new LocationUsageError('data must be a Uint8Array');
  }
}

/**
 * Preconditions of {@link Consensus.truncate} against the key's current head seqno
 * (`undefined` when the key has no data): throws LocationUsageError when there is no
 * data or `seqno` is beyond the head.
 *
 * Example:
 * ```ts
 * const head = await this.head(key);
 * checkTruncateTarget(key, seqno, head?.seqno);   // throws LocationUsageError: no data, or beyond the head
 * ```
 */
export function checkTruncateTarget(key: string, seqno: SeqNo, headSeqno: SeqNo | undefined): void {
  if (headSeqno === undefined) {
    throw new LocationUsageError(`cannot truncate ${JSON.stringify(key)}: it has no data`);
  }
  if (seqno > headSeqno) {
    throw new LocationUsageError(
      `cannot truncate ${JSON.stringify(key)} to ${seqno}: beyond its head seqno ${headSeqno}`,
    );
  }
}

/**
 * Argument checks of {@link Consensus.scan}: `from` is a SeqNo, `limit` a non-negative integer or
 * Infinity.
 *
 * Example:
 * ```ts
 * checkScanArgs(0, SCAN_ALL);   // ok
 * checkScanArgs(0, -1);         // throws LocationUsageError
 * ```
 */
export function checkScanArgs(from: SeqNo, limit: number): void {
  checkSeqNo(from, 'from');
  if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 0))) {
    throw new LocationUsageError(`limit must be a non-negative integer or Infinity, got ${String(limit)}`);
  }
}
