/**
 * GroupCommitter: many small writes from many callers become one txn-wal commit, at
 * one timestamp from the timestamp oracle (seed 002).
 *
 * A group commit:
 *  1. waits for a permit from the {@link commitNotifier} pair (at most one group
 *     commit is in flight; triggers that arrive meanwhile cause exactly one more);
 *  2. while the oracle's write timestamp is ahead of `now()`, waits (each wait capped
 *     at `maxWaitForNowMs`, 1 s by default, then re-checks), unless an internal
 *     system write is pending or the committer is closing. This keeps a burst of
 *     commits from running the timeline far ahead of the wall clock. The write
 *     timestamp is what the committer knows (the timestamps it took, the last
 *     `peekWriteTs`), read again at most every 100 ms: not a round trip per group;
 *  3. drains every pending write and takes the write locks (see below);
 *  4. merges the writes per collection, consolidates them, and commits them as ONE
 *     Txn at a fresh `oracle.writeTs()`, with the tidy of the previous apply. The
 *     commit advances the logical upper of every registered collection, written or
 *     not. If the timestamp was taken (another process wrote the txns shard), the
 *     oracle is told (`applyWrite(current - 1)`) and the same Txn is committed again
 *     at a fresh timestamp: nothing is lost or written twice. (This is
 *     {@link landAtNextTimestamp}, the loop `register` and `forget` use too, through
 *     {@link commitAtNextTimestamp});
 *  5. applies the commit to the data shards, keeping the tidy for the next commit,
 *     while the oracle is told (`applyWrite(ts)`; the two do not wait for each other);
 *     callers are acknowledged after the commit or after the apply (option `ack`);
 *     locks and permit are released last.
 *
 * Write locks (per collection, {@link WriteLocks}):
 * - Blind writes (`submitWrite`) take locks at group-commit time, all-or-nothing per
 *   write; writes in one group share the group's locks (they commit at one time, so
 *   they cannot conflict). A write that cannot get its locks is deferred, and goes
 *   back into the queue when one of the locks it missed is released (an optimistic
 *   retry: it may be deferred again). Who gets which locks in a round is
 *   {@link assignLocks} (lock-assignment.ts).
 * - Read-then-write operations (`readThenWrite`, read-then-write.ts) take their
 *   locks exclusively up front, waiting in line, then read at `oracle.readTs()`,
 *   compute their writes and hand them, locks included, to the next group commit.
 *   The function runs exactly once: it is never retried optimistically. Nobody else
 *   writes those collections between the read and the write, because locks are
 *   released only after the oracle has been told the commit's timestamp is applied.
 * - System writes (`submitInternal`, `submitBackground`) take no locks.
 * Locks are per process: several processes sharing a txns shard must not write the
 * same collections if they rely on read-then-write isolation.
 *
 * Other rules:
 * - A write must name collections registered through the committer's TxnsHandle
 *   (checked on submission: UnknownCollection). A collection dropped (forgotten)
 *   while a write to it waited is skipped and the write is still acknowledged: the
 *   write is ordered before the drop.
 * - Background system writes do not trigger a commit; they ride along with the next
 *   one. They are best-effort: if their group fails they are dropped (and logged).
 * - Read-only mode (`readOnly: true`) accepts only system writes, buffers them and
 *   resolves at once; `leaveReadOnly()` commits the buffer. `close()` in read-only
 *   mode drops the buffer.
 * - A failed commit rejects every write of its group with {@link GroupCommitFailed}
 *   and writes nothing (a Txn is one compare-and-append); the committer goes on. A
 *   commit that landed but whose later step failed (telling the oracle, or the
 *   apply) rejects them with {@link CommittedButUnconfirmed}; so does a `register` or
 *   `forget` the oracle could not be told about.
 * - `close()` stops accepting work and then *finishes* everything already accepted:
 *   pending and deferred writes, and read-then-write operations already started or
 *   waiting for locks, are committed (or fail as above) before it resolves. So an
 *   operation running forever keeps `close()` waiting. It does not close the
 *   TxnsHandle or the oracle, which the caller owns.
 * - Do not await a write to a collection from inside a read-then-write function that
 *   holds its lock: the write waits for the lock, the function for the write.
 * - Metrics (group-commit-metrics.ts) go to the `metrics` option, by default the
 *   TxnsHandle's: group sizes, commits by outcome, lock waits, the queue depth.
 * - The oracle must be this txns shard's timeline: every `applyWrite(ts)` on it must
 *   follow a commit at `ts` to this txns shard, or read-then-write reads can wait
 *   for a commit that never comes. `open()` commits once (an empty group) so the
 *   txns shard starts past the oracle's read timestamp.
 *
 * Worked example (timestamps as if the oracle handed out 10, 11, 12 in turn):
 * ```ts
 * const gc = await GroupCommitter.open(txns, oracle);       // commits an empty group first
 * await gc.register([writerA, writerB]);                     // A and B registered at 10
 * const [x, y] = await Promise.all([
 *   gc.submitWrite({ [A]: [['k', null, 1]] }),
 *   gc.submitWrite({ [A]: [['k', null, 1]], [B]: [['j', null, 1]] }),
 * ]);                                         // one commit at 11: A ← ('k', +2), B ← ('j', +1)
 * x.commitTs === y.commitTs;                  // true (11)
 * await gc.readThenWrite([A], async (readTs, read) => {
 *   const rows = await read(A);               // readTs 11: [['k', null, 2]]
 *   return { [A]: [['k', null, -2]] };        // committed at 12; nobody wrote A in between
 * });
 * await gc.close();
 * ```
 */
