/**
 * Machine: one process's view of one shard's state, and the only way to change it.
 *
 * State lives in Consensus as a chain of versions, each the diff from the one
 * before, with full copies (rollups) in Blob; state-versions.ts reads and writes that
 * chain. To change state, the machine runs a command (a pure function,
 * state-commands.ts) on its cached state and writes the resulting version with a
 * compare-and-set that expects the cached seqno. On a mismatch another process got
 * there first: the machine reads the newer versions and runs the command again. So
 * every state change is linearized by Consensus.
 *
 * In-process, commands on one shard run one at a time (a mutex), so handles sharing a
 * client do not make each other retry; waiters (listens, snapshots at future times)
 * are woken as soon as a new state is committed here.
 *
 * Other processes' changes reach waiters through the location's wake-up channel
 * (location/state-changes.ts): after every committed compare-and-set the machine
 * publishes (shard, seqno), and a waiter that hears a hint about its shard refreshes
 * from Consensus at once. A hint only decides *when* a waiter looks, never what it
 * sees, so the poll stays as the fallback: while the channel is up a waiter polls
 * every `listenPoll.clampMs` (in case a hint was lost); while it is down, or when the
 * location has no channel, it polls as it always did, from `listenPoll.initialMs`
 * backing off to `clampMs`. Invariant: a hint that arrives while a refresh that began
 * before it is in flight is not consumed by that refresh (`hintsSeen` counts hints,
 * `hintsCovered` the hints the last finished refresh began after), so a hint landing
 * between "read Consensus" and "start waiting" still wakes the next wait.
 *
 * After a commit the machine runs maintenance in the background: compaction of the
 * spine, a rollup every `rollupThreshold` versions, and GC every `gcMinVersions`.
 * Maintenance failures are logged, never thrown: they must not become unhandled
 * rejections.
 *
 * Maintenance rides along with writes: a state change maintenance wants (a merge
 * result, a rollup's record) goes through `applyDeferred`, which queues the command
 * and runs it inside the *next* state write of this machine, before that write's own
 * command, in the same compare-and-set; only if no write comes within
 * {@link RIDE_WAIT_MS} (or at once with `awaitMaintenance`, or while maintenance is
 * being flushed) does it write alone. So a shard written steadily pays no
 * compare-and-set of its own for compaction, and a commit never waits for one.
 * Riders are pure commands like any other: on a mismatch they re-run on the newer
 * state with the write they ride on; a rider that throws fails alone, never the
 * write; a write that may have landed may have landed its riders too (each rider
 * learns `uncertain`).
 *
 * Worked example: append A commits (seqno 10) and starts a compaction; the merge
 * output is written to Blob and its `merge_res` queued. Append B's command runs on
 * state 10 as `merge_res` then B, and seqno 11 holds both: one compare-and-set for
 * two changes, and compaction never held B's lock.
 *
 * Outcomes: `apply` reports `uncertain` when any compare-and-set attempt of the
 * operation may have landed, and once one may have, every error the operation throws
 * is a PersistStorageError with `mayHaveHappened: true` (blob-deletion.ts says what
 * callers may then delete: nothing they wrote).
 *
 * Closing: once the client closes the machine, pending and later waits for a newer
 * state reject with ClientClosed instead of polling forever.
 *
 * Example:
 * ```ts
 * const { result } = await machine.apply('register_schema', (s) => registerSchema(s, 'string', 'unit'));
 * ```
 */
import type { Blob } from '../location/blob.js';
import type { Consensus } from '../location/consensus.js';
import type { StateChanges } from '../location/state-changes.js';
import type { PersistConfig } from './config.js';
import { deleteUnreferenced, mayHaveLanded, type WriteOutcome } from './blob-deletion.js';
import { ClientClosed, CodecMismatch, InvariantViolation, PersistStorageError } from './errors.js';
import type { PersistMetrics } from './persist-metrics.js';
import { addRollup, type CmdOutcome } from './state-commands.js';
import type { ShardState } from './state.js';
import { StateVersions } from './state-versions.js';
import { mayHaveHappenedError } from './storage-retry.js';
import { Mutex, abortableWait } from './wait.js';

/**
 * How long a maintenance command waits for a write to ride along with before it
 * writes alone. Short: it only bounds how long a merged spine (and its already
 * written output parts) waits to be recorded when the shard stops being written.
 */
const RIDE_WAIT_MS = 20;

