/**
 * Reader lag: how far each collection's live readers (subscriptions, snapshots and
 * the transactions' indexes) trail the txns shard, as two gauges per collection.
 *
 * Definitions, for a reader whose frontier is `f` (its last progress event, or its
 * `asOf` before the first one: everything below `f` has been delivered) and the
 * txns progress `p` this process has seen (the shared TxnsRead's: every txns row
 * below `p` is known here):
 * - `txnwal_reader_frontier_lag{collection}` = `max(0, p − f)`, in timestamps: how
 *   much committed time the reader has yet to deliver.
 * - `txnwal_reader_frontier_lag_seconds{collection}`: 0 when `f >= p`; otherwise the
 *   wall time since this process learned that time `f` was complete, i.e. since the
 *   txns progress it follows first moved past `f`. That is how long the oldest data
 *   the reader is about to deliver has been visible here and not delivered. It is a
 *   lower bound on the time since the commit (the txns shard's change reaches this
 *   process after a wake-up hint or a poll), and for a reader that starts far in the
 *   past it counts only from when this process started following the txns shard.
 * Each series is the largest lag of the collection's live readers, over every
 * database on the registry; a collection with no live reader has no series.
 *
 * How the seconds are known: while any reader is live, the tracker waits on the
 * TxnsRead for each step of its progress and records `(progress, wall time)` in a
 * history; a reader at `f` looks up the first entry past `f`. The history keeps only
 * what a live reader can still ask for (entries at or below every live frontier are
 * dropped) and at most {@link HISTORY_LIMIT} entries (beyond that the oldest go, and
 * the seconds of a reader that far behind become a lower bound). It costs one
 * promise and one array push per txns progress step while readers are live, and
 * nothing once none is (the wait is aborted, so the TxnsRead can stop following).
 *
 * Example (txns progress 10, seen at 12:00:00; 15 at 12:00:03; now 12:00:05):
 * a reader at 12 → lag 3 timestamps, 2 s (12 became complete at 12:00:03);
 * a reader at 15 → 0 and 0.
 */
import type { TxnsRead } from '../txn/txns-read.js';
import { gaugeFamily, type GaugeFamily } from '../persist/metric-families.js';
import type { Metrics } from '../persist/metrics.js';

/** The most (progress, time) entries kept for the seconds lag. */
export const HISTORY_LIMIT = 4096;

/**
 * The reader-lag gauges of a {@link Metrics} object (see the module docs for their definitions).
 *
 * ```ts
 * const stop = ReaderMetrics.of(metrics).lag.source({ collection: 'accounts' }, () => 0);   // how ReaderLag reports
 * ```
 */
export class ReaderMetrics {
  /**
   * `txnwal_reader_frontier_lag{collection}` (timestamps): the txns progress minus the reader's
   * frontier, the largest over the collection's live readers.
   */
  readonly lag: GaugeFamily<'collection'>;
  /**
   * `txnwal_reader_frontier_lag_seconds{collection}` (seconds): how long the oldest undelivered
   * data has been visible here, the largest over the collection's live readers.
   */
  readonly lagSeconds: GaugeFamily<'collection'>;

  /** The reader part of `metrics`, made on first use. */
  static of(metrics: Metrics): ReaderMetrics {
    return metrics.part('reader', (m) => new ReaderMetrics(m));
  }

  private constructor(m: Metrics) {
    this.lag = gaugeFamily(
      m,
      'txnwal_reader_frontier_lag',
      "Timestamps between the txns progress this process has seen and a reader's frontier; the largest over the collection's live readers",
      ['collection'],
      'max',
    );
    this.lagSeconds = gaugeFamily(
      m,
      'txnwal_reader_frontier_lag_seconds',
      "Wall time since the txns progress seen here first passed a reader's frontier (0 when caught up); the largest over the collection's live readers",
      ['collection'],
      'max',
    );
  }
}

/** One live reader's frontier, as the tracker sees it. */
export interface TrackedReader {
  /** Its latest progress (everything below has been delivered). */
  advance(frontier: number): void;
  /** The reader ended (completed, failed or unsubscribed). Idempotent. */
  close(): void;
}

interface Entry {
  frontier: number;
}

