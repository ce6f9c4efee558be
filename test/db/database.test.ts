/**
 * The front door as a user meets it: openDatabase, named collections in the durable
 * catalog, atomic writes across collections of different types, cold subscriptions
 * that are safe to resubscribe, snapshots, drop and close.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { expect } from 'chai';
import { Observable, filter, firstValueFrom, from, lastValueFrom, map, repeat, retry, share, take, tap, toArray } from 'rxjs';
import { Codecs, CodecMismatch, InvalidArgument, LogicalClock, PersistClient, ReadBelowSince, TxnsHandle, materialize, type ShardEvent } from '../../src/index.js';
import { InvalidTimestamp } from '../../src/backend.js';
import {
  CollectionCodecMismatch,
  CollectionNotFound,
  CollectionReadBelowSince,
  DatabaseClosed,
  InvalidCollectionName,
  openDatabase,
  type CollectionWrites,
  type Database,
} from '../../src/db/index.js';
import { createEntry } from '../../src/db/catalog.js';
import type { CollectionEvent } from '../../src/operators/index.js';
import { clockOracle } from '../support/oracle.js';
import { Recorder } from '../support/rx.js';
import { expectReject } from '../support/persist.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';

const STRING_UNIT = { key: Codecs.string, val: Codecs.unit };
const QUICK = { persist: { config: { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 20 } } } };

/** The view of a single-collection stream once its progress passed `ts`. */
function viewPast<K, V>(events$: Observable<ShardEvent<K, V>>, ts: number) {
  return firstValueFrom(events$.pipe(materialize(), filter((v) => v.upper > ts)));
}

