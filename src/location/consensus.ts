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

export interface VersionedData {
  readonly seqno: SeqNo;
  readonly data: Uint8Array;
}

export type CaSResult = 'committed' | 'mismatch';

export interface Consensus {
  head(key: string): Promise<VersionedData | undefined>;
  compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult>;
  scan(key: string, from: SeqNo, limit: number): Promise<VersionedData[]>;
  truncate(key: string, seqno: SeqNo): Promise<number>;
  listKeys(): Promise<string[]>;
  /** Releases handles (files, connections). Further calls are misuse. */
  close(): Promise<void>;
}

/**
 * The largest `limit` worth passing to {@link Consensus.scan}: "every version".
 * `Infinity` is accepted too and means the same.
 */
export const SCAN_ALL = Number.MAX_SAFE_INTEGER;

/**
 * Throws LocationUsageError unless `seqno` is a non-negative safe integer.
 * Every backend calls this before touching storage, so a bad SeqNo is rejected the
 * same way everywhere (Postgres' bigint would accept up to 2^63 - 1, SQLite up to
 * 2^63 - 1, JS numbers lose precision above 2^53: the common range is the safe one).
 */
export function checkSeqNo(seqno: SeqNo, what = 'seqno'): void {
  if (!Number.isSafeInteger(seqno) || seqno < 0) {
    throw new LocationUsageError(`${what} must be a non-negative safe integer, got ${String(seqno)}`);
  }
}

/** Argument checks of {@link Consensus.compareAndSet} (contract rule 1). */
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

/** Argument checks of {@link Consensus.scan}: `from` is a SeqNo, `limit` a non-negative integer or Infinity. */
export function checkScanArgs(from: SeqNo, limit: number): void {
  checkSeqNo(from, 'from');
  if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 0))) {
    throw new LocationUsageError(`limit must be a non-negative integer or Infinity, got ${String(limit)}`);
  }
}