/** The reader lag of one database: its live readers and the history of its txns progress. */
export class ReaderLag {
  private readonly live = new Set<Entry>();
  /** `(progress, ms)` pairs, progress increasing: the txns progress was `>= progress` from `ms` on. */
  private progress: number[] = [];
  private seenAt: number[] = [];
  private following: AbortController | undefined;

  constructor(
    private readonly txnsRead: TxnsRead,
    private readonly metrics: ReaderMetrics,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Starts tracking a reader of `collection` at `asOf`; its gauges count it until `close()`. */
  track(collection: string, asOf: number): TrackedReader {
    const entry: Entry = { frontier: asOf };
    this.live.add(entry);
    if (!this.following) this.follow();
    const labels = { collection };
    const removeLag = this.metrics.lag.source(labels, () => Math.max(0, this.txnsRead.progress - entry.frontier));
    const removeSeconds = this.metrics.lagSeconds.source(labels, () => this.secondsBehind(entry.frontier));
    let open = true;
    return {
      advance: (frontier) => {
        entry.frontier = frontier;
      },
      close: () => {
        if (!open) return;
        open = false;
        removeLag();
        removeSeconds();
        this.live.delete(entry);
        if (this.live.size === 0) this.stopFollowing();
      },
    };
  }

  /** The live reader furthest behind in seconds (see the module docs), if any trails at all. */
  mostBehind(): { frontier: number; seconds: number } | undefined {
    let worst: { frontier: number; seconds: number } | undefined;
    for (const e of this.live) {
      const seconds = this.secondsBehind(e.frontier);
      if (seconds > 0 && (!worst || seconds > worst.seconds)) worst = { frontier: e.frontier, seconds };
    }
    return worst;
  }

  /** Stops following the txns progress (the database is closing). */
  close(): void {
    this.stopFollowing();
  }

  /** The seconds a reader at `frontier` trails by (see the module docs). */
  secondsBehind(frontier: number): number {
    if (this.txnsRead.progress <= frontier) return 0;
    const at = this.firstPast(frontier);
    // Past everything recorded (progress moved but its step is not recorded yet): just now.
    const since = at === undefined ? this.nowMs() : at;
    return Math.max(0, this.nowMs() - since) / 1000;
  }

  /** The time of the first recorded progress past `frontier`; the oldest entry when all are past it. */
  private firstPast(frontier: number): number | undefined {
    const p = this.progress;
    let lo = 0;
    let hi = p.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (p[mid]! > frontier) hi = mid;
      else lo = mid + 1;
    }
    return lo < p.length ? this.seenAt[lo] : undefined;
  }

  private record(progress: number): void {
    const last = this.progress[this.progress.length - 1];
    if (last !== undefined && progress <= last) return;
    this.progress.push(progress);
    this.seenAt.push(this.nowMs());
    if (this.progress.length > 256) this.trim();
  }

  /** Drops what no live reader can ask for, then caps the history. */
  private trim(): void {
    let min = Infinity;
    for (const e of this.live) min = Math.min(min, e.frontier);
    // An entry at or below every live frontier is never the first one past a frontier; the last one is kept.
    let drop = 0;
    while (drop < this.progress.length - 1 && this.progress[drop]! <= min) drop++;
    drop = Math.max(drop, this.progress.length - HISTORY_LIMIT);
    if (drop > 0) {
      this.progress = this.progress.slice(drop);
      this.seenAt = this.seenAt.slice(drop);
    }
  }

  private follow(): void {
    const ctrl = new AbortController();
    this.following = ctrl;
    void (async () => {
      let p = this.txnsRead.progress;
      this.record(p);
      try {
        while (!ctrl.signal.aborted) {
          p = await this.txnsRead.updateGt(p, { signal: ctrl.signal });
          this.record(p);
        }
      } catch {
        // Aborted, or the TxnsRead failed or closed: its readers fail with that error
        // themselves; the gauges keep the last known history.
      } finally {
        if (this.following === ctrl) this.following = undefined;
      }
    })();
  }

  private stopFollowing(): void {
    this.following?.abort();
    this.following = undefined;
    this.progress = [];
    this.seenAt = [];
  }
}
