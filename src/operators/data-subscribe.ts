/**
 * dataSubscribe: the txns-progress operator (spec §2.10). It turns the physical
 * events of a txn data shard into events with correct *logical* progress.
 *
 * A data shard's physical upper moves only when a transaction touching it is
 * applied, but every commit to the txns shard advances the *logical* upper of every
 * registered shard. A reader that only followed the physical upper would stall on
 * an idle shard, and could not tell "nothing was written at 7" from "7 is not
 * applied yet". This operator follows the shard's remap entries from the process's
 * shared {@link TxnsRead} as well and reports progress up to the logical upper
 * whenever the physical input has delivered everything that precedes it.
 *
 * Invariants:
 * - Updates pass through unchanged and undelayed (only those at or past `until`
 *   are dropped).
 * - Progress is the physical input's progress, lifted to the latest remap entry's
 *   `logicalUpper` once the physical progress has reached its `physicalUpper`
 *   ({@link TxnsProgress}). It strictly increases; every update emitted between
 *   two progress events `p` and `q` has `p <= ts < q`.
 * - It completes once progress reaches `until` (emitting `until` last), when the
 *   physical input completes (the shard was closed or the source had its own
 *   `until`), and errors when either input errors.
 * - On subscribe it unblocks the physical read at `asOf` (waits until the latest
 *   commit before `asOf` is applied and fills the shard's physical upper to where
 *   it is known empty), so a source opened at `asOf` does not wait forever.
 * - Unsubscribing (or completing, or erroring) closes the remap subscription, the
 *   physical source subscription and every wait; the shared TxnsRead stops following
 *   the txns shard when nobody else needs it.
 *
 * Worked example (the spec's): the shard was last written at 3, the txns upper is 6,
 * `asOf` 5.
 * ```
 * shardSubscribe$(client, d0, codecs, { asOf: 5 }).pipe(dataSubscribe({ client, txnsId, dataId: d0, codecs, asOf: 5 }))
 *   → { updates: [… at 5] }, { progress: 6 }   once the physical input passes 3 (filled to 6)
 *   → { progress: 8 }                           a txn not touching d0 committed at 7
 *   → { updates: [… at 9] }, { progress: 10 }   a txn touching d0 committed at 9 and was applied
 * ```
 */
import { Observable, type MonoTypeOperatorFunction } from 'rxjs';
import type { PersistClient } from '../persist/client.js';
import type { ShardCodecs } from '../persist/codec.js';
import { InvalidUsage } from '../persist/errors.js';
import { assertShardId, type ShardId } from '../persist/shard-id.js';
import { updatesBelow, type Update } from '../persist/update.js';
import { TxnsProgress } from '../txn/txns-progress.js';
import type { DataRemapSubscription } from '../txn/data-remap.js';
import { TxnsRead } from '../txn/txns-read.js';
import { checkReadOptions, shardSubscribe$, type ShardEvent } from '../sources/shard-source.js';
import { operatorObserver } from './operator-observer.js';

/**
 * Options of {@link dataSubscribe} and {@link dataSubscribe$}: which data shard of which txns
 * shard, read as of when.
 *
 * Example:
 * ```ts
 * const opts: DataSubscribeOptions<string, null> = { client, txnsId, dataId, codecs, asOf: 0, until: 100 };
 * ```
 */
export interface DataSubscribeOptions<K, V> {
  /** The client the shards are read through. */
  client: PersistClient;
  /** The txns shard the data shard is registered with. */
  txnsId: ShardId;
  /** The data shard to follow. */
  dataId: ShardId;
  /** The data shard's codecs (a writer is opened to unblock the read at `asOf`). */
  codecs: ShardCodecs<K, V>;
  /** The time the physical input reads as of. */
  asOf: number;
  /** Complete once progress reaches this. Default: never. */
  until?: number;
  /** The TxnsRead to follow (default: the process's shared one for this client and txns shard). */
  txnsRead?: TxnsRead;
}

/**
 * Lifts a data shard's physical events (read at `asOf`) to logical progress.
 *
 * Use it on a {@link shardSubscribe$} of a txn data shard, read at the same `asOf`, so
 * an idle shard still reports progress (every txns commit moves its logical upper).
 *
 * Example:
 * ```ts
 * shardSubscribe$(client, d0, codecs, { asOf: 5 })
 *   .pipe(dataSubscribe({ client, txnsId, dataId: d0, codecs, asOf: 5 }))
 *   .subscribe((ev) => console.log(ev));   // progress follows the txns shard, not only d0's writes
 * ```
 */
