/**
 * GroupCommitter scenarios (seed 002): one transaction per group at one oracle
 * timestamp, consolidation, waiting for the wall clock and the internal-write bypass,
 * write locks (deferral and wake-up, exclusive read-then-write), dropped collections,
 * background writes, read-only mode, ack after commit vs after apply, lost timestamp
 * races, failures, and close().
 */
import { expect } from 'chai';
import { GroupCommitter } from '../../src/coord/group-commit.js';
import {
  CommittedButUnconfirmed,
  CommitterClosed,
  GroupCommitFailed,
  OutsideLockedCollections,
  UnknownCollection,
  WriteInReadOnlyMode,
} from '../../src/coord/group-commit-errors.js';
import { LogicalClock } from '../../src/coord/logical-clock.js';
import type { TimestampOracle } from '../../src/coord/timestamp-oracle.js';
import { InvalidUsage, PersistStorageError } from '../../src/persist/errors.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { sleep } from '../../src/persist/wait.js';
import { observe } from '../support/async.js';
import { clockOracle } from '../support/oracle.js';
import { expectReject } from '../support/persist.js';
import { openTxns, outputRows, reader, writer } from '../support/txn.js';
import { FakeClock, assertLogged, holdLock, physicalUpper, readRows, rowsOf, setup, type Env } from './group-commit-support.js';