import type { Logger } from 'pino';
import {
  arrayOf,
  checkFunction,
  invalidArgument,
  optionalBoolean,
  optionalNumber,
  optionsObject,
} from '../persist/argument-checks.js';
import { describeValue } from '../persist/describe-value.js';
import { secondsSince } from '../persist/metric-families.js';
import { Metrics } from '../persist/metrics.js';
import { InvalidArgument, InvalidUsage, InvariantViolation } from '../persist/errors.js';
import { assertShardId, type ShardId } from '../persist/shard-id.js';
import type { Timestamp } from '../persist/time.js';
import { abortableWait } from '../persist/wait.js';
import type { WriteHandle } from '../persist/write-handle.js';
import { NotRegistered } from '../txn/errors.js';
import { RowEncoder } from '../txn/row-encoder.js';
import { Tidy } from '../txn/tidy.js';
import type { CommitOutcome, Txn, TxnApply } from '../txn/txn.js';
import { TxnsHandle } from '../txn/txns-handle.js';
import { checkWrites, mergeWrites, type CheckedWrites, type WritesByCollection } from './collection-writes.js';
import { commitNotifier, type CommitNotifier, type CommitPermit, type CommitWaiter } from './commit-notifier.js';
import { GroupCommitMetrics } from './group-commit-metrics.js';
import {
  CommittedButUnconfirmed,
  CommitterClosed,
  GroupCommitFailed,
  UnknownCollection,
  WriteInReadOnlyMode,
} from './group-commit-errors.js';
import { assignLocks, type LockClaim } from './lock-assignment.js';
import { readThenWrite, type ReadThenWriteFn, type ReadThenWriteHost, type ReadThenWriteResult } from './read-then-write.js';
import { wallClockMillis, type NowFn, type TimestampOracle } from './timestamp-oracle.js';
import { commitAtNextTimestamp, landAtNextTimestamp, oracleTimestamps, type CommitAttempt, type TimestampSource } from './timestamp-source.js';
import { WriteLocks, emptyGuard, type WriteLockGuard } from './write-locks.js';

/**
 * Options of {@link GroupCommitter.open}.
 *
 * Example:
 * ```ts
 * await GroupCommitter.open(txns, oracle, { ack: 'commit', maxWaitForNowMs: 100, compactEvery: 64 });
 * ```
 */
export interface GroupCommitOptions {
  /** Acknowledge writes once committed, or once also applied to the data shards (default 'apply'). */
  ack?: 'commit' | 'apply';
  /** Start in read-only mode: only system writes are accepted, and buffered (default false). */
  readOnly?: boolean;
  /** The wall clock compared with the oracle's write timestamp (default `Date.now`). */
  now?: NowFn;
  /** The longest single wait for `now()` to catch up with the oracle (default 1000 ms; 0 never waits). */
  maxWaitForNowMs?: number;
  /** Call `txns.compactTo(commitTs)` after every this many group commits (default 0: never). */
  compactEvery?: number;
  /** Where the group commit metrics go (`Metrics.forRegistry(registry)`). Default: the TxnsHandle's. */
  metrics?: Metrics;
}

/**
 * The outcome of `submitInternal`: committed at `commitTs`, or buffered (read-only mode) until
 * `leaveReadOnly()`.
 *
 * Example:
 * ```ts
 * const res: SystemWriteOutcome = await gc.submitInternal(writes);
 * if (!res.buffered) console.log('committed at', res.commitTs);
 * ```
 */
export type SystemWriteOutcome =
  | {
      /** Committed now. */
      buffered: false;
      /** The commit's timestamp. */
      commitTs: Timestamp;
    }
  | {
      /** Buffered in read-only mode; `leaveReadOnly()` commits it. */
      buffered: true;
    };

/**
 * Counters, for tests and dashboards.
 *
 * Example:
 * ```ts
 * const { groupCommits, deferrals } = gc.stats;
 * ```
 */
export interface GroupCommitStats {
  /** Group commits that committed (empty ones included). */
  groupCommits: number;
  /** Times a write was deferred for want of a lock. */
  deferrals: number;
  /** Commits retried because another writer took the timestamp. */
  lostRaces: number;
  /** Rows skipped because their collection was dropped. */
  droppedRows: number;
  /** Group commits that failed. */
  failures: number;
}

