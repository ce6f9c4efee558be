import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expireLeasedReader } from '../../src/persist/state-commands.js';
import { HandleExpired, LeaseExpired, PersistClient, newShardId } from '../../src/persist/index.js';
import { STRING_UNIT, expectReject, rows } from '../support/persist.js';

const leaseChild = fileURLToPath(new URL('./lease-child.ts', import.meta.url));

describe('persist: leases', () => {
  it('a reader whose process died is expired by the next writer and stops holding the since', async function () {
    this.timeout(60_000);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-lease-'));
    const live = await PersistClient.open(`file:${dir}`);
    try {
      const id = newShardId();
      const w = await live.openWriter(id, STRING_UNIT);
      await w.compareAndAppend(rows(0, 'a'), 0, 5);
      // Another process opens a reader with a 200 ms lease, then is killed.
      const child = spawn(process.execPath, ['--import', 'tsx', leaseChild, `file:${dir}`, id], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const deadReaderId = await new Promise<string>((resolve, reject) => {
        child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()));
        child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
      });
      child.kill('SIGKILL');
      await new Promise((res) => child.once('exit', res));
      const r = await live.openLeasedReader(id, STRING_UNIT);
      await r.downgradeSince(4);
      expect(live.shardMachine(id).state.leasedReaders.has(deadReaderId)).to.equal(true);
      expect(live.shardMachine(id).state.meta.since, 'held back by the dead reader').to.equal(0);
      await new Promise((res) => setTimeout(res, 300));
      await w.compareAndAppend(rows(5, 'b'), 5, 6);
      const state = live.shardMachine(id).state;
      expect(state.leasedReaders.has(deadReaderId)).to.equal(false);
      expect(state.meta.since).to.equal(4);
    } finally {
      await live.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a reader that finds its lease gone refuses to read', async () => {
    const client = await PersistClient.open('mem://');
    try {
      const id = newShardId();
      const w = await client.openWriter(id, STRING_UNIT);
      await w.compareAndAppend(rows(0, 'a'), 0, 1);
      const r = await client.openLeasedReader(id, STRING_UNIT);
      // As if another process expired it: remove it from state behind its back.
      await client.shardMachine(id).apply('test_expire', (s) => expireLeasedReader(s, r.readerId));
      await r.heartbeat();
      await expectReject(r.snapshotAndFetch(0), LeaseExpired, /open a new reader/);
    } finally {
      await client.close();
    }
  });

  it('heartbeats keep a reader alive past its lease', async () => {
    // Heartbeats every 100 ms; the writes span 720 ms, well past the 400 ms lease.
    const client = await PersistClient.open('mem://', { config: { readerLeaseDurationMs: 400 } });
    try {
      const id = newShardId();
      const w = await client.openWriter(id, STRING_UNIT);
      const r = await client.openLeasedReader(id, STRING_UNIT);
      for (let i = 0; i < 6; i++) {
        await new Promise((res) => setTimeout(res, 120));
        await w.compareAndAppend(rows(i, `k${i}`), i, i + 1);
      }
      expect(client.shardMachine(id).state.leasedReaders.has(r.readerId)).to.equal(true);
      expect(await r.snapshotAndFetch(5)).to.have.length(6);
    } finally {
      await client.close();
    }
  });

  it('an expired handle refuses further use with a clear error', async () => {
    const client = await PersistClient.open('mem://');
    try {
      const id = newShardId();
      const w = await client.openWriter(id, STRING_UNIT);
      await w.compareAndAppend(rows(0, 'a'), 0, 1);
      expect(client.shardMachine(id).state.writers.has(w.writerId)).to.equal(true);
      await w.expire();
      expect(client.shardMachine(id).state.writers.has(w.writerId)).to.equal(false);
      await expectReject(w.compareAndAppend([], 1, 2), HandleExpired, /open a new writer/);
      const r = await client.openLeasedReader(id, STRING_UNIT);
      await r.expire();
      await expectReject(r.snapshotAndFetch(0), HandleExpired, /Open a new reader/);
    } finally {
      await client.close();
    }
  });
});
