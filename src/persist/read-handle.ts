/**
 * ReadHandle: a leased reader of a shard.
 *
 * The reader holds two things in shard state:
 * - a **since**: the shard's since never passes it, so reads at `asOf >=` the
 *   reader's since stay exact. `downgradeSince(t)` lets compaction advance to `t`.
 * - a **seqno hold**: GC keeps every blob referenced by state versions at or after
 *   it, so parts this reader is fetching are never deleted underneath it.
 * Both are kept alive by a heartbeat every `lease / 4`; a reader whose heartbeats
 * stop (a crashed process) is expired by the next writer after its lease and no
 * longer holds anything back.
 *
 * Reads:
 * - `snapshotAndFetch(asOf)`: the contents as of `asOf`, consolidated, every update
 *   at time `asOf`. Waits while `upper <= asOf`; throws ReadBelowSince if `asOf < since`.
 * - `listen(asOf)`: every update with `t > asOf`, batch by batch, each followed by a
 *   progress event; updates between two progress events lie in `[previous, next)`.
 * - `subscribe(asOf)`: a snapshot (first event, no progress), then a listen.
 *
 * Example:
 * ```ts
 * const r = await client.openLeasedReader(id, codecs);
 * await r.snapshotAndFetch(4);        // [['a', null, 4, 1], …]
 * const l = await r.listen(4);
 * await l.next();                     // [{kind:'updates', …}, {kind:'progress', upper: 9}]
 * ```
 */
import { ColumnConsolidator } from './consolidate.js';
import { ClientClosed, HandleExpired, LeaseExpired, ReadBelowSince } from './errors.js';
import { appendListenUpdates, decodeColumns, fetchPartColumns } from './fetch.js';
import type { ListenReader } from './listen-reader.js';
import { Listen, Subscribe } from './listen.js';
import { partTime, type HollowPart } from './part.js';
import type { ShardContext } from './shard-handle-context.js';
import type { LeasedReaderId } from './shard-id.js';
import { expireLeasedReader, heartbeatLeasedReader } from './state-commands.js';
import type { ShardState } from './state.js';
import { assertTimestamp } from './time.js';
import type { Update } from './update.js';

/**
 * Options of a read that may wait.
 *
 * Example:
 * ```ts
 * await reader.snapshotAndFetch(100, { signal: AbortSignal.timeout(5_000) });
 * ```
 */
export interface ReadOptions {
  /** Stops the wait (for the upper to pass `asOf`) when it fires. */
  signal?: AbortSignal;
}

/** The parts a snapshot reads, pinned against GC until released. */
export interface SnapshotParts {
  readonly asOf: number;
  readonly parts: readonly HollowPart[];
  /** Lets GC move past the state version the parts came from. Call once. */
  release(): void;
}

// Not `implements ListenReader`: the members a Listen uses are internal, stripped from
// the published declarations, where such a clause would then fail to type-check.
// The `satisfies` in listen() checks the same contract.
/**
 * A leased reader of a shard: it holds the shard's since back and pins the parts it reads, kept
 * alive by heartbeats. Open one with `PersistClient.openLeasedReader`.
 *
 * Example:
 * ```ts
 * const r = await client.openLeasedReader(id, codecs);
 * await r.snapshotAndFetch(4);   // the contents as of 4
 * await r.downgradeSince(4);     // lets compaction advance to 4
 * await r.expire();
 * ```
 */
export class ReadHandle<K, V> {
  private sinceValue: number;
  private expired = false;
  private leaseLost = false;
  private consumedByListen = false;
  private readonly inFlight = new Map<number, number>();
  private readonly heartbeatTimer: NodeJS.Timeout;
  private lastDowngradeMs = 0;

  constructor(
    /** Plumbing for the txn layer (a writer on the same shard state); not for users. @hidden */
    readonly ctx: ShardContext<K, V>,
    /** This reader's id in shard state (`"r"` + uuid). */
    readonly readerId: LeasedReaderId,
    since: number,
    /** Why the reader was opened, as given to openLeasedReader (shown by tooling). */
    readonly purpose: string,
    private readonly onClose: (r: ReadHandle<K, V>) => void,
  ) {
    this.sinceValue = since;
    this.heartbeatTimer = setInterval(() => {
      this.heartbeat().catch((err: unknown) => ctx.cfg.logger.warn({ err, reader: readerId }, 'reader heartbeat failed'));
    }, Math.max(1, ctx.cfg.readerLeaseDurationMs / 4));
    this.heartbeatTimer.unref();
  }