const ORACLE_METHODS = ['writeTs', 'peekWriteTs', 'readTs', 'applyWrite'] as const;

type Ack = { resolve(ts: Timestamp): void; reject(err: unknown): void };

/**
 * The Ack of a `submitWrite`: settles the submitter's promise (with `{ commitTs }`)
 * and tells the committer the write settled. A class, not closures made per write: a
 * submission allocates one small object for it.
 */
class SubmittedWriteAck implements Ack {
  constructor(
    private readonly onResolve: (result: { commitTs: Timestamp }) => void,
    private readonly onReject: (err: unknown) => void,
    private readonly settled: () => void,
  ) {}

  resolve(ts: Timestamp): void {
    this.onResolve({ commitTs: ts });
    this.settled();
  }

  reject(err: unknown): void {
    this.onReject(err);
    this.settled();
  }
}

/** Read-then-write writes brought their locks, blind writes take theirs, system writes need none. */
function lockClaim<K, V>(w: PendingWrite<K, V>): LockClaim {
  if (w.locks) return { kind: 'brought', collections: w.locks.ids };
  return w.kind === 'user' ? { kind: 'take', collections: w.writes.keys() } : { kind: 'none' };
}

/** A group's Txn: the collections it writes and the rows it skipped (dropped collections). */
interface BuiltTxn<K, V> {
  txn: Txn<K, V>;
  included: ShardId[];
  droppedRows: number;
}

/** A group commit that landed; `oracleFailure` when the oracle could not be told. */
interface LandedGroup {
  ts: Timestamp;
  apply: TxnApply;
  /** Telling the oracle the commit landed: settles with its failure, if any (never rejects). */
  recorded: Promise<{ err: unknown } | undefined>;
}

/**
 * How long a group commit goes on what it knows of the oracle's write timestamp (the
 * timestamps it took itself, the last peek) before reading it again. Peeking before
 * every group cost one more server round trip per group on a durable oracle; at most
 * one per 100 ms still notices another process running the timeline ahead of the
 * clock within 100 ms.
 */
const PEEK_INTERVAL_MS = 100;

interface PendingWrite<K, V> {
  kind: 'user' | 'internal' | 'background';
  writes: CheckedWrites<K, V>;
  /** Locks taken up front (read-then-write); undefined for blind and system writes. */
  locks?: WriteLockGuard;
  /** Undefined for background writes: nobody waits for them. */
  ack?: Ack;
}

/**
 * Many small writes from many callers become one txn-wal commit at one oracle timestamp, with
 * per-collection write locks for read-then-write operations. The engine under `openDatabase`; use
 * it directly over your own TxnsHandle and oracle.
 *
 * Example:
 * ```ts
 * const gc = await GroupCommitter.open(txns, oracle);   // commits an empty group first
 * await gc.register([writerA]);
 * const [x, y] = await Promise.all([
 *   gc.submitWrite({ [A]: [['k', null, 1]] }),
 *   gc.submitWrite({ [A]: [['k', null, 1]] }),
 * ]);                                                   // one commit: A ← ('k', +2)
 * x.commitTs === y.commitTs;                            // true
 * await gc.close();
 * ```
 */
export class GroupCommitter<K, V> {
  private readonly locks = new WriteLocks();
  private readonly notifier: CommitNotifier;
  private readonly waiter: CommitWaiter;
  private readonly log: Logger;
  private readonly ack: 'commit' | 'apply';
  private readonly now: NowFn;
  private readonly maxWaitForNowMs: number;
  private readonly compactEvery: number;
  private readonly timestamps: TimestampSource;
  private readonly metrics: GroupCommitMetrics;
  /** Removes this committer's queue from the depth gauge (at close). */
  private readonly stopGaugingDepth: () => void;
  /** Writes parked by `defer` until a lock they missed changes hands. */
  private deferredCount = 0;

  private pending: PendingWrite<K, V>[] = [];
  /** System writes received in read-only mode. */
  private buffered: CheckedWrites<K, V>[] = [];
  private tidy = new Tidy();
  private readOnly: boolean;
  private closing = false;
  private closed: Promise<void> | undefined;
  /** Accepted operations not yet settled. */
  private outstanding = 0;
  private running = false;
  private idleWaiters: (() => void)[] = [];
  /** Ends a wait for `now()` early (an internal write arrived, or close). */
  private wakeWait: (() => void) | undefined;
  private readonly loopStop = new AbortController();
  private readonly loopDone: Promise<void>;
  /** Every commit at or below this was applied by us. */
  private appliedThrough = -1;
  /** Read-then-write reads at least here (covers a commit whose oracle update failed). */
  private minReadTs = 0;
  private commitsSinceCompact = 0;
  /** The highest write timestamp the oracle is known to have reached, and when it was last read (performance.now()). */
  private knownWriteTs = -Infinity;
  private peekedAtMs = -Infinity;

