/**
 * The reference system's TxnsHandle tests (spec §3, txns.rs), as scenarios on an
 * in-memory location with string keys and unit values; the txns handle opens at
 * initTs 0, so the txns upper starts at 1.
 */
import { AssertionError, expect } from 'chai';
import { newShardId } from '../../src/persist/shard-id.js';
import { expectReject, memClient } from '../support/persist.js';
import {
  CommitLog,
  TestTxn,
  expectCommitAt,
  expectRegister,
  expectRegisters,
  openTxns,
  outputRows,
  writeDirectly,
  writer,
} from '../support/txn.js';
import type { RxDataSubscribe } from '../support/rx.js';
import type { PersistClient } from '../../src/persist/client.js';

describe('txn/TxnsHandle (seed tests)', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient();
  });
  afterEach(async () => {
    await client.close();
  });

  it('register_at: registration is idempotent, and a taken time returns the least that works', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 2);
    // Registering again is a no-op.
    expect((await txns.register(3, [await writer(client, d0)])).ok).to.equal(true);
    // A new shard cannot be registered at a time already closed off.
    const d1 = newShardId();
    expect(await txns.register(2, [await writer(client, d1)])).to.deep.equal({ ok: false, current: 4 });
    // Registration still works after commits.
    await expectCommitAt(txns, 4, d0, ['foo'], log);
    expect((await txns.register(5, [await writer(client, d1)])).ok).to.equal(true);
    // A mix of new and already registered shards.
    const d2 = newShardId();
    expect((await txns.register(6, [await writer(client, d0), await writer(client, d2)])).ok).to.equal(true);
    await log.assertSnapshot(d0, 6);
    await log.assertSnapshot(d1, 6);
  });

  it('incorrect_usage_register_write_same_time: the commit log catches a direct write to a registered shard', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    const d0Write = await writer(client, d0);
    // Commit a write at 2 through txns...
    const txn = new TestTxn(txns.begin());
    await txn.write(d0, 'foo');
    const res = await txn.txn.commitAt(txns, 2);
    if (!res.ok) throw new Error('commit at 2 should succeed');
    log.recordTxn(2, txn);
    // ...and (wrongly) also write directly at 2.
    expect(await d0Write.compareAndAppend([['foo', null, 2, 1]], 2, 3)).to.deep.equal({ ok: true });
    log.record([d0, 'foo', 2, 1]);
    await res.apply.apply(txns);
    // The txn write was dropped: apply saw the data upper at 3 and assumed it done.
    const err = await expectReject(log.assertSnapshot(d0, 2), AssertionError);
    expect(err.message).to.contain('left: [("foo", 2, 1)]\n right: [("foo", 2, 2)]');
  });

  it('forget_at: forgetting is idempotent, works on unregistered shards, and returns the least free time', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    // Forgetting shards never registered succeeds.
    expect((await txns.forget(1, [newShardId()])).ok).to.equal(true);
    expect((await txns.forget(2, Array.from({ length: 5 }, () => newShardId()))).ok).to.equal(true);
    // Registered shards, one and many.
    const d0 = await expectRegister(txns, 3);
    expect((await txns.forget(4, [d0])).ok).to.equal(true);
    const ds = await expectRegisters(txns, 5, 5);
    expect((await txns.forget(6, ds)).ok).to.equal(true);
    // Idempotent.
    expect((await txns.forget(7, [d0])).ok).to.equal(true);
    expect((await txns.forget(8, ds)).ok).to.equal(true);
    // A time already closed off.
    const d1 = await expectRegister(txns, 9);
    expect(await txns.forget(9, [d1])).to.deep.equal({ ok: false, current: 10 });
    // Write through txns to d1 and directly to the forgotten d0.
    const d0Write = await writer(client, d0);
    await expectCommitAt(txns, 10, d1, ['d1'], log);
    expect(await d0Write.compareAndAppend([['d0', null, 10, 1]], d0Write.sharedUpper(), 11)).to.deep.equal({ ok: true });
    log.record([d0, 'd0', 10, 1]);
    // Register a forgotten shard again, then forget everything.
    expect((await txns.register(11, [await writer(client, d0)])).ok).to.equal(true);
    const all = await txns.forgetAll(12);
    if (!all.ok) throw new Error('forgetAll at 12 should succeed');
    expect(all.forgotten).to.deep.equal([d0, d1].sort());
    // Close d0 to writes.
    expect(await d0Write.compareAndAppendBatch([], d0Write.sharedUpper(), Infinity)).to.deep.equal({ ok: true });
    await log.assertSnapshot(d0, 12);
    await log.assertSnapshot(d1, 12);
    for (const di of ds) {
      const w = await writer(client, di);
      expect(await w.compareAndAppendBatch([], w.sharedUpper(), Infinity)).to.deep.equal({ ok: true });
      await log.assertSnapshot(di, 8);
    }
  });

  it('register_forget: subscriptions started at every step of register / commit / forget / direct-write rounds match the log', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = newShardId();
    const d0Write = await writer(client, d0);
    const subs: RxDataSubscribe[] = [];
    const stepSomePast = async (ts: number) => {
      // Only some of them, to reach more interleavings.
      for (let idx = 0; idx < subs.length; idx++) if (ts % (idx + 1) === 0) await subs[idx]!.stepPast(ts);
    };
    const maybeCompact = async (ts: number) => {
      if (ts % 11 === 0) await txns.compactTo(ts);
    };
    let ts = 0;
    while (ts < 32) {
      subs.push(await log.subscribe(d0, ts, 0));
      ts++;
      expect((await txns.begin().commitAt(txns, ts)).ok).to.equal(true);
      await writeDirectly(ts, d0Write, [`d${ts}`], log);
      await stepSomePast(ts);
      await maybeCompact(ts);

      subs.push(await log.subscribe(d0, ts, 0));
      ts++;
      expect((await txns.register(ts, [await writer(client, d0)])).ok).to.equal(true);
      await stepSomePast(ts);
      await maybeCompact(ts);

      subs.push(await log.subscribe(d0, ts, 0));
      ts++;
      await expectCommitAt(txns, ts, d0, [`t${ts}`], log);
      await stepSomePast(ts);
      await maybeCompact(ts);

      subs.push(await log.subscribe(d0, ts, 0));
      ts++;
      expect((await txns.forget(ts, [d0])).ok).to.equal(true);
      await stepSomePast(ts);
      await maybeCompact(ts);
    }
    for (const sub of subs) {
      await sub.stepPast(ts);
      log.assertEq(d0, sub.asOf, sub.progress(), outputRows(sub));
      await sub.close();
    }
  });

  it('race_data_shard_register_and_commit: a register fill never jumps over an unapplied commit', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    const txn = new TestTxn(txns.begin());
    await txn.write(d0, 'foo');
    const res = await txn.txn.commitAt(txns, 2);
    if (!res.ok) throw new Error('commit at 2 should succeed');
    log.recordTxn(2, txn);
    expect((await txns.register(3, [await writer(client, d0)])).ok).to.equal(true);
    // Readable empty at 1 even before the commit's own apply.
    await log.assertSnapshot(d0, 1);
    await res.apply.apply(txns);
    await log.assertSnapshot(d0, 2);
  });

  it('apply_many_ts: one apply catches up many unapplied commits', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    for (let ts = 2; ts < 10; ts++) {
      const txn = txns.begin();
      await txn.write(d0, String(ts), null, 1);
      expect((await txn.commitAt(txns, ts)).ok).to.equal(true);
      log.record([d0, String(ts), ts, 1]);
    }
    const d0Write = await writer(client, d0);
    expect(await d0Write.fetchRecentUpper()).to.equal(2);
    // An empty txn at 10 whose apply applies everything before it.
    await expectCommitAt(txns, 10, d0, [], log);
    expect(await d0Write.fetchRecentUpper()).to.equal(10);
    await log.assertSnapshot(d0, 10);
  });

  it('advance_physical_uppers_past: apply leaves uninvolved uppers lazy, applyEager advances them', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    const d0Write = await writer(client, d0);
    const d1 = await expectRegister(txns, 2);
    const d1Write = await writer(client, d1);
    expect(await d0Write.fetchRecentUpper()).to.equal(2);
    expect(await d1Write.fetchRecentUpper()).to.equal(3);
    // d1 is not in this txn, so its physical upper stays.
    await expectCommitAt(txns, 3, d0, ['0-2'], log);
    expect(await d0Write.fetchRecentUpper()).to.equal(4);
    expect(await d1Write.fetchRecentUpper()).to.equal(3);
    await expectCommitAt(txns, 4, d1, ['1-3'], log);
    expect(await d0Write.fetchRecentUpper()).to.equal(4);
    expect(await d1Write.fetchRecentUpper()).to.equal(5);
    // The eager apply advances every registered shard past the time.
    await txns.applyEagerLe(4);
    expect(await d0Write.fetchRecentUpper()).to.equal(5);
    expect(await d1Write.fetchRecentUpper()).to.equal(5);
    // Also for an empty txn.
    const res = await txns.begin().commitAt(txns, 5);
    if (!res.ok) throw new Error('commit at 5 should succeed');
    await res.apply.applyEager(txns);
    expect(await d0Write.fetchRecentUpper()).to.equal(6);
    expect(await d1Write.fetchRecentUpper()).to.equal(6);
    await log.assertSnapshot(d0, 5);
    await log.assertSnapshot(d1, 5);
  });
});
