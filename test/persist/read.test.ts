import { expect } from 'chai';
import { ReadBelowSince, newShardId, type PersistClient, type ListenEvent } from '../../src/persist/index.js';
import { STRING_UNIT, expectReject, memClient, rows, sorted } from '../support/persist.js';

describe('persist: reads', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient();
  });
  afterEach(() => client.close());

  async function history() {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend([...rows(0, 'a', 'b'), ['a', null, 1, 1]], 0, 2);
    await w.compareAndAppend([['b', null, 2, -1], ['c', null, 3, 1]], 2, 4);
    await w.compareAndAppend([['a', null, 5, -2]], 4, 6);
    return { id, w };
  }

  describe('snapshot', () => {
    it('returns rows with t <= asOf, advanced to asOf and consolidated', async () => {
      const { id } = await history();
      const r = await client.openLeasedReader(id, STRING_UNIT);
      expect(sorted(await r.snapshotAndFetch(0))).to.deep.equal(sorted(rows(0, 'a', 'b')));
      expect(sorted(await r.snapshotAndFetch(1))).to.deep.equal(sorted([['a', null, 1, 2], ['b', null, 1, 1]]));
      // b was retracted at 2, c added at 3: b cancels out and disappears.
      expect(sorted(await r.snapshotAndFetch(3))).to.deep.equal(sorted([['a', null, 3, 2], ['c', null, 3, 1]]));
      expect(await r.snapshotAndFetch(5)).to.deep.equal([['c', null, 5, 1]]);
    });

    it('at asOf >= upper waits until the upper passes asOf', async () => {
      const { id, w } = await history();
      const r = await client.openLeasedReader(id, STRING_UNIT);
      let done = false;
      const pending = r.snapshotAndFetch(7).then((u) => {
        done = true;
        return u;
      });
      await new Promise((res) => setTimeout(res, 20));
      expect(done, 'snapshot at 7 with upper 6 must wait').to.equal(false);
      await w.compareAndAppend(rows(6, 'd'), 6, 7);
      await new Promise((res) => setTimeout(res, 20));
      expect(done, 'upper 7 is not past 7').to.equal(false);
      await w.compareAndAppend([], 7, 8);
      expect(sorted(await pending)).to.deep.equal(sorted(rows(7, 'c', 'd')));
    });

    it('a waiting snapshot stops promptly when its signal aborts', async () => {
      const { id } = await history();
      const r = await client.openLeasedReader(id, STRING_UNIT);
      const ac = new AbortController();
      const pending = r.snapshotAndFetch(100, { signal: ac.signal });
      setTimeout(() => ac.abort(), 5);
      await expectReject(pending, Error, /abort/i);
    });

    it('below the since is an error that names the since and the fix', async () => {
      const { id } = await history();
      const r = await client.openLeasedReader(id, STRING_UNIT);
      await r.downgradeSince(3);
      expect(r.since()).to.equal(3);
      const err = await expectReject(r.snapshotAndFetch(2), ReadBelowSince, /asOf >= 3/);
      expect((err as ReadBelowSince).since).to.equal(3);
      // A reader opened now starts at the shard since.
      const r2 = await client.openLeasedReader(id, STRING_UNIT);
      expect(r2.since()).to.equal(3);
    });

    it('the since is the meet of the readers and never regresses', async () => {
      const { id } = await history();
      const r1 = await client.openLeasedReader(id, STRING_UNIT);
      const r2 = await client.openLeasedReader(id, STRING_UNIT);
      await r1.downgradeSince(4);
      const m = client.shardMachine(id);
      expect(m.state.meta.since).to.equal(0);
      await r2.downgradeSince(2);
      expect(m.state.meta.since).to.equal(2);
      await r2.downgradeSince(1); // no regression
      expect(r2.since()).to.equal(2);
      await r2.expire();
      expect(m.state.meta.since).to.equal(4);
      await r1.expire();
      expect(m.state.meta.since, 'with no readers the since stays').to.equal(4);
    });
  });

  describe('listen', () => {
    it('emits updates with asOf < t, then progress at the batch upper', async () => {
      const { id, w } = await history();
      const r = await client.openLeasedReader(id, STRING_UNIT, {});
      const l = await r.listen(1);
      const events: ListenEvent<string, null>[] = [];
      while (l.frontier < 6) events.push(...(await l.next()));
      const updates = events.flatMap((e) => (e.kind === 'updates' ? e.updates : []));
      expect(sorted(updates)).to.deep.equal(sorted([['b', null, 2, -1], ['c', null, 3, 1], ['a', null, 5, -2]]));
      expect(events[events.length - 1]).to.deep.equal({ kind: 'progress', upper: 6 });
      // The next event waits for the next write.
      const next = l.next();
      await w.compareAndAppend(rows(6, 'e'), 6, 9);
      expect(await next).to.deep.equal([
        { kind: 'updates', updates: rows(6, 'e') },
        { kind: 'progress', upper: 9 },
      ]);
      await l.expire();
    });

    it('every update between two progress events lies in [previous, next)', async () => {
      const id = newShardId();
      const w = await client.openWriter(id, STRING_UNIT);
      const r = await client.openLeasedReader(id, STRING_UNIT);
      const l = await r.listen(0);
      const writes = (async () => {
        for (let t = 0; t < 60; t += 3) {
          await w.compareAndAppend([['k' + t, null, t, 1], ['k' + (t + 1), null, t + 1, 1]], t, t + 3);
        }
      })();
      let previous = 0;
      let seen = 0;
      while (previous < 60) {
        for (const e of await l.next()) {
          if (e.kind === 'progress') {
            expect(e.upper).to.be.greaterThan(previous);
            previous = e.upper;
          } else {
            for (const [, , t] of e.updates) {
              expect(t).to.be.at.least(previous);
              expect(t).to.be.greaterThan(0); // asOf 0 is excluded
              seen++;
            }
          }
        }
      }
      await writes;
      expect(seen).to.equal(39); // 40 updates, minus the one at t = 0
      await l.expire();
    });

    it('ends once the shard is closed', async () => {
      const id = newShardId();
      const w = await client.openWriter(id, STRING_UNIT);
      await w.compareAndAppend(rows(0, 'a'), 0, 1);
      await w.compareAndAppend(rows(1, 'b'), 1, Infinity);
      const r = await client.openLeasedReader(id, STRING_UNIT);
      const l = await r.listen(0);
      const got: ListenEvent<string, null>[][] = [];
      for await (const events of l) got.push(events);
      expect(got.flat().filter((e) => e.kind === 'progress').at(-1)).to.deep.equal({ kind: 'progress', upper: Infinity });
      expect(got.flat().flatMap((e) => (e.kind === 'updates' ? e.updates : []))).to.deep.equal(rows(1, 'b'));
      expect(await l.next()).to.deep.equal([]);
    });

    it('keeps its answers correct when compaction merges batches it already passed', async () => {
      const id = newShardId();
      const w = await client.openWriter(id, STRING_UNIT);
      const r = await client.openLeasedReader(id, STRING_UNIT);
      const l = await r.listen(0);
      const out: [string, null, number, number][] = [];
      for (let t = 1; t <= 40; t++) {
        await w.compareAndAppend(rows(t - 1, 'k' + t), t - 1, t);
        await client.flushMaintenance();
        while (l.frontier < t) {
          for (const e of await l.next()) if (e.kind === 'updates') out.push(...(e.updates as [string, null, number, number][]));
        }
      }
      // Every update after asOf exactly once, none from before it.
      expect(sorted(out)).to.deep.equal(sorted(Array.from({ length: 39 }, (_, i) => ['k' + (i + 2), null, i + 1, 1] as const)));
      await l.expire();
    });
  });

  describe('subscribe', () => {
    it('first delivers the snapshot with no progress, then listens', async () => {
      const { id, w } = await history();
      const r = await client.openLeasedReader(id, STRING_UNIT);
      const s = await r.subscribe(3);
      const first = await s.next();
      expect(first).to.have.length(1);
      expect(first[0]!.kind).to.equal('updates');
      const snapshot = first[0]!.kind === 'updates' ? first[0]!.updates : [];
      expect(sorted(snapshot)).to.deep.equal(sorted([['a', null, 3, 2], ['c', null, 3, 1]]));
      // Then batches as written: [2,4) has nothing after 3, [4,6) the retraction of a.
      const later: ListenEvent<string, null>[] = [];
      while (s.frontier < 6) later.push(...(await s.next()));
      expect(later.flatMap((e) => (e.kind === 'updates' ? e.updates : []))).to.deep.equal([['a', null, 5, -2]]);
      expect(later.filter((e) => e.kind === 'progress').at(-1)).to.deep.equal({ kind: 'progress', upper: 6 });
      const next = s.next();
      await w.compareAndAppend(rows(6, 'z'), 6, 7);
      expect(await next).to.deep.equal([
        { kind: 'updates', updates: rows(6, 'z') },
        { kind: 'progress', upper: 7 },
      ]);
      await s.expire();
    });
  });
});