export function dataSubscribe<K, V>(opts: DataSubscribeOptions<K, V>): MonoTypeOperatorFunction<ShardEvent<K, V>> {
  checkDataSubscribeOptions('dataSubscribe', opts);
  const { client, txnsId, dataId, codecs, asOf } = opts;
  const until = opts.until ?? Infinity;
  return (source) =>
    new Observable<ShardEvent<K, V>>((subscriber) => {
      const abort = new AbortController();
      const tracker = new TxnsProgress(dataId, until);
      let remaps: DataRemapSubscription | undefined;
      // Progress is only news once it passes asOf: the snapshot covers everything up to there.
      let emitted = asOf;

      const stop = (): void => {
        abort.abort();
        remaps?.close();
      };
      const fail = (err: unknown): void => {
        if (abort.signal.aborted) return;
        stop();
        subscriber.error(err);
      };
      const emitProgress = (): void => {
        const f = tracker.frontier;
        if (f > emitted) {
          emitted = f;
          subscriber.next({ kind: 'progress', upper: f });
        }
        if (tracker.finished) {
          stop();
          subscriber.complete();
        }
      };
      const emitUpdates = (updates: Update<K, V>[]): void => {
        const kept = updatesBelow(updates, until);
        if (kept.length > 0) subscriber.next({ kind: 'updates', updates: kept });
      };

      if (until <= asOf) {
        // Nothing is at a time >= asOf and < until.
        subscriber.complete();
        return;
      }

      const followRemaps = async (): Promise<void> => {
        const read = await TxnsRead.forShard(client, txnsId, opts.txnsRead, 'dataSubscribe');
        remaps = await read.subscribeRemapsUnblocked(client, dataId, codecs, asOf, { signal: abort.signal });
        // Unsubscribed while subscribing: the teardown ran before `remaps` was set.
        if (abort.signal.aborted) return remaps.close();
        while (!tracker.finished) {
          const entry = await remaps.next({ signal: abort.signal });
          tracker.onRemap(entry);
          emitProgress();
        }
      };

      const physical = source.subscribe(
        operatorObserver<ShardEvent<K, V>>(subscriber, {
          next: (ev) => {
            if (tracker.finished) return;
            if (ev.kind === 'updates') {
              emitUpdates(ev.updates);
            } else {
              tracker.onPhysicalProgress(ev.upper);
              emitProgress();
            }
          },
          error: fail,
          complete: () => {
            if (abort.signal.aborted) return;
            stop();
            subscriber.complete();
          },
        }),
      );
      // A source that finished (or failed) synchronously needs no remaps.
      if (!abort.signal.aborted && !subscriber.closed) followRemaps().catch(fail);

      return () => {
        stop();
        physical.unsubscribe();
      };
    });
}

/**
 * `shardSubscribe$` of a data shard piped through `dataSubscribe`: its contents with logical
 * progress.
 *
 * Example:
 * ```ts
 * dataSubscribe$(client, txnsId, d0, { codecs, asOf: 0 }).pipe(materialize())
 *   .subscribe((view) => console.log(view.upper, view.size));
 * ```
 */
export function dataSubscribe$<K, V>(
  client: PersistClient,
  txnsId: ShardId,
  dataId: ShardId,
  opts: Omit<DataSubscribeOptions<K, V>, 'client' | 'txnsId' | 'dataId'>,
): Observable<ShardEvent<K, V>> {
  checkDataSubscribeOptions('dataSubscribe$', { ...opts, client, txnsId, dataId });
  // The data shard's reader starts at the critical since: txn-wal holds it for readers.
  return shardSubscribe$(client, dataId, opts.codecs, { asOf: opts.asOf, until: opts.until, purpose: 'data subscribe', useCriticalSince: true }).pipe(
    dataSubscribe({ ...opts, client, txnsId, dataId }),
  );
}

function checkDataSubscribeOptions(fn: string, opts: Partial<DataSubscribeOptions<unknown, unknown>> | undefined): void {
  checkReadOptions(fn, opts?.dataId, opts);
  if (!opts!.client) throw new InvalidUsage(`${fn}: the client option is required (the PersistClient that reads the shards)`);
  if (!opts!.codecs) throw new InvalidUsage(`${fn}: the codecs option is required (the data shard's { key, val } codecs)`);
  assertShardId(opts!.txnsId);
}
