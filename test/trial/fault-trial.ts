/**
 * The seeded fault trial (issue 10): a txn-wal workload over a Location whose Blob
 * and Consensus fail a fraction of calls, then a checker that reads everything back
 * with faults off, through a fresh client, and lists what went wrong.
 *
 * Workload (one seed):
 * - a private `mem://` store, wrapped by `withFaultInjection`; every client of the
 *   workload talks through the wrapper, the checker talks to the store directly;
 * - persist maintenance on and aggressive (rollups every few versions, GC after
 *   every couple, compaction on, batches always in Blob rather than inline), so
 *   compaction, rollups and GC run underneath the writes;
 * - set-up with faults OFF: a txns shard, `dataShards` data shards registered
 *   through two TxnsHandles on it (one for direct transactions, one under a
 *   GroupCommitter), a `dataSubscribe$` reader per data shard on its own client;
 * - then faults ON (independent faults plus short outages, see `burstRate`) and `ops` logical writes, each a unique key `${seed}:${n}` to
 *   1–3 data shards: direct transactions (`commitAt` + `apply`, tidies carried along,
 *   an occasional `compactTo`) in one lane, `GroupCommitter.submitWrite` in another,
 *   a few in flight at once. Every outcome is recorded: acked, failed with
 *   `mayHaveHappened: false`, failed with `mayHaveHappened: true`, other error.
 *
 * Checks (after faults are turned off and a fresh client opened on the store):
 * - every acked write is present exactly once in every shard it wrote (snapshot at
 *   the txns frontier after `applyLe`), never partly (all of its shards or none);
 * - every write that failed with `mayHaveHappened: false` is absent; `true` ones and
 *   other errors are present 0 or 1 times, atomically; keys never attempted (a lane
 *   stopped after a hang) are absent;
 * - no duplicates, no key in a shard it was not written to, every data shard and
 *   the txns shard readable;
 * - each reader's output below its last progress agrees with the final snapshot
 *   (same keys, each once, at the acked commit time);
 * - no hang: every operation runs under a deadline (a timer, not a sleep), and a
 *   hang is reported naming the operation;
 * - no unhandled rejection or uncaught exception during the trial, and no
 *   InvariantViolation from any call (those are "impossible" by definition).
 *
 * Example:
 * ```ts
 * const r = await runFaultTrial({ seed: 7 });
 * r.anomalies;   // [] when storage faults are handled correctly
 * ```
 */
import { Registry } from 'prom-client';
import { withFaultInjection, type FaultKind } from '../../src/location/fault-injection.js';
import { openLocation, type Location } from '../../src/location/location.js';
import { CommittedButUnconfirmed, GroupCommitFailed } from '../../src/coord/group-commit-errors.js';
import { GroupCommitter } from '../../src/coord/group-commit.js';
import { LogicalClock } from '../../src/coord/logical-clock.js';
import { PersistClient } from '../../src/persist/client.js';
import type { PersistConfig } from '../../src/persist/config.js';
import { InvariantViolation, PersistStorageError, ReadBelowSince } from '../../src/persist/errors.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import type { Update } from '../../src/persist/update.js';
import { dataSubscribe$ } from '../../src/operators/data-subscribe.js';
import { Metrics } from '../../src/persist/metrics.js';
import { Tidy } from '../../src/txn/tidy.js';
import { TxnsCache } from '../../src/txn/txns-cache.js';
import { TxnsCodecDefault } from '../../src/txn/txns-codec.js';
import { TxnsHandle } from '../../src/txn/txns-handle.js';
import type { Subscription } from 'rxjs';
import { STRING_UNIT } from '../support/persist.js';
import { xorshift32 } from '../support/rng.js';

export interface FaultTrialOptions {
  seed: number;
  /** Fraction of storage calls that fail, half determinate, half indeterminate (default 0.1). */
  faultRate?: number;
  /** Logical writes in the workload (default 40). */
  ops?: number;
  /** Data shards (default 4). */
  dataShards?: number;
  /**
   * Outages: the chance per call that the next `burstLength` calls all fail (default
   * 0.002, 25 calls: a few milliseconds of this workload). They outlast persist's retries, so failure paths and outcome
   * flags get exercised; 0 for independent faults only.
   */
  burstRate?: number;
  burstLength?: number;
  /** Fraction of storage calls delayed by up to 5 ms (default 0.02). */
  slowRate?: number;
  /** Deadline of every single operation, in ms (default 30 000). */
  deadlineMs?: number;
  /** persist's storage retry attempts (default 3: enough to ride out most faults, few enough that some surface). */
  storageRetryAttempts?: number;
  /** Group-commit writes in flight at once (default 3). */
  groupConcurrency?: number;
}

