/**
 * The one "commit at the next timestamp" loop and its two timestamp sources: a
 * refusal is reported lost and retried past it, a landed commit is reported
 * committed, a commit that throws is reported nothing, and a commit the source could
 * not be told about is still returned as durable (CommitNotRecorded).
 */
import { expect } from 'chai';
import { CommittedButUnconfirmed } from '../../src/coord/group-commit-errors.js';
import { LogicalClock } from '../../src/coord/logical-clock.js';
import {
  CommitNotRecorded,
  commitAtNextTimestamp,
  nextFreeTxnsTime,
  oracleTimestamps,
  type CommitAttempt,
  type TimestampSource,
} from '../../src/coord/timestamp-source.js';
import { InvalidTimestamp, PersistStorageError } from '../../src/persist/errors.js';
import type { Timestamp } from '../../src/persist/time.js';

type Landed = { ok: true; note: string };

/** A commit that accepts only at or past `upper`, like a txns shard whose upper is `upper`; records each attempt. */
function shardAt(upper: Timestamp): { attempts: Timestamp[]; commit(ts: Timestamp): Promise<CommitAttempt<Landed>> } {
  const attempts: Timestamp[] = [];
  return {
    attempts,
    commit: (ts) => {
      attempts.push(ts);
      if (ts < upper) return Promise.resolve({ ok: false, current: upper });
      upper = ts + 1;
      return Promise.resolve({ ok: true, note: `at ${ts}` });
    },
  };
}

/** Wraps `inner`, recording what it is told. */
function recording(inner: TimestampSource): { source: TimestampSource; told: string[] } {
  const told: string[] = [];
  return {
    told,
    source: {
      next: () => inner.next(),
      lost: (current) => (told.push(`lost ${current}`), inner.lost(current)),
      committed: (ts) => (told.push(`committed ${ts}`), inner.committed(ts)),
    },
  };
}

describe('coord: commit at the next timestamp', () => {
  it('without an oracle: a refusal teaches the txns upper, and the next commit goes one past the last', async () => {
    const shard = shardAt(5);
    const { source, told } = recording(nextFreeTxnsTime(0));
    const first = await commitAtNextTimestamp(source, shard.commit);
    expect(first).to.deep.equal({ ts: 5, landed: { ok: true, note: 'at 5' } });
    const second = await commitAtNextTimestamp(source, shard.commit);
    expect(second.ts).to.equal(6);
    expect(shard.attempts).to.deep.equal([0, 5, 6]);
    expect(told).to.deep.equal(['lost 5', 'committed 5', 'committed 6']);
  });

  it('without an oracle: a commit at the last safe time is recorded; only the next one fails, before committing', async () => {
    const shard = shardAt(Number.MAX_SAFE_INTEGER);
    const source = nextFreeTxnsTime(Number.MAX_SAFE_INTEGER);
    expect((await commitAtNextTimestamp(source, shard.commit)).ts).to.equal(Number.MAX_SAFE_INTEGER);
    let err: unknown;
    await commitAtNextTimestamp(source, shard.commit).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(InvalidTimestamp);
    expect(shard.attempts).to.deep.equal([Number.MAX_SAFE_INTEGER]);
  });

  it('with an oracle: a taken timestamp moves the oracle past it, and a landed one is applied', async () => {
    const oracle = new LogicalClock({ now: () => 100 });
    const shard = shardAt(2_000);
    const { ts } = await commitAtNextTimestamp(oracleTimestamps(oracle), shard.commit);
    expect(shard.attempts).to.deep.equal([100, 2_000]);
    expect(ts).to.equal(2_000);
    expect(await oracle.readTs()).to.equal(2_000);
    expect((await oracle.writeTs()).timestamp).to.equal(2_001);
  });

  it('a commit that throws is passed on as it is, and the source is told nothing (it may have landed)', async () => {
    const { source, told } = recording(nextFreeTxnsTime(3));
    const thrown = new PersistStorageError('compare-and-set timed out', true);
    let err: unknown;
    await commitAtNextTimestamp(source, () => Promise.reject(thrown)).catch((e: unknown) => (err = e));
    expect(err).to.equal(thrown);
    expect(told).to.deep.equal([]);
  });

  it('a landed commit the source could not be told about rejects with CommitNotRecorded, carrying what landed', async () => {
    const oracleDown = new Error('oracle unavailable');
    const source: TimestampSource = { ...nextFreeTxnsTime(7), committed: () => Promise.reject(oracleDown) };
    let err: unknown;
    await commitAtNextTimestamp(source, shardAt(0).commit).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(CommitNotRecorded);
    expect(err).to.be.instanceOf(CommittedButUnconfirmed);
    const notRecorded = err as CommitNotRecorded<Landed>;
    expect(notRecorded.commitTs).to.equal(7);
    expect(notRecorded.step).to.equal('oracle');
    expect(notRecorded.landed).to.deep.equal({ ok: true, note: 'at 7' });
    expect(notRecorded.cause).to.equal(oracleDown);
    expect(notRecorded.message).to.match(/committed at 7.*do not submit it again/);
  });

  it('a failure to report a lost timestamp is passed on, and nothing is retried', async () => {
    const oracleDown = new Error('oracle unavailable');
    const shard = shardAt(10);
    const source: TimestampSource = { ...nextFreeTxnsTime(0), lost: () => Promise.reject(oracleDown) };
    let err: unknown;
    await commitAtNextTimestamp(source, shard.commit).catch((e: unknown) => (err = e));
    expect(err).to.equal(oracleDown);
    expect(shard.attempts).to.deep.equal([0]);
  });
});
