/**
 * txnSink: a stream of transactions committed through a TxnsHandle, acknowledged
 * one by one, in order; what happens to in-flight work when the source errors or
 * the subscriber leaves.
 */
import { expect } from 'chai';
import { Observable, Subject, from, lastValueFrom, toArray } from 'rxjs';
import { CommittedButUnconfirmed } from '../../src/coord/group-commit-errors.js';
import { LogicalClock } from '../../src/coord/logical-clock.js';
import type { PersistClient } from '../../src/persist/client.js';
import { InvalidUsage } from '../../src/persist/errors.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { txnSink, type SinkTxn, type TxnAck } from '../../src/sinks/txn-sink.js';
import { NotRegistered } from '../../src/txn/errors.js';
import { TxnsCache } from '../../src/txn/txns-cache.js';
import type { TxnsHandle } from '../../src/txn/txns-handle.js';
import { STRING_UNIT, memClient } from '../support/persist.js';
import { clockOracle } from '../support/oracle.js';
import { Recorder } from '../support/rx.js';
import { CommitLog, expectRegisters, openTxns, type Row } from '../support/txn.js';

type T = SinkTxn<string, null>;

/** Consolidated rows of `id` as of `asOf` (waits for the read to be possible). */
async function rowsAt(log: CommitLog, id: ShardId, asOf: number): Promise<Row[]> {
  const sub = await log.subscribe(id, asOf, asOf + 1);
  try {
    return sub
      .output()
      .filter((u) => u[2] <= asOf)
      .map(([k, , t, d]) => [k, t, d] as Row);
  } finally {
    sub.close();
  }
}

/** The txns shard's upper, from its state (a handle's own cache catches up only lazily). */
async function txnsUpper(client: PersistClient, txnsId: ShardId): Promise<number> {
  return (await client.shardMachine(txnsId).refresh())!.meta.upper;
}

async function untidiedBatches(client: PersistClient, txns: TxnsHandle<string, null>): Promise<number> {
  const cache = await TxnsCache.open(client, txns.txnsId);
  try {
    await cache.updateGe(await txnsUpper(client, txns.txnsId));
    return cache.unapplied().filter((u) => u.kind === 'batch').length;
  } finally {
    await cache.expire();
  }
}