export type AnomalyKind =
  | 'lost'
  | 'duplicated'
  | 'partial'
  | 'phantom'
  | 'wrong-flag'
  | 'unreadable'
  | 'reader'
  | 'hang'
  | 'invariant'
  | 'unhandled';

export interface Anomaly {
  kind: AnomalyKind;
  /** One line saying what went wrong, naming the write, shard or operation. */
  description: string;
  /** The error behind it, if any (for stacks). */
  error?: unknown;
}

export type Outcome =
  | { kind: 'acked'; commitTs: number }
  | { kind: 'failed-definite'; error: unknown }
  | { kind: 'failed-maybe'; error: unknown }
  | { kind: 'other-error'; error: unknown }
  | { kind: 'hung' }
  | { kind: 'not-attempted' };

export interface WriteRecord {
  n: number;
  key: string;
  shards: ShardId[];
  via: 'txn' | 'group';
  outcome: Outcome;
}

export interface FaultTrialResult {
  seed: number;
  ops: number;
  acked: number;
  failedDefinite: number;
  failedMaybe: number;
  otherErrors: number;
  /** "ClassName: message" of each other error, and of errors outside the writes (apply, compactTo, readers). */
  otherErrorMessages: string[];
  faults: Record<FaultKind, number>;
  anomalies: Anomaly[];
  writes: WriteRecord[];
  durationMs: number;
}

const KEY_SEP = ':';
const AFTER_HANG_DEADLINE_MS = 2000;

/** "ClassName: message" of an error. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** The innermost cause of an error chain (GroupCommitFailed wraps the persist error). */
function rootCause(err: unknown): unknown {
  let e = err;
  for (let i = 0; i < 10 && e instanceof Error && e.cause !== undefined; i++) e = e.cause;
  return e;
}

type Settled<T> = { kind: 'value'; value: T } | { kind: 'error'; error: unknown } | { kind: 'hang' };

/** Collects anomalies and guards every operation with a deadline. */
class Checker {
  readonly anomalies: Anomaly[] = [];
  readonly otherErrorMessages: string[] = [];

  constructor(private readonly deadlineMs: number) {}

  add(kind: AnomalyKind, description: string, error?: unknown): void {
    this.anomalies.push({ kind, description, error });
  }

  /** Notes an error that is not a write's outcome; an InvariantViolation anywhere is an anomaly. */
  noteError(what: string, err: unknown): void {
    this.otherErrorMessages.push(`${what}: ${describeError(err)}`);
    this.checkInvariant(what, err);
  }

  checkInvariant(what: string, err: unknown): void {
    if (err instanceof InvariantViolation || rootCause(err) instanceof InvariantViolation) {
      this.add('invariant', `${what} threw ${describeError(rootCause(err))}`, err);
    }
  }

  get hung(): boolean {
    return this.anomalies.some((a) => a.kind === 'hang');
  }

  /**
   * Runs `fn` under the deadline; a hang is recorded as an anomaly naming `what`.
   * After the first hang, later operations get at most {@link AFTER_HANG_DEADLINE_MS}:
   * what is stuck usually stays stuck, and the trial should still end in seconds.
   */
  async settle<T>(what: string, fn: () => Promise<T>): Promise<Settled<T>> {
    let timer: NodeJS.Timeout | undefined;
    const ms = this.hung ? Math.min(this.deadlineMs, AFTER_HANG_DEADLINE_MS) : this.deadlineMs;
    const deadline = new Promise<'hang'>((resolve) => {
      timer = setTimeout(() => resolve('hang'), ms);
    });
    const work = fn().then(
      (value): Settled<T> => ({ kind: 'value', value }),
      (error: unknown): Settled<T> => ({ kind: 'error', error }),
    );
    try {
      const r = await Promise.race([work, deadline]);
      if (r === 'hang') {
        this.add('hang', `${what} did not settle within ${ms} ms`);
        return { kind: 'hang' };
      }
      return r;
    } finally {
      clearTimeout(timer);
    }
  }

