/**
 * shardListen$ / shardSubscribe$: a shard as a cold Observable of updates and
 * progress, each subscription with its own reader.
 */
import { expect } from 'chai';
import { lastValueFrom, take, toArray } from 'rxjs';
import type { PersistClient } from '../../src/persist/client.js';
import { InvalidUsage, ReadBelowSince } from '../../src/persist/errors.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { shardListen$, shardSubscribe$, type ShardEvent } from '../../src/sources/shard-source.js';
import { STRING_UNIT, memClient, rows, sorted } from '../support/persist.js';
import { Recorder, trackLibraryTimers } from '../support/rx.js';

type Ev = ShardEvent<string, null>;

async function leasedReaders(client: PersistClient, id: ShardId): Promise<number> {
  const m = client.shardMachine(id);
  await m.refresh();
  return m.state.leasedReaders.size;
}

/** Checks the stream contract: progress strictly increases and each update lies in its window. */
function checkWindows(events: Ev[], asOf: number): void {
  let lower = asOf;
  let pendingTimes: number[] = [];
  for (const e of events) {
    if (e.kind === 'updates') {
      expect(e.updates.length, 'updates events are never empty').to.be.greaterThan(0);
      pendingTimes.push(...e.updates.map((u) => u[2]));
    } else {
      expect(e.upper, 'progress strictly increases').to.be.greaterThan(lower);
      for (const t of pendingTimes) expect(t >= lower && t < e.upper, `update at ${t} outside [${lower}, ${e.upper})`).to.equal(true);
      pendingTimes = [];
      lower = e.upper;
    }
  }
}

