/**
 * Apply: makes committed transactions readable by appending their batches to the
 * data shards (spec §2.3 `apply_le`, §2.5).
 *
 * - `applyLeLocked(port, ts)`: every commit (and register/forget fill) at times
 *   `<= ts`, in time order per data shard, shards in parallel. Waits until the txns
 *   upper passes `ts`. Idempotent: a commit whose data upper is already past its time
 *   was applied by someone else and is skipped (data-append.ts). Returns the Tidy
 *   retracting every applied batch pointer (also those others applied but nobody
 *   tidied yet).
 * - `applyEagerLeLocked(port, ts)`: the same, then moves every shard registered at
 *   `ts` to a physical upper `> ts`, so plain persist readers need not wait for the
 *   next commit to it.
 * - {@link TxnApply}: what a successful commit returns, to apply just that far.
 *
 * Both functions run under the handle's lock (`port.exclusive`); the handle's
 * `applyLe` / `applyEagerLe` and the applies inside register and forget call them.
 *
 * Example: commits at 3 (d0) and 5 (d0, d1) are unapplied; `applyLeLocked(port, 4)`
 * appends the batches of 3 to d0 and returns their tidy; d1 is not touched. After
 * `applyLeLocked(port, 5)` both shards have uppers 6.
 */
import type { ShardId } from '../persist/shard-id.js';
import { applyCaa, emptyCaa } from './data-append.js';
import { intervalContains } from './data-times.js';
import { Tidy, type Retraction } from './tidy.js';
import { encodeTs } from './timestamp-bytes.js';
import type { Unapplied } from './txns-cache-state.js';
import type { TxnsHandle } from './txns-handle.js';
import type { TxnsPort } from './txns-port.js';

/**
 * The result of a successful commit: apply it to make it readable.
 *
 * Example:
 * ```ts
 * const res = await txn.commitAt(txns, 7);
 * if (res.ok) {
 *   res.apply.commitTs;                      // 7
 *   const tidy = await res.apply.apply(txns);   // now readable at 7
 * }
 * ```
 */
export class TxnApply {
  constructor(
    /** The time the transaction committed at. */
    readonly commitTs: number,
    private readonly empty: boolean,
  ) {}

  /** True when the commit wrote no data (only tidy work, or nothing): its apply may be skipped. */
  isEmpty(): boolean {
    return this.empty;
  }

  /** Applies everything committed up to this commit (`txns.applyLe(commitTs)`); returns the tidy. */
  apply<K, V>(handle: TxnsHandle<K, V>): Promise<Tidy> {
    return handle.applyLe(this.commitTs);
  }

  /** Like `apply`, and also advances every registered data shard's physical upper past the commit. */
  applyEager<K, V>(handle: TxnsHandle<K, V>): Promise<Tidy> {
    return handle.applyEagerLe(this.commitTs);
  }
}

/** Applies every commit `<= ts`, counted as an apply_le operation (the applies inside register and forget too, as in the reference). */
export function applyLeLocked<K, V>(port: TxnsPort<K, V>, ts: number): Promise<Tidy> {
  return port.metrics.applyLe.run(() => applyUpTo(port, ts));
}

/** `applyLeLocked`, then every shard registered at `ts` gets a physical upper `> ts`; counted as apply_eager_le. */
export function applyEagerLeLocked<K, V>(port: TxnsPort<K, V>, ts: number): Promise<Tidy> {
  return port.metrics.applyEagerLe.run(async () => {
    const tidy = await applyUpTo(port, ts);
    const shards = [...port.cache.state.datas].filter(([, t]) => intervalContains(t.lastReg(), ts)).map(([id]) => id);
    await Promise.all(
      shards.map((dataId) =>
        port.dataWriters.withApplyWriter(dataId, (apply) => emptyCaa(`data ${dataId} eager upper`, apply.writer, ts, port.log)),
      ),
    );
    return tidy;
  });
}

async function applyUpTo<K, V>(port: TxnsPort<K, V>, ts: number): Promise<Tidy> {
  port.log.debug({ txns: port.txnsId, ts }, 'apply_le');
  await port.cache.updateGt(ts);
  updateGauges(port);
  const byShard = new Map<ShardId, Unapplied[]>();
  for (const u of port.cache.unapplied()) {
    if (u.ts > ts) break;
    const list = byShard.get(u.dataId);
    if (list) list.push(u);
    else byShard.set(u.dataId, [u]);
  }
  const perShard = await Promise.all(
    [...byShard].map(async ([dataId, work]) => {
      const retractions: Retraction[] = [];
      await port.dataWriters.withApplyWriter(dataId, async (apply) => {
        for (const u of work) {
          if (u.kind === 'register-forget') {
            await emptyCaa(`data ${dataId} register/forget fill`, apply.writer, u.ts, port.log);
          } else {
            await applyCaa(apply, u.raws, u.ts, port.log, port.applyEnsureSchemaMatch);
            const tsBytes = encodeTs(u.ts);
            for (const raw of u.raws) retractions.push({ raw, ts: tsBytes, dataId });
          }
        }
      });
      return retractions;
    }),
  );
  port.cache.markRegisterApplied(ts);
  return Tidy.of(perShard.flat());
}

/** The unapplied gauges, from the cache as of this apply. */
function updateGauges<K, V>(port: TxnsPort<K, V>): void {
  const s = port.cache.state;
  port.metrics.dataShardCount.set(s.datas.size);
  port.metrics.batchUnappliedCount.set(s.unappliedBatches.size);
  let bytes = 0;
  for (const b of s.unappliedBatches.values()) bytes += b.raw.byteLength;
  port.metrics.batchUnappliedBytes.set(bytes);
  port.metrics.batchUnappliedMinTs.set(s.minUnappliedTs());
}