  /** `settle`, but an error is noted and turned into `undefined` (set-up and checking steps). */
  async step<T>(what: string, fn: () => Promise<T>, onError: AnomalyKind | 'note' = 'unreadable'): Promise<T | undefined> {
    const r = await this.settle(what, fn);
    if (r.kind === 'value') return r.value;
    if (r.kind === 'error') {
      if (onError === 'note') this.noteError(what, r.error);
      else this.add(onError, `${what} failed: ${describeError(r.error)}`, r.error);
    }
    return undefined;
  }
}

/** How many times a reader is resubscribed after its stream errored (storage faults end streams). */
const READER_RESTARTS = 50;

/**
 * One `dataSubscribe$` reader of a data shard from `asOf`, and what it saw. A stream
 * that errors is noted and subscribed again from `asOf` (a new reader would be), so
 * the log always holds the latest subscription's output.
 */
class TrialReader {
  updates: Update<string, null>[] = [];
  progress = -1;
  error: unknown;
  restarts = 0;
  private subscription: Subscription | undefined;
  private stopped = false;
  /** A restart is scheduled. */
  private restarting = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly client: PersistClient,
    private readonly txnsId: ShardId,
    readonly dataId: ShardId,
    /** The current subscription's as-of: raised to the since when a restart found the shard compacted past it. */
    public asOf: number,
    private readonly check: Checker,
  ) {
    this.start();
  }

  private start(): void {
    this.updates = [];
    this.progress = -1;
    this.error = undefined;
    this.subscription = dataSubscribe$(this.client, this.txnsId, this.dataId, { codecs: STRING_UNIT, asOf: this.asOf }).subscribe({
      next: (ev) => {
        if (ev.kind === 'updates') this.updates.push(...ev.updates);
        else this.progress = ev.upper;
        this.wake();
      },
      error: (err: unknown) => {
        this.error = err ?? new Error('errored without a reason');
        this.check.noteError(`reader of ${this.dataId} (subscription ${this.restarts + 1})`, this.error);
        // Storage faults end a stream and a new reader is the cure; anything else is a finding, and final.
        const retryable = this.error instanceof PersistStorageError || this.error instanceof ReadBelowSince;
        if (retryable && !this.stopped && this.restarts < READER_RESTARTS) {
          this.restarts++;
          this.restarting = true;
          // While this reader was down, others let the shard compact: start where it can be read.
          if (err instanceof ReadBelowSince) this.asOf = err.since;
          // Not from inside the failing stream's own error callback.
          setImmediate(() => {
            this.restarting = false;
            if (!this.stopped) this.start();
            this.wake();
          });
        } else {
          this.wake();
        }
      },
      complete: () => this.wake(),
    });
  }

  stop(): void {
    this.stopped = true;
    this.subscription?.unsubscribe();
    this.wake();
  }

  /** Resolves once progress passes `ts`; rejects with the stream's error once it will not be restarted. */
  async untilPast(ts: number): Promise<void> {
    for (;;) {
      if (this.progress > ts) return;
      if (this.error !== undefined && !this.restarting) throw this.error;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

function trialConfig(attempts: number): Partial<PersistConfig> {
  return {
    rollupThreshold: 3,
    gcMinVersions: 2,
    compaction: true,
    awaitMaintenance: false,
    // Every batch goes to Blob, so part writes and deletes meet faults too.
    inlineWritesSingleMaxBytes: 0,
    inlineWritesTotalMaxBytes: 0,
    listenPoll: { initialMs: 2, multiplier: 2, clampMs: 25 },
    storageRetry: { attempts, initialMs: 1, multiplier: 2, clampMs: 8 },
  };
}

/** Runs one seeded trial; see the module comment. Never throws for a finding: findings are anomalies. */
export async function runFaultTrial(opts: FaultTrialOptions): Promise<FaultTrialResult> {
  const started = performance.now();
  const seed = opts.seed;
  const faultRate = opts.faultRate ?? 0.1;
  const nOps = opts.ops ?? 40;
  const nShards = opts.dataShards ?? 4;
  const check = new Checker(opts.deadlineMs ?? 30_000);
  const rng = xorshift32(seed * 2654435761 + 1);

  // Unhandled rejections and uncaught exceptions are findings; take them over for the trial.
  const saved = {
    unhandledRejection: process.listeners('unhandledRejection'),
    uncaughtException: process.listeners('uncaughtException'),
  };
  const onUnhandled = (reason: unknown) => {
    check.add('unhandled', `unhandled rejection: ${describeError(reason)}`, reason);
    check.checkInvariant('an unhandled rejection', reason);
  };
  const onUncaught = (err: unknown) => {
    check.add('unhandled', `uncaught exception: ${describeError(err)}`, err);
    check.checkInvariant('an uncaught exception', err);
  };
  process.removeAllListeners('unhandledRejection');
  process.removeAllListeners('uncaughtException');
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUncaught);

  const inner = await openLocation('mem://');
  // Writers and readers get their own injectors: the readers' steady polling would
  // otherwise soak up the outages meant for the writes' retry loops.
  const faulty = withFaultInjection(inner, {
    seed,
    faultRate,
    slowRate: opts.slowRate ?? 0.02,
    slowMaxMs: 5,
    burst: { rate: faultRate > 0 ? (opts.burstRate ?? 0.002) : 0, length: opts.burstLength ?? 25 },
    enabled: false,
  });
  const faultyReads = withFaultInjection(inner, { seed: seed ^ 0x5eed, faultRate, slowRate: opts.slowRate ?? 0.02, slowMaxMs: 5, enabled: false });
  const setFaults = (on: boolean) => {
    faulty.faults.enabled = on;
    faultyReads.faults.enabled = on;
  };
  const config = trialConfig(opts.storageRetryAttempts ?? 3);
  const writes: WriteRecord[] = [];
  const clients: PersistClient[] = [];
  const readers: TrialReader[] = [];
  // Set by runWorkload; the ids are fresh per trial, the committer is settled after the workload.
  const txnsId = newShardId();
  let dataIds: ShardId[] = [];
  let committer: GroupCommitter<string, null> | undefined;
  try {
    await runWorkload();
    setFaults(false);
    await settleWorkload();
    await verify(inner);
  } finally {
    setFaults(false);
    for (const r of readers) r.stop();
    for (const c of clients) await check.step('closing a workload client', () => c.close(), 'note');
    await inner.close();
    // Let stray callbacks of the trial land while our listeners are still installed.
    await new Promise((resolve) => setImmediate(resolve));
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUncaught);
    for (const l of saved.unhandledRejection) process.on('unhandledRejection', l);
    for (const l of saved.uncaughtException) process.on('uncaughtException', l);
  }

  const count = (k: Outcome['kind']) => writes.filter((w) => w.outcome.kind === k).length;
  return {
    seed,
    ops: writes.length,
    acked: count('acked'),
    failedDefinite: count('failed-definite'),
    failedMaybe: count('failed-maybe'),
    otherErrors: count('other-error'),
    otherErrorMessages: [
      ...writes.flatMap((w) => (w.outcome.kind === 'other-error' ? [`write ${w.key} (${w.via}): ${describeError(w.outcome.error)}`] : [])),
      ...check.otherErrorMessages,
    ],
    faults: sumTotals(faulty.faults.totals(), faultyReads.faults.totals()),
    anomalies: check.anomalies,
    writes,
    durationMs: performance.now() - started,
  };

  // ---------------------------------------------------------------- workload

  async function runWorkload(): Promise<void> {
    dataIds = Array.from({ length: nShards }, () => newShardId());
    const metrics = Metrics.forRegistry(new Registry());
    const client = await PersistClient.open(faulty, { config });
    const readClient = await PersistClient.open(faultyReads, { config });
    clients.push(client, readClient);
    const clock = new LogicalClock({ now: () => 0 });

    // Set-up, faults off: failures here are the harness's, not findings.
    const txnsDirect = await TxnsHandle.open(client, { txnsId, codecs: STRING_UNIT, metrics });
    const txnsGroup = await TxnsHandle.open(client, { txnsId, codecs: STRING_UNIT, metrics });
    committer = await GroupCommitter.open(txnsGroup, clock, { maxWaitForNowMs: 0, compactEvery: 4 });
    await committer.register(await Promise.all(dataIds.map((id) => client.openWriter(id, STRING_UNIT))));
    const directTs = (await clock.writeTs()).timestamp;
    const reg = await txnsDirect.register(directTs, await Promise.all(dataIds.map((id) => client.openWriter(id, STRING_UNIT))));
    if (!reg.ok) throw new Error(`trial set-up: register at ${directTs} found the txns upper at ${reg.current}`);
    await clock.applyWrite(directTs);
    const asOf = directTs;
    for (const dataId of dataIds) {
      readers.push(new TrialReader(readClient, txnsId, dataId, asOf, check));
    }
    await Promise.all(readers.map((r) => check.step(`set-up: reader of ${r.dataId} reaching ${asOf + 1}`, () => r.untilPast(asOf), 'reader')));

    // The plan comes from the seed alone.
    for (let n = 0; n < nOps; n++) {
      const width = 1 + (rng() % Math.min(3, nShards));
      const pool = [...dataIds];
      const shards: ShardId[] = [];
      for (let i = 0; i < width; i++) shards.push(pool.splice(rng() % pool.length, 1)[0]!);
      writes.push({ n, key: `${seed}${KEY_SEP}${n}`, shards, via: rng() % 2 ? 'txn' : 'group', outcome: { kind: 'not-attempted' } });
    }

    setFaults(true);
    await Promise.all([directLane(txnsDirect, clock), groupLane(committer)]);
  }

  function classify(err: unknown): Outcome {
    if (err instanceof CommittedButUnconfirmed) return { kind: 'acked', commitTs: err.commitTs };
    if (err instanceof PersistStorageError || err instanceof GroupCommitFailed) {
      return err.mayHaveHappened ? { kind: 'failed-maybe', error: err } : { kind: 'failed-definite', error: err };
    }
    return { kind: 'other-error', error: err };
  }

  async function directLane(txns: TxnsHandle<string, null>, clock: LogicalClock): Promise<void> {
    let tidy = new Tidy();
    let lastCommit: number | undefined;
    let sinceCompact = 0;
    for (const w of writes.filter((w) => w.via === 'txn')) {
      const txn = txns.begin();
      txn.tidy(tidy);
      tidy = new Tidy();
      const r = await check.settle(`direct txn ${w.key} commit`, async () => {
        for (const id of w.shards) await txn.write(id, w.key, null, 1);
        let ts = (await clock.writeTs()).timestamp;
        for (;;) {
          const res = await txn.commitAt(txns, ts);
          if (res.ok) return { ts, apply: res.apply };
          await clock.applyWrite(res.current - 1);
          ts = (await clock.writeTs()).timestamp;
        }
      });
      if (r.kind === 'hang') {
        w.outcome = { kind: 'hung' };
        return; // the handle is stuck in this call: everything after it would queue behind
      }
      if (r.kind === 'error') {
        w.outcome = classify(r.error);
        check.checkInvariant(`direct txn ${w.key} commit`, r.error);
        // Only a commit that definitely did not happen may drop its uploaded batches.
        if (w.outcome.kind === 'failed-definite') await check.step(`direct txn ${w.key} discard`, () => txn.discard(), 'note');
        continue;
      }
      const { ts, apply } = r.value;
      w.outcome = { kind: 'acked', commitTs: ts };
      lastCommit = ts;
      await clock.applyWrite(ts);
      const applied = await check.settle(`direct txn ${w.key} apply at ${ts}`, () => apply.apply(txns));
      if (applied.kind === 'hang') return;
      if (applied.kind === 'error') check.noteError(`direct txn ${w.key} apply at ${ts}`, applied.error);
      else tidy = applied.value;
      if (++sinceCompact >= 5 && lastCommit !== undefined) {
        sinceCompact = 0;
        const at = lastCommit;
        const compacted = await check.settle(`txns compactTo ${at}`, () => txns.compactTo(at));
        if (compacted.kind === 'hang') return;
        if (compacted.kind === 'error') check.noteError(`txns compactTo ${at}`, compacted.error);
      }
    }
  }

  async function groupLane(gc: GroupCommitter<string, null>): Promise<void> {
    const queue = writes.filter((w) => w.via === 'group');
    let stopped = false;
    const worker = async () => {
      for (let w = queue.shift(); w && !stopped; w = queue.shift()) {
        const write = w;
        const rows = Object.fromEntries(write.shards.map((id) => [id, [[write.key, null, 1] as const]]));
        const r = await check.settle(`group write ${write.key}`, () => gc.submitWrite(rows));
        if (r.kind === 'hang') {
          write.outcome = { kind: 'hung' };
          stopped = true;
        } else if (r.kind === 'error') {
          write.outcome = classify(r.error);
          check.checkInvariant(`group write ${write.key}`, r.error);
        } else {
          write.outcome = { kind: 'acked', commitTs: r.value.commitTs };
        }
      }
    };
    await Promise.all(Array.from({ length: opts.groupConcurrency ?? 3 }, worker));
  }

  /** Faults are off: let the workload's background work finish, each step under the deadline. */
  async function settleWorkload(): Promise<void> {
    if (committer) {
      const gc = committer;
      await check.step('GroupCommitter.close after the workload', () => gc.close(), 'note');
    }
    for (const c of clients) await check.step('flushMaintenance after the workload', () => c.flushMaintenance(), 'note');
  }

  // ---------------------------------------------------------------- checks

  async function verify(store: Location): Promise<void> {
    const client = await PersistClient.open(store, { config });
    try {
      const txns = await check.step('TxnsHandle.open on a fresh client', () =>
        TxnsHandle.open(client, { txnsId, codecs: STRING_UNIT, metrics: Metrics.forRegistry(new Registry()) }),
      );
      const upper = await check.step('reading the txns upper', async () => {
        const w = await client.openWriter(txnsId, TxnsCodecDefault.codecs);
        try {
          return await w.fetchRecentUpper();
        } finally {
          await w.expire();
        }
      });
      if (upper === undefined) return;
      const asOf = upper - 1;
      if (txns) await check.step(`applyLe(${asOf}) on a fresh client`, () => txns.applyLe(asOf));

      await check.step(`snapshot of the txns shard at ${asOf}`, async () => {
        const r = await client.openLeasedReader(txnsId, TxnsCodecDefault.codecs);
        try {
          await r.snapshotAndFetch(Math.max(asOf, r.since()));
        } finally {
          await r.expire();
        }
      });

      // Per shard, per key: the summed diff and how many rows carried it.
      const contents = new Map<ShardId, Map<string, number>>();
      for (const dataId of dataIds) {
        const rows = await check.step(`snapshot of data shard ${dataId} at ${asOf}`, () => dataSnapshot(client, txnsId, dataId, asOf));
        if (rows === undefined) continue;
        const sums = new Map<string, number>();
        for (const [k, , , d] of rows) sums.set(k, (sums.get(k) ?? 0) + d);
        contents.set(dataId, sums);
      }
      checkWrites(contents);
      // With faults off every reader must catch up with the txns upper.
      await Promise.all(readers.map((r) => check.step(`reader of ${r.dataId} reaching progress ${upper}`, () => r.untilPast(asOf), 'reader')));
      for (const r of readers) checkReader(r, contents.get(r.dataId));
      if (txns) await check.step('closing the checker TxnsHandle', () => txns.close(), 'note');
    } finally {
      await check.step('closing the checker client', () => client.close(), 'note');
    }
  }

  function checkWrites(contents: Map<ShardId, Map<string, number>>): void {
    const byKey = new Map(writes.map((w) => [w.key, w]));
    for (const [dataId, sums] of contents) {
      for (const [key, diff] of sums) {
        const w = byKey.get(key);
        if (!w) check.add('phantom', `data shard ${dataId} holds key ${JSON.stringify(key)}, which no write of the trial wrote`);
        else if (!w.shards.includes(dataId)) check.add('phantom', `write ${key} (${w.via}) appears in ${dataId}, a shard it did not write`);
        else if (diff !== 1 && diff !== 0) check.add('duplicated', `write ${key} (${w.via}, ${w.outcome.kind}) has diff ${diff} in ${dataId}`);
      }
    }
    for (const w of writes) {
      const readable = w.shards.filter((id) => contents.has(id));
      if (readable.length === 0) continue; // its shards are unreadable: reported already
      const present = readable.filter((id) => contents.get(id)!.get(w.key) === 1);
      const label = `write ${w.key} (${w.via}, ${describeOutcome(w.outcome)})`;
      if (present.length > 0 && present.length < readable.length) {
        check.add('partial', `${label} is in ${present.length} of its ${readable.length} readable shards (missing from ${readable.filter((id) => !present.includes(id)).join(', ')})`);
        continue;
      }
      const isPresent = present.length > 0;
      switch (w.outcome.kind) {
        case 'acked':
          if (!isPresent) check.add('lost', `${label} is missing from every shard it wrote`);
          break;
        case 'failed-definite':
          if (isPresent) check.add('wrong-flag', `${label} said mayHaveHappened: false, yet it is present`, w.outcome.error);
          break;
        case 'not-attempted':
          if (isPresent) check.add('phantom', `${label} was never submitted, yet it is present`);
          break;
        default:
          break; // may have happened: 0 or 1 times, atomically, both checked above
      }
    }
  }

  /** The reader's output below its last progress must match the final contents, each key once, at its commit time. */
  function checkReader(r: TrialReader, sums: Map<string, number> | undefined): void {
    if (sums === undefined) return;
    const frontier = r.progress;
    const seen = new Map<string, { diff: number; ts: number }>();
    for (const [k, , ts, d] of r.updates) {
      if (ts >= frontier) continue;
      const prev = seen.get(k);
      seen.set(k, { diff: (prev?.diff ?? 0) + d, ts });
    }
    const byKey = new Map(writes.map((w) => [w.key, w]));
    for (const [k, { diff, ts }] of seen) {
      if (diff === 0) continue;
      if (diff !== 1) check.add('reader', `the reader of ${r.dataId} saw ${k} with diff ${diff} below its progress ${frontier}`);
      else if (sums.get(k) !== 1) check.add('reader', `the reader of ${r.dataId} saw ${k} at ${ts} (below its progress ${frontier}), but the final snapshot does not hold it`);
      const w = byKey.get(k);
      if (w?.outcome.kind === 'acked' && Math.max(w.outcome.commitTs, r.asOf) !== ts) {
        check.add('reader', `the reader of ${r.dataId} saw ${k} at ${ts}, but it was acked at ${w.outcome.commitTs}`);
      }
    }
    for (const w of writes) {
      if (w.outcome.kind !== 'acked' || !w.shards.includes(r.dataId) || sums.get(w.key) !== 1) continue;
      if (w.outcome.commitTs < frontier && (seen.get(w.key)?.diff ?? 0) === 0) {
        check.add('reader', `the reader of ${r.dataId} reached progress ${frontier} without ${w.key}, acked at ${w.outcome.commitTs}`);
      }
    }
  }
}