  /** The shard this reader reads. */
  get shardId(): string {
    return this.ctx.shardId;
  }

  /** This reader's since: reads at `asOf >= since()` are exact. */
  since(): number {
    return this.sinceValue;
  }

  /** Whether `expire()` was called: the handle can no longer read. */
  get isExpired(): boolean {
    return this.expired;
  }

  /** Whether the lease was lost (heartbeats stopped for longer than it): its holds may have been dropped. */
  get isLeaseLost(): boolean {
    return this.leaseLost;
  }

  /** @internal */
  checkLive(op: string): void {
    if (this.ctx.machine.closing) {
      throw new ClientClosed(`the PersistClient of reader ${this.readerId} was closed; cannot ${op}. Open a new client.`);
    }
    if (this.expired) {
      throw new HandleExpired(`reader ${this.readerId} of ${this.ctx.shardId} was expired; cannot ${op}. Open a new reader.`);
    }
    if (this.leaseLost) {
      throw new LeaseExpired(
        `reader ${this.readerId} of ${this.ctx.shardId} lost its lease (its heartbeats stopped for longer than ` +
          `${this.ctx.cfg.readerLeaseDurationMs} ms); open a new reader`,
      );
    }
  }

  /** Pins `state` against GC while parts from it are read. */
  private pin(state: ShardState): () => void {
    const s = state.seqno;
    this.inFlight.set(s, (this.inFlight.get(s) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = this.inFlight.get(s)! - 1;
      if (n === 0) this.inFlight.delete(s);
      else this.inFlight.set(s, n);
    };
  }

  /** The seqno GC may advance to on our behalf: the oldest pinned version, else the latest known. */
  private holdCandidate(): number {
    let min = this.ctx.machine.state.seqno;
    for (const s of this.inFlight.keys()) min = Math.min(min, s);
    return min;
  }

  /** Heartbeats the lease and moves the seqno hold (and optionally the since) forward. */
  async heartbeat(since?: number): Promise<void> {
    if (this.expired) return;
    const hold = this.holdCandidate();
    const { result } = await this.ctx.machine.apply(
      'heartbeat_reader',
      (s) => heartbeatLeasedReader(s, this.readerId, Date.now(), since, hold),
      { confirmNoop: true },
    );
    if (result.kind === 'expired') {
      this.leaseLost = true;
      clearInterval(this.heartbeatTimer);
      return;
    }
    this.sinceValue = result.since;
  }

  /** Lets the shard compact up to `since` (never moves backwards). Waits until state reflects it. */
  async downgradeSince(since: number): Promise<void> {
    this.checkLive('downgrade its since');
    assertTimestamp(since, 'since');
    await this.heartbeat(since);
    this.lastDowngradeMs = Date.now();
  }

  /** Like downgradeSince, but at most once per `readerSinceDowngradeIntervalMs`; returns whether it ran. */
  async maybeDowngradeSince(since: number): Promise<boolean> {
    if (since <= this.sinceValue) return false;
    if (Date.now() - this.lastDowngradeMs < this.ctx.cfg.readerSinceDowngradeIntervalMs) return false;
    await this.downgradeSince(since);
    return true;
  }

  /** @internal For a Listen: asks for `since` in the background; a failure is logged, the listen goes on. */
  downgradeSinceLazily(since: number): void {
    this.maybeDowngradeSince(since).catch((err: unknown) =>
      this.ctx.cfg.logger.warn({ err, reader: this.readerId }, 'listen since downgrade failed'),
    );
  }

  /** @internal For a Listen: the latest state this process knows, loading it on first use. */
  async currentState(): Promise<ShardState> {
    const machine = this.ctx.machine;
    return machine.loaded ? machine.state : ((await machine.refresh()) ?? machine.state);
  }

  /** @internal For a Listen: waits (abortably) for a state newer than `seqno`. */
  waitForNewerThan(seqno: number, signal?: AbortSignal): Promise<ShardState> {
    return this.ctx.machine.waitForNewerThan(seqno, signal);
  }

  /** @internal For a Listen: the updates of `parts` of `state` it delivers, fetched in order with `state` pinned against GC meanwhile. */
  async fetchListenUpdates(state: ShardState, parts: readonly HollowPart[], asOf: number, frontier: number): Promise<Update<K, V>[]> {
    const release = this.pin(state);
    try {
      const out: Update<K, V>[] = [];
      for (const part of parts) {
        const cols = await fetchPartColumns(this.ctx.blob, this.ctx.cfg, this.ctx.shardId, part);
        appendListenUpdates(cols, part, asOf, frontier, this.ctx.codecs, out);
      }
      return out;
    } finally {
      release();
    }
  }


  private checkAsOf(asOf: number, state: ShardState): void {
    assertTimestamp(asOf, 'asOf');
    const since = Math.max(this.sinceValue, state.meta.since);
    if (asOf < since) throw new ReadBelowSince(asOf, since);
  }

  /**
   * The parts holding the contents as of `asOf`, pinned against GC. Waits (abortably)
   * until the upper passes `asOf`.
   */
  async snapshot(asOf: number, opts: ReadOptions = {}): Promise<SnapshotParts> {
    this.checkLive('snapshot');
    // Before asOf is compared with anything: a symbol or bigint would throw a TypeError there.
    assertTimestamp(asOf, 'asOf');
    if (this.consumedByListen) throw new HandleExpired('this reader was handed to a listen; snapshot through a new reader');
    // Everything below a known upper is sealed: a cached state whose upper is past
    // asOf already answers exactly, without a round trip to Consensus.
    const machine = this.ctx.machine;
    let state = machine.loaded && machine.state.meta.upper > asOf ? machine.state : ((await machine.refresh()) ?? machine.state);
    this.checkAsOf(asOf, state);
    while (state.meta.upper <= asOf) {
      state = await this.ctx.machine.waitForNewerThan(state.seqno, opts.signal);
      this.checkLive('snapshot');
    }
    const release = this.pin(state);
    const parts: HollowPart[] = [];
    for (const b of state.spine) {
      if (b.batch.lower > asOf) break;
      parts.push(...b.batch.parts);
    }
    return { asOf, parts, release };
  }

  /** The shard's contents as of `asOf`: consolidated, every update at time `asOf`. */
  async snapshotAndFetch(asOf: number, opts: ReadOptions = {}): Promise<Update<K, V>[]> {
    const snap = await this.snapshot(asOf, opts);
    try {
      // Parts stream into one consolidator, straight from their stored columns: memory
      // holds the distinct updates, not every part, and no view or object per update.
      const consolidator = new ColumnConsolidator();
      for (const part of snap.parts) {
        opts.signal?.throwIfAborted();
        const c = await fetchPartColumns(this.ctx.blob, this.ctx.cfg, this.ctx.shardId, part);
        for (let i = 0; i < c.count; i++) {
          // NaN (dropped by the part's keep bounds) fails the comparison.
          if (partTime(part, c.times[i]!) <= asOf) consolidator.add(c, i, asOf, c.diffs[i]!);
        }
      }
      return decodeColumns(consolidator.finish(), this.ctx.codecs);
    } finally {
      snap.release();
    }
  }

  /**
   * Starts a listen at `asOf`. The listen takes over this reader (see ListenReader for
   * the contract): expire the listen to release it.
   */
  async listen(asOf: number): Promise<Listen<K, V>> {
    this.checkLive('listen');
    assertTimestamp(asOf, 'asOf');
    const state = (await this.ctx.machine.refresh()) ?? this.ctx.machine.state;
    this.checkAsOf(asOf, state);
    this.consumedByListen = true;
    return new Listen(this satisfies ListenReader<K, V>, asOf);
  }

  /** A snapshot at `asOf` followed by a listen from `asOf`. */
  async subscribe(asOf: number): Promise<Subscribe<K, V>> {
    const snapshot = await this.snapshotAndFetch(asOf);
    const listen = await this.listen(asOf);
    return new Subscribe(snapshot, listen);
  }

  /** Releases the lease: the reader stops holding back the since and GC. */
  async expire(): Promise<void> {
    if (this.expired) return;
    this.expired = true;
    clearInterval(this.heartbeatTimer);
    this.onClose(this);
    if (this.leaseLost) return;
    await this.ctx.machine.apply('expire_reader', (s) => expireLeasedReader(s, this.readerId), { confirmNoop: false });
  }
}