/** The name of the write riders make alone. */
const LONE_WRITE = 'maintenance';

/** A maintenance command queued to ride along with the next write (see the module docs). */
interface Rider {
  name: string;
  cmd: (s: ShardState) => CmdOutcome<unknown>;
  resolve(r: ApplyResult<unknown>): void;
  reject(err: unknown): void;
  /** When it was queued (`performance.now()`): it writes alone once it waited the ride wait. */
  queuedAt: number;
  /** The outcome of its latest run inside a write attempt. */
  last?: CmdOutcome<unknown>;
  /** It threw: it is skipped in later attempts and rejected with this. */
  failed?: { err: unknown };
}

/** Maintenance work a machine can run after commits; installed by the client. */
export interface Maintenance {
  compact(machine: Machine): Promise<void>;
  gc(machine: Machine): Promise<void>;
}

export interface ApplyOptions {
  /**
   * When the command changes nothing on cached state, re-read Consensus and ask
   * again before believing it (default true). A mismatch seen on stale state is not
   * a mismatch.
   */
  confirmNoop?: boolean;
}

/** What `Machine.apply` returns: the command's result and what is known about the write. */
export interface ApplyResult<R> extends WriteOutcome {
  result: R;
  /** This call committed a new state. */
  changed: boolean;
}

export class Machine {
  private cached: ShardState | undefined;
  private readonly lock = new Mutex();
  private readonly waiters = new Set<() => void>();
  private refreshing: Promise<ShardState | undefined> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private running = { compact: false, gc: false, rollup: false };
  private compactAgain = false;
  /** Maintenance commands waiting for the next write (applyDeferred). */
  private riders: Rider[] = [];
  /** Wakes the lone writer's wait early (flush), while it waits. */
  private rideNow: (() => void) | undefined;
  /** The lone writer (writeRidersAlone) is running; there is at most one. */
  private loneWriterRunning = false;
  /** A flush asked the lone writer to write what is queued without waiting further. */
  private loneWriteNow = false;
  /** flushMaintenance calls in progress: riders then write at once. */
  private flushing = 0;
  /** @internal How long riders wait for a write ({@link RIDE_WAIT_MS}); tests lengthen it to make riding certain. */
  rideWaitDefaultMs = RIDE_WAIT_MS;
  /** Waits reject from now on (the client is closing); commands still run until `closed`. */
  private waitsClosed = false;
  private closed = false;
  /** Hints about this shard that named a newer seqno than the cached one (or "look again"). */
  private hintsSeen = 0;
  /** The hints the last finished refresh has accounted for. */
  private hintsCovered = 0;
  /** Stops this machine's watch on the channel (set while watching). */
  private unwatch: (() => void) | undefined;
  /** The shard's stored versions and rollups (GC reads them through this too). */
  readonly versions: StateVersions;

  constructor(
    readonly shardId: string,
    readonly blob: Blob,
    readonly consensus: Consensus,
    readonly cfg: PersistConfig,
    private readonly maintenance: Maintenance,
    /** Where state writes, compaction and rollups are counted. */
    readonly metrics: PersistMetrics,
    /** The location's wake-up channel; without one, waits only poll. */
    private readonly stateChanges?: StateChanges,
  ) {
    this.versions = new StateVersions({ shardId, blob, consensus, cfg });
  }

  /** The cached state (may be behind other processes, never ahead of Consensus). */
  get state(): ShardState {
    if (!this.cached) throw new InvariantViolation(`shard ${this.shardId} state read before it was loaded`);
    return this.cached;
  }

  get loaded(): boolean {
    return this.cached !== undefined;
  }