describe('sinks/txnSink', () => {
  let client: PersistClient;
  let txns: TxnsHandle<string, null>;
  let log: CommitLog;
  let d0: ShardId;
  let d1: ShardId;
  beforeEach(async () => {
    client = await memClient();
    txns = await openTxns(client);
    log = new CommitLog(client, txns.txnsId);
    [d0, d1] = (await expectRegisters(txns, 1, 2)) as [ShardId, ShardId];
  });
  afterEach(async () => {
    await client.close();
  });

  it('commits each transaction atomically at increasing timestamps and acks in order', async () => {
    const input: T[] = [
      [[d0, 'alice', null, -10], [d1, 'alice', null, 10]],
      [[d0, 'bob', null, 5]],
      [],
      [[d1, 'bob', null, 1], [d1, 'bob', null, 1]],
    ];
    const acks = await lastValueFrom(from(input).pipe(txnSink(txns), toArray()));
    expect(acks).to.have.length(4);
    const times = acks.map((a) => a.commitTs);
    for (let i = 1; i < times.length; i++) expect(times[i]).to.be.greaterThan(times[i - 1]!);
    input.forEach((txn, i) => {
      for (const [id, k, , d] of txn) log.record([id, k, times[i]!, d]);
    });
    // Each transaction is all there at its time, and none of it before. (Earlier
    // times first: each read lets the shard compact what it has passed.)
    expect(await rowsAt(log, d1, times[0]! - 1)).to.deep.equal([]);
    expect(await rowsAt(log, d1, times[0]!)).to.deep.equal([['alice', times[0]!, 10]]);
    const last = times.at(-1)!;
    for (const id of [d0, d1]) log.assertEq(id, last, last + 1, await rowsAt(log, id, last));
  });

  it("with ack 'apply' (the default) the data shard is already applied past the commit when the ack arrives", async () => {
    const w0 = await client.openWriter(d0, STRING_UNIT);
    const acks = await lastValueFrom(from([[[d0, 'x', null, 1]]] as T[]).pipe(txnSink(txns, { tidyOnComplete: false }), toArray()));
    expect(await w0.fetchRecentUpper()).to.be.greaterThan(acks[0]!.commitTs);
    await w0.expire();
  });

  it("with ack 'commit' the ack comes before the apply, which still happens before the next commit", async () => {
    const rec = new Recorder(from([[[d0, 'x', null, 1]], [[d0, 'y', null, 1]]] as T[]).pipe(txnSink(txns, { ack: 'commit' })));
    await rec.until(() => rec.completed, 'completion');
    const [a, b] = rec.events.map((e) => e.commitTs) as [number, number];
    log.record([d0, 'x', a, 1]);
    log.record([d0, 'y', b, 1]);
    log.assertEq(d0, b, b + 1, await rowsAt(log, d0, b));
  });

  it("with ack 'commit' an idle sink still applies its last commit: readers are not held back until the next transaction", async function () {
    this.timeout(10_000);
    const source = new Subject<T>();
    const rec = new Recorder(source.pipe(txnSink(txns, { ack: 'commit' })));
    source.next([[d0, 'only', null, 1]]);
    await rec.until(() => rec.events.length === 1, 'the ack');
    const ts = rec.events[0]!.commitTs;
    // A read at ts waits for the apply; no more input arrives.
    log.record([d0, 'only', ts, 1]);
    log.assertEq(d0, ts, ts + 1, await rowsAt(log, d0, ts));
    rec.unsubscribe();
  });

  it('retries a timestamp another writer took, and never writes a transaction twice', async () => {
    const other = await openTxns(client, txns.txnsId);
    const source = new Subject<T>();
    const rec = new Recorder(source.pipe(txnSink(txns)));
    source.next([[d0, 'mine-1', null, 1]]);
    await rec.until(() => rec.events.length === 1, 'the first ack');
    // The other handle jumps ahead: the sink's next timestamp is taken.
    const theirs = await other.begin().commitAt(other, rec.events[0]!.commitTs + 5);
    expect(theirs.ok).to.equal(true);
    source.next([[d0, 'mine-2', null, 1]]);
    source.complete();
    await rec.until(() => rec.completed, 'completion');
    const [a, b] = rec.events.map((e) => e.commitTs) as [number, number];
    expect(b).to.be.greaterThan(rec.events[0]!.commitTs + 5);
    log.record([d0, 'mine-1', a, 1]);
    log.record([d0, 'mine-2', b, 1]);
    log.assertEq(d0, b, b + 1, await rowsAt(log, d0, b));
  });

  it('takes commit timestamps from an oracle, tells it each commit, and moves it past a taken one', async () => {
    let now = 1_000;
    const oracle = new LogicalClock({ now: () => now });
    const source = new Subject<T>();
    const rec = new Recorder(source.pipe(txnSink(txns, { oracle })));
    source.next([[d0, 'a', null, 1]]);
    await rec.until(() => rec.events.length === 1);
    expect(rec.events[0]!.commitTs).to.equal(1_000);
    expect(await oracle.readTs()).to.equal(1_000);
    // Someone else commits at 2,000 outside the oracle; the clock is behind it.
    const t = txns.begin();
    expect((await t.commitAt(txns, 2_000)).ok).to.equal(true);
    now = 1_001;
    source.next([[d0, 'b', null, 1]]);
    source.complete();
    await rec.until(() => rec.completed);
    expect(rec.events[1]!.commitTs).to.equal(2_001);
    expect(await oracle.readTs()).to.be.at.least(2_001);
  });

  it('when telling the oracle fails after a commit landed, the sink stops with CommittedButUnconfirmed: the write is durable', async () => {
    const clock = new LogicalClock({ now: () => 1_000 });
    const oracleDown = new Error('oracle unavailable');
    const oracle = clockOracle(clock, { applyWrite: () => Promise.reject(oracleDown) });
    const rec = new Recorder(from([[[d0, 'durable', null, 1]], [[d0, 'never', null, 1]]] as T[]).pipe(txnSink(txns, { oracle })));
    await rec.until(() => rec.error !== undefined).catch(() => undefined);
    expect(rec.events, 'not acknowledged').to.deep.equal([]);
    expect(rec.error).to.be.instanceOf(CommittedButUnconfirmed);
    const err = rec.error as CommittedButUnconfirmed;
    expect(err.commitTs).to.equal(1_000);
    expect(err.cause).to.equal(oracleDown);
    // Durable at 1,000: any later apply makes it readable.
    await txns.applyLe(err.commitTs);
    log.record([d0, 'durable', err.commitTs, 1]);
    log.assertEq(d0, err.commitTs, err.commitTs + 1, await rowsAt(log, d0, err.commitTs));
  });

  it('carries tidies forward and commits the last one on completion: nothing is left untidied', async () => {
    const input: T[] = Array.from({ length: 6 }, (_, i) => [[i % 2 ? d0 : d1, `k${i}`, null, 1]] as T);
    await lastValueFrom(from(input).pipe(txnSink(txns), toArray()));
    expect(await untidiedBatches(client, txns)).to.equal(0);
    // Without the final tidy the last transaction's batch stays listed.
    await lastValueFrom(from([[[d0, 'z', null, 1]]] as T[]).pipe(txnSink(txns, { tidyOnComplete: false }), toArray()));
    expect(await untidiedBatches(client, txns)).to.equal(1);
  });

  it('a source error: transactions already received are committed and acked, then the error is passed on', async () => {
    const boom = new Error('upstream failed');
    const source = new Observable<T>((s) => {
      s.next([[d0, 'a', null, 1]]);
      s.next([[d0, 'b', null, 1]]);
      s.error(boom);
    });
    const rec = new Recorder(source.pipe(txnSink(txns)));
    await rec.until(() => rec.error !== undefined, 'the error').catch(() => undefined);
    expect(rec.error).to.equal(boom);
    expect(rec.events).to.have.length(2);
    const [a, b] = rec.events.map((e) => e.commitTs) as [number, number];
    log.record([d0, 'a', a, 1]);
    log.record([d0, 'b', b, 1]);
    log.assertEq(d0, b, b + 1, await rowsAt(log, d0, b));
  });

  it('unsubscribing mid-commit: the commit in flight finishes once, queued transactions are never written', async () => {
    const source = new Subject<T>();
    const rec = new Recorder(source.pipe(txnSink(txns)));
    source.next([[d0, 'in-flight', null, 1]]);
    source.next([[d0, 'queued', null, 1]]);
    // The first commit is now under way (it awaits storage); leave.
    rec.unsubscribe();
    expect(source.observed, 'the source is unsubscribed').to.equal(false);
    expect(rec.events, 'nobody is told').to.deep.equal([]);
    // The in-flight commit lands: the txns upper moves past the registration.
    const cache = await TxnsCache.open(client, txns.txnsId);
    await cache.updateGt(2); // the registration left the txns upper at 2
    const inFlightTs = cache.progressExclusive - 1;
    await cache.expire();
    // Commit a marker after it; then everything up to the marker is settled.
    const marker = txns.begin();
    let markerTs = inFlightTs + 1;
    for (;;) {
      const res = await marker.commitAt(txns, markerTs);
      if (res.ok) {
        await res.apply.apply(txns);
        break;
      }
      markerTs = res.current;
    }
    log.record([d0, 'in-flight', inFlightTs, 1]);
    log.assertEq(d0, markerTs, markerTs + 1, await rowsAt(log, d0, markerTs));
  });

  it('a write to an unregistered shard errors the stream with NotRegistered and commits nothing of it', async () => {
    const stranger = newShardId();
    const rec = new Recorder(from([[[d0, 'ok', null, 1]], [[d0, 'half', null, 1], [stranger, 'x', null, 1]]] as T[]).pipe(txnSink(txns)));
    await rec.until(() => rec.error !== undefined).catch(() => undefined);
    expect(rec.error).to.be.instanceOf(NotRegistered);
    expect(rec.events).to.have.length(1);
    const a = rec.events[0]!.commitTs;
    log.record([d0, 'ok', a, 1]);
    // Nothing of the failed transaction, at any later time.
    const probe = txns.begin();
    const res = await probe.commitAt(txns, a + 1);
    expect(res.ok, 'the failed transaction did not consume a timestamp').to.equal(true);
    if (res.ok) await res.apply.apply(txns);
    log.assertEq(d0, a + 1, a + 2, await rowsAt(log, d0, a + 1));
  });

  it('malformed input errors the stream with a message that names the expected shape', async () => {
    const rec = new Recorder(from([[['not', 'a', 'write']]] as unknown as T[]).pipe(txnSink(txns)));
    await rec.until(() => rec.error !== undefined).catch(() => undefined);
    expect(rec.error).to.be.instanceOf(InvalidUsage);
    expect((rec.error as Error).message).to.match(/\[dataId, key, val, diff\]/);
    expect(() => txnSink(txns, { ack: 'later' as never })).to.throw(InvalidUsage, /ack must be/);
    expect(() => txnSink({} as never)).to.throw(InvalidUsage, /TxnsHandle/);
  });
});

