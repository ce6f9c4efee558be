/**
 * Rejoin: the one reconnect loop of the wake-up channels (the `file:` socket and the
 * Postgres LISTEN connection): attempts to (re)connect, never two at once, with a
 * jittered backoff between failed ones.
 *
 * Invariants:
 * - `now()` starts an attempt, or joins the one in flight; it never rejects (an
 *   attempt that throws counts as failed). A failed attempt schedules the next one;
 *   a successful one resets the backoff and calls `onUp`.
 * - At most one attempt runs and at most one timer is pending. The timer is
 *   `unref`'d: a channel waiting to reconnect never keeps the process alive.
 * - Delays double from `initialMs` to `clampMs`, each multiplied by a random factor in
 *   [0.5, 1.5) so the clients of a server that just went away do not retry in step.
 * - After `stop()` no attempt starts; `stop()` resolves once the one in flight ended.
 *
 * Example:
 * ```ts
 * const rejoin = new Rejoin(() => tryConnect(), () => watchers.notifyAll(), { initialMs: 10, clampMs: 1000 });
 * await rejoin.now();          // first attempt; retries in the background if it failed
 * socket.on('close', () => void rejoin.now());
 * await rejoin.stop();
 * ```
 */
export interface RejoinBackoff {
  initialMs: number;
  clampMs: number;
}

export class Rejoin {
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delayMs: number;
  private stopped = false;

  constructor(
    private readonly attempt: () => Promise<boolean>,
    private readonly onUp: () => void,
    private readonly backoff: RejoinBackoff,
  ) {
    this.delayMs = backoff.initialMs;
  }

  now(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight ??= this.attempt()
      .catch(() => false)
      .then((ok) => {
        this.inFlight = undefined;
        if (ok && !this.stopped) {
          this.delayMs = this.backoff.initialMs;
          this.onUp();
        } else this.later();
      });
    return this.inFlight;
  }

  private later(): void {
    if (this.stopped || this.timer || this.inFlight) return;
    const ms = this.delayMs * (0.5 + Math.random());
    this.delayMs = Math.min(this.delayMs * 2, this.backoff.clampMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.now();
    }, ms);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }
}