describe('persist: waiting keeps the process alive', () => {
  it('a process whose only work is a pending listen stays up until the write arrives', async function () {
    this.timeout(60_000);
    const { execFile } = await import('node:child_process');
    const { mkdtemp, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-alive-'));
    try {
      const id = newShardId();
      // The child listens and exits only after it saw the parent's write at time 1.
      const script = `
        import { PersistClient, Codecs } from ${JSON.stringify(new URL('../../src/persist/index.ts', import.meta.url).href)};
        const c = await PersistClient.open(${JSON.stringify('file:' + dir)}, { config: { listenPoll: { initialMs: 5, multiplier: 2, clampMs: 50 } } });
        const codecs = { key: Codecs.string, val: Codecs.unit };
        const l = await (await c.openLeasedReader(${JSON.stringify(id)}, codecs)).listen(0);
        process.stdout.write('listening\\n');
        const seen = [];
        while (l.frontier < 2) for (const e of await l.next()) if (e.kind === 'updates') seen.push(...e.updates.map(u => u[0]));
        process.stdout.write(JSON.stringify(seen) + '\\n');
      `;
      const { PersistClient } = await import('../../src/persist/index.js');
      const c = await PersistClient.open(`file:${dir}`);
      const w = await c.openWriter(id, STRING_UNIT);
      await w.compareAndAppend(rows(0, 'zero'), 0, 1);
      const child = execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 30_000 });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      while (!out.includes('listening')) await new Promise((res) => setTimeout(res, 20));
      await new Promise((res) => setTimeout(res, 300));
      await w.compareAndAppend(rows(1, 'one'), 1, 2);
      const code = await new Promise<number | null>((res) => child.once('exit', res));
      expect(code).to.equal(0);
      expect(out.trim().split('\n').at(-1)).to.equal(JSON.stringify(['one']));
      await c.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
