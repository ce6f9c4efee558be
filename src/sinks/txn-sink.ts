/**
 * txnSink: commits a stream of transactions through a {@link TxnsHandle}, one
 * acknowledgement per transaction, in order.
 *
 * Each input value is one transaction: a list of `[dataId, key, val, diff]` writes
 * to any registered data shards. The sink commits them one after another at
 * increasing timestamps: by default each at the first free txns timestamp (a taken
 * timestamp is retried at the `current` the commit reports), or at timestamps from
 * a {@link TimestampOracle} when one is given (the oracle is told about every
 * commit, and moved past a timestamp another writer took): the one loop of
 * `coord/timestamp-source.ts`. After a commit it applies it, carries the resulting
 * tidy into the next commit, and emits `{ commitTs }`.
 *
 * Guarantees:
 * - **Atomic and in order.** A transaction is committed whole at one timestamp or
 *   not at all; acknowledgements come in input order with increasing `commitTs`.
 * - **Acknowledged means durable (and applied).** An ack is emitted only after the
 *   commit is durable in the txns shard, and (with the default `ack: 'apply'`)
 *   after it was applied to the data shards, so a snapshot at `commitTs` does not
 *   wait. `ack: 'commit'` acknowledges before applying; the apply follows at once
 *   (before the next commit).
 * - **Never written twice.** A commit is retried only when it definitely did not
 *   happen (a taken timestamp). A storage failure that may have committed stops the
 *   sink with a `PersistStorageError` (`mayHaveHappened: true`) instead of
 *   retrying; the transaction's batches are then kept, since the txns shard may
 *   point at them. If the commit landed but telling the oracle failed, the sink stops
 *   with a `CommittedButUnconfirmed` naming the commit's timestamp (it is durable;
 *   any later apply applies it).
 * - **Source errors.** Transactions received before the error are still committed
 *   and acknowledged, then the error is passed on.
 * - **Unsubscribing.** A commit already in progress runs to the end (it cannot be
 *   stopped halfway safely) and is applied, but nobody is told; transactions
 *   received but not yet started are dropped without writing anything. So after an
 *   unsubscribe, every acknowledged transaction is durable, the one in progress may
 *   or may not be, and later ones were not written.
 * - **Completion.** When the source completes, the sink finishes every received
 *   transaction, commits the last tidy (one more timestamp, unless `tidyOnComplete`
 *   is false), then completes.
 * - **Bad input** (not an array of 4-tuples, an unregistered shard, a key the codec
 *   rejects) errors the stream with the cause; the bad transaction's uploaded
 *   batches are deleted and nothing of it is committed.
 *
 * Example:
 * ```ts
 * const transfers$ = of(
 *   [[checking, 'alice', null, -10], [savings, 'alice', null, 10]],
 *   [[checking, 'bob', null, -5], [checking, 'alice', null, 5]],
 * );
 * transfers$.pipe(txnSink(txns)).subscribe((ack) => console.log(ack.commitTs)); // e.g. 3, 4
 * ```
 */
import { Observable, type OperatorFunction } from 'rxjs';
import type { TimestampOracle } from '../coord/timestamp-oracle.js';
import { commitAtNextTimestamp, nextFreeTxnsTime, oracleTimestamps } from '../coord/timestamp-source.js';
import { invalidArgument, optionalBoolean, optionsObject } from '../persist/argument-checks.js';
import { describeValue } from '../persist/describe-value.js';
import { InvalidUsage } from '../persist/errors.js';
import type { ShardId } from '../persist/shard-id.js';
import { assertTimestamp } from '../persist/time.js';
import { yieldMacrotask } from '../persist/wait.js';
import { Tidy } from '../txn/tidy.js';
import type { Txn, TxnApply } from '../txn/txn.js';
import { TxnsHandle } from '../txn/txns-handle.js';

/**
 * One write of a transaction: `diff` copies of `(key, val)` in data shard `dataId`.
 *
 * Example:
 * ```ts
 * const w: SinkWrite<string, null> = [accounts, 'alice', null, -10];
 * ```
 */
export type SinkWrite<K, V> = readonly [dataId: ShardId, key: K, val: V, diff: number];

/**
 * A transaction: writes committed together at one timestamp.
 *
 * Example:
 * ```ts
 * const transfer: SinkTxn<string, null> = [[accounts, 'alice', null, -10], [accounts, 'bob', null, 10]];
 * of(transfer).pipe(txnSink(txns)).subscribe();
 * ```
 */
export type SinkTxn<K, V> = readonly SinkWrite<K, V>[];

/**
 * What {@link txnSink} emits per transaction, in input order.
 *
 * Example:
 * ```ts
 * transfers$.pipe(txnSink(txns)).subscribe((ack: TxnAck) => console.log('durable at', ack.commitTs));
 * ```
 */
export interface TxnAck {
  /** The time the transaction was committed at; reads as of it (and later) see it. */
  commitTs: number;
}

/**
 * Options of {@link txnSink}.
 *
 * Example:
 * ```ts
 * transfers$.pipe(txnSink(txns, { oracle, ack: 'commit' }));
 * ```
 */
export interface TxnSinkOptions {
  /** Where commit timestamps come from. Default: the next free txns timestamp. */
  oracle?: TimestampOracle;
  /** Without an oracle, the first timestamp tried (default 0: found by retrying). */
  firstTs?: number;
  /** Acknowledge after the apply (default) or right after the commit. */
  ack?: 'apply' | 'commit';
  /** Commit the last tidy when the source completes (default true). */
  tidyOnComplete?: boolean;
}

