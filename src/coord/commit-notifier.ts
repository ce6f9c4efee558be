/**
 * The notifier / waiter pair that starts group commits: writers *notify* that a
 * group commit is wanted; the committer loop *waits* until one is wanted and none
 * is running, and gets a permit it holds for the whole commit.
 *
 * Invariants:
 * - At most one permit exists at a time: at most one group commit is in flight.
 * - Notifications collapse: any number of `notify()` calls made while nobody is
 *   waiting for one leave exactly one pending notification. So many triggers during a
 *   running commit lead to exactly one more commit, which drains everything that
 *   arrived meanwhile.
 * - Cancel safety: `ready(signal)` either resolves with a permit *and* consumes one
 *   notification, or rejects (the signal fired) having consumed nothing: the permit is
 *   handed back and a notification is never lost. The permit is taken *before*
 *   waiting for a notification; were it the other way round, a waiter cancelled
 *   while queued for the permit would have eaten a notification nobody acts on.
 *
 * Worked example:
 * ```ts
 * const { notifier, waiter } = commitNotifier();
 * notifier.notify(); notifier.notify();       // one pending notification
 * const permit = await waiter.ready();        // resolves at once, consumes it
 * notifier.notify();                          // stored: a commit is wanted after this one
 * const next = waiter.ready();                // waits: the permit is out
 * permit.release();                           // `next` resolves
 * ```
 */
import { abortError, abortableWait } from '../persist/wait.js';

/** Held for the whole of one group commit; release it when the commit is done. */
export class CommitPermit {
  private released = false;
  /** @internal */
  constructor(private readonly onRelease: () => void) {}

  /** Hands the permit back so the next group commit may start. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease();
  }
}

/** A parked caller; waking it hands over what it waited for (a later abort is ignored). */
type Parked = () => void;

/** The state both sides share. */
class CommitSignal {
  /** A notification nobody has consumed yet. */
  pending = false;
  /** The one holder of the permit, waiting for a notification (if any). */
  notifiedWaiter: Parked | undefined;
  permitOut = false;
  readonly permitQueue: Parked[] = [];

  notify(): void {
    const w = this.notifiedWaiter;
    if (w) {
      this.notifiedWaiter = undefined;
      w();
    } else {
      this.pending = true;
    }
  }

  releasePermit(): void {
    const next = this.permitQueue.shift();
    if (next) {
      // Handed straight over: the permit never looks free to a newcomer in between.
      next();
    } else {
      this.permitOut = false;
    }
  }
}

/** Writers' side: asks for a group commit. Cheap; share it freely. */
export class CommitNotifier {
  /** @internal */
  constructor(private readonly signal: CommitSignal) {}

  /** Asks for a group commit to run (after the one in flight, if any). */
  notify(): void {
    this.signal.notify();
  }
}

/** The committer loop's side. */
export class CommitWaiter {
  /** @internal */
  constructor(private readonly signal: CommitSignal) {}

  /**
   * Resolves with a permit once no group commit is in flight *and* one has been asked
   * for. If `signal` fires first it rejects with the signal's reason, holding no
   * permit and having consumed no notification.
   */
  async ready(opts: { signal?: AbortSignal } = {}): Promise<CommitPermit> {
    const { signal } = opts;
    await this.takePermit(signal);
    const permit = new CommitPermit(() => this.signal.releasePermit());
    try {
      await this.takeNotification(signal);
    } catch (err) {
      permit.release();
      throw err;
    }
    return permit;
  }

  /** Whether a notification is waiting to be consumed (for tests and diagnostics). */
  get hasPendingNotification(): boolean {
    return this.signal.pending;
  }

  private takePermit(signal: AbortSignal | undefined): Promise<void> {
    const s = this.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (!s.permitOut) {
      s.permitOut = true;
      return Promise.resolve();
    }
    return park(signal, (p) => s.permitQueue.push(p), (p) => {
      const at = s.permitQueue.indexOf(p);
      if (at >= 0) s.permitQueue.splice(at, 1);
    });
  }

  private takeNotification(signal: AbortSignal | undefined): Promise<void> {
    const s = this.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (s.pending) {
      s.pending = false;
      return Promise.resolve();
    }
    return park(signal, (p) => (s.notifiedWaiter = p), (p) => {
      if (s.notifiedWaiter === p) s.notifiedWaiter = undefined;
    });
  }
}

/**
 * Parks a caller until whoever `enqueue` handed it to wakes it. If the wait ends
 * otherwise (the signal fired), `dequeue` takes it back out. A caller woken first
 * keeps what it was handed even if the signal fires in the same tick
 * ({@link abortableWait} lets the first outcome win), so nothing handed over is
 * ever dropped.
 */
function park(signal: AbortSignal | undefined, enqueue: (p: Parked) => void, dequeue: (p: Parked) => void): Promise<void> {
  return abortableWait({
    signal,
    register: (wake) => {
      enqueue(wake);
      return () => dequeue(wake);
    },
  });
}

/** A connected notifier / waiter pair. */
export function commitNotifier(): { notifier: CommitNotifier; waiter: CommitWaiter } {
  const signal = new CommitSignal();
  return { notifier: new CommitNotifier(signal), waiter: new CommitWaiter(signal) };
}
