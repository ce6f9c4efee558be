/**
 * SqliteConsensus against the Consensus conformance suite, plus the property it exists
 * for: several connections, in this process and in another one, racing CaS on one key
 * through one file commit every seqno exactly once and lose nothing.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import Database from 'better-sqlite3';
import { DeterminateError } from '../../src/location/errors.js';
import { SqliteConsensus } from '../../src/location/sqlite-consensus.js';
import { expectBytes, utf8 } from '../support/bytes.js';
import { describeConsensusConformance } from './consensus-conformance.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');

describe('SqliteConsensus', function () {
  let root: string;
  let files = 0;
  const fresh = () => path.join(root, `c${files++}.sqlite`);

  before(async function () {
    root = await mkdtemp(path.join(os.tmpdir(), 'txnwal-sqlite-'));
  });

  after(async function () {
    await rm(root, { recursive: true, force: true });
  });

  describeConsensusConformance('SqliteConsensus', () => SqliteConsensus.open(fresh()));

  describe('SqliteConsensus specifics', function () {
    it('sets up WAL mode, synchronous FULL and the WITHOUT ROWID table', async function () {
      const file = fresh();
      const c = await SqliteConsensus.open(file);
      await c.compareAndSet('k', undefined, { seqno: 1, data: utf8('x') });
      await c.close();
      const db = new Database(file, { readonly: true });
      try {
        expect(db.pragma('journal_mode', { simple: true })).to.equal('wal');
        const sql = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'consensus'").pluck().get();
        expect(String(sql)).to.match(/WITHOUT ROWID/);
        expect(db.prepare('SELECT typeof(sequence_number) FROM consensus').pluck().get()).to.equal('integer');
      } finally {
        db.close();
      }
    });

    it('data survives re-opening the file', async function () {
      const file = fresh();
      const a = await SqliteConsensus.open(file);
      await a.compareAndSet('k', undefined, { seqno: 1, data: utf8('durable') });
      await a.close();
      const b = await SqliteConsensus.open(file);
      expectBytes((await b.head('k'))?.data, utf8('durable'));
      await b.close();
    });

    it('opening gives up on a lock held past the busy timeout with a DeterminateError naming the file', async function () {
      const file = fresh();
      const holder = new Database(file);
      holder.exec('BEGIN EXCLUSIVE');
      try {
        await SqliteConsensus.open(file, { busyTimeoutMs: 100 });
        expect.fail('expected an error');
      } catch (err) {
        expect(err).to.be.instanceOf(DeterminateError);
        expect((err as Error).message).to.include(file).and.to.include('locked');
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }
    });

    it('a write lock held too long is a DeterminateError and leaves no trace', async function () {
      const file = fresh();
      const c = await SqliteConsensus.open(file, { busyTimeoutMs: 50 });
      await c.compareAndSet('k', undefined, { seqno: 1, data: utf8('x') });
      const other = new Database(file);
      other.exec('BEGIN IMMEDIATE');
      try {
        for (const write of [
          () => c.compareAndSet('k', 1, { seqno: 2, data: utf8('y') }),
          () => c.truncate('k', 1),
        ]) {
          try {
            await write();
            expect.fail('expected an error');
          } catch (err) {
            expect(err).to.be.instanceOf(DeterminateError);
            expect((err as Error).message).to.include('"k"');
            expect((err as { cause?: { code?: string } }).cause?.code).to.equal('SQLITE_BUSY');
          }
        }
        // Reads still work beside the writer (WAL).
        expect((await c.head('k'))?.seqno).to.equal(1);
      } finally {
        other.exec('ROLLBACK');
        other.close();
      }
      expect(await c.compareAndSet('k', 1, { seqno: 2, data: utf8('y') })).to.equal('committed');
      await c.close();
    });

    it('two instances and a child process racing CaS on one key commit every seqno once', async function () {
      this.timeout(60_000);
      const file = fresh();
      const key = 'shared';
      const target = 300;
      const a = await SqliteConsensus.open(file);
      const b = await SqliteConsensus.open(file);

      async function writer(c: SqliteConsensus, id: string): Promise<number[]> {
        const committed: number[] = [];
        for (;;) {
          const head = await c.head(key);
          const next = (head?.seqno ?? 0) + 1;
          if (next > target) return committed;
          // A random pause between read and write lets the other writers get in;
          // without it the two in-process writers run in lockstep and `a` always wins.
          if (Math.random() < 0.5) await new Promise((r) => setImmediate(r));
          else await new Promise((r) => setTimeout(r, Math.random() < 0.5 ? 0 : 1));
          const result = await c.compareAndSet(key, head?.seqno, { seqno: next, data: utf8(id) });
          if (result === 'committed') committed.push(next);
        }
      }

      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(here, 'sqlite-cas-worker.ts'), file, key, String(target), 'child'],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      // Start racing only once the child is up, so all three really overlap.
      while (!stdout.includes('ready\n')) {
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      const [fromA, fromB, code] = await Promise.all([writer(a, 'a'), writer(b, 'b'), exited]);
      expect(code, `worker failed: ${stderr}`).to.equal(0);
      const fromChild = JSON.parse(stdout.slice(stdout.indexOf('\n') + 1)) as number[];
      // Each writer won some rounds, or there was no race to speak of.
      for (const seqnos of [fromA, fromB, fromChild]) expect(seqnos).to.not.be.empty;

      const claims = new Map<number, string>();
      for (const [id, seqnos] of [['a', fromA], ['b', fromB], ['child', fromChild]] as const) {
        for (const s of seqnos) {
          expect(claims.has(s), `seqno ${s} committed by ${claims.get(s)} and ${id}`).to.equal(false);
          claims.set(s, id);
        }
      }
      const all = await a.scan(key, 0, Infinity);
      expect(all.map((x) => x.seqno)).to.deep.equal(Array.from({ length: target }, (_, i) => i + 1));
      expect(claims.size).to.equal(target);
      for (const x of all) expectBytes(x.data, utf8(claims.get(x.seqno) ?? '?'));
      await a.close();
      await b.close();
    });
  });
});
