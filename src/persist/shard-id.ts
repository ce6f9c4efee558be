/**
 * Identifiers of shards and of the handles registered in shard state.
 *
 * A ShardId is 16 random bytes printed as `"s" + uuid` (e.g.
 * `s0a1b2c3d-…`). Writer, leased-reader and critical-reader ids use the prefixes
 * `w`, `r` and `c`. The prefix makes a misplaced id fail loudly instead of silently
 * naming the wrong thing.
 */
import { randomUUID } from 'node:crypto';
import { describeValue } from './describe-value.js';
import { InvalidArgument } from './errors.js';

/**
 * The id of a shard: `"s"` followed by a lowercase uuid (from {@link newShardId}).
 *
 * Example:
 * ```ts
 * const id: ShardId = newShardId();   // 's0a1b2c3d-…'
 * ```
 */
export type ShardId = string;
export type WriterId = string;
export type LeasedReaderId = string;
export type CriticalReaderId = string;

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const SHARD_ID = new RegExp(`^s${UUID}$`);
const CRITICAL_ID = new RegExp(`^c${UUID}$`);

/**
 * A fresh random shard id. Shards are created on first open, so a new id is all a new shard needs.
 *
 * Example:
 * ```ts
 * const id = newShardId();
 * const w = await client.openWriter(id, { key: Codecs.string, val: Codecs.unit });
 * ```
 */
export function newShardId(): ShardId {
  return 's' + randomUUID();
}

/**
 * Whether `s` is a well-formed shard id (use it to check ids read from config or a URL).
 *
 * Example:
 * ```ts
 * isShardId(newShardId());   // true
 * isShardId('accounts');     // false
 * ```
 */
export function isShardId(s: unknown): s is ShardId {
  return typeof s === 'string' && SHARD_ID.test(s);
}

export function assertShardId(s: unknown, what = 'shard id'): asserts s is ShardId {
  if (!isShardId(s)) {
    throw new InvalidArgument(
      `${what} must look like "s" followed by a lowercase uuid (e.g. from newShardId()), got ${describeValue(s)}`,
    );
  }
}

export function newWriterId(): WriterId {
  return 'w' + randomUUID();
}

export function newLeasedReaderId(): LeasedReaderId {
  return 'r' + randomUUID();
}

export function assertCriticalReaderId(s: unknown): asserts s is CriticalReaderId {
  if (typeof s !== 'string' || !CRITICAL_ID.test(s)) {
    throw new InvalidArgument(
      `critical reader id must look like "c" followed by a lowercase uuid (e.g. CONTROLLER_CRITICAL_SINCE), got ${describeValue(s)}`,
    );
  }
}

/** The critical reader id every txn-wal handle shares (it fences older controllers). */
export const CONTROLLER_CRITICAL_SINCE: CriticalReaderId = 'c00000000-1111-2222-3333-444444444444';