  private setState(s: ShardState | undefined): void {
    if (!s) return;
    if (this.cached && this.cached.seqno >= s.seqno) return;
    this.cached = s;
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  /** A hint from the channel: wake the waiters unless it names a state we already have. */
  private onHint(seqno: number | undefined): void {
    if (seqno !== undefined && this.cached && seqno <= this.cached.seqno) return;
    this.hintsSeen++;
    this.wakeWaiters();
  }

  /** Creates the shard if it does not exist yet, and checks the codecs it was created with. */
  async open(keyCodec: string, valCodec: string): Promise<ShardState> {
    let state = this.cached ?? (await this.refresh());
    while (!state) {
      // Cache our first state; after a lost race refresh already cached what it read.
      state = await this.versions.createInitial(keyCodec, valCodec, () => this.refresh());
      this.setState(state);
    }
    if (state.meta.keyCodec !== keyCodec || state.meta.valCodec !== valCodec) {
      throw new CodecMismatch(
        `shard ${this.shardId} was created with codecs (key: ${state.meta.keyCodec}, val: ${state.meta.valCodec}) ` +
          `but was opened with (key: ${keyCodec}, val: ${valCodec}); open it with the codecs it was created with`,
      );
    }
    return state;
  }

  /** Reads versions newer than the cached state from Consensus. Concurrent callers share one read. */
  refresh(): Promise<ShardState | undefined> {
    if (!this.refreshing) {
      const mark = this.hintsSeen;
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = undefined;
        this.hintsCovered = Math.max(this.hintsCovered, mark);
      });
    }
    return this.refreshing;
  }

  private async doRefresh(): Promise<ShardState | undefined> {
    this.setState(this.cached ? await this.versions.catchUp(this.cached) : await this.versions.rebuild());
    return this.cached;
  }

  /**
   * Runs `cmd` against the latest state and commits its result, retrying on
   * conflicts. Commands re-run after a conflict or an indeterminate failure, so they
   * must tolerate seeing their own earlier success.
   */
  async apply<R>(
    name: string,
    cmd: (s: ShardState) => CmdOutcome<R>,
    opts: ApplyOptions = {},
  ): Promise<ApplyResult<R>> {
    if (this.closed) throw new ClientClosed(`shard ${this.shardId}: ${name} after the client was closed`);
    const out = await this.lock.run(() => this.applyWithRiders(name, cmd, opts.confirmNoop ?? true));
    // A write of ours that may have landed may have changed state too.
    if (out.changed || out.uncertain) {
      const work = this.maintain(out.state);
      if (this.cfg.awaitMaintenance) await work;
    }
    return out;
  }

  /**
   * Runs maintenance command `cmd` inside the next state write of this machine, or
   * alone after {@link RIDE_WAIT_MS} (see the module docs). Resolves like `apply`
   * with `confirmNoop: false`: `changed` says whether this command's change was
   * committed, `uncertain` whether the write it went in may have landed.
   */
  applyDeferred<R>(name: string, cmd: (s: ShardState) => CmdOutcome<R>): Promise<ApplyResult<R>> {
    if (this.closed) return Promise.reject(new ClientClosed(`shard ${this.shardId}: ${name} after the client was closed`));
    return new Promise<ApplyResult<R>>((resolve, reject) => {
      this.riders.push({ name, cmd, resolve: resolve as (r: ApplyResult<unknown>) => void, reject, queuedAt: performance.now() });
      if (!this.loneWriterRunning) void this.writeRidersAlone();
      else if (this.rideWaitMs() === 0) {
        this.loneWriteNow = true;
        this.rideNow?.();
      }
    });
  }

  private rideWaitMs(): number {
    return this.cfg.awaitMaintenance || this.flushing > 0 || this.waitsClosed ? 0 : this.rideWaitDefaultMs;
  }

  /**
   * The one lone writer: while riders are queued, waits until the oldest has waited
   * its ride wait, then writes what no write took meanwhile, alone.
   */
  private async writeRidersAlone(): Promise<void> {
    this.loneWriterRunning = true;
    try {
      for (;;) {
        const oldest = this.riders[0];
        if (!oldest) return;
        const left = this.rideWaitMs() === 0 ? 0 : this.rideWaitMs() - (performance.now() - oldest.queuedAt);
        if (left > 0 && !this.loneWriteNow) {
          await abortableWait({
            timeoutMs: left,
            register: (wake) => {
              this.rideNow = wake;
              return () => (this.rideNow = undefined);
            },
          });
          continue;
        }
        this.loneWriteNow = false;
        // Errors reach the riders themselves (applyWithRiders rejects them).
        await this.lock
          .run(() => this.applyWithRiders(LONE_WRITE, (): CmdOutcome<undefined> => ({ result: undefined }), false))
          .catch(() => undefined);
      }
    } finally {
      this.loneWriterRunning = false;
    }
  }

  /**
   * `applyLocked` of `cmd` with every queued rider run first inside each attempt, in
   * queue order; settles the riders with the write's outcome.
   */
  private async applyWithRiders<R>(name: string, cmd: (s: ShardState) => CmdOutcome<R>, confirmNoop: boolean): Promise<ApplyResult<R>> {
    const riders = this.riders.splice(0);
    if (riders.length === 0) return this.applyLocked(name, name, cmd, confirmNoop);
    const withRiders = (state: ShardState): CmdOutcome<R> => {
      let s = state;
      let ridersChanged = false;
      for (const r of riders) {
        if (r.failed) continue;
        try {
          r.last = r.cmd(s);
        } catch (err) {
          r.failed = { err };
          continue;
        }
        if (r.last.next) {
          s = r.last.next;
          ridersChanged = true;
        }
      }
      const out = cmd(s);
      return out.next || !ridersChanged ? out : { result: out.result, next: s };
    };
    let out: ApplyResult<R>;
    try {
      out = await this.applyLocked(`${name} (with ${riders.map((r) => r.name).join(', ')})`, name, withRiders, confirmNoop);
    } catch (err) {
      // A write that certainly did not land took its riders nowhere: they wait for the
      // next write (or write alone). Otherwise they share the write's fate.
      const requeue = name !== LONE_WRITE && !mayHaveLanded(err);
      for (const r of riders) {
        if (r.failed) r.reject(r.failed.err);
        else if (requeue) this.riders.push(r);
        else r.reject(err);
      }
      if (requeue && this.riders.length > 0 && !this.loneWriterRunning) void this.writeRidersAlone();
      throw err;
    }
    for (const r of riders) {
      if (r.failed) r.reject(r.failed.err);
      else {
        const changed = out.changed && r.last?.next !== undefined;
        r.resolve({ result: r.last?.result, state: out.state, changed, uncertain: out.uncertain });
      }
    }
    return out;
  }

  /** `name` describes the write (logs, errors); `command` is its metrics label, a fixed name. */
  private async applyLocked<R>(
    name: string,
    command: string,
    cmd: (s: ShardState) => CmdOutcome<R>,
    confirmNoop: boolean,
  ): Promise<ApplyResult<R>> {
    let uncertain = false;
    const cas = this.metrics.stateCas(command);
    try {
      let state = this.cached ?? (await this.refresh());
      if (!state) throw new InvariantViolation(`shard ${this.shardId}: ${name} before the shard was created`);
      let fresh = false;
      let uncertainRounds = 0;
      for (let attempt = 1; ; attempt++) {
        const out = cmd(state);
        if (!out.next) {
          if (fresh || !confirmNoop) return { result: out.result, state, changed: false, uncertain };
          state = (await this.refresh())!;
          fresh = true;
          continue;
        }
        const next: ShardState = {
          ...out.next,
          seqno: state.seqno + 1,
          walltimeMs: Date.now(),
          hostname: this.cfg.hostname,
        };
        this.cfg.logger.debug({ shard: this.shardId, cmd: name, seqno: next.seqno, attempt }, 'state cas');
        const res = await this.versions.compareAndSet(state, next, name);
        (res === 'committed' ? cas.committed : res === 'mismatch' ? cas.mismatch : cas.unknown).inc();
        if (res === 'committed') {
          this.setState(next);
          this.stateChanges?.publish(this.shardId, next.seqno);
          return { result: out.result, state: next, changed: true, uncertain };
        }
        if (res === 'unknown') {
          uncertain = true;
          // It may have landed: a hint costs readers at most one extra look.
          this.stateChanges?.publish(this.shardId, next.seqno);
          if (++uncertainRounds >= this.cfg.storageRetry.attempts) {
            throw new PersistStorageError(
              `${name} on ${this.shardId}: the store never confirmed the write; it may have happened`,
              true,
            );
          }
        }
        // A mismatch, or a write that may have landed: re-read and ask the command again.
        state = (await this.refresh())!;
        fresh = true;
      }
    } catch (err) {
      // Whatever failed after an attempt that may have landed (a re-read, the command
      // itself), the operation as a whole may have happened.
      if (uncertain) throw mayHaveHappenedError(`${name} on ${this.shardId}`, err);
      throw err;
    }
  }

  /** @internal How many maintenance commands wait for a write to ride along with. */
  get riderCount(): number {
    return this.riders.length;
  }

  /** @internal How many waits for a newer state are pending (tests check nothing is left behind). */
  get waiterCount(): number {
    return this.waiters.size;
  }

  /**
   * Resolves once the cached state is newer than `seqno`: woken at once by this
   * process's commits and by hints from the wake-up channel, and polling Consensus
   * as the fallback (see the module comment).
   */
  async waitForNewerThan(seqno: number, signal?: AbortSignal): Promise<ShardState> {
    const poll = this.cfg.listenPoll;
    let delay = poll.initialMs;
    this.startWatching();
    for (;;) {
      if (this.cached && this.cached.seqno > seqno) return this.cached;
      this.checkWaitsOpen();
      // A hint the last refresh did not cover: look now rather than wait for another.
      if (this.hintsSeen === this.hintsCovered) {
        // Woken by an in-process state change (or closeWaits), by a hint, by the poll
        // timer, or rejected on abort; abortableWait releases the timer and the listener.
        await abortableWait({
          signal,
          timeoutMs: this.stateChanges?.up ? poll.clampMs : delay,
          register: (wake) => {
            this.waiters.add(wake);
            return () => this.waiters.delete(wake);
          },
        });
      }
      if (this.cached && this.cached.seqno > seqno) return this.cached;
      this.checkWaitsOpen();
      await this.refresh();
      delay = Math.min(delay * poll.multiplier, poll.clampMs);
    }
  }

  /** Watches the channel for this shard, from the first wait until close. */
  private startWatching(): void {
    if (this.unwatch || !this.stateChanges || this.waitsClosed) return;
    this.unwatch = this.stateChanges.watch(this.shardId, (seqno) => this.onHint(seqno));
  }

  private checkWaitsOpen(): void {
    if (this.waitsClosed) {
      throw new ClientClosed(`the PersistClient was closed while waiting for a newer state of ${this.shardId}`);
    }
  }

  /** The client is closing or closed: waits reject, handles refuse new calls with ClientClosed. */
  get closing(): boolean {
    return this.waitsClosed;
  }

  /** Rejects every pending and later wait for a newer state with ClientClosed. Commands still run. */
  closeWaits(): void {
    this.waitsClosed = true;
    this.unwatch?.();
    this.unwatch = undefined;
    this.wakeWaiters();
  }

  // ---- maintenance ----

  private maintain(state: ShardState): Promise<void> {
    const jobs: Promise<void>[] = [];
    let latestRollup = 0;
    for (const s of state.rollups.keys()) latestRollup = Math.max(latestRollup, s);
    if (state.seqno - latestRollup >= this.cfg.rollupThreshold && !this.running.rollup) {
      jobs.push(this.runExclusive('rollup', () => this.writeRollup()));
    }
    if (state.seqno - state.meta.lastGcReq >= this.cfg.gcMinVersions && !this.running.gc) {
      jobs.push(this.runExclusive('gc', () => this.maintenance.gc(this)));
    }
    if (this.cfg.compaction) {
      if (this.running.compact) this.compactAgain = true;
      else jobs.push(this.runExclusive('compact', () => this.compactLoop()));
    }
    return Promise.all(jobs).then(() => undefined);
  }

  private async compactLoop(): Promise<void> {
    do {
      this.compactAgain = false;
      await this.maintenance.compact(this);
    } while (this.compactAgain && !this.closed);
  }

  private runExclusive(kind: 'compact' | 'gc' | 'rollup', fn: () => Promise<void>): Promise<void> {
    this.running[kind] = true;
    const p = fn()
      .catch((err: unknown) => {
        if (!this.closed) this.cfg.logger.warn({ err, shard: this.shardId, kind }, 'shard maintenance failed');
      })
      .finally(() => {
        this.running[kind] = false;
        this.inFlight.delete(p);
      });
    this.inFlight.add(p);
    return p;
  }

  /** Writes a full copy of the current state to Blob and records it in state. */
  private async writeRollup(): Promise<void> {
    const state = this.state;
    const key = await this.versions.writeRollup(state);
    this.metrics.rollupsWritten.inc();
    const out = await this.applyDeferred('add_rollup', (s) => addRollup(s, state.seqno, key));
    // Not recorded: another rollup of this seqno won, or ours did and its reply was lost.
    if (!out.result) await deleteUnreferenced(this.blob, this.cfg, [key], out);
  }

  /** Waits for all background maintenance started so far (and what it starts). */
  async flushMaintenance(): Promise<void> {
    this.flushing++;
    try {
      if (this.loneWriterRunning) this.loneWriteNow = true;
      this.rideNow?.();
      while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    } finally {
      this.flushing--;
    }
  }

  async close(): Promise<void> {
    this.closeWaits();
    await this.flushMaintenance();
    this.closed = true;
  }
}
