/**
 * Compare-and-append on the txns shard (spec §2.5): every txn-wal operation that
 * writes the txns shard (register, forget, forgetAll, commit) writes its rows at one
 * timestamp through this.
 *
 * - `smallCaa`: one compare-and-append of a few rows, logged at debug level with
 *   the rows; a mismatch returns the current upper.
 *
 * Every attempt and its outcome is logged at debug level through the client's pino
 * logger (silent by default).
 */
import type { Logger } from 'pino';
import { InvariantViolation } from '../persist/errors.js';
import { isClosed } from '../persist/time.js';
import type { Update } from '../persist/update.js';
import type { WriteHandle } from '../persist/write-handle.js';

/** Compare-and-append of `updates` at `[upper, newUpper)`; a mismatch returns the current upper. */
export async function smallCaa<K, V>(
  name: string,
  log: Logger,
  writer: WriteHandle<K, V>,
  updates: Update<K, V>[],
  upper: number,
  newUpper: number,
): Promise<{ ok: true } | { ok: false; current: number }> {
  log.debug({ shard: writer.shardId, upper, newUpper, updates: updates.length }, `CaA ${name} [${upper},${newUpper})`);
  const res = await writer.compareAndAppend(updates, upper, newUpper);
  if (res.ok) {
    log.debug({ shard: writer.shardId }, `CaA ${name} [${upper},${newUpper}) success`);
    return res;
  }
  if (isClosed(res.current)) throw new InvariantViolation(`${name}: shard ${writer.shardId} was closed`);
  log.debug({ shard: writer.shardId, current: res.current }, `CaA ${name} [${upper},${newUpper}) mismatch`);
  return res;
}