  private readonly counters: GroupCommitStats = { groupCommits: 0, deferrals: 0, lostRaces: 0, droppedRows: 0, failures: 0 };
  /** Encodes submitted keys and values, strings into shared slabs (no allocation per row). */
  private readonly encoder: RowEncoder<K, V>;
  /** Vouches for registered ids in checkWrites, so a registered id skips its format check. */
  private readonly registered = (id: string): boolean => this.isRegistered(id);

  private constructor(
    /** The handle the groups commit through (not owned: close it yourself). */
    readonly txns: TxnsHandle<K, V>,
    /** Where the timestamps come from (not owned: close it yourself). */
    readonly oracle: TimestampOracle,
    opts: GroupCommitOptions,
  ) {
    const ack = opts.ack === undefined ? 'apply' : opts.ack;
    if (ack !== 'commit' && ack !== 'apply') {
      throw new InvalidArgument(`GroupCommitter option ack must be 'commit' or 'apply', got ${describeValue(ack)}`);
    }
    this.ack = ack;
    this.maxWaitForNowMs =
      optionalNumber(opts.maxWaitForNowMs, 'GroupCommitter option maxWaitForNowMs', { min: 0, fractional: true }) ?? 1000;
    this.compactEvery = optionalNumber(opts.compactEvery, 'GroupCommitter option compactEvery (0 = never)', { min: 0 }) ?? 0;
    if (opts.now !== undefined) checkFunction(opts.now, 'GroupCommitter option now');
    this.now = opts.now ?? wallClockMillis;
    this.readOnly = optionalBoolean(opts.readOnly, 'GroupCommitter option readOnly') ?? false;
    this.log = txns.client.cfg.logger;
    this.encoder = new RowEncoder(txns.dataCodecs);
    const fromOracle = oracleTimestamps(oracle);
    this.timestamps = {
      ...fromOracle,
      next: async () => this.knowWriteTs(await fromOracle.next()),
      lost: async (current) => {
        await fromOracle.lost(current);
        this.knowWriteTs(current - 1);
      },
    };
    this.metrics = GroupCommitMetrics.of(Metrics.option(opts.metrics, 'GroupCommitter option metrics', () => txns.metrics.metrics));
    this.stopGaugingDepth = this.metrics.queueDepth(() => this.pending.length + this.deferredCount);
    ({ notifier: this.notifier, waiter: this.waiter } = commitNotifier());
    this.loopDone = this.loop();
  }

  /**
   * Starts a committer over `txns` and `oracle` (neither is owned: close them
   * yourself after `close()`). Unless read-only, commits once (an empty group) so the
   * txns shard is past the oracle's read timestamp.
   */
  static async open<K, V>(txns: TxnsHandle<K, V>, oracle: TimestampOracle, opts: GroupCommitOptions = {}): Promise<GroupCommitter<K, V>> {
    if (!(txns instanceof TxnsHandle)) throw invalidArgument('GroupCommitter.open txns', 'a TxnsHandle (from TxnsHandle.open)', txns);
    const o = oracle as Partial<Record<keyof TimestampOracle, unknown>> | null;
    if (typeof o !== 'object' || o === null || ORACLE_METHODS.some((m) => typeof o[m] !== 'function')) {
      throw invalidArgument(
        'GroupCommitter.open oracle',
        `a TimestampOracle (e.g. from openTimestampOracle; with ${ORACLE_METHODS.join(', ')} methods)`,
        oracle,
      );
    }
    const committer = new GroupCommitter(txns, oracle, optionsObject(opts, 'GroupCommitter.open options'));
    if (!committer.readOnly) {
      try {
        await committer.advance();
      } catch (err) {
        await committer.close();
        throw err;
      }
    }
    return committer;
  }

  /** A snapshot of the counters. */
  get stats(): GroupCommitStats {
    return { ...this.counters };
  }

  /** Whether only system writes are accepted (and buffered). */
  get isReadOnly(): boolean {
    return this.readOnly;
  }

