/**
 * dataSubscribe: physical reads of a txn data shard lifted to logical progress.
 * Scenarios (the spec's worked example, completion, lifecycle) here; random
 * histories in data-subscribe.property.test.ts. The register / commit / forget /
 * direct-write history (`register_forget`) runs through this operator too: the txn
 * tests' CommitLog subscribes with RxDataSubscribe (test/support/rx.ts).
 */
import { expect } from 'chai';
import { Subject, lastValueFrom, toArray } from 'rxjs';
import type { PersistClient } from '../../src/persist/client.js';
import { InvalidUsage } from '../../src/persist/errors.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { dataSubscribe, dataSubscribe$ } from '../../src/operators/data-subscribe.js';
import { shardSubscribe$, type ShardEvent } from '../../src/sources/shard-source.js';
import { TxnsRead } from '../../src/txn/txns-read.js';
import type { TxnsHandle } from '../../src/txn/txns-handle.js';
import { waitFor } from '../support/async.js';
import { STRING_UNIT, memClient, rows } from '../support/persist.js';
import { Recorder, describeOperatorLifecycle, trackLibraryTimers } from '../support/rx.js';
import { expectRegister, openTxns } from '../support/txn.js';

type Ev = ShardEvent<string, null>;

const progressOf = (events: Ev[]): number[] => events.filter((e) => e.kind === 'progress').map((e) => (e as { upper: number }).upper);

async function commit(txns: TxnsHandle<string, null>, ts: number, writes: [ShardId, string][], apply = true) {
  const txn = txns.begin();
  for (const [id, k] of writes) await txn.write(id, k, null, 1);
  const res = await txn.commitAt(txns, ts);
  if (!res.ok) throw new Error(`commit at ${ts} failed: upper ${res.current}`);
  if (apply) await res.apply.apply(txns);
  return res.apply;
}