describe('coord: group commit', function () {
  this.timeout(20_000);
  let env: Env | undefined;
  afterEach(async () => {
    await env?.close();
    env = undefined;
  });

  it('writes submitted together commit as ONE transaction at one oracle timestamp, and read back exactly', async () => {
    env = await setup({ collections: 2 });
    const [a, b] = env.ids as [string, string];
    const before = env.gc.stats.groupCommits;
    const acks = await Promise.all(
      Array.from({ length: 20 }, (_, i) => env!.gc.submitWrite({ [i % 2 ? a : b]: rowsOf(`k${i}`) })),
    );
    const ts = acks[0]!.commitTs;
    expect(acks.map((x) => x.commitTs)).to.deep.equal(acks.map(() => ts));
    expect(env.gc.stats.groupCommits - before, 'one group commit').to.equal(1);
    expect(await env.oracle.readTs(), 'the oracle was told').to.be.at.least(ts);
    for (let i = 0; i < 20; i++) env.log.record([i % 2 ? a : b, `k${i}`, ts, 1]);
    await assertLogged(env, ts + 1);
  });

  it('rows of one collection are merged and consolidated: opposite diffs cancel, equal rows add up', async () => {
    env = await setup({ collections: 1 });
    const [a] = env.ids as [string];
    const acks = await Promise.all([
      env.gc.submitWrite({ [a]: [['x', null, 1], ['y', null, 1]] }),
      env.gc.submitWrite(new Map([[a, [['x', null, 1] as const, ['y', null, -1] as const]]])),
      env.gc.submitWrite({ [a]: [['z', null, 3], ['z', null, -3]] }),
    ]);
    const ts = acks[0]!.commitTs;
    expect(acks.every((x) => x.commitTs === ts)).to.equal(true);
    env.log.record([a, 'x', ts, 2]);
    await assertLogged(env, ts + 1);
  });

  it('every registered collection advances with a commit, written or not; advance() commits an empty group', async () => {
    env = await setup({ collections: 2 });
    const [a, b] = env.ids as [string, string];
    const { commitTs } = await env.gc.submitWrite({ [a]: rowsOf('only-a') });
    // b was not written, yet its logical progress passed the commit: readable at commitTs.
    const sub = await env.log.subscribe(b, env.registerTs, commitTs + 1);
    expect(sub.progress()).to.be.greaterThan(commitTs);
    expect(outputRows(sub)).to.deep.equal([]);
    await sub.close();
    const { commitTs: empty } = await env.gc.advance();
    expect(empty).to.be.greaterThan(commitTs);
    const subA = await env.log.subscribe(a, env.registerTs, empty + 1);
    expect(subA.progress()).to.be.greaterThan(empty);
    env.log.record([a, 'only-a', commitTs, 1]);
    env.log.assertEq(a, env.registerTs, empty + 1, outputRows(subA));
    await subA.close();
  });

  it('waits while the oracle is ahead of now, re-checking at the 1 s cap rather than sleeping out the whole gap', async () => {
    const clock = new FakeClock(1_000_000);
    // The oracle starts 100 s ahead of the (frozen) wall clock.
    env = await setup({ collections: 1, now: clock.now, initialTs: 1_100_000 });
    const [a] = env.ids as [string];
    const start = Date.now();
    const w = observe(env.gc.submitWrite({ [a]: rowsOf('late') }));
    await sleep(300);
    expect(w.settled, 'waiting for now() to catch up').to.equal(false);
    clock.ms = 2_000_000;
    const { commitTs } = await w.promise;
    const elapsed = Date.now() - start;
    expect(elapsed, 'woke at the cap').to.be.within(900, 1800);
    expect(commitTs, 'the timestamp follows the wall clock once it is ahead').to.equal(2_000_000);
  });

  it('waits only as long as the oracle is ahead when the clock moves', async () => {
    const t0 = Date.now();
    const base = 5_000_000;
    const now = () => base + (Date.now() - t0);
    env = await setup({ collections: 1, now });
    const [a] = env.ids as [string];
    // Put the oracle 300 ms ahead of the clock.
    await env.oracle.applyWrite(now() + 300);
    const start = Date.now();
    const { commitTs } = await env.gc.submitWrite({ [a]: rowsOf('soon') });
    const elapsed = Date.now() - start;
    expect(elapsed).to.be.within(250, 900);
    expect(commitTs).to.be.at.least(base + 300);
  });

  it('reads the oracle write timestamp at most every 100 ms, not once per group commit', async () => {
    env = await setup({ collections: 1 });
    const [a] = env.ids as [string];
    let peeks = 0;
    const peek = env.oracle.peekWriteTs.bind(env.oracle);
    env.oracle.peekWriteTs = () => {
      peeks++;
      return peek();
    };
    const groupsBefore = env.gc.stats.groupCommits;
    const start = performance.now();
    let last = 0;
    for (let i = 0; i < 50; i++) ({ commitTs: last } = await env.gc.submitWrite({ [a]: rowsOf(`k${i}`) }));
    const elapsed = performance.now() - start;
    expect(env.gc.stats.groupCommits - groupsBefore).to.equal(50);
    expect(peeks, `${peeks} peeks in ${elapsed.toFixed(0)} ms`).to.be.at.most(1 + Math.ceil(elapsed / 100));
    expect(await readRows(env, a, last + 1)).to.have.length(50);
  });

  it('an internal system write skips the wait for now and takes the waiting user writes along', async () => {
    const clock = new FakeClock(1_000_000);
    env = await setup({ collections: 2, now: clock.now });
    const [a, b] = env.ids as [string, string];
    await env.oracle.applyWrite(clock.ms + 100_000);
    const user = observe(env.gc.submitWrite({ [a]: rowsOf('user') }));
    await sleep(150);
    expect(user.settled, 'user writes wait for now()').to.equal(false);
    const start = Date.now();
    const internal = await env.gc.submitInternal({ [b]: rowsOf('system') });
    expect(Date.now() - start, 'woke the sleeping group commit at once').to.be.below(500);
    expect(internal.buffered).to.equal(false);
    const commitTs = (internal as { commitTs: number }).commitTs;
    expect((await user.promise).commitTs, 'the user write rode along').to.equal(commitTs);
    env.log.record([a, 'user', commitTs, 1]);
    env.log.record([b, 'system', commitTs, 1]);
    await assertLogged(env, commitTs + 1);
  });

  it('a blind write that cannot get its locks is deferred, holds none of them, and commits once they free', async () => {
    env = await setup({ collections: 2 });
    const [a, b] = env.ids as [string, string];
    const holder = await holdLock(env, a, { [a]: rowsOf('from-rtw') });
    const blocked = observe(env.gc.submitWrite({ [a]: rowsOf('blind-a'), [b]: rowsOf('blind-ab') }));
    // Others go ahead meanwhile, including writes to b, the collection the deferred write could get.
    const other = await env.gc.submitWrite({ [b]: rowsOf('blind-b') });
    const rtwB = await env.gc.readThenWrite([b], async (_, read) => {
      expect(await read(b)).to.deep.equal([['blind-b', null, 1]]);
      return undefined;
    });
    expect(rtwB.commitTs).to.equal(undefined);
    expect(blocked.settled).to.equal(false);
    expect(env.gc.stats.deferrals).to.be.at.least(1);
    holder.release();
    const rtw = await holder.result;
    const late = await blocked.promise;
    expect(late.commitTs, 'retried after the lock holder committed').to.be.greaterThan(rtw.commitTs!);
    env.log.record([b, 'blind-b', other.commitTs, 1]);
    env.log.record([a, 'from-rtw', rtw.commitTs!, 1]);
    env.log.record([a, 'blind-a', late.commitTs, 1]);
    env.log.record([b, 'blind-ab', late.commitTs, 1]);
    await assertLogged(env, late.commitTs + 1);
  });

  it('read-then-write operations on one collection run one at a time, each seeing the last; each function runs once', async () => {
    env = await setup({ collections: 1 });
    const [a] = env.ids as [string];
    let calls = 0;
    let inside = 0;
    const ops = Array.from({ length: 6 }, () =>
      env!.gc.readThenWrite([a], async (readTs, read) => {
        calls++;
        expect(++inside, 'exclusive').to.equal(1);
        const n = (await read(a)).length;
        await sleep(5);
        inside--;
        return { [a]: rowsOf(`n${n}@${readTs}`) };
      }),
    );
    const results = (await Promise.all(ops)).sort((x, y) => x.commitTs! - y.commitTs!);
    expect(calls).to.equal(6);
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      expect(r.readTs).to.be.below(r.commitTs!);
      if (i > 0) expect(r.readTs, 'read past the previous write').to.be.at.least(results[i - 1]!.commitTs!);
      env.log.record([a, `n${i}@${r.readTs}`, r.commitTs!, 1]);
    }
    await assertLogged(env, results[results.length - 1]!.commitTs! + 1);
  });

  it('a read-then-write that strays outside its locked collections, or throws, is rejected and releases its locks', async () => {
    env = await setup({ collections: 2 });
    const [a, b] = env.ids as [string, string];
    await expectReject(env.gc.readThenWrite([a], async () => ({ [b]: rowsOf('x') })), OutsideLockedCollections, /did not lock/);
    await expectReject(
      env.gc.readThenWrite([a], async (_, read) => {
        await read(b);
        return undefined;
      }),
      OutsideLockedCollections,
      /read collection/,
    );
    const boom = new Error('boom');
    const err = await expectReject(
      env.gc.readThenWrite([a], async () => {
        throw boom;
      }),
      Error,
    );
    expect(err).to.equal(boom);
    // Locks were released each time: a writer of a gets through at once.
    const r = await env.gc.readThenWrite([a], async (_, read) => {
      expect(await read(a)).to.deep.equal([]);
      return { [a]: rowsOf('ok') };
    });
    env.log.record([a, 'ok', r.commitTs!, 1]);
    await assertLogged(env, r.commitTs! + 1);
  });

  it('a write whose collection is dropped while it waits is acknowledged and not written; the rest of it is', async () => {
    env = await setup({ collections: 2 });
    const [a, b] = env.ids as [string, string];
    const holder = await holdLock(env, a);
    const waiting = observe(env.gc.submitWrite({ [a]: rowsOf('to-dropped'), [b]: rowsOf('to-kept') }));
    await sleep(20);
    const { forgetTs } = await env.gc.forget([a]);
    holder.release();
    await holder.result;
    const { commitTs } = await waiting.promise;
    expect(commitTs).to.be.greaterThan(forgetTs);
    expect(env.gc.stats.droppedRows).to.equal(1);
    const r = await reader(env.client, a);
    expect(await r.snapshotAndFetch(forgetTs), 'nothing reached the dropped collection').to.deep.equal([]);
    await r.expire();
    env.log.record([b, 'to-kept', commitTs, 1]);
    await env.log.assertSubscribe(b, env.registerTs, commitTs + 1);
  });

  it('misuse is refused up front and never spoils the group it would have joined', async () => {
    env = await setup({ collections: 1 });
    const [a] = env.ids as [string];
    const unknown = newShardId();
    const good = env.gc.submitWrite({ [a]: rowsOf('good') });
    await expectReject(env.gc.submitWrite({ [unknown]: rowsOf('x') }), UnknownCollection, /register it first/);
    await expectReject(env.gc.submitWrite({ [a]: [['x', null, 1.5]] }), InvalidUsage, /diff/);
    await expectReject(env.gc.readThenWrite([unknown], async () => undefined), UnknownCollection);
    expect(() => env!.gc.submitBackground({ [unknown]: rowsOf('x') })).to.throw(UnknownCollection);
    const { commitTs } = await good;
    env.log.record([a, 'good', commitTs, 1]);
    await assertLogged(env, commitTs + 1);
    await expectReject(GroupCommitter.open(env.txns, env.oracle, { ack: 'later' as 'apply' }), InvalidUsage, /ack must be/);
  });

  it('background writes do not trigger a commit; they ride along with the next one', async () => {
    env = await setup({ collections: 2 });
    const [a, b] = env.ids as [string, string];
    const commits = env.gc.stats.groupCommits;
    const peek = await env.oracle.peekWriteTs();
    env.gc.submitBackground({ [a]: rowsOf('bg') });
    await sleep(150);
    expect(env.gc.stats.groupCommits, 'no commit for a background write').to.equal(commits);
    expect(await env.oracle.peekWriteTs()).to.equal(peek);
    const { commitTs } = await env.gc.submitWrite({ [b]: rowsOf('fg') });
    env.log.record([a, 'bg', commitTs, 1]);
    env.log.record([b, 'fg', commitTs, 1]);
    await assertLogged(env, commitTs + 1);
  });

  it('read-only mode buffers system writes and refuses user writes; leaving it commits the buffer', async () => {
    env = await setup({ collections: 2, registerFirst: true, committer: { readOnly: true } });
    const [a, b] = env.ids as [string, string];
    expect(env.gc.isReadOnly).to.equal(true);
    expect(await env.gc.submitInternal({ [a]: rowsOf('internal') })).to.deep.equal({ buffered: true });
    env.gc.submitBackground({ [b]: rowsOf('background') });
    await expectReject(env.gc.submitWrite({ [a]: rowsOf('user') }), WriteInReadOnlyMode, /leaveReadOnly/);
    await expectReject(env.gc.readThenWrite([a], async () => undefined), WriteInReadOnlyMode);
    await expectReject(env.gc.advance(), WriteInReadOnlyMode);
    const peek = await env.oracle.peekWriteTs();
    await sleep(100);
    expect(env.gc.stats.groupCommits, 'nothing committed in read-only mode').to.equal(0);
    expect(await env.oracle.peekWriteTs()).to.equal(peek);
    const { commitTs } = await env.gc.leaveReadOnly();
    expect(env.gc.isReadOnly).to.equal(false);
    await expectReject(env.gc.leaveReadOnly(), InvalidUsage, /not in read-only mode/);
    env.log.record([a, 'internal', commitTs, 1]);
    env.log.record([b, 'background', commitTs, 1]);
    const user = await env.gc.submitWrite({ [a]: rowsOf('user') });
    env.log.record([a, 'user', user.commitTs, 1]);
    await assertLogged(env, user.commitTs + 1);
  });

  it("ack 'commit' resolves while the data shard is not yet written; the apply follows", async () => {
    env = await setup({ collections: 1, committer: { ack: 'commit' } });
    const [a] = env.ids as [string];
    const open = env.consensus.gate(a); // holds the apply (a write to a's shard), not the commit
    const { commitTs } = await env.gc.submitWrite({ [a]: rowsOf('x') });
    expect(await physicalUpper(env, a), 'not applied yet').to.be.at.most(commitTs);
    open();
    await env.gc.advance(); // runs after the previous group commit, apply included
    expect(await physicalUpper(env, a)).to.be.greaterThan(commitTs);
    env.log.record([a, 'x', commitTs, 1]);
    await assertLogged(env, commitTs + 1);
  });

  it("ack 'apply' resolves only once the data shard holds the write", async () => {
    env = await setup({ collections: 1, committer: { ack: 'apply' } });
    const [a] = env.ids as [string];
    const open = env.consensus.gate(a);
    const w = observe(env.gc.submitWrite({ [a]: rowsOf('x') }));
    await sleep(200);
    expect(w.settled, 'held until applied').to.equal(false);
    open();
    const { commitTs } = await w.promise;
    expect(await physicalUpper(env, a), 'applied when acknowledged').to.be.greaterThan(commitTs);
    const r = await reader(env.client, a);
    expect(await r.snapshotAndFetch(commitTs)).to.deep.equal([['x', null, commitTs, 1]]);
    await r.expire();
  });

  it('a timestamp taken by another writer of the txns shard moves the oracle on and is retried: written once', async () => {
    env = await setup({ collections: 1 });
    const [a] = env.ids as [string];
    const other = await openTxns(env.client, env.txns.txnsId);
    const taken = (await env.oracle.peekWriteTs()) + 100_000;
    const res = await other.begin().commitAt(other, taken);
    expect(res.ok).to.equal(true);
    const { commitTs } = await env.gc.submitWrite({ [a]: rowsOf('once') });
    expect(commitTs).to.be.greaterThan(taken);
    expect(env.gc.stats.lostRaces).to.be.at.least(1);
    expect(await env.oracle.readTs()).to.be.at.least(commitTs);
    env.log.record([a, 'once', commitTs, 1]);
    await assertLogged(env, commitTs + 1);
    await other.close();
  });

  it('a failed commit rejects every write of its group with the cause, writes nothing, and the next group commits', async () => {
    env = await setup({ collections: 1 });
    const [a] = env.ids as [string];
    env.consensus.refused.add(env.txns.txnsId);
    const outcomes = await Promise.allSettled([
      env.gc.submitWrite({ [a]: rowsOf('lost-1') }),
      env.gc.submitWrite({ [a]: rowsOf('lost-2') }),
      env.gc.submitInternal({ [a]: rowsOf('lost-3') }),
    ]);
    for (const o of outcomes) {
      expect(o.status).to.equal('rejected');
      const err = (o as PromiseRejectedResult).reason as GroupCommitFailed;
      expect(err).to.be.instanceOf(GroupCommitFailed);
      expect(err.mayHaveHappened).to.equal(false);
      expect(err.groupSize).to.equal(3);
      expect(err.cause).to.be.instanceOf(PersistStorageError);
      expect(err.message).to.match(/nothing of it was written/);
    }
    expect(env.gc.stats.failures).to.equal(1);
    env.consensus.refused.delete(env.txns.txnsId);
    const { commitTs } = await env.gc.submitWrite({ [a]: rowsOf('kept') });
    env.log.record([a, 'kept', commitTs, 1]);
    await assertLogged(env, commitTs + 1);
  });

  it("when the apply fails after a commit, ack 'apply' callers learn it IS committed, and the next group commit applies it", async () => {
    env = await setup({ collections: 2 });
    const [a, b] = env.ids as [string, string];
    env.consensus.refused.add(a); // a's data shard refuses writes: the apply fails, the commit does not
    const err = (await expectReject(
      env.gc.submitWrite({ [a]: rowsOf('durable') }),
      CommittedButUnconfirmed,
      /do not submit it again/,
    )) as CommittedButUnconfirmed;
    expect(err.step).to.equal('apply');
    env.consensus.refused.delete(a);
    const { commitTs } = await env.gc.submitWrite({ [b]: rowsOf('next') });
    expect(await physicalUpper(env, a), "the next group commit's apply caught up").to.be.greaterThan(err.commitTs);
    env.log.record([a, 'durable', err.commitTs, 1]);
    env.log.record([b, 'next', commitTs, 1]);
    await assertLogged(env, commitTs + 1);
  });

  it('when telling the oracle fails after a commit, callers learn it IS committed, and later reads still see it', async () => {
    const { clock, oracle, failApply } = oracleThatCanFailApply();
    env = await setup({ collections: 1 });
    const [a] = env.ids as [string];
    // Swap in a committer over the failing oracle (the env's own one is closed with it).
    await env.gc.close();
    await clock.applyWrite(await env.oracle.peekWriteTs());
    const gc = await GroupCommitter.open(env.txns, oracle);
    try {
      failApply(true);
      const err = (await expectReject(gc.submitWrite({ [a]: rowsOf('durable') }), CommittedButUnconfirmed, /committed at/)) as CommittedButUnconfirmed;
      expect(err.step).to.equal('oracle');
      failApply(false);
      const r = await gc.readThenWrite([a], async (readTs, read) => {
        expect(readTs).to.be.at.least(err.commitTs);
        expect(await read(a)).to.deep.equal([['durable', null, 1]]);
        return undefined;
      });
      expect(r.readTs).to.be.at.least(err.commitTs);
    } finally {
      await gc.close();
    }
  });

  it('when telling the oracle fails after a register lands, later reads still see the new collection', async () => {
    const { clock, oracle, failApply } = oracleThatCanFailApply();
    env = await setup({ collections: 1 });
    await env.gc.close();
    await clock.applyWrite(await env.oracle.peekWriteTs());
    const gc = await GroupCommitter.open(env.txns, oracle);
    try {
      const added = newShardId();
      failApply(true);
      const err = (await expectReject(
        gc.register([await writer(env.client, added)]),
        CommittedButUnconfirmed,
        /committed at/,
      )) as CommittedButUnconfirmed;
      expect(err.step).to.equal('oracle');
      failApply(false);
      // The oracle never heard of the register; a read below it would not find the collection.
      expect(await clock.readTs()).to.be.below(err.commitTs);
      const r = await gc.readThenWrite([added], async (readTs, read) => {
        expect(readTs).to.be.at.least(err.commitTs);
        expect(await read(added)).to.deep.equal([]);
        return { [added]: rowsOf('first') };
      });
      expect(r.readTs).to.be.at.least(err.commitTs);
    } finally {
      await gc.close();
    }
  });

  it('compactEvery lets the txns shard compact to the commit time every N group commits', async () => {
    env = await setup({ collections: 1, committer: { compactEvery: 2 } });
    const [a] = env.ids as [string];
    const compacted: number[] = [];
    const original = env.txns.compactTo.bind(env.txns);
    env.txns.compactTo = (ts: number) => {
      compacted.push(ts);
      return original(ts);
    };
    const stamps: number[] = [];
    for (let i = 0; i < 4; i++) stamps.push((await env.gc.submitWrite({ [a]: rowsOf(`c${i}`) })).commitTs);
    // open() and register() made one group commit (the advance) before the spy: commits 2 and 4 of 5 compact.
    expect(compacted).to.deep.equal([stamps[0], stamps[2]]);
  });

  it('close() refuses new work but finishes what it accepted: pending, deferred and lock-waiting writes', async () => {
    env = await setup({ collections: 2 });
    const [a, b] = env.ids as [string, string];
    const { release, result } = await holdLock(env, a, { [a]: rowsOf('rtw-1') });
    const holder = observe(result);
    const deferred = observe(env.gc.submitWrite({ [a]: rowsOf('deferred') }));
    const queued = observe(env.gc.readThenWrite([a], async () => ({ [a]: rowsOf('rtw-2') })));
    await sleep(20);
    // Nothing triggers a commit after this one: close() must flush it.
    env.gc.submitBackground({ [b]: rowsOf('background') });
    const closing = observe(env.gc.close());
    await expectReject(env.gc.submitWrite({ [b]: rowsOf('too-late') }), CommitterClosed, /closed/);
    expect(() => env!.gc.submitBackground({ [b]: rowsOf('too-late') })).to.throw(CommitterClosed);
    await sleep(50);
    expect(closing.settled, 'close waits for accepted work').to.equal(false);
    release();
    await closing.promise;
    expect(holder.settled && deferred.settled && queued.settled).to.equal(true);
    const t1 = holder.value!.commitTs!;
    const t2 = deferred.value!.commitTs;
    const t3 = queued.value!.commitTs!;
    // The queued read-then-write got the lock first; the deferred blind write came
    // after it, or shared its group (blind writes share a group's locks).
    expect(t3, 'after the lock holder').to.be.greaterThan(t1);
    expect(t2, 'not before the queued read-then-write').to.be.at.least(t3);
    await env.gc.close(); // idempotent
    env.log.record([a, 'rtw-1', t1, 1]);
    env.log.record([a, 'deferred', t2, 1]);
    env.log.record([a, 'rtw-2', t3, 1]);
    await env.log.assertSubscribe(a, env.registerTs, Math.max(t1, t2, t3) + 1);
    // The background write was committed, once.
    const bRows = await readRows(env, b, Math.max(t1, t2, t3) + 1);
    expect(bRows.map(([k, , d]) => [k, d])).to.deep.equal([['background', 1]]);
  });
});

/** A LogicalClock behind an oracle whose applyWrite fails while `failApply(true)` holds. */
function oracleThatCanFailApply(): { clock: LogicalClock; oracle: TimestampOracle; failApply(on: boolean): void } {
  const clock = new LogicalClock();
  let failing = false;
  const oracle = clockOracle(clock, {
    applyWrite: async (ts) => {
      if (failing) throw new Error('oracle unavailable');
      return clock.applyWrite(ts);
    },
  });
  return { clock, oracle, failApply: (on) => (failing = on) };
}