  /**
   * Queues a blind write and triggers a group commit; resolves once it is committed
   * (or applied, with `ack: 'apply'`) with the commit's timestamp. Every collection
   * named must be registered (UnknownCollection otherwise).
   */
  submitWrite(writes: WritesByCollection<K, V>): Promise<{ commitTs: Timestamp }> {
    // Not an async function (the hot path: one promise per write, not three), so a
    // bad write is turned into a rejection here.
    let checked: CheckedWrites<K, V>;
    try {
      this.checkAccepting('submit a write', true);
      checked = this.checkUserWrites(writes);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueueSubmitted(checked);
  }

  /**
   * Reads `collections` and writes them back with nobody else writing them in
   * between. Waits for their locks (all at once, in line), reads at the oracle's read
   * timestamp, calls `fn` exactly once and commits what it returns through the next
   * group commit. `fn` may read and write only `collections` (OutsideLockedCollections).
   * If `signal` fires before the writes are handed over (while waiting for the locks
   * or reading), it rejects and nothing is written. If `fn` throws, so does this, and
   * nothing is written.
   */
  async readThenWrite(
    collections: Iterable<ShardId>,
    fn: ReadThenWriteFn<K, V>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<ReadThenWriteResult> {
    this.checkAccepting('run a read-then-write operation', true);
    const ids = [...new Set(arrayOf(collections, 'readThenWrite collections'))];
    for (const id of ids) this.assertRegistered(id);
    checkFunction(fn, 'readThenWrite fn');
    const given = optionsObject(opts, 'readThenWrite options');
    if (given.signal !== undefined && !(given.signal instanceof AbortSignal)) {
      throw invalidArgument('readThenWrite option signal', 'an AbortSignal (or omitted)', given.signal);
    }
    // Found a lock taken: it waits in line. Timed until its locks are granted, which is
    // when it first asks for its read timestamp (read-then-write.ts).
    const waits = ids.some((id) => !this.locks.isFree(id));
    const start = performance.now();
    const host = this.readThenWriteHost();
    if (waits) {
      const readTs = host.readTs;
      let timed = false;
      host.readTs = () => {
        if (!timed) {
          timed = true;
          this.metrics.readThenWriteWaits.inc();
          this.metrics.readThenWriteWaitSeconds.observe(secondsSince(start));
        }
        return readTs();
      };
    }
    return this.track(readThenWrite(host, ids, fn, given.signal));
  }

  /**
   * An internal system write: no locks, commits without waiting for `now()` to catch
   * up, and triggers a group commit. In read-only mode it is buffered and resolves
   * at once with `{ buffered: true }`; buffered rows are checked for registration only
   * when committed (a read-only process's view may lag), so rows for collections that
   * are not registered then are skipped.
   */
  async submitInternal(writes: WritesByCollection<K, V>): Promise<SystemWriteOutcome> {
    this.checkAccepting('submit an internal write', false);
    if (this.readOnly) {
      this.buffered.push(checkWrites(writes, this.encoder));
      return { buffered: true };
    }
    const checked = this.checkUserWrites(writes);
    const commitTs = await this.track(this.enqueue({ kind: 'internal', writes: checked }));
    return { buffered: false, commitTs };
  }

  /**
   * A background system write: no locks, no acknowledgement, and it does NOT trigger
   * a commit; it rides along with the next group commit. Buffered in read-only mode.
   */
  submitBackground(writes: WritesByCollection<K, V>): void {
    this.checkAccepting('submit a background write', false);
    if (this.readOnly) {
      this.buffered.push(checkWrites(writes, this.encoder));
      return;
    }
    this.pending.push({ kind: 'background', writes: this.checkUserWrites(writes) });
  }

  /** Commits an empty group now: every registered collection's upper moves past the oracle's current time. */
  async advance(): Promise<{ commitTs: Timestamp }> {
    this.checkAccepting('advance', true);
    const commitTs = await this.track(this.enqueue({ kind: 'internal', writes: new Map() }));
    return { commitTs };
  }

  /**
   * Leaves read-only mode: commits every buffered system write in one group (an
   * empty one if none) and accepts user writes from then on.
   */
  async leaveReadOnly(): Promise<{ commitTs: Timestamp }> {
    this.checkAccepting('leave read-only mode', false);
    if (!this.readOnly) throw new InvalidUsage('leaveReadOnly(): the group committer is not in read-only mode');
    this.readOnly = false;
    const writes = mergeWrites(this.buffered.splice(0));
    const commitTs = await this.track(this.enqueue({ kind: 'internal', writes }));
    return { commitTs };
  }

  /**
   * Registers the writers' collections at a fresh oracle timestamp (retrying if it is
   * taken) and tells the oracle. The handle takes over the writers.
   */
  async register(writers: WriteHandle<K, V>[]): Promise<{ registerTs: Timestamp }> {
    this.checkAccepting('register collections', true);
    writers = this.txns.checkRegisterWriters(writers);
    const registerTs = await this.track(this.atOracleTs((ts) => this.txns.register(ts, writers)));
    return { registerTs };
  }

  /**
   * Drops (forgets) collections at a fresh oracle timestamp. Writes to them still
   * waiting in the committer are then skipped and acknowledged.
   */
  async forget(collections: Iterable<ShardId>): Promise<{ forgetTs: Timestamp }> {
    this.checkAccepting('forget collections', true);
    const ids = this.txns.checkForgetIds(collections);
    const forgetTs = await this.track(this.atOracleTs((ts) => this.txns.forget(ts, ids)));
    return { forgetTs };
  }

  /**
   * Stops accepting work, finishes everything accepted (see the module docs) and
   * stops the committer loop. Idempotent.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      this.wakeWait?.();
      if (this.pending.length > 0) this.notifier.notify();
      await new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve);
        this.checkIdle();
      });
      this.loopStop.abort();
      await this.loopDone;
      this.stopGaugingDepth();
      if (this.buffered.length > 0) {
        this.log.warn({ writes: this.buffered.length }, 'group commit closed in read-only mode: buffered system writes dropped');
        this.buffered = [];
      }
    })();
    return this.closed;
  }

  // ---------- submission ----------

  private checkAccepting(op: string, userWrite: boolean): void {
    if (this.closing) throw new CommitterClosed(op);
    if (userWrite && this.readOnly) throw new WriteInReadOnlyMode(op);
  }

  private checkUserWrites(writes: WritesByCollection<K, V>): CheckedWrites<K, V> {
    // Ids checkWrites did not vouch for as registered had their format checked there.
    const checked = checkWrites(writes, this.encoder, this.registered);
    for (const id of checked.keys()) {
      if (!this.isRegistered(id)) throw new UnknownCollection(id, this.txns.txnsId);
    }
    return checked;
  }

  private assertRegistered(id: ShardId): void {
    assertShardId(id, 'collection id');
    if (!this.isRegistered(id)) throw new UnknownCollection(id, this.txns.txnsId);
  }

  /** Registered as of the latest txns state the handle has seen. */
  private isRegistered(id: ShardId): boolean {
    const cache = this.txns.readCache();
    return cache.registeredAtProgress(id, cache.progressExclusive);
  }

  private enqueue(write: Omit<PendingWrite<K, V>, 'ack'>): Promise<Timestamp> {
    return new Promise((resolve, reject) => {
      this.pending.push({ ...write, ack: { resolve, reject } });
      if (write.kind === 'internal') this.wakeWait?.();
      this.notifier.notify();
    });
  }

  /**
   * `enqueue` and `track` of a user write in one promise (the hot path of
   * `submitWrite`): the write counts as accepted work until its acknowledgement settles.
   */
  private enqueueSubmitted(writes: CheckedWrites<K, V>): Promise<{ commitTs: Timestamp }> {
    this.outstanding++;
    return new Promise((resolve, reject) => {
      this.pending.push({ kind: 'user', writes, ack: new SubmittedWriteAck(resolve, reject, this.settledOne) });
      this.notifier.notify();
    });
  }

  /** One submitted write settled (enqueueSubmitted). */
  private readonly settledOne = (): void => {
    this.outstanding--;
    this.checkIdle();
  };

  /** Counts `p` as accepted work until it settles (close waits for it). */
  private track<T>(p: Promise<T>): Promise<T> {
    this.outstanding++;
    return p.finally(() => {
      this.outstanding--;
      this.checkIdle();
    });
  }

  private checkIdle(): void {
    if (this.outstanding > 0 || this.pending.length > 0 || this.running) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** What a read-then-write operation uses of this committer. */
  private readThenWriteHost(): { -readonly [P in keyof ReadThenWriteHost<K, V>]: ReadThenWriteHost<K, V>[P] } {
    return {
      txns: this.txns,
      encoder: this.encoder,
      locks: this.locks,
      readTs: async () => Math.max(await this.oracle.readTs(), this.minReadTs),
      applyThrough: (ts) => this.applyThrough(ts),
      submitLocked: (writes, locks) => this.enqueue({ kind: 'user', writes, locks }),
    };
  }

  /**
   * Applies whatever is committed to the txns shard at or below `ts` and not applied
   * yet — a failed apply, or the commit of a process that died before applying it, which
   * readers at `ts` would otherwise wait for forever — keeping the tidy for the next
   * group commit. `ts` must be committed (below the txns upper). Cheap when this
   * committer applied through `ts` itself.
   *
   * Example:
   * ```ts
   * await gc.applyThrough(readTs);   // reads at readTs no longer wait for anyone's apply
   * ```
   */
  async applyThrough(ts: Timestamp): Promise<void> {
    if (ts <= this.appliedThrough) return;
    this.tidy.merge(await this.txns.applyLe(ts));
    this.appliedThrough = Math.max(this.appliedThrough, ts);
  }

  /** Runs `op` (a register or forget, which applies itself) at the next oracle timestamp; tells the oracle once it landed. */
  private async atOracleTs(op: (ts: Timestamp) => Promise<CommitAttempt<{ ok: true; tidy: Tidy }>>): Promise<Timestamp> {
    const { ts } = await commitAtNextTimestamp(this.timestamps, async (ts) => {
      const res = await op(ts);
      if (res.ok) {
        // Kept before the oracle is told: it is ours even if telling the oracle fails,
        // and reads of read-then-write operations must still see it then (as for groups).
        this.tidy.merge(res.tidy);
        this.appliedThrough = Math.max(this.appliedThrough, ts);
        this.minReadTs = Math.max(this.minReadTs, ts);
      }
      return res;
    });
    return ts;
  }

  // ---------- the committer loop ----------

  private async loop(): Promise<void> {
    for (;;) {
      let permit: CommitPermit;
      try {
        permit = await this.waiter.ready({ signal: this.loopStop.signal });
      } catch {
        return; // close() stopped the loop
      }
      this.running = true;
      try {
        await this.groupCommit();
      } catch (err) {
        // groupCommit settles its own writes; reaching here is a bug, so be loud.
        this.log.error({ err }, 'group commit: unexpected error');
      } finally {
        this.running = false;
        permit.release();
        this.checkIdle();
      }
    }
  }

  private async groupCommit(): Promise<void> {
    await this.waitForNow();
    const drained = this.pending.splice(0);
    if (drained.length === 0) return;
    const start = performance.now();

    const { accepted, take, deferred } = assignLocks(drained, lockClaim, (id) => this.locks.isFree(id));
    const group = emptyGuard(this.locks);
    for (const w of drained) {
      if (!w.locks) continue;
      group.absorb(w.locks);
      w.locks = undefined;
    }
    if (take.length > 0) {
      // Nothing ran since assignLocks looked, so everything it chose is still free.
      const taken = this.locks.tryAcquire(take);
      if (!taken) throw new InvariantViolation(`group commit: write locks on ${take.join(', ')} were free a moment ago but could not be taken`);
      group.absorb(taken);
    }
    for (const { write, missing } of deferred) this.defer(write, missing);
    if (accepted.length === 0) return;
    this.metrics.groupSize.observe(accepted.length);

    let committed: LandedGroup;
    try {
      committed = await this.commitGroup(accepted);
    } catch (err) {
      group.release();
      this.counters.failures++;
      this.metrics.failed.inc();
      this.metrics.seconds.observe(secondsSince(start));
      const failure = err instanceof GroupCommitFailed ? err : new GroupCommitFailed(undefined, accepted.length, err);
      this.log.warn({ err: failure }, 'group commit failed');
      for (const w of accepted) w.ack?.reject(failure);
      return;
    }
    const { ts, apply } = committed;
    this.counters.groupCommits++;

    let failed: { step: 'oracle' | 'apply'; err: unknown } | undefined;
    const noteOracle = (oracleFailure: { err: unknown } | undefined) => {
      if (!oracleFailure) return;
      // Reads of read-then-write operations must still see this commit.
      this.minReadTs = Math.max(this.minReadTs, ts);
      failed = { step: 'oracle', err: oracleFailure.err };
    };
    const acknowledge = () => {
      for (const w of accepted) {
        if (!w.ack) continue;
        if (failed) w.ack.reject(new CommittedButUnconfirmed(ts, failed.step, failed.err));
        else w.ack.resolve(ts);
      }
    };
    if (this.ack === 'commit') {
      noteOracle(await committed.recorded);
      acknowledge();
    }
    // The apply runs while the oracle is told (they do not depend on each other), so
    // an acknowledgement after apply waits for one round trip less.
    let applyFailure: unknown;
    let applied = false;
    await Promise.all([
      apply.apply(this.txns).then(
        (tidy) => {
          this.tidy.merge(tidy);
          this.appliedThrough = Math.max(this.appliedThrough, ts);
          applied = true;
        },
        (err: unknown) => {
          applyFailure = err;
        },
      ),
      this.ack === 'apply' ? committed.recorded.then(noteOracle) : undefined,
    ]);
    if (!applied) {
      // Durable anyway; the next group commit's apply (or anyone's) applies it.
      this.log.warn({ err: applyFailure, ts }, 'group commit: apply failed');
      failed ??= { step: 'apply', err: applyFailure };
    }
    // Released only now: a read-then-write that gets these locks reads at or past ts.
    group.release();
    if (this.ack === 'apply') acknowledge();
    (failed ? this.metrics.unconfirmed : this.metrics.committed).inc();
    this.metrics.seconds.observe(secondsSince(start));
    await this.maybeCompact(ts);
  }

  private knowWriteTs(ts: Timestamp): Timestamp {
    if (ts > this.knownWriteTs) this.knownWriteTs = ts;
    return ts;
  }

  /** Parks `w` until one of the locks it missed changes hands, then queues it again. */
  private defer(w: PendingWrite<K, V>, missing: ShardId[]): void {
    this.counters.deferrals++;
    this.deferredCount++;
    const start = performance.now();
    void this.locks.nextChange(missing).then(() => {
      this.deferredCount--;
      this.metrics.deferredWaits.inc();
      this.metrics.deferredWaitSeconds.observe(secondsSince(start));
      this.pending.push(w);
      this.notifier.notify();
    });
  }

  private async waitForNow(): Promise<void> {
    for (;;) {
      if (this.maxWaitForNowMs === 0 || this.closing || this.pending.some((w) => w.kind === 'internal')) return;
      let ahead: number;
      try {
        if (performance.now() - this.peekedAtMs >= PEEK_INTERVAL_MS) {
          this.knowWriteTs(await this.oracle.peekWriteTs());
          this.peekedAtMs = performance.now();
        }
        ahead = this.knownWriteTs - this.now();
      } catch (err) {
        // The commit's writeTs() will fail too and report it to the callers.
        this.log.warn({ err }, 'group commit: peekWriteTs failed; not waiting for now()');
        return;
      }
      if (!(ahead > 0)) return;
      // Capped: after a big step back of the wall clock we re-check at least every
      // cap instead of sleeping for the whole (possibly bogus) gap.
      await abortableWait({
        timeoutMs: Math.min(ahead, this.maxWaitForNowMs),
        register: (wake) => {
          this.wakeWait = wake;
          return () => {
            if (this.wakeWait === wake) this.wakeWait = undefined;
          };
        },
      });
    }
  }

  /**
   * Commits `accepted` as one Txn at the next oracle timestamp and tells the oracle.
   * Throws GroupCommitFailed if the commit did not land (its `mayHaveHappened` says
   * whether it may have); a commit that landed but the oracle did not hear of is
   * returned, with the oracle's error.
   */
  private async commitGroup(accepted: PendingWrite<K, V>[]): Promise<LandedGroup> {
    const merged = mergeWrites(accepted.map((w) => w.writes));
    const attempt: { ts?: Timestamp; built?: BuiltTxn<K, V> } = {};
    try {
      const { ts, landed } = await landAtNextTimestamp(this.timestamps, async (ts) => {
        attempt.ts = ts;
        attempt.built ??= await this.buildTxn(merged);
        const res = await this.commitBuilt(attempt, merged, ts);
        if (res.ok) this.counters.droppedRows += attempt.built.droppedRows;
        // Someone else wrote the txns shard at or past ts: the loop moves the oracle past
        // it and this commits the same Txn (its batches are only re-timestamped) again.
        else {
          this.counters.lostRaces++;
          this.metrics.timestampRetries.inc();
        }
        return res;
      });
      const recorded = this.timestamps.committed(ts).then(
        () => undefined,
        (err: unknown) => ({ err }),
      );
      return { ts, apply: landed.apply, recorded };
    } catch (err) {
      if (attempt.built) {
        this.tidy.merge(attempt.built.txn.takeTidy());
        // The Txn keeps the batches a commit that may have landed references.
        await attempt.built.txn.discard().catch(() => undefined);
      }
      throw new GroupCommitFailed(attempt.ts, accepted.length, err);
    }
  }

  /** Commits `attempt.built` at `ts`, rebuilding it without collections forgotten meanwhile. */
  private async commitBuilt(attempt: { built?: BuiltTxn<K, V> }, merged: CheckedWrites<K, V>, ts: Timestamp): Promise<CommitOutcome> {
    for (;;) {
      const built = attempt.built!;
      try {
        return await built.txn.commitAt(this.txns, ts);
      } catch (err) {
        // Forgotten by someone this handle had not heard of yet: the commit checked
        // the latest txns state, so skip what is unregistered now and try again.
        if (!(err instanceof NotRegistered) || built.included.every((id) => this.isRegistered(id))) throw err;
        this.tidy.merge(built.txn.takeTidy());
        await built.txn.discard();
        attempt.built = undefined;
        attempt.built = await this.buildTxn(merged);
      }
    }
  }

  /** A Txn with every row of registered collections and the tidy so far; dropped collections are skipped. */
  private async buildTxn(merged: CheckedWrites<K, V>): Promise<BuiltTxn<K, V>> {
    const txn = this.txns.begin();
    txn.tidy(this.tidy);
    this.tidy = new Tidy();
    const included: ShardId[] = [];
    let droppedRows = 0;
    try {
      for (const [id, rows] of merged) {
        if (!this.isRegistered(id)) {
          droppedRows += rows.length;
          continue;
        }
        included.push(id);
        // Encoded when accepted (checkWrites): handed over as they are, not encoded again.
        await txn.writeEncoded(id, rows);
      }
    } catch (err) {
      this.tidy.merge(txn.takeTidy());
      await txn.discard().catch(() => undefined);
      throw err;
    }
    return { txn, included, droppedRows };
  }

  private async maybeCompact(ts: Timestamp): Promise<void> {
    if (this.compactEvery === 0 || ++this.commitsSinceCompact < this.compactEvery) return;
    this.commitsSinceCompact = 0;
    try {
      await this.txns.compactTo(ts);
    } catch (err) {
      this.log.warn({ err, ts }, 'group commit: compactTo failed');
    }
  }
}