describe('sinks/txnSink: lifecycle', () => {
  let client: PersistClient;
  let txns: TxnsHandle<string, null>;
  let d0: ShardId;
  before(async () => {
    client = await memClient();
    txns = await openTxns(client);
    [d0] = (await expectRegisters(txns, 1, 1)) as [ShardId];
  });
  after(async () => {
    await client.close();
  });
  const sample = (): T[] => [[[d0, 'a', null, 1]]];
  // The sink is asynchronous, so the standard synchronous suite does not fit; the same three checks:
  it('unsubscribing downstream unsubscribes the source', () => {
    let tornDown = 0;
    const sub = new Observable<T>((s) => {
      for (const t of sample()) s.next(t);
      return () => tornDown++;
    })
      .pipe(txnSink(txns))
      .subscribe();
    sub.unsubscribe();
    expect(tornDown).to.equal(1);
  });
  it('completes after the last ack when the source completes', async () => {
    const acks: TxnAck[] = await lastValueFrom(from(sample()).pipe(txnSink(txns), toArray()));
    expect(acks).to.have.length(1);
  });
  it('an empty source completes without committing anything', async () => {
    const before = await txnsUpper(client, txns.txnsId);
    expect(await lastValueFrom(from([] as T[]).pipe(txnSink(txns), toArray()))).to.deep.equal([]);
    expect(await txnsUpper(client, txns.txnsId)).to.equal(before);
    // The same probe sees a commit.
    await lastValueFrom(from(sample()).pipe(txnSink(txns, { tidyOnComplete: false }), toArray()));
    expect(await txnsUpper(client, txns.txnsId)).to.be.greaterThan(before);
  });
});
