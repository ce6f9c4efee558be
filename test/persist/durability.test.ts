import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PersistClient, newShardId } from '../../src/persist/index.js';
import { STRING_UNIT, sorted } from '../support/persist.js';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./durability-child.ts', import.meta.url));

async function inChild(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', child, ...args], { timeout: 60_000 });
  return stdout.trim();
}

describe('persist: durability on the embedded default (file:)', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-durable-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('a shard written by one client is read back by a fresh client', async () => {
    const id = newShardId();
    const c1 = await PersistClient.open(`file:${dir}`, { config: { rollupThreshold: 16, gcMinVersions: 8 } });
    const w = await c1.openWriter(id, STRING_UNIT);
    for (let t = 0; t < 100; t++) await w.compareAndAppend([[`k${t}`, null, t, 1]], t, t + 1);
    await c1.close();

    const c2 = await PersistClient.open(`file:${dir}`);
    const r = await c2.openLeasedReader(id, STRING_UNIT);
    const snap = await r.snapshotAndFetch(99);
    expect(snap).to.have.length(100);
    expect(sorted(snap)).to.deep.equal(sorted(Array.from({ length: 100 }, (_, t) => [`k${t}`, null, 99, 1] as const)));
    const w2 = await c2.openWriter(id, STRING_UNIT);
    expect(await w2.fetchRecentUpper()).to.equal(100);
    await c2.close();
  });

  it('a shard written by a child process that exited is read back here, and ours by a child', async () => {
    const id = newShardId();
    const out = JSON.parse(await inChild('write', `file:${dir}`, id, '0', '40')) as { upper: number };
    expect(out.upper).to.equal(40);

    const c = await PersistClient.open(`file:${dir}`);
    const r = await c.openLeasedReader(id, STRING_UNIT);
    expect(await r.snapshotAndFetch(39)).to.have.length(40);
    const w = await c.openWriter(id, STRING_UNIT);
    expect(await w.fetchRecentUpper()).to.equal(40);
    expect(await w.compareAndAppend([['parent', null, 40, 1]], 40, 41)).to.deep.equal({ ok: true });
    await r.expire();
    await c.close();

    const seen = JSON.parse(await inChild('read', `file:${dir}`, id, '40')) as [string, number, number][];
    expect(seen).to.have.length(41);
    expect(seen.map(([k]) => k)).to.include('parent');
    expect(seen.every(([, t, d]) => t === 40 && d === 1)).to.equal(true);
  });

  it('two processes appending to one shard interleave without losing writes', async () => {
    const id = newShardId();
    const c = await PersistClient.open(`file:${dir}`, { config: { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 20 } } });
    const w = await c.openWriter(id, STRING_UNIT);
    await w.compareAndAppend([], 0, 1);
    // The child writes at 1..30 while we listen; then we continue from its upper.
    const r = await c.openLeasedReader(id, STRING_UNIT);
    const l = await r.listen(0);
    const childRun = inChild('write', `file:${dir}`, id, '1', '30');
    const keys: string[] = [];
    while (l.frontier < 31) {
      for (const e of await l.next()) if (e.kind === 'updates') keys.push(...e.updates.map(([k]) => k));
    }
    await childRun;
    expect(keys.sort()).to.deep.equal(Array.from({ length: 30 }, (_, i) => `k${i + 1}`).sort());
    // Our writer's cached upper is stale (1): the append reports the child's upper…
    expect(w.upper()).to.equal(1);
    expect(await w.compareAndAppend([['stale', null, 1, 1]], 1, 2)).to.deep.equal({ ok: false, current: 31 });
    // …and continues from it.
    expect(await w.compareAndAppend([['after', null, 31, 1]], 31, 32)).to.deep.equal({ ok: true });
    await l.expire();
    await c.close();
  });
});