describe('db/Database', () => {
  let db: Database;
  afterEach(async () => {
    await db?.close();
  });

  it('commits atomically across collections of different key and value types, read back tagged at one time', async () => {
    db = await openDatabase('mem://', QUICK);
    await db.collection('accounts', STRING_UNIT);
    await db.collection('audit', { key: Codecs.json<{ by: string; n: number }>(), val: Codecs.string });
    const { commitTs } = await db.write({
      accounts: [['alice', null, 10], ['bob', null, -10]],
      audit: [[{ by: 'alice', n: 1 }, 'transfer', 1]],
    });
    const events = await firstValueFrom(
      db.subscribe$(['accounts', 'audit'], { asOf: commitTs - 1 }).pipe(
        toArrayUntilProgressPast(commitTs),
      ),
    );
    const updates = events.filter((e): e is Extract<CollectionEvent, { kind: 'updates' }> => e.kind === 'updates');
    expect(updates.map((e) => e.collection)).to.deep.equal(['accounts', 'audit']);
    expect(updates.flatMap((e) => e.updates.map((u) => u[2]))).to.deep.equal([commitTs, commitTs, commitTs]);
    // The first progress past the commit's time carries all of it; before it, nothing.
    const firstProgress = events.findIndex((e) => e.kind === 'progress' && e.upper > commitTs);
    expect(events.slice(0, firstProgress).every((e) => e.kind === 'progress' || e.updates.every((u) => u[2] === commitTs))).to.equal(true);
    // A snapshot (read after the stream, at a later time: readers move the since).
    const snap = await db.snapshot(['accounts', 'audit'], commitTs);
    expect(snap.asOf).to.equal(commitTs);
    expect(snap.collections.accounts).to.have.deep.members([['alice', null, 10], ['bob', null, -10]]);
    expect(snap.collections.audit).to.deep.equal([[{ by: 'alice', n: 1 }, 'transfer', 1]]);
  });

  it('reopens the same collections across restarts of a file: location, with built-in codecs found by name', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-db-'));
    try {
      const url = `file:${dir}`;
      db = await openDatabase(url, QUICK);
      const txnsId = db.txnsId;
      const accounts = await db.collection('accounts', STRING_UNIT);
      await db.collection('notes', { key: Codecs.string, val: Codecs.json() });
      await db.write({ accounts: [['alice', null, 5]], notes: [['n1', { text: 'hi' }, 1]] });
      await db.close();

      db = await openDatabase(url, QUICK);
      expect(db.txnsId, 'the txns shard comes from the catalog').to.equal(txnsId);
      expect(await db.collections()).to.deep.equal([
        { name: 'accounts', shardId: accounts.shardId, keyCodec: 'string', valCodec: 'unit' },
        { name: 'notes', shardId: (await db.collections())[1]!.shardId, keyCodec: 'string', valCodec: 'json' },
      ]);
      const reopened = await db.collection('accounts'); // no codecs: string and unit are built in
      expect(reopened.shardId).to.equal(accounts.shardId);
      await db.collection('notes');
      const { commitTs } = await db.write({ accounts: [['alice', null, 1]] });
      const snap = await db.snapshot(['accounts', 'notes'], commitTs);
      expect(snap.collections).to.deep.equal({ accounts: [['alice', null, 6]], notes: [['n1', { text: 'hi' }, 1]] });
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to open a collection with codecs of other names, naming both', async () => {
    db = await openDatabase('mem://', QUICK);
    await db.collection('accounts', STRING_UNIT);
    const err = await expectReject(db.collection('accounts', { key: Codecs.json(), val: Codecs.unit }), CollectionCodecMismatch);
    expect(err).to.be.instanceOf(CodecMismatch);
    expect(err.message).to.include('"string"').and.include('"json"').and.include('accounts');
    // Also when the collection was created by another Database on the location.
    const other = await openDatabase('mem://codec-mismatch', QUICK);
    try {
      await other.collection('things', { key: Codecs.string, val: Codecs.json('thing-v1') });
      const again = await openDatabase('mem://codec-mismatch', QUICK);
      try {
        await expectReject(again.collection('things', { key: Codecs.string, val: Codecs.json('thing-v2') }), CollectionCodecMismatch, /thing-v1.*thing-v2/);
        await expectReject(again.collection('things'), Error, /not built in; pass them/);
      } finally {
        await again.close();
      }
    } finally {
      await other.close();
    }
  });

  it('refuses bad names, unknown collections and bad rows before writing anything', async () => {
    db = await openDatabase('mem://', QUICK);
    await db.collection('accounts', STRING_UNIT);
    for (const bad of ['', 'has space', 'a/b', '9lives', 'x'.repeat(129), 42]) {
      await expectReject(db.collection(bad as string, STRING_UNIT), InvalidCollectionName, /letters A-Z a-z, digits 0-9/);
    }
    const unknown = await expectReject(db.write({ accounts: [['alice', null, 1]], acounts: [['bob', null, 1]] }), CollectionNotFound);
    expect(unknown.message).to.include('"acounts"').and.include('open: "accounts"');
    await expectReject(db.write({ accounts: [['alice', 'not null', 1]] }), InvalidArgument, /row 0 written to "accounts"/);
    await expectReject(db.write({ accounts: [['alice', null, 1.5]] }), InvalidTimestamp, /diff of row 0/);
    const { commitTs } = await db.write({ accounts: [] });
    expect((await db.snapshot('accounts', commitTs)).collections.accounts, 'none of the refused writes landed').to.deep.equal([]);
    expect(() => db.subscribe$('nope')).to.throw(CollectionNotFound, /db.collection\("nope"/);
  });

  it('subscribe$ is cold: each subscription reads as of its own "now", so resubscribing, retry(), repeat() and late subscribers work', async () => {
    db = await openDatabase('mem://', QUICK);
    await db.collection('items', STRING_UNIT);
    const items$ = db.subscribe$<string, null>('items');
    const first = await db.write({ items: [['a', null, 1]] });
    const v1 = await viewPast(items$, first.commitTs);
    expect(v1.toArray()).to.deep.equal([['a', null, 1]]);

    // The first subscription is gone and its reader moved the since past every older time.
    const second = await db.write({ items: [['b', null, 1]] });
    const err = await expectReject(lastValueFrom(db.subscribe$('items', { asOf: 0 })), CollectionReadBelowSince);
    expect(err).to.be.instanceOf(ReadBelowSince);
    expect(err.message).to.match(/readable as of \d+ and later/).and.include('"items"');

    // A late subscriber of the same cold Observable starts at its own now.
    const late = await viewPast(items$, second.commitTs);
    expect(late.toArray()).to.have.deep.members([['a', null, 1], ['b', null, 1]]);

    // retry(): the failed attempt is unsubscribed, the retry subscribes afresh.
    let attempts = 0;
    const flaky$: Observable<ShardEvent<string, null>> = items$.pipe(
      tap(() => {
        if (attempts++ === 0) throw new Error('a transient failure downstream');
      }),
      retry(1),
    );
    const retried = await viewPast(flaky$, second.commitTs);
    expect(attempts).to.be.greaterThan(1);
    expect(retried.count('b', null)).to.equal(1);

    // repeat(): the same Observable, bounded by `until`, run twice in a row.
    const now = await db.oracle.readTs();
    const runs = await lastValueFrom(
      db.subscribe$<string, null>('items', { until: now + 1 }).pipe(
        toArray(),
        map((evs) => evs.flatMap((e) => (e.kind === 'updates' ? e.updates.map((u) => u[0]) : [])).sort()),
        repeat(2),
        toArray(),
      ),
    );
    expect(runs).to.deep.equal([['a', 'b'], ['a', 'b']]);
  });

  it('a read time of its own choosing that the since already passed moves up to it; one the caller asked for does not', async () => {
    // The oracle answers a stale read time, as it can when another process's readers or
    // txns compaction move the since between its answer and the read.
    const clock = new LogicalClock();
    let stale: number | undefined;
    const oracle = clockOracle(clock, { readTs: () => (stale !== undefined ? Promise.resolve(stale) : clock.readTs()) });
    db = await openDatabase('mem://', { ...QUICK, oracle });
    await db.collection('items', STRING_UNIT);
    const first = await db.write({ items: [['a', null, 1]] });
    await viewPast(db.subscribe$<string, null>('items'), first.commitTs);
    const second = await db.write({ items: [['b', null, 1]] });
    stale = 0;
    // The same read with asOf given fails, naming the since…
    const err = (await expectReject(db.snapshot('items', 0), CollectionReadBelowSince)) as CollectionReadBelowSince;
    expect(err.since).to.be.greaterThan(0);
    // …left out, it reads at that since instead, every write at or below it included.
    const snap = await db.snapshot('items');
    expect(snap.asOf).to.equal(err.since);
    const written: [string, number][] = [['a', first.commitTs], ['b', second.commitTs]];
    const expected = written.filter(([, ts]) => ts <= snap.asOf).map(([k]) => [k, null, 1]);
    expect(snap.collections.items).to.have.deep.members(expected);
    const live = await viewPast(db.subscribe$<string, null>('items'), second.commitTs);
    expect(live.toArray()).to.have.deep.members([['a', null, 1], ['b', null, 1]]);
    stale = undefined;
    await clock.close();
  });

  it('share(): subscribers of one shared stream see one pipeline; once all left, the next subscriber starts a fresh one', async () => {
    db = await openDatabase('mem://', QUICK);
    await db.collection('items', STRING_UNIT);
    const shared$ = db.subscribe$<string, null>('items').pipe(share());
    const first = await db.write({ items: [['a', null, 1]] });
    const [x, y] = await Promise.all([viewPast(shared$, first.commitTs), viewPast(shared$, first.commitTs)]);
    expect(x.toArray()).to.deep.equal([['a', null, 1]]);
    expect(y.upper).to.equal(x.upper);
    // Both left (firstValueFrom unsubscribed): share() resubscribes the cold source, at a new now.
    const second = await db.write({ items: [['b', null, 1]] });
    const z = await viewPast(shared$, second.commitTs);
    expect(z.toArray()).to.have.deep.members([['a', null, 1], ['b', null, 1]]);
  });

  it('runs on Postgres consensus (with its durable oracle) and reopens there', async function () {
    this.timeout(120_000);
    const url = `${await freshTestDatabaseUrl()}?blob=mem://db-on-postgres-${Date.now()}`;
    db = await openDatabase(url, QUICK);
    const txnsId = db.txnsId;
    await db.collection('accounts', STRING_UNIT);
    await db.write({ accounts: [['alice', null, 7]] });
    await db.close();
    db = await openDatabase(url, QUICK);
    expect(db.txnsId).to.equal(txnsId);
    await db.collection('accounts');
    const { commitTs } = await db.write({ accounts: [['alice', null, -2]] });
    expect((await db.snapshot('accounts', commitTs)).collections.accounts).to.deep.equal([['alice', null, 5]]);
  });

  it('compacts its txns shard as it commits, so the log of commits and tidies does not grow forever', async () => {
    const config = { ...QUICK.persist.config, readerSinceDowngradeIntervalMs: 0 };
    db = await openDatabase('mem://', { persist: { config }, groupCommit: { compactEvery: 5 } });
    await db.collection('events', STRING_UNIT);
    const txnsMachine = db.client.shardMachine(db.txnsId);
    const { commitTs: first } = await db.write({ events: [['e0', null, 1]] });
    let last = first;
    for (let i = 1; i <= 12; i++) ({ commitTs: last } = await db.write({ events: [[`e${i}`, null, 1]] }));
    // The since is the meet of the txns shard's readers: the critical one moves every 5
    // group commits, and the cache's reader follows in the background.
    const since = async () => (await txnsMachine.refresh(), txnsMachine.state.meta.since);
    while ((await since()) <= first) await new Promise((resolve) => setImmediate(resolve));
    expect(await since()).to.be.at.most(last);
    // Reads at the latest time are unaffected.
    const snap = await db.snapshot(['events'], last);
    expect(snap.collections.events).to.have.length(13);
  });

  it('a reader is not stuck behind a commit whose committer died before applying it: the database applies it', async function () {
    this.timeout(30_000);
    const url = `mem://stalled-apply-${Date.now()}`;
    db = await openDatabase(url, QUICK);
    const events = await db.collection('events', STRING_UNIT);
    await db.write({ events: [['before', null, 1]] });
    // Another committer on the same txns shard commits, then dies before its apply.
    const client = await PersistClient.open(url);
    const bytes = { key: Codecs.bytes, val: Codecs.bytes };
    const other = await TxnsHandle.open(client, { txnsId: db.txnsId, codecs: bytes });
    let ts = 0;
    for (;;) {
      const reg = await other.register(ts, [await client.openWriter(events.shardId, bytes)]);
      if (reg.ok) break;
      ts = reg.current;
    }
    const txn = other.begin();
    await txn.write(events.shardId, Codecs.string.encode('orphaned'), Codecs.unit.encode(null), 1);
    for (ts += 1; ; ) {
      const res = await txn.commitAt(other, ts);
      if (res.ok) break; // never applied
      ts = res.current;
    }
    await other.close();
    await client.close();
    // The database's reader gets it: this process applies what nobody else will.
    const seen = await firstValueFrom(
      db.subscribe$(['events']).pipe(
        filter((e): e is Extract<CollectionEvent, { kind: 'updates' }> => e.kind === 'updates' && e.updates.some(([k]) => k === 'orphaned')),
      ),
    );
    expect(seen.updates.find(([k]) => k === 'orphaned')?.[2]).to.equal(ts);
  });

  it('sink() commits a stream of writes in order, one ack each', async () => {
    db = await openDatabase('mem://', QUICK);
    await db.collection('a', STRING_UNIT);
    await db.collection('b', { key: Codecs.string, val: Codecs.string });
    const acks = await lastValueFrom(
      from<CollectionWrites[]>([{ a: [['x', null, 1]] }, { a: [['x', null, -1]], b: [['y', 'z', 1]] }, { b: [['y', 'z', -1]] }]).pipe(
        db.sink(),
        toArray(),
      ),
    );
    expect(acks).to.have.length(3);
    expect(acks[0]!.commitTs).to.be.lessThan(acks[1]!.commitTs);
    expect(acks[1]!.commitTs).to.be.lessThan(acks[2]!.commitTs);
    const mid = await db.snapshot(['a', 'b'], acks[1]!.commitTs);
    expect(mid.collections).to.deep.equal({ a: [], b: [['y', 'z', 1]] });
  });

  it("ack 'durable' resolves once committed; the write becomes readable at its commit time", async () => {
    db = await openDatabase('mem://', { ...QUICK, ack: 'durable' });
    await db.collection('items', STRING_UNIT);
    const { commitTs } = await db.write({ items: [['k', null, 3]] });
    expect((await db.snapshot('items', commitTs)).collections.items).to.deep.equal([['k', null, 3]]);
  });

  it('drop forgets a collection; the name can be created again, with other codecs, as a new collection', async () => {
    db = await openDatabase('mem://', QUICK);
    const old = await db.collection('tmp', STRING_UNIT);
    await db.write({ tmp: [['gone', null, 1]] });
    expect(await db.drop('tmp')).to.equal(true);
    expect(await db.drop('tmp'), 'dropping twice finds nothing').to.equal(false);
    expect(await db.collections()).to.deep.equal([]);
    await expectReject(db.write({ tmp: [['x', null, 1]] }), CollectionNotFound);
    const fresh = await db.collection('tmp', { key: Codecs.json(), val: Codecs.unit });
    expect(fresh.shardId).to.not.equal(old.shardId);
    const { commitTs } = await db.write({ tmp: [[{ a: 1 }, null, 1]] });
    expect((await db.snapshot('tmp', commitTs)).collections.tmp).to.deep.equal([[{ a: 1 }, null, 1]]);
  });

  it('a catalog entry whose creator crashed before registering its shard is repaired by the next open', async () => {
    db = await openDatabase('mem://crashed-creator', QUICK);
    const store = { consensus: db.client.location.consensus, cfg: db.client.cfg };
    // What a creator leaves behind when it dies between the two steps.
    const { entry } = await createEntry(store, 'orphan', { keyCodec: 'string', valCodec: 'unit' });
    const coll = await db.collection('orphan', STRING_UNIT);
    expect(coll.shardId).to.equal(entry.shardId);
    const { commitTs } = await db.write({ orphan: [['fine', null, 1]] });
    expect((await db.snapshot('orphan', commitTs)).collections.orphan).to.deep.equal([['fine', null, 1]]);
  });

  it('close() finishes accepted writes, completes open subscriptions and refuses new work', async () => {
    db = await openDatabase('mem://', QUICK);
    await db.collection('items', STRING_UNIT);
    const rec = new Recorder(db.subscribe$('items'));
    const pending = [db.write({ items: [['a', null, 1]] }), db.write({ items: [['b', null, 1]] })];
    await db.close();
    const acks = await Promise.all(pending);
    expect(acks.every((a) => Number.isSafeInteger(a.commitTs))).to.equal(true);
    await rec.until(() => rec.completed || rec.error !== undefined, 'the subscription ended');
    expect(rec.error).to.equal(undefined);
    expect(() => db.write({ items: [] })).to.not.throw(); // rejects, never throws
    await expectReject(db.write({ items: [] }), DatabaseClosed, /openDatabase/);
    await expectReject(db.collection('items', STRING_UNIT), DatabaseClosed);
    expect(() => db.subscribe$('items')).to.throw(DatabaseClosed);
  });
});

/** Collects a merged stream's events until its progress passes `ts`. */
function toArrayUntilProgressPast(ts: number) {
  return (source: Observable<CollectionEvent>) =>
    new Observable<CollectionEvent[]>((subscriber) => {
      const seen: CollectionEvent[] = [];
      return source.pipe(take(1000)).subscribe({
        next: (e) => {
          seen.push(e);
          if (e.kind === 'progress' && e.upper > ts) {
            subscriber.next(seen);
            subscriber.complete();
          }
        },
        error: (err) => subscriber.error(err),
      });
    });
}
