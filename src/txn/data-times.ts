/**
 * DataTimes: what the txns cache remembers about one data shard.
 *
 * - `registered`: the intervals `[registerTs, forgetTs]` (both inclusive) during
 *   which the shard was in the txns set. Increasing, non-overlapping, never empty;
 *   only the last may be open (no forget yet).
 * - `writes`: the distinct increasing times at which batches were committed to it.
 *
 * Both are compacted by the cache to what reads can still need (see
 * `TxnsCacheState.compactDataTimes`), so they stay short.
 */
export interface RegisteredInterval {
  registerTs: number;
  forgetTs: number | undefined;
}

export function intervalContains(r: RegisteredInterval, ts: number): boolean {
  return r.registerTs <= ts && (r.forgetTs === undefined || ts <= r.forgetTs);
}

export class DataTimes {
  readonly registered: RegisteredInterval[] = [];
  readonly writes: number[] = [];

  lastReg(): RegisteredInterval {
    const r = this.registered[this.registered.length - 1];
    if (!r) throw new Error('invariant violation: a known data shard has at least one registration');
    return r;
  }

  firstReg(): RegisteredInterval {
    const r = this.registered[0];
    if (!r) throw new Error('invariant violation: a known data shard has at least one registration');
    return r;
  }

  /** The latest time at which the shard's physical upper is known to have been moved by txn-wal. */
  latestPhysicalTs(): number {
    const last = this.lastReg();
    let ts = last.registerTs;
    if (last.forgetTs !== undefined) ts = Math.max(ts, last.forgetTs);
    const w = this.writes[this.writes.length - 1];
    if (w !== undefined) ts = Math.max(ts, w);
    return ts;
  }

  /** Returns a description of the first broken invariant, or undefined. */
  validate(): string | undefined {
    for (let i = 1; i < this.writes.length; i++) {
      if (!(this.writes[i - 1]! < this.writes[i]!)) return `write ts ${this.writes[i]} out of order after ${this.writes[i - 1]}`;
    }
    if (this.registered.length === 0) return 'no registration';
    let prev = -1;
    let w = 0;
    for (let i = 0; i < this.registered.length; i++) {
      const r = this.registered[i]!;
      if (r.registerTs < prev) return `register ts ${r.registerTs} out of order after ${prev}`;
      if (r.forgetTs !== undefined) {
        if (!(r.registerTs <= r.forgetTs)) return `register ts ${r.registerTs} after forget ts ${r.forgetTs}`;
        prev = r.forgetTs;
      } else if (i !== this.registered.length - 1) {
        return `registration at ${r.registerTs} is open but not the last`;
      }
      // Writes before this interval must have been inside an earlier one.
      while (w < this.writes.length && intervalContains(r, this.writes[w]!)) w++;
      if (w < this.writes.length && this.writes[w]! < r.registerTs) {
        return `write ts ${this.writes[w]} is outside every registration`;
      }
    }
    if (w < this.writes.length && this.lastReg().forgetTs !== undefined) {
      return `write ts ${this.writes[w]} is after the shard was forgotten`;
    }
    return undefined;
  }
}
