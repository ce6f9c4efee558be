/**
 * TimestampSource: where a committer takes the timestamp of its next commit, and
 * what it tells that source afterwards. {@link commitAtNextTimestamp} is the one
 * "commit at the next timestamp" loop, shared by the sink and group commit (its
 * group commits, registers and forgets).
 *
 * The loop: take a timestamp, commit at it; if the commit is refused
 * (`{ ok: false, current }`: someone else holds the times below `current`), tell
 * the source the timestamp was lost and try again at a fresh one, at or past
 * `current`; once a commit lands, tell the source it was committed, and return.
 *
 * Invariants:
 * - A timestamp is reported lost only after a *refusal*, which is a definite
 *   "nothing was written". A commit that throws is never reported lost (it may have
 *   landed: its error says whether, e.g. `mayHaveHappened`); the error propagates
 *   unchanged, and the source is told nothing.
 * - The source hears `committed(ts)` exactly once per landed commit, before the
 *   loop returns, so a reader of the source never sees a commit the committer has
 *   not announced as done.
 * - If telling the source fails, the commit is still durable: the loop rejects with
 *   {@link CommitNotRecorded}, a {@link CommittedButUnconfirmed} (step `'oracle'`)
 *   that carries the commit's timestamp and outcome, so the caller can still apply
 *   it and must not commit it again.
 *
 * Two sources:
 * - {@link oracleTimestamps}: a {@link TimestampOracle}'s `writeTs()`; a lost
 *   timestamp moves the oracle past the taken times (`applyWrite(current - 1)`), a
 *   committed one is applied (`applyWrite(ts)`).
 * - {@link nextFreeTxnsTime}: no oracle; the next time the txns shard will accept.
 *   It starts at a guess and learns the txns upper from refusals; after a commit at
 *   `ts` it offers `ts + 1`.
 *
 * Worked example (no oracle, the txns shard's upper at 5):
 * ```ts
 * const source = nextFreeTxnsTime(0);
 * const { ts, landed } = await commitAtNextTimestamp(source, (ts) => txn.commitAt(txns, ts));
 * // commitAt(0) → { ok: false, current: 5 }; lost(5); commitAt(5) → { ok: true, apply }
 * // committed(5); ts === 5, landed.apply applies it; the next commit is tried at 6
 * ```
 */
import { stepForward, type Timestamp } from '../persist/time.js';
import { CommittedButUnconfirmed } from './group-commit-errors.js';
import type { TimestampOracle } from './timestamp-oracle.js';

export interface TimestampSource {
  /** The timestamp to try the next commit at. */
  next(): Promise<Timestamp>;
  /** A commit was refused: every time below `current` is taken by another writer. */
  lost(current: Timestamp): Promise<void>;
  /** A commit landed at `ts`. */
  committed(ts: Timestamp): Promise<void>;
}

/** A commit attempt's result: landed (with whatever the commit returns), or refused at a taken time. */
export type CommitAttempt<Landed extends { ok: true }> = Landed | { ok: false; current: Timestamp };

/** Timestamps from `oracle`, which is told about every lost and every committed timestamp. */
export function oracleTimestamps(oracle: Pick<TimestampOracle, 'writeTs' | 'applyWrite'>): TimestampSource {
  return {
    next: async () => (await oracle.writeTs()).timestamp,
    // Applying `current - 1` moves the oracle's write timestamp past the taken times.
    lost: (current) => oracle.applyWrite(current - 1),
    committed: (ts) => oracle.applyWrite(ts),
  };
}

/** The next time the txns shard accepts, starting with the guess `firstTs` and learning from refusals. */
export function nextFreeTxnsTime(firstTs: Timestamp): TimestampSource {
  let nextTs = firstTs;
  let lastCommitted: Timestamp | undefined;
  return {
    // Stepping past the last commit here, not in `committed`, so a commit at the
    // last safe time is recorded and only the next commit fails (before it writes).
    next: async () => {
      if (lastCommitted !== undefined) nextTs = stepForward(lastCommitted);
      lastCommitted = undefined;
      return nextTs;
    },
    lost: (current) => {
      nextTs = current;
      return Promise.resolve();
    },
    committed: (ts) => {
      lastCommitted = ts;
      return Promise.resolve();
    },
  };
}

/**
 * The commit landed at `commitTs` but telling the timestamp source so failed. It is
 * durable: apply `landed` (or let a later apply do it) and do not commit it again.
 */
export class CommitNotRecorded<Landed> extends CommittedButUnconfirmed {
  constructor(
    commitTs: Timestamp,
    readonly landed: Landed,
    cause: unknown,
  ) {
    super(commitTs, 'oracle', cause);
    this.name = 'CommitNotRecorded';
  }
}

/**
 * Commits at `source`'s next timestamp, moving past taken ones, and returns once it
 * landed, WITHOUT telling the source: the caller must call `source.committed(ts)`
 * (a group commit does so while it applies, to save a round trip of latency).
 */
export async function landAtNextTimestamp<Landed extends { ok: true }>(
  source: TimestampSource,
  commit: (ts: Timestamp) => Promise<CommitAttempt<Landed>>,
): Promise<{ ts: Timestamp; landed: Landed }> {
  for (;;) {
    const ts = await source.next();
    const attempt = await commit(ts);
    if (attempt.ok) return { ts, landed: attempt };
    await source.lost(attempt.current);
  }
}

/**
 * Commits at `source`'s next timestamp, moving past taken ones, and tells the
 * source once it landed (see the module docs for the error rules).
 */
export async function commitAtNextTimestamp<Landed extends { ok: true }>(
  source: TimestampSource,
  commit: (ts: Timestamp) => Promise<CommitAttempt<Landed>>,
): Promise<{ ts: Timestamp; landed: Landed }> {
  const { ts, landed } = await landAtNextTimestamp(source, commit);
  try {
    await source.committed(ts);
  } catch (err) {
    throw new CommitNotRecorded(ts, landed, err);
  }
  return { ts, landed };
}
