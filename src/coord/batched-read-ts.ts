/**
 * BatchedReadTs: many concurrent `readTs()` callers share few queries.
 *
 * Reading the read timestamp is the hottest oracle operation (every read of every
 * collection asks for it), and against a shared database each ask is a round trip.
 * Callers that arrive together can share one query, as long as the answer each one
 * gets is still *fresh*: it must reflect every `applyWrite` that finished before that
 * caller called `read()`.
 *
 * Invariants:
 * - **Freshness (linearizability):** every caller gets the result of a query that
 *   STARTED AFTER the caller called `read()`. So a caller never gets the answer of a
 *   query that was already in flight when it arrived — that query may have read the
 *   row before an `applyWrite` the caller already saw complete.
 * - **Coalescing:** at most one query runs at a time, and at most one more is queued.
 *   Callers arriving while a query runs all join the queued one, so N concurrent
 *   callers cost at most 2 queries (the one they found running, plus one for all of
 *   them).
 * - A failed query rejects exactly the callers that shared it; the queued query still
 *   runs afterwards (it may succeed where the first failed).
 *
 * Worked example (a query takes 10 ms):
 * ```
 * t=0   read() #1   → nothing running: query A starts, #1 waits for A
 * t=1   read() #2   → A is running: queue query B, #2 waits for B
 * t=2   read() #3…#100 → B is queued (not started): they join B
 * t=10  A returns 5 to #1; B starts (after every one of #2…#100 arrived)
 * t=20  B returns 7 to #2…#100                     → 100 callers, 2 queries
 * ```
 *
 * ```ts
 * const batched = new BatchedReadTs(() => queryReadTsFromDatabase());
 * const [a, b] = await Promise.all([batched.read(), batched.read()]);
 * batched.queries;   // 1 or 2, never one per caller
 * ```
 */
import type { Timestamp } from '../persist/time.js';

export class BatchedReadTs {
  /** The query currently running, if any. */
  private running: Promise<Timestamp> | undefined;
  /** The query that starts when `running` ends; everyone arriving meanwhile joins it. */
  private queued: Promise<Timestamp> | undefined;
  private queryCount = 0;
  private callCount = 0;

  constructor(private readonly query: () => Promise<Timestamp>) {}

  /** Number of queries issued so far. */
  get queries(): number {
    return this.queryCount;
  }

  /** Number of `read()` calls so far. */
  get calls(): number {
    return this.callCount;
  }

  /** The read timestamp, from a query that starts no earlier than this call. */
  read(): Promise<Timestamp> {
    this.callCount++;
    // `queued` has not started yet (it is cleared the moment it starts), so joining it
    // is fresh for this caller.
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    const afterRunning = this.running.then(
      () => undefined,
      () => undefined,
    );
    this.queued = afterRunning.then(() => {
      this.queued = undefined;
      return this.start();
    });
    return this.queued;
  }

  private start(): Promise<Timestamp> {
    this.queryCount++;
    let started: Promise<Timestamp>;
    try {
      started = this.query();
    } catch (err) {
      // A query that throws synchronously (say, a closed oracle) still reports through
      // the promise, like an async one.
      started = Promise.reject(err);
    }
    const running: Promise<Timestamp> = started.finally(() => {
      if (this.running === running) this.running = undefined;
    });
    this.running = running;
    return running;
  }
}
