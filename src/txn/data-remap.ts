/**
 * The remap of one data shard: what the txns shard says about where the shard's
 * logical upper is, relative to its physical upper (spec §2.9, `DataRemapEntry`).
 *
 * A {@link DataRemapEntry} `{ physicalUpper, logicalUpper }` says that
 * `[physicalUpper, logicalUpper)` of the shard is definitely empty: a reader whose
 * physical frontier reached `physicalUpper` may report progress up to
 * `logicalUpper` without reading anything more.
 *
 * A {@link DataRemapSubscription} is the stream of entries for one shard, fed by a
 * `TxnsRead` (`TxnsRead.subscribeRemaps`). Invariants:
 * - Entries never go back: neither upper of a new entry is below the previous one's.
 * - Each entry supersedes the ones before it, so `next()` returns the newest entry
 *   not yet returned and skips older unread ones; a slow reader never falls behind.
 * - The first entry is `{ emptyTo, emptyTo }` of the snapshot at `asOf`: the read at
 *   `asOf` is complete once the physical frontier reaches `emptyTo`.
 *
 * Example (the shard was last written at 3, the txns upper is 6, `asOf` 5):
 * ```ts
 * const sub = await read.subscribeRemaps(d0, 5);
 * await sub.next();   // { physicalUpper: 6, logicalUpper: 6 }  (the fill to emptyTo)
 * // a txn not touching d0 commits at 7:
 * await sub.next();   // { physicalUpper: 6, logicalUpper: 8 }
 * sub.close();
 * ```
 */
import { InvariantViolation } from '../persist/errors.js';
import type { ShardId } from '../persist/shard-id.js';
import { abortableWait } from '../persist/wait.js';
import type { DataSnapshot } from './data-snapshot.js';

/**
 * `[physicalUpper, logicalUpper)` of a data shard is known to be empty.
 *
 * Example:
 * ```ts
 * const { physicalUpper, logicalUpper } = await sub.next();
 * if (physicalFrontier >= physicalUpper) reportProgress(logicalUpper);
 * ```
 */
export interface DataRemapEntry {
  /** Where the shard's physical upper must be for the entry to apply. */
  physicalUpper: number;
  /** The logical upper: `[physicalUpper, logicalUpper)` holds no data. */
  logicalUpper: number;
}

/** How a pending `next()` is settled from outside. */
interface PendingNext {
  resolve: (entry: DataRemapEntry) => void;
  reject: (err: unknown) => void;
}

/**
 * The remap entries of one data shard. `next()` returns the newest entry not yet
 * returned, waiting if there is none; older unread entries are skipped, since each
 * entry supersedes the ones before it.
 *
 * Get one from `TxnsRead.subscribeRemaps(dataId, asOf)`; close it when done.
 *
 * Example:
 * ```ts
 * const sub = await read.subscribeRemaps(d0, 5);
 * const entry = await sub.next();   // the first entry: { physicalUpper: emptyTo, logicalUpper: emptyTo }
 * sub.close();
 * ```
 */
export class DataRemapSubscription {
  private latest: DataRemapEntry;
  private delivered: DataRemapEntry | undefined;
  private waiting: PendingNext | undefined;
  private error: unknown;
  private closed = false;

  /** @internal Created by `TxnsRead.subscribeRemaps`; `onClose` unsubscribes it there. */
  constructor(
    /** The data shard it follows. */
    readonly dataId: ShardId,
    /** The snapshot at `asOf` it started from. */
    readonly snapshot: DataSnapshot,
    private readonly onClose: (sub: DataRemapSubscription) => void,
  ) {
    this.latest = { physicalUpper: snapshot.emptyTo, logicalUpper: snapshot.emptyTo };
  }

  /** The time it started from. */
  get asOf(): number {
    return this.snapshot.asOf;
  }

  /** @internal The newest entry. */
  get current(): DataRemapEntry {
    return this.latest;
  }

  /** @internal */
  push(e: DataRemapEntry): void {
    if (e.physicalUpper < this.latest.physicalUpper || e.logicalUpper < this.latest.logicalUpper) {
      throw new InvariantViolation(`remap of ${this.dataId} went backwards`);
    }
    this.latest = e;
    this.wake();
  }

  /** @internal */
  fail(err: unknown): void {
    this.error = err;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  }

  /** Whether an entry newer than the last one returned is available without waiting. */
  get hasNext(): boolean {
    return this.delivered !== this.latest;
  }

  /** The newest entry not yet returned, waiting (abortably) for one. */
  next(opts: { signal?: AbortSignal } = {}): Promise<DataRemapEntry> {
    if (this.hasNext) {
      this.delivered = this.latest;
      return Promise.resolve(this.latest);
    }
    if (this.error !== undefined) return Promise.reject(this.error as Error);
    if (this.closed) return Promise.reject(new InvariantViolation('this remap subscription was closed'));
    if (this.waiting) return Promise.reject(new InvariantViolation('DataRemapSubscription.next() is already pending'));
    return abortableWait<DataRemapEntry>({
      signal: opts.signal,
      register: (resolve, reject) => {
        const pending: PendingNext = { resolve, reject };
        this.waiting = pending;
        return () => {
          if (this.waiting === pending) this.waiting = undefined;
        };
      },
    });
  }

  private wake(): void {
    const w = this.waiting;
    if (!w) return;
    this.waiting = undefined;
    this.delivered = this.latest;
    w.resolve(this.latest);
  }

  /** Stops receiving entries. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(new InvariantViolation('this remap subscription was closed'));
    this.onClose(this);
  }
}