/**
 * Commits a stream of transactions through `handle`, atomically and in order, one `{ commitTs }`
 * per transaction once it is durable (and applied); a commit that may have happened is never
 * retried.
 *
 * Example:
 * ```ts
 * const transfers$ = of(
 *   [[checking, 'alice', null, -10], [savings, 'alice', null, 10]],
 *   [[checking, 'bob', null, -5], [checking, 'alice', null, 5]],
 * );
 * transfers$.pipe(txnSink(txns)).subscribe((ack) => console.log(ack.commitTs));   // e.g. 3, 4
 * ```
 */
export function txnSink<K, V>(handle: TxnsHandle<K, V>, opts: TxnSinkOptions = {}): OperatorFunction<SinkTxn<K, V>, TxnAck> {
  if (!(handle instanceof TxnsHandle)) {
    throw invalidArgument('txnSink: the first argument', 'a TxnsHandle (from TxnsHandle.open)', handle);
  }
  const options = optionsObject(opts, 'txnSink options');
  const ackMode = options.ack === undefined ? 'apply' : options.ack;
  if (ackMode !== 'apply' && ackMode !== 'commit') {
    throw new InvalidUsage(`txnSink: ack must be 'apply' or 'commit', got ${describeValue(ackMode)}`);
  }
  if (options.firstTs !== undefined) assertTimestamp(options.firstTs, 'txnSink firstTs');
  const oracle = options.oracle;
  if (oracle !== undefined && (typeof oracle !== 'object' || oracle === null || typeof oracle.writeTs !== 'function')) {
    throw invalidArgument('txnSink option oracle', 'a TimestampOracle (or omitted)', oracle);
  }
  const tidyOnComplete = optionalBoolean(options.tidyOnComplete, 'txnSink option tidyOnComplete') ?? true;

  return (source) =>
    new Observable<TxnAck>((subscriber) => {
      const queue: SinkTxn<K, V>[] = [];
      let draining = false;
      let unsubscribed = false;
      let sourceDone = false;
      let sourceError: { err: unknown } | undefined;
      let failed = false;
      let tidy = new Tidy();
      // Per subscription: without an oracle, what it learns is about this sink's commits.
      const timestamps = oracle ? oracleTimestamps(oracle) : nextFreeTxnsTime(options.firstTs ?? 0);
      const commitAtNext = (txn: Txn<K, V>) => commitAtNextTimestamp(timestamps, (ts) => txn.commitAt(handle, ts));

      /** Commits one transaction with the tidy carried so far; returns its time and how to apply it. */
      const commit = async (writes: SinkTxn<K, V>, index: number): Promise<{ commitTs: number; apply: () => Promise<void> }> => {
        const txn = handle.begin();
        try {
          if (!Array.isArray(writes)) {
            throw new InvalidUsage(`txnSink: transaction #${index} is not an array of [dataId, key, val, diff] writes`);
          }
          for (const w of writes) {
            if (!Array.isArray(w) || w.length !== 4) {
              throw new InvalidUsage(`txnSink: transaction #${index} holds ${JSON.stringify(w)}; each write must be [dataId, key, val, diff]`);
            }
            // No promise per row: only a full buffer (a spill) waits.
            if (txn.bufferWrite(w[0], w[1], w[2], w[3])) await txn.spillIfFull();
          }
        } catch (err) {
          await txn.discard();
          throw err;
        }
        txn.tidy(tidy);
        let done: { ts: number; landed: { apply: TxnApply } };
        try {
          done = await commitAtNext(txn);
        } catch (err) {
          // The Txn keeps the batches a commit that may have landed references.
          await txn.discard();
          throw err;
        }
        tidy = new Tidy();
        return {
          commitTs: done.ts,
          apply: async () => {
            tidy.merge(await done.landed.apply.apply(handle));
          },
        };
      };

      const finishTidy = async (): Promise<void> => {
        if (!tidyOnComplete || tidy.retractions.size === 0) return;
        const txn = handle.begin();
        txn.tidy(tidy);
        await commitAtNext(txn);
        tidy = new Tidy();
      };

      let index = 0;
      const drain = async (): Promise<void> => {
        if (draining || failed) return;
        draining = true;
        try {
          while (queue.length > 0 && !unsubscribed) {
            // Taken off the queue before any await: from here on it is in flight.
            const next = queue.shift()!;
            const { commitTs, apply } = await commit(next, index++);
            if (ackMode === 'apply') await apply();
            if (!unsubscribed) subscriber.next({ commitTs });
            // With ack 'commit', apply right after the ack (not when the next
            // transaction arrives): readers wait for the apply.
            if (ackMode === 'commit') await apply();
            // On a synchronous store (SQLite, mem) a commit can complete without ever
            // leaving the microtask queue; yield so timers and I/O are not starved.
            await yieldMacrotask();
          }
          // Unsubscribed: stop quietly (what was committed has been applied above).
          if (unsubscribed) return;
          if (sourceDone) {
            if (sourceError) return subscriber.error(sourceError.err);
            await finishTidy();
            subscriber.complete();
          }
        } catch (err) {
          failed = true;
          queue.length = 0;
          if (!unsubscribed) subscriber.error(err);
        } finally {
          draining = false;
        }
        // Input may have arrived while the last commit finished.
        if (!failed && !unsubscribed && queue.length > 0) void drain();
      };

      const input = source.subscribe({
        next: (txn) => {
          if (failed) return;
          queue.push(txn);
          void drain();
        },
        error: (err) => {
          sourceDone = true;
          sourceError = { err };
          void drain();
        },
        complete: () => {
          sourceDone = true;
          void drain();
        },
      });

      return () => {
        unsubscribed = true;
        queue.length = 0;
        input.unsubscribe();
      };
    });
}
