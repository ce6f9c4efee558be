/**
 * Commit → view lag: for each write this dashboard committed, the time from its
 * acknowledgement (`db.write` resolved with `commitTs`) to the moment the
 * dashboard's `db.subscribe$` pipeline delivered a progress event past `commitTs`,
 * i.e. the first closed frontier whose consistent state includes it.
 *
 * Both events happen in this process, on one clock (`performance.now()`), in either
 * order: with `ack: 'readable'` a write resolves after it was applied, and the
 * pipeline may deliver the frontier before the writer's continuation runs. Then the
 * lag is negative (the view had it first), and is recorded as such, not hidden.
 *
 * Invariants: each acknowledged write is measured exactly once, when both of its
 * events happened; memory is bounded: deliveries older than `keepDeliveriesMs` are
 * dropped (an ack that arrives even later than that after its delivery pairs with the
 * oldest kept one, which understates how early the view was).
 *
 * Example:
 * ```ts
 * const lag = new LagTracker((ms) => samples.push(ms));
 * lag.acknowledged(1005, performance.now());   // db.write resolved with commitTs 1005
 * lag.delivered(1006, performance.now());      // the view reached frontier 1006: one sample
 * ```
 */
export class LagTracker {
  /** Acks not yet covered by a delivered frontier, in arrival order. */
  private pending: { ts: number; at: number }[] = [];
  /** Recent deliveries (frontier, time), frontier increasing. */
  private deliveries: { frontier: number; at: number }[] = [];

  constructor(
    private readonly record: (lagMs: number) => void,
    private readonly keepDeliveriesMs = 5_000,
  ) {}

  /** The highest frontier delivered so far (-Infinity before the first). */
  get frontier(): number {
    return this.deliveries.at(-1)?.frontier ?? -Infinity;
  }

  acknowledged(commitTs: number, at: number): void {
    if (commitTs < this.frontier) {
      // Delivered before the ack: pair it with the first delivery that covered it.
      const first = this.deliveries.find((d) => d.frontier > commitTs)!;
      this.record(first.at - at);
    } else {
      this.pending.push({ ts: commitTs, at });
    }
  }

  delivered(frontier: number, at: number): void {
    if (frontier <= this.frontier) return;
    this.deliveries.push({ frontier, at });
    while (this.deliveries.length > 1 && at - this.deliveries[0]!.at > this.keepDeliveriesMs) this.deliveries.shift();
    if (this.pending.length === 0) return;
    const still: { ts: number; at: number }[] = [];
    for (const p of this.pending) {
      if (p.ts < frontier) this.record(at - p.at);
      else still.push(p);
    }
    this.pending = still;
  }
}

/** p50, p99 and max of `values` (null when empty), rounded to 0.1 ms. */
export function summarize(values: number[]): { n: number; p50: number; p99: number; max: number } | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const round = (x: number) => Math.round(x * 10) / 10;
  return { n: sorted.length, p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1)!) };
}