async function settle(read: TxnsRead, ts: number): Promise<void> {
  await read.updateGt(ts);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe('operators/dataSubscribe', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient();
  });
  afterEach(async () => {
    await client.close();
  });

  it("the spec's worked example: written at 3, txns upper 6, as of 5 → 6, 8, then 10 only after the apply", async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const d1 = await expectRegister(txns, 2);
    await commit(txns, 3, [[d0, 'x']]);
    await commit(txns, 5, [[d1, 'other']]); // txns upper 6; d0's physical upper stays 4
    const read = await TxnsRead.shared(client, txns.txnsId);

    const rec = new Recorder(dataSubscribe$(client, txns.txnsId, d0, { codecs: STRING_UNIT, asOf: 5 }));
    await rec.until(() => progressOf(rec.events).includes(6), 'progress 6');
    expect(rec.events, 'the snapshot at 5, then progress jumps to 6 once the physical read passes 3').to.deep.equal([
      { kind: 'updates', updates: rows(5, 'x') },
      { kind: 'progress', upper: 6 },
    ]);

    await commit(txns, 7, [[d1, 'elsewhere']]);
    await rec.until(() => progressOf(rec.events).includes(8), 'progress 8');
    expect(rec.events.slice(2), 'a txn not touching d0 at 7: progress 8 with no data').to.deep.equal([{ kind: 'progress', upper: 8 }]);

    const apply = await commit(txns, 9, [[d0, 'y']], false);
    await settle(read, 9);
    expect(progressOf(rec.events), 'a txn touching d0 at 9 does not move progress before its apply').to.deep.equal([6, 8]);

    await apply.apply(txns);
    await rec.until(() => progressOf(rec.events).includes(10), 'progress 10');
    expect(rec.events.slice(3)).to.deep.equal([
      { kind: 'updates', updates: rows(9, 'y') },
      { kind: 'progress', upper: 10 },
    ]);
    rec.unsubscribe();
  });

  it('passes data through unchanged: the output equals the physical subscription up to each progress', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    // Each stream's reader lets the shard compact what it has read; hold the since at 1
    // so the second read can start there too.
    const hold = await client.openLeasedReader(d0, STRING_UNIT);
    await hold.downgradeSince(1);
    await commit(txns, 2, [[d0, 'a'], [d0, 'b']]);
    await commit(txns, 4, [[d0, 'a']]);
    const physical = await lastValueFrom(shardSubscribe$(client, d0, STRING_UNIT, { asOf: 1, until: 5 }).pipe(toArray()));
    const logical = await lastValueFrom(dataSubscribe$(client, txns.txnsId, d0, { codecs: STRING_UNIT, asOf: 1, until: 5 }).pipe(toArray()));
    const updates = (evs: Ev[]) => evs.flatMap((e) => (e.kind === 'updates' ? e.updates : []));
    expect(updates(logical)).to.deep.equal(updates(physical));
    expect(progressOf(logical).at(-1)).to.equal(5);
    await hold.expire();
  });

  it('completes at until on an idle shard, from logical progress alone', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const d1 = await expectRegister(txns, 2);
    await commit(txns, 3, [[d0, 'a']]);
    const done = lastValueFrom(dataSubscribe$(client, txns.txnsId, d0, { codecs: STRING_UNIT, asOf: 3, until: 8 }).pipe(toArray()));
    // d0 is never written again; only commits to d1 move its logical upper.
    for (const ts of [5, 6, 7]) await commit(txns, ts, [[d1, `k${ts}`]]);
    const events = await done;
    expect(events[0]).to.deep.equal({ kind: 'updates', updates: rows(3, 'a') });
    expect(progressOf(events).at(-1), 'the last progress is until').to.equal(8);
    expect(events.flatMap((e) => (e.kind === 'updates' ? e.updates : [])).every((u) => u[2] < 8)).to.equal(true);
  });

  it('completes when the physical input completes', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const source = new Subject<Ev>();
    const rec = new Recorder(source.pipe(dataSubscribe({ client, txnsId: txns.txnsId, dataId: d0, codecs: STRING_UNIT, asOf: 1 })));
    source.next({ kind: 'updates', updates: rows(1, 'a') });
    source.complete();
    expect(rec.completed).to.equal(true);
    expect(rec.events).to.deep.equal([{ kind: 'updates', updates: rows(1, 'a') }]);
    const read = await TxnsRead.shared(client, txns.txnsId);
    await waitFor(() => read.subscriptionCount === 0);
  });

  it('completes when the physical input completes while it waits for remap progress at or below its capability', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const d1 = await expectRegister(txns, 2);
    await commit(txns, 3, [[d0, 'a']]); // d0's physical upper 4, txns upper 4
    const read = await TxnsRead.shared(client, txns.txnsId);
    const source = new Subject<Ev>();
    const rec = new Recorder(source.pipe(dataSubscribe({ client, txnsId: txns.txnsId, dataId: d0, codecs: STRING_UNIT, asOf: 3 })));
    source.next({ kind: 'updates', updates: rows(3, 'a') });
    source.next({ kind: 'progress', upper: 4 });
    // The remap subscription is open and has been applied: a commit elsewhere lifts progress to 6.
    await waitFor(() => read.subscriptionCount === 1);
    await commit(txns, 5, [[d1, 'b']]);
    await rec.until(() => progressOf(rec.events).includes(6), 'progress 6 from the remap');
    // Now every remap entry is at or below the capability (6): the operator waits for more remap
    // progress, which no commit will bring. The physical input completing must still end it.
    source.complete();
    expect(rec.completed, 'completed with no further remap progress').to.equal(true);
    expect(rec.error).to.equal(undefined);
    expect(progressOf(rec.events)).to.deep.equal([4, 6]);
    await waitFor(() => read.subscriptionCount === 0 && !read.isFollowing);
  });

  it('early unsubscribe closes every reader, timer and listener', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    await commit(txns, 2, [[d0, 'a']]);
    const read = await TxnsRead.shared(client, txns.txnsId);
    const timers = trackLibraryTimers();
    const rec = new Recorder(dataSubscribe$(client, txns.txnsId, d0, { codecs: STRING_UNIT, asOf: 2 }));
    await rec.until(() => progressOf(rec.events).includes(3), 'progress 3');
    expect(read.subscriptionCount).to.equal(1);
    expect(read.isFollowing).to.equal(true);
    expect(client.shardMachine(d0).state.leasedReaders.size).to.equal(1);

    rec.unsubscribe();
    await waitFor(() => !read.isFollowing);
    await waitFor(() => client.shardMachine(d0).state.leasedReaders.size === 0);
    timers.stop();
    expect(read.subscriptionCount, 'remap subscription closed').to.equal(0);
    expect(client.shardMachine(d0).waiterCount, 'data listen wait released').to.equal(0);
    expect(client.shardMachine(txns.txnsId).waiterCount, 'txns listen wait released').to.equal(0);
    expect(timers.pending(), 'timers left running').to.deep.equal([]);
    expect(rec.completed).to.equal(false);
  });

  it('unsubscribing while the subscription is still being set up leaves nothing open', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const read = await TxnsRead.shared(client, txns.txnsId);
    // asOf 50 is far past the txns upper: the set-up waits for txns progress.
    const rec = new Recorder(dataSubscribe$(client, txns.txnsId, d0, { codecs: STRING_UNIT, asOf: 50 }));
    await waitFor(() => read.isFollowing);
    rec.unsubscribe();
    await waitFor(() => !read.isFollowing);
    await waitFor(() => client.shardMachine(d0).state.leasedReaders.size === 0);
    expect(read.subscriptionCount).to.equal(0);
    expect(rec.events).to.deep.equal([]);
  });

  it('errors propagate from the physical input, and the remap subscription is closed', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const read = await TxnsRead.shared(client, txns.txnsId);
    const source = new Subject<Ev>();
    const rec = new Recorder(source.pipe(dataSubscribe({ client, txnsId: txns.txnsId, dataId: d0, codecs: STRING_UNIT, asOf: 1 })));
    await waitFor(() => read.subscriptionCount === 1);
    source.error(new Error('boom'));
    expect((rec.error as Error).message).to.equal('boom');
    await waitFor(() => read.subscriptionCount === 0 && !read.isFollowing);
  });

  it('errors from the txns side propagate and unsubscribe the physical input', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const otherTxns = await openTxns(client);
    const other = await TxnsRead.start(client, otherTxns.txnsId);
    let unsubscribed = false;
    const source = new Subject<Ev>();
    const tracked = new Recorder(
      new (await import('rxjs')).Observable<Ev>((s) => {
        const sub = source.subscribe(s);
        return () => {
          unsubscribed = true;
          sub.unsubscribe();
        };
      }).pipe(dataSubscribe({ client, txnsId: txns.txnsId, dataId: d0, codecs: STRING_UNIT, asOf: 1, txnsRead: other })),
    );
    await tracked.until(() => tracked.error !== undefined, 'an error').catch(() => undefined);
    expect(tracked.error).to.be.instanceOf(InvalidUsage);
    expect((tracked.error as Error).message).to.match(/txnsRead option follows .* not the txns shard/);
    expect(unsubscribed).to.equal(true);
    await other.close();
  });

  it('output progress never goes back, even if the physical input does', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const source = new Subject<Ev>();
    const rec = new Recorder(source.pipe(dataSubscribe({ client, txnsId: txns.txnsId, dataId: d0, codecs: STRING_UNIT, asOf: 1 })));
    source.next({ kind: 'progress', upper: 5 });
    source.next({ kind: 'progress', upper: 3 });
    expect(progressOf(rec.events)).to.deep.equal([5]);
    rec.unsubscribe();
  });

  it('two subscriptions in one process share one TxnsRead, which stops following when both are gone', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const d1 = await expectRegister(txns, 2);
    const read = await TxnsRead.shared(client, txns.txnsId);
    const a = new Recorder(dataSubscribe$(client, txns.txnsId, d0, { codecs: STRING_UNIT, asOf: 2 }));
    const b = new Recorder(dataSubscribe$(client, txns.txnsId, d1, { codecs: STRING_UNIT, asOf: 2 }));
    await a.until(() => progressOf(a.events).includes(3));
    await b.until(() => progressOf(b.events).includes(3));
    expect(read.subscriptionCount).to.equal(2);
    await commit(txns, 4, [[d0, 'a']]);
    await a.until(() => progressOf(a.events).includes(5));
    await b.until(() => progressOf(b.events).includes(5));
    a.unsubscribe();
    expect(read.isFollowing, 'still needed by b').to.equal(true);
    b.unsubscribe();
    await waitFor(() => !read.isFollowing);
  });

  it('bad options are refused when the operator is built, naming the fix', () => {
    const txnsId = newShardId();
    const dataId = newShardId();
    expect(() => dataSubscribe({ client, txnsId, dataId, codecs: STRING_UNIT, asOf: -1 })).to.throw(InvalidUsage, /asOf/);
    expect(() => dataSubscribe({ client, txnsId, dataId, asOf: 0 } as never)).to.throw(InvalidUsage, /codecs option is required/);
    expect(() => dataSubscribe({ txnsId, dataId, codecs: STRING_UNIT, asOf: 0 } as never)).to.throw(InvalidUsage, /client option is required/);
    expect(() => dataSubscribe$(client, 'bogus' as ShardId, dataId, { codecs: STRING_UNIT, asOf: 0 })).to.throw(InvalidUsage);
  });
});

describe('operators/dataSubscribe: the shared lifecycle', () => {
  let client: PersistClient;
  let txns: TxnsHandle<string, null>;
  let d0: ShardId;
  before(async () => {
    client = await memClient();
    txns = await openTxns(client);
    d0 = await expectRegister(txns, 1);
  });
  after(async () => {
    await client.close();
  });
  describeOperatorLifecycle<Ev, Ev>(
    'operators/dataSubscribe',
    () => dataSubscribe({ client, txnsId: txns.txnsId, dataId: d0!, codecs: STRING_UNIT, asOf: 0 }),
    {
      sample: [{ kind: 'updates', updates: [['a', null, 0, 1]] }],
      // A malformed event (updates that are not an array) makes its own work throw.
      breaking: [{ kind: 'updates', updates: null as unknown as [] }],
      onEarlyComplete: 'complete',
    },
  );
});