function sumTotals(a: Record<FaultKind, number>, b: Record<FaultKind, number>): Record<FaultKind, number> {
  return { determinate: a.determinate + b.determinate, indeterminate: a.indeterminate + b.indeterminate, slow: a.slow + b.slow };
}

/** Anomalies one per line, with the stack of the error behind each (if any) indented below it. */
export function formatAnomalies(anomalies: readonly Anomaly[], opts: { stacks?: boolean } = {}): string {
  return anomalies
    .map((a) => {
      const line = `  [${a.kind}] ${a.description}`;
      const stack = opts.stacks && a.error instanceof Error ? a.error.stack : undefined;
      return stack ? `${line}\n${stack.replace(/^/gm, '      ')}` : line;
    })
    .join('\n');
}

function describeOutcome(o: Outcome): string {
  switch (o.kind) {
    case 'acked':
      return `acked at ${o.commitTs}`;
    case 'failed-definite':
      return 'failed, mayHaveHappened: false';
    case 'failed-maybe':
      return 'failed, mayHaveHappened: true';
    case 'other-error':
      return `failed with ${describeError(o.error)}`;
    default:
      return o.kind;
  }
}

/** A data shard's contents at `asOf`, read the txn-wal way (a one-shard cache, unblock, snapshot). */
async function dataSnapshot(client: PersistClient, txnsId: ShardId, dataId: ShardId, asOf: number): Promise<Update<string, null>[]> {
  const cache = await TxnsCache.open(client, txnsId, { onlyDataId: dataId });
  try {
    await cache.updateGt(asOf);
    const snap = cache.dataSnapshot(dataId, asOf);
    const reader = await client.openLeasedReader(dataId, STRING_UNIT, { useCriticalSince: true });
    try {
      return await snap.snapshotAndFetch(reader);
    } finally {
      await reader.expire();
    }
  } finally {
    await cache.expire();
  }
}
