import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PersistClient, newShardId } from '../../src/persist/index.js';
import { STRING_UNIT, sorted } from '../support/persist.js';
import { partKeysAround } from '../../src/persist/gc.js';
import { applyDiff } from '../../src/persist/state-codec.js';

async function counts(client: PersistClient, shardId: string) {
  const versions = (await client.location.consensus.scan(shardId, 0, 1_000_000)).length;
  let blobs = 0;
  let blobBytes = 0;
  await client.location.blob.listKeysAndMetadata(shardId, (_k, size) => {
    blobs++;
    blobBytes += size;
  });
  return { versions, blobs, blobBytes };
}

/**
 * Appends `n` single-row writes (big enough to go to Blob every tenth time), with a
 * reader that keeps heartbeating, and checks consensus versions and blob objects stay
 * bounded throughout. Returns the peak counts.
 */
async function appendMany(client: PersistClient, n: number, label: string) {
  const id = newShardId();
  const w = await client.openWriter(id, STRING_UNIT);
  const r = await client.openLeasedReader(id, STRING_UNIT);
  const peak = { versions: 0, blobs: 0 };
  const big = 'x'.repeat(5000);
  for (let t = 0; t < n; t++) {
    const key = t % 10 === 0 ? `${big}${t}` : `k${t}`;
    expect(await w.compareAndAppend([[key, null, t, 1]], t, t + 1)).to.deep.equal({ ok: true });
    if (t % 50 === 49) {
      // A live reader: lets compaction and GC move on (since and seqno hold).
      await r.downgradeSince(t);
    }
    if (t % 1000 === 999) {
      await client.flushMaintenance();
      const c = await counts(client, id);
      peak.versions = Math.max(peak.versions, c.versions);
      peak.blobs = Math.max(peak.blobs, c.blobs);
      if (t % 5000 === 4999) console.log(`      ${label}: after ${t + 1} appends: ${c.versions} consensus versions, ${c.blobs} blobs (${c.blobBytes} bytes)`);
    }
  }
  await client.flushMaintenance();
  const final = await counts(client, id);
  const snap = await r.snapshotAndFetch(n - 1);
  expect(snap).to.have.length(n);
  return { id, peak, final, snap };
}

describe('persist: garbage collection', function () {
  this.timeout(300_000);

  it('keeps consensus versions and blob objects bounded over 10,000 appends (mem)', async () => {
    const client = await PersistClient.open('mem://');
    try {
      const { peak, final } = await appendMany(client, 10_000, 'mem');
      console.log(`      mem: peak ${peak.versions} versions, ${peak.blobs} blobs; final ${final.versions} versions, ${final.blobs} blobs`);
      // 10,000 appends made ~20,000+ versions and 1,000 blob parts; what remains is a
      // window of versions since the last rollup GC could use, and the live parts.
      expect(peak.versions).to.be.below(600);
      expect(peak.blobs).to.be.below(120);
    } finally {
      await client.close();
    }
  });

  it('a fresh client rebuilds the state from a rollup after GC truncated the early versions (file:)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-gc-'));
    try {
      const c1 = await PersistClient.open(`file:${dir}`, { config: { rollupThreshold: 32, gcMinVersions: 16 } });
      const { id, final, snap } = await appendMany(c1, 600, 'file');
      const earliest = (await c1.location.consensus.scan(id, 0, 1))[0]!.seqno;
      expect(earliest, 'GC truncated the early versions').to.be.greaterThan(1);
      expect(final.versions).to.be.below(400);
      await c1.close();
      const c2 = await PersistClient.open(`file:${dir}`);
      const r = await c2.openLeasedReader(id, STRING_UNIT);
      expect(sorted(await r.snapshotAndFetch(599))).to.deep.equal(sorted(snap));
      await c2.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('never deletes parts a reader is still holding', async () => {
    const client = await PersistClient.open('mem://', { config: { rollupThreshold: 8, gcMinVersions: 4 } });
    try {
      const id = newShardId();
      const w = await client.openWriter(id, STRING_UNIT);
      const big = 'y'.repeat(5000);
      for (let t = 0; t < 10; t++) await w.compareAndAppend([[`${big}${t}`, null, t, 1]], t, t + 1);
      const slow = await client.openLeasedReader(id, STRING_UNIT);
      const pinned = await slow.snapshot(9);
      // Lots of writes, compactions and GCs while the snapshot's parts are pinned.
      for (let t = 10; t < 300; t++) await w.compareAndAppend([[`${big}${t}`, null, t, 1]], t, t + 1);
      await client.flushMaintenance();
      const { blob } = client.location;
      const keyed = pinned.parts.flatMap((p) => (p.key ? [p.key] : []));
      expect(keyed, 'the pinned snapshot reads parts from Blob').to.not.be.empty;
      for (const key of keyed) expect(await blob.get(key), `part ${key}`).to.not.equal(undefined);
      pinned.release();
      expect(await slow.snapshotAndFetch(9)).to.have.length(10);
    } finally {
      await client.close();
    }
  });

  it('finds the parts each side of a truncation point exactly as a full replay of every version does', async () => {
    const client = await PersistClient.open('mem://', { config: { gcMinVersions: 1_000_000, blobTargetSizeBytes: 2000 } });
    try {
      const id = newShardId();
      const w = await client.openWriter(id, STRING_UNIT);
      const big = 'p'.repeat(3000);
      for (let t = 0; t < 120; t++) {
        await w.compareAndAppend(t % 3 === 0 ? [[`${big}${t}`, null, t, 1]] : [], t, t + 1);
      }
      await client.flushMaintenance();
      const machine = client.shardMachine(id);
      const versions = await machine.versions.scanAll();
      const loaded = (await machine.versions.loadVersions(versions))!;
      // Brute force: every state, all its part keys.
      const states = [loaded.first];
      for (const d of loaded.diffs.slice(1)) states.push(applyDiff(states[states.length - 1]!, d));
      for (const r of [2, 17, 60, versions.length - 1]) {
        const want = { before: new Set<string>(), after: new Set<string>() };
        for (const st of states) {
          for (const b of st.spine) for (const p of b.batch.parts) if (p.key) (st.seqno < r ? want.before : want.after).add(p.key);
        }
        const got = partKeysAround(loaded.first, loaded.diffs, r);
        expect([...got.before].sort(), `before ${r}`).to.deep.equal([...want.before].sort());
        expect([...got.after].sort(), `after ${r}`).to.deep.equal([...want.after].sort());
        expect(want.before.size + want.after.size).to.be.greaterThan(0);
      }
    } finally {
      await client.close();
    }
  });
});
