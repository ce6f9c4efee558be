/**
 * Machine: one process's view of one shard's state, and the only way to change it.
 *
 * State lives in Consensus as a chain of versions: version `n` holds the diff from
 * state `n-1` to state `n` (state-codec.ts), and full copies of some versions
 * (rollups) live in Blob. To change state, the machine runs a command (a pure
 * function, state-commands.ts) on its cached state and writes the resulting diff with
 * `compareAndSet(shard, expected = seqno, new = seqno + 1)`. On a mismatch another
 * process got there first: the machine reads the newer diffs and runs the command
 * again. So every state change is linearized by Consensus.
 *
 * In-process, commands on one shard run one at a time (a mutex), so handles sharing a
 * client do not make each other retry; waiters (listens, snapshots at future times)
 * are woken as soon as a new state is committed here, and poll Consensus with backoff
 * for changes made by other processes.
 *
 * After a commit the machine runs maintenance in the background: compaction of the
 * spine, a rollup every `rollupThreshold` versions, and GC every `gcMinVersions`.
 * Maintenance failures are logged, never thrown: they must not become unhandled
 * rejections.
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
import { randomUUID } from 'node:crypto';
import type { Blob } from '../location/blob.js';
import type { Consensus, VersionedData } from '../location/consensus.js';
import type { PersistConfig } from './config.js';
import { deleteUnreferenced, type WriteOutcome } from './blob-deletion.js';
import { ClientClosed, CodecMismatch, InvariantViolation, PersistStorageError, StoredFormatError } from './errors.js';
import { addRollup, type CmdOutcome } from './state-commands.js';
import {
  Field,
  applyDiff,
  computeDiff,
  decodeDiff,
  decodeRollup,
  decodeRollupState,
  encodeDiff,
  encodeRollupState,
  type StateDiff,
} from './state-codec.js';
import { initialState, type ShardState } from './state.js';
import { mayHaveHappenedError, withStorageRetry, withStorageRetryOutcome } from './storage-retry.js';
import { Mutex, abortableWait } from './wait.js';

const SCAN_LIMIT = 1000;

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
  /** Waits reject from now on (the client is closing); commands still run until `closed`. */
  private waitsClosed = false;
  private closed = false;

  constructor(
    readonly shardId: string,
    readonly blob: Blob,
    readonly consensus: Consensus,
    readonly cfg: PersistConfig,
    private readonly maintenance: Maintenance,
  ) {}

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
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  /** Creates the shard if it does not exist yet, and checks the codecs it was created with. */
  async open(keyCodec: string, valCodec: string): Promise<ShardState> {
    let state = this.cached ?? (await this.refresh());
    while (!state) {
      state = await this.createInitialState(keyCodec, valCodec);
    }
    if (state.meta.keyCodec !== keyCodec || state.meta.valCodec !== valCodec) {
      throw new CodecMismatch(
        `shard ${this.shardId} was created with codecs (key: ${state.meta.keyCodec}, val: ${state.meta.valCodec}) ` +
          `but was opened with (key: ${keyCodec}, val: ${valCodec}); open it with the codecs it was created with`,
      );
    }
    return state;
  }

  private async createInitialState(keyCodec: string, valCodec: string): Promise<ShardState | undefined> {
    const rollupKey = `${this.shardId}/v1/${randomUUID()}`;
    const base = initialState(this.shardId, keyCodec, valCodec, this.cfg.hostname);
    const first: ShardState = { ...base, seqno: 1, rollups: new Map([[1, rollupKey]]) };
    await withStorageRetry(this.cfg, `writing the first rollup of ${this.shardId}`, () =>
      this.blob.set(rollupKey, encodeRollupState(first)),
    );
    // Version 1 records only where the first state's rollup lives (the one entry it
    // adds to the empty initial state): a rebuild always starts from a rollup, so
    // this is the one diff that is never applied.
    const diff = computeDiff(base, first);
    const res = await this.casWithRetry(undefined, { seqno: 1, data: encodeDiff(diff) }, 'creating shard state');
    if (res === 'committed') {
      this.setState(first);
      return first;
    }
    // Someone else created it first, or our write may have landed after all (then the
    // refreshed state names our rollup). Only a certain mismatch frees our rollup.
    const uncertain = res === 'unknown';
    let state: ShardState | undefined;
    try {
      state = await this.refresh();
    } catch (err) {
      throw uncertain ? mayHaveHappenedError(`creating shard state of ${this.shardId}`, err) : err;
    }
    if (state) await deleteUnreferenced(this.blob, this.cfg, [rollupKey], { uncertain, state });
    return state;
  }

  private async casWithRetry(
    expected: number | undefined,
    next: VersionedData,
    what: string,
  ): Promise<'committed' | 'mismatch' | 'unknown'> {
    try {
      const { value, uncertain } = await withStorageRetryOutcome(
        this.cfg,
        `${what} (compare-and-set of ${this.shardId})`,
        () => this.consensus.compareAndSet(this.shardId, expected, next),
        { write: true },
      );
      // A mismatch after an attempt whose reply was lost may be our own write.
      return value === 'mismatch' && uncertain ? 'unknown' : value;
    } catch (err) {
      if (err instanceof PersistStorageError && err.mayHaveHappened) return 'unknown';
      throw err;
    }
  }

  /** Reads versions newer than the cached state from Consensus. Concurrent callers share one read. */
  refresh(): Promise<ShardState | undefined> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = undefined;
      });
    }
    return this.refreshing;
  }

  private async doRefresh(): Promise<ShardState | undefined> {
    let state = this.cached;
    if (!state) {
      this.setState(await this.rebuild());
      return this.cached;
    }
    for (;;) {
      const from = state.seqno + 1;
      const versions = await withStorageRetry(this.cfg, `reading state of ${this.shardId}`, () =>
        this.consensus.scan(this.shardId, from, SCAN_LIMIT),
      );
      if (versions.length === 0) break;
      if (versions[0]!.seqno !== from) {
        // The versions we need were truncated by GC: start over from a rollup.
        this.setState(await this.rebuild());
        return this.cached;
      }
      for (const v of versions) {
        state = applyVersion(state, v);
      }
      if (versions.length < SCAN_LIMIT) break;
    }
    this.setState(state);
    return this.cached;
  }

  /** Loads the state from the earliest live version's rollup and replays the diffs after it. */
  private async rebuild(): Promise<ShardState | undefined> {
    for (let attempt = 0; ; attempt++) {
      const versions = await this.scanAll();
      if (versions.length === 0) return undefined;
      const state = await this.replay(versions);
      if (state) return state;
      // GC truncated and deleted the rollup while we read: read again.
      if (attempt > 5) {
        throw new StoredFormatError(`shard ${this.shardId}: the rollup of its earliest live version is missing`);
      }
    }
  }

  /** Every live version, oldest first. */
  async scanAll(): Promise<VersionedData[]> {
    const all: VersionedData[] = [];
    let from = 0;
    for (;;) {
      const batch = await withStorageRetry(this.cfg, `reading state of ${this.shardId}`, () =>
        this.consensus.scan(this.shardId, from, SCAN_LIMIT),
      );
      all.push(...batch);
      if (batch.length < SCAN_LIMIT) return all;
      from = batch[batch.length - 1]!.seqno + 1;
    }
  }

  /**
   * Loads the rollup of the first of `versions` (contiguous, oldest first) and
   * decodes the diffs. Returns undefined when that rollup is gone (GC raced us).
   */
  async loadVersions(versions: VersionedData[]): Promise<{ first: ShardState; diffs: StateDiff[] } | undefined> {
    const diffs = versions.map((v) => decodeDiff(v.data, `state version ${v.seqno} of ${this.shardId}`));
    const s0 = versions[0]!.seqno;
    const rollupKey = findRollupKey(diffs, s0) ?? this.cached?.rollups.get(s0);
    if (!rollupKey) {
      throw new StoredFormatError(`shard ${this.shardId}: no rollup is recorded for its earliest live version ${s0}`);
    }
    const bytes = await withStorageRetry(this.cfg, `reading rollup ${rollupKey}`, () => this.blob.get(rollupKey));
    if (!bytes) return undefined;
    const first = decodeRollupState(bytes, `rollup ${rollupKey}`);
    if (first.seqno !== s0) {
      throw new StoredFormatError(`rollup ${rollupKey} holds seqno ${first.seqno}, expected ${s0}`);
    }
    return { first, diffs };
  }

  /**
   * Rebuilds the newest state of `versions` (contiguous, oldest first) from the
   * first one's rollup. Undefined when that rollup is gone.
   */
  private async replay(versions: VersionedData[]): Promise<ShardState | undefined> {
    const loaded = await this.loadVersions(versions);
    if (!loaded) return undefined;
    let state = loaded.first;
    for (let i = 1; i < loaded.diffs.length; i++) state = applyDiff(state, loaded.diffs[i]!);
    return state;
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
    const out = await this.lock.run(() => this.applyLocked(name, cmd, opts.confirmNoop ?? true));
    // A write of ours that may have landed may have changed state too.
    if (out.changed || out.uncertain) {
      const work = this.maintain(out.state);
      if (this.cfg.awaitMaintenance) await work;
    }
    return out;
  }

  private async applyLocked<R>(
    name: string,
    cmd: (s: ShardState) => CmdOutcome<R>,
    confirmNoop: boolean,
  ): Promise<ApplyResult<R>> {
    let uncertain = false;
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
        const data = encodeDiff(computeDiff(state, next));
        this.cfg.logger.debug({ shard: this.shardId, cmd: name, seqno: next.seqno, attempt }, 'state cas');
        const res = await this.casWithRetry(state.seqno, { seqno: next.seqno, data }, name);
        if (res === 'committed') {
          this.setState(next);
          return { result: out.result, state: next, changed: true, uncertain };
        }
        if (res === 'unknown') {
          uncertain = true;
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

  /** @internal How many waits for a newer state are pending (tests check nothing is left behind). */
  get waiterCount(): number {
    return this.waiters.size;
  }

  /** Resolves once the cached state is newer than `seqno`, polling Consensus for other processes' writes. */
  async waitForNewerThan(seqno: number, signal?: AbortSignal): Promise<ShardState> {
    let delay = this.cfg.listenPoll.initialMs;
    for (;;) {
      if (this.cached && this.cached.seqno > seqno) return this.cached;
      this.checkWaitsOpen();
      // Woken by an in-process state change (or closeWaits), by the poll timer, or
      // rejected on abort; abortableWait releases the timer and the listener.
      await abortableWait({
        signal,
        timeoutMs: delay,
        register: (wake) => {
          this.waiters.add(wake);
          return () => this.waiters.delete(wake);
        },
      });
      if (this.cached && this.cached.seqno > seqno) return this.cached;
      this.checkWaitsOpen();
      await this.refresh();
      delay = Math.min(delay * this.cfg.listenPoll.multiplier, this.cfg.listenPoll.clampMs);
    }
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
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
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
    const key = `${this.shardId}/v${state.seqno}/${randomUUID()}`;
    await withStorageRetry(this.cfg, `writing rollup ${key}`, () => this.blob.set(key, encodeRollupState(state)));
    const out = await this.apply('add_rollup', (s) => addRollup(s, state.seqno, key), { confirmNoop: false });
    // Not recorded: another rollup of this seqno won, or ours did and its reply was lost.
    if (!out.result) await deleteUnreferenced(this.blob, this.cfg, [key], out);
  }

  /** Waits for all background maintenance started so far (and what it starts). */
  async flushMaintenance(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  async close(): Promise<void> {
    this.closeWaits();
    await this.flushMaintenance();
    this.closed = true;
  }
}

function findRollupKey(diffs: StateDiff[], seqno: number): string | undefined {
  const want = String(seqno);
  for (const d of diffs) {
    for (const f of d.diffs) {
      if (f.field === Field.ROLLUPS && f.key === want && f.to) {
        return decodeRollup(f.to);
      }
    }
  }
  return undefined;
}

function applyVersion(state: ShardState, v: VersionedData): ShardState {
  return applyDiff(state, decodeDiff(v.data, `state version ${v.seqno}`));
}
