/**
 * Compare-and-append on the txns shard (spec §2.5). Every operation that writes the
 * txns shard (register, forget, forgetAll, commit) writes its rows at one timestamp
 * `ts` through `appendAtTs`, which owns the loop they share:
 *
 * 1. catch the cache up to the txns upper it knows; if `ts` is below it, the time is
 *    taken: return `{ ok: false, current }`, the least time that would work;
 * 2. let the operation prepare its rows against the cache at that upper;
 * 3. compare-and-append them at `[upper, ts + 1)` — so the operation consumes `ts`
 *    even when it writes no rows;
 * 4. on success, hand the rows to the cache (`TxnsCache.pushOwnWrite`): they are all
 *    the shard holds in `[upper, ts + 1)`, so the cache need not read them back;
 * 5. on a mismatch someone else wrote: count a retry, let the operation undo its
 *    preparation, and go to 1 with the upper the mismatch reported.
 *
 * With `expectUpper` (a read-write transaction that validated its reads and writes
 * against every commit below that upper), step 1 first waits for the cache to reach
 * it, and any upper past it — at step 1 or in a mismatch — returns
 * `{ ok: false, current }` instead of retrying: a commit in between could conflict,
 * so the caller must validate again up to `current`. The rows then land with
 * nothing committed between `expectUpper` and `ts`.
 *
 * Invariant: a mismatch reports an upper past the one we expected (uppers only
 * grow); anything else is an InvariantViolation, never a silent loop.
 *
 * Example (txns upper 4): `appendAtTs(txns, 6, op, prepare)` prepares at upper 4 and
 * appends at `[4, 7)`. Had another handle written `[4, 5)` first, the mismatch says
 * 5, the operation prepares again at 5 and appends at `[5, 7)`. Had it written up to
 * 8, the result is `{ ok: false, current: 8 }`.
 *
 * Every attempt and its outcome is logged at debug level through the client's pino
 * logger (silent by default).
 */
import type { Logger } from 'pino';
import { InvariantViolation } from '../persist/errors.js';
import { isClosed } from '../persist/time.js';
import type { Update } from '../persist/update.js';
import type { WriteHandle } from '../persist/write-handle.js';
import type { TxnOpMetrics } from './metrics.js';
import type { TxnsCache } from './txns-cache.js';
import type { TxnsCodec, TxnsEntry } from './txns-codec.js';

/** What `appendAtTs` needs of a txns handle. */
export interface TxnsAppender {
  readonly txnsWrite: WriteHandle<string, Uint8Array>;
  readonly txnsCodec: TxnsCodec;
  readonly cache: TxnsCache;
  readonly log: Logger;
}

/** One attempt of an operation: the rows it writes at its timestamp, and how to undo it. */
export interface TxnsAppendAttempt<R> {
  /** Names the attempt in the debug log. */
  name: string;
  /** The txns entries and their diffs; every one is written at the operation's timestamp. */
  entries: [TxnsEntry, number][];
  /** What the operation returns when these rows land. */
  landed: R;
  /** The rows did not land (another writer moved the upper); called before the retry. */
  onMismatch?(): void;
  /** The append threw, so the rows may or may not have landed (`err` says); called before rethrowing. */
  onThrow?(err: unknown): void;
}

export type AppendAtTsOutcome<R> = { ok: true; landed: R } | { ok: false; current: number };

/** Writes the rows `prepare` gives at `ts`, retrying on mismatches; see the module docs. */
export async function appendAtTs<R>(
  txns: TxnsAppender,
  ts: number,
  op: TxnOpMetrics,
  prepare: (upper: number) => Promise<TxnsAppendAttempt<R>>,
  expectUpper?: number,
): Promise<AppendAtTsOutcome<R>> {
  let upper = Math.max(txns.txnsWrite.sharedUpper(), expectUpper ?? 0);
  for (;;) {
    upper = await txns.cache.updateGe(upper);
    if (ts < upper || (expectUpper !== undefined && upper > expectUpper)) return { ok: false, current: upper };
    const attempt = await prepare(upper);
    const rows = attempt.entries.map(([entry, diff]): Update<string, Uint8Array> => {
      const [k, v] = txns.txnsCodec.encode(entry);
      return [k, v, ts, diff];
    });
    let res: { ok: true } | { ok: false; current: number };
    try {
      res = await smallCaa(attempt.name, txns.log, txns.txnsWrite, rows, upper, ts + 1);
    } catch (err) {
      attempt.onThrow?.(err);
      throw err;
    }
    if (res.ok) {
      // Our rows are all the txns shard holds in [upper, ts + 1): the cache takes
      // them as written instead of reading the part back.
      await txns.cache.pushOwnWrite(rows, ts, upper);
      return { ok: true, landed: attempt.landed };
    }
    op.retry();
    if (!(upper < res.current)) {
      throw new InvariantViolation(`${attempt.name} mismatch reported upper ${res.current}, not past the expected ${upper}`);
    }
    attempt.onMismatch?.();
    if (expectUpper !== undefined) return { ok: false, current: res.current };
    upper = res.current;
  }
}

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