describe('sources/shard sources', () => {
  let client: PersistClient;
  let id: ShardId;
  beforeEach(async () => {
    client = await memClient();
    id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend([...rows(0, 'a'), ...rows(1, 'b')], 0, 2);
    await w.compareAndAppend(rows(3, 'c'), 2, 5);
    await w.expire();
  });
  afterEach(async () => {
    await client.close();
  });

  it('shardSubscribe$ emits the snapshot at asOf first, then each batch with its progress', async () => {
    const events = await lastValueFrom(shardSubscribe$(client, id, STRING_UNIT, { asOf: 1, until: 5 }).pipe(toArray()));
    expect(events[0]).to.deep.equal({ kind: 'updates', updates: sorted([...rows(1, 'a'), ...rows(1, 'b')]) });
    expect(events.slice(1)).to.deep.equal([
      { kind: 'progress', upper: 2 },
      { kind: 'updates', updates: rows(3, 'c') },
      { kind: 'progress', upper: 5 },
    ]);
    checkWindows(events, 1);
  });

  it('shardListen$ skips the snapshot and emits only updates after asOf', async () => {
    const events = await lastValueFrom(shardListen$(client, id, STRING_UNIT, { asOf: 1, until: 5 }).pipe(toArray()));
    expect(events).to.deep.equal([
      { kind: 'progress', upper: 2 },
      { kind: 'updates', updates: rows(3, 'c') },
      { kind: 'progress', upper: 5 },
    ]);
  });

  it('until cuts the stream: nothing at or past it, a last progress of until, then completion', async () => {
    const events = await lastValueFrom(shardSubscribe$(client, id, STRING_UNIT, { asOf: 0, until: 3 }).pipe(toArray()));
    expect(events).to.deep.equal([
      { kind: 'updates', updates: rows(0, 'a') },
      { kind: 'updates', updates: rows(1, 'b') },
      { kind: 'progress', upper: 2 },
      { kind: 'progress', upper: 3 },
    ]);
    // until <= asOf: there is nothing to read; completes at once.
    expect(await lastValueFrom(shardSubscribe$(client, id, STRING_UNIT, { asOf: 4, until: 4 }).pipe(toArray()))).to.deep.equal([]);
  });

  it('follows new writes as they are appended, without polling delays in one process', async () => {
    const rec = new Recorder(shardListen$(client, id, STRING_UNIT, { asOf: 4 }));
    await rec.until(() => rec.events.some((e) => e.kind === 'progress' && e.upper === 5), 'progress 5');
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(6, 'd'), 5, 7);
    await rec.until(() => rec.events.some((e) => e.kind === 'progress' && e.upper === 7), 'progress 7');
    expect(rec.events).to.deep.equal([
      { kind: 'progress', upper: 5 },
      { kind: 'updates', updates: rows(6, 'd') },
      { kind: 'progress', upper: 7 },
    ]);
    rec.unsubscribe();
    await w.expire();
  });

  it('is cold: each subscription opens its own reader, and releases it on completion', async () => {
    const source = shardSubscribe$(client, id, STRING_UNIT, { asOf: 1, until: 5 });
    expect(await leasedReaders(client, id), 'nothing is opened before subscribing').to.equal(0);
    const [a, b] = await Promise.all([lastValueFrom(source.pipe(toArray())), lastValueFrom(source.pipe(toArray()))]);
    expect(a).to.deep.equal(b);
    expect(await leasedReaders(client, id)).to.equal(0);
  });

  it('releases its reader, timers and waits when unsubscribed early', async () => {
    const timers = trackLibraryTimers();
    const rec = new Recorder(shardSubscribe$(client, id, STRING_UNIT, { asOf: 1 }));
    await rec.until(() => rec.events.some((e) => e.kind === 'progress' && e.upper === 5), 'progress 5');
    expect(await leasedReaders(client, id)).to.equal(1);
    expect(timers.pending().length, 'the reader heartbeat runs while subscribed').to.be.greaterThan(0);
    // The listen's next wait is registered a few turns after the progress event.
    await waitFor(async () => client.shardMachine(id).waiterCount === 1);
    rec.unsubscribe();
    await waitFor(async () => (await leasedReaders(client, id)) === 0);
    expect(client.shardMachine(id).waiterCount).to.equal(0);
    timers.stop();
    expect(timers.pending(), 'timers left running').to.deep.equal([]);
    expect(rec.completed, 'an unsubscribe is not a completion').to.equal(false);
  });

  it('take(n) unsubscribes upstream once satisfied and releases the reader', async () => {
    const first = await lastValueFrom(shardSubscribe$(client, id, STRING_UNIT, { asOf: 1 }).pipe(take(2), toArray()));
    expect(first.map((e) => e.kind)).to.deep.equal(['updates', 'progress']);
    await waitFor(async () => (await leasedReaders(client, id)) === 0);
  });

  it('unsubscribing while the snapshot waits for a future asOf stops the wait and releases the reader', async () => {
    const rec = new Recorder(shardSubscribe$(client, id, STRING_UNIT, { asOf: 100 }));
    await waitFor(async () => (await leasedReaders(client, id)) === 1);
    rec.unsubscribe();
    await waitFor(async () => (await leasedReaders(client, id)) === 0);
    expect(client.shardMachine(id).waiterCount).to.equal(0);
    expect(rec.events).to.deep.equal([]);
  });

  it('errors propagate: reading below the since errors the stream and releases the reader', async () => {
    const r = await client.openLeasedReader(id, STRING_UNIT);
    await r.downgradeSince(3);
    await r.expire();
    const rec = new Recorder(shardSubscribe$(client, id, STRING_UNIT, { asOf: 1 }));
    await rec.until(() => rec.error !== undefined, 'an error').catch(() => undefined);
    expect(rec.error).to.be.instanceOf(ReadBelowSince);
    expect(await leasedReaders(client, id)).to.equal(0);
  });

  it('a closed shard completes the stream after progress Infinity', async () => {
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(5, 'z'), 5, Infinity);
    const events = await lastValueFrom(shardListen$(client, id, STRING_UNIT, { asOf: 4 }).pipe(toArray()));
    expect(events).to.deep.equal([
      { kind: 'progress', upper: 5 },
      { kind: 'updates', updates: rows(5, 'z') },
      { kind: 'progress', upper: Infinity },
    ]);
    await w.expire();
  });

  it('bad options are refused when the stream is built, naming the fix', () => {
    expect(() => shardSubscribe$(client, id, STRING_UNIT, undefined as never)).to.throw(InvalidUsage, /options are required/);
    expect(() => shardSubscribe$(client, id, STRING_UNIT, { asOf: -1 })).to.throw(InvalidUsage, /asOf/);
    expect(() => shardListen$(client, id, STRING_UNIT, { asOf: 0, until: 1.5 })).to.throw(InvalidUsage, /until/);
    expect(() => shardListen$(client, 'not-a-shard' as ShardId, STRING_UNIT, { asOf: 0 })).to.throw(InvalidUsage, /shard/i);
  });
});

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
