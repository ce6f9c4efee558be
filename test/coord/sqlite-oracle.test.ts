/**
 * SqliteTimestampOracle against the oracle conformance suite, plus what the SQLite
 * backend promises on its own: the file's setup (WAL, STRICT table), several processes
 * sharing one timeline, readTs batching, the fault mapping for a held write lock, and
 * refusing rows it did not write.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { SqliteTimestampOracle } from '../../src/coord/sqlite-oracle.js';
import { DeterminateError } from '../../src/location/errors.js';
import { InvariantViolation, StoredFormatError } from '../../src/persist/errors.js';
import { rejection } from '../support/async.js';
import { describeOracleConformance, expectBatchedReadTs } from './timestamp-oracle-conformance.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');

describe('SqliteTimestampOracle', function () {
  let root: string;
  let files = 0;
  const fresh = () => path.join(root, `oracle${files++}.sqlite`);

  before(async function () {
    root = await mkdtemp(path.join(os.tmpdir(), 'txnwal-oracle-'));
  });

  after(async function () {
    await rm(root, { recursive: true, force: true });
  });

  describeOracleConformance(
    'SqliteTimestampOracle',
    async () => {
      const file = fresh();
      return { open: (options) => SqliteTimestampOracle.open(file, options) };
    },
    { shared: true, durable: true },
  );

  describe('SqliteTimestampOracle specifics', function () {
    it('sets up WAL mode and a STRICT table holding integers', async function () {
      const file = fresh();
      const o = await SqliteTimestampOracle.open(file, { timeline: 't', now: () => 1_700_000_000_000 });
      await o.writeTs();
      await o.close();
      const db = new Database(file, { readonly: true });
      try {
        expect(db.pragma('journal_mode', { simple: true })).to.equal('wal');
        const sql = String(db.prepare("SELECT sql FROM sqlite_master WHERE name = 'timestamp_oracle'").pluck().get());
        expect(sql).to.match(/STRICT/).and.to.match(/WITHOUT ROWID/);
        expect(db.prepare('SELECT timeline, typeof(read_ts), typeof(write_ts), write_ts FROM timestamp_oracle').raw().all())
          .to.deep.equal([['t', 'integer', 'integer', 1_700_000_000_000]]);
      } finally {
        db.close();
      }
    });

    it('two instances and a child process share one timeline: every timestamp distinct, each writer increasing', async function () {
      this.timeout(60_000);
      const file = fresh();
      const perWriter = 150;
      const a = await SqliteTimestampOracle.open(file, { timeline: 'shared', now: () => 0 });
      const b = await SqliteTimestampOracle.open(file, { timeline: 'shared', now: () => 0 });

      async function writer(o: SqliteTimestampOracle): Promise<number[]> {
        const got: number[] = [];
        for (let i = 0; i < perWriter; i++) {
          got.push((await o.writeTs()).timestamp);
          // Random pauses let the other writers in; without them the in-process
          // writers run in lockstep.
          if (Math.random() < 0.5) await new Promise((r) => setImmediate(r));
          else await new Promise((r) => setTimeout(r, Math.random() < 0.5 ? 0 : 1));
        }
        return got;
      }

      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(here, 'sqlite-oracle-worker.ts'), file, 'shared', String(perWriter)],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      while (!stdout.includes('ready\n') && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));

      const [fromA, fromB, code] = await Promise.all([writer(a), writer(b), exited]);
      expect(code, `worker failed: ${stderr}`).to.equal(0);
      const fromChild = JSON.parse(stdout.slice(stdout.indexOf('\n') + 1)) as number[];

      for (const got of [fromA, fromB, fromChild]) {
        expect(got).to.have.length(perWriter);
        expect(got.every((x, i) => i === 0 || x > (got[i - 1] as number))).to.equal(true);
      }
      const all = [...fromA, ...fromB, ...fromChild].sort((x, y) => x - y);
      // Distinct and gap-free: the clock was frozen, so the timeline counted 1, 2, 3, …
      expect(all).to.deep.equal(Array.from({ length: 3 * perWriter }, (_, i) => i + 1));
      // The writers really interleaved: the child's timestamps are not one block.
      const childMax = Math.max(...fromChild);
      const childMin = Math.min(...fromChild);
      expect(childMax - childMin + 1, 'no interleaving happened').to.be.greaterThan(perWriter);
      // The child's applyWrite calls are visible here.
      expect(await a.readTs()).to.equal(childMax);
      await a.close();
      await b.close();
    });

    it('100 concurrent readTs calls cost at most 2 queries', async function () {
      const o = await SqliteTimestampOracle.open(fresh(), { now: () => 0 });
      await expectBatchedReadTs(o, 17);
      await o.close();
    });

    it('a write lock held past the busy timeout fails writeTs determinately; reads still work', async function () {
      const file = fresh();
      const o = await SqliteTimestampOracle.open(file, { busyTimeoutMs: 50, now: () => 0 });
      await o.writeTs();
      const other = new Database(file);
      other.exec('BEGIN IMMEDIATE');
      try {
        for (const call of [() => o.writeTs(), () => o.applyWrite(99)]) {
          const err = await rejection(call());
          expect(err).to.be.instanceOf(DeterminateError);
          expect((err as { cause?: { code?: string } }).cause?.code).to.match(/^SQLITE_BUSY/);
        }
        // WAL: readers do not wait for the writer.
        expect(await o.peekWriteTs()).to.equal(1);
        expect(await o.readTs()).to.equal(0);
      } finally {
        other.exec('ROLLBACK');
        other.close();
      }
      expect((await o.writeTs()).timestamp).to.equal(2);
      await o.close();
    });

    it('cannot open in a directory that does not exist: DeterminateError naming the path', async function () {
      const file = path.join(root, 'no', 'such', 'dir', 'oracle.sqlite');
      const err = await rejection(SqliteTimestampOracle.open(file));
      expect(err).to.be.instanceOf(DeterminateError);
      expect(err.message).to.include(file).and.to.include('directory');
    });

    it('refuses a stored value that is not a safe integer, and a deleted timeline row', async function () {
      const file = fresh();
      const o = await SqliteTimestampOracle.open(file, { timeline: 't', now: () => 0 });
      const raw = new Database(file);
      try {
        raw.prepare("UPDATE timestamp_oracle SET read_ts = 9007199254740993 WHERE timeline = 't'").run();
        const err = await rejection(o.readTs());
        expect(err).to.be.instanceOf(StoredFormatError);
        expect(err.message).to.include('9007199254740993');

        raw.prepare("DELETE FROM timestamp_oracle WHERE timeline = 't'").run();
        const gone = await rejection(o.peekWriteTs());
        expect(gone).to.be.instanceOf(InvariantViolation);
        expect(gone.message).to.include('"t"');
        // writeTs does not quietly recreate the row (it could repeat timestamps).
        expect(await rejection(o.writeTs())).to.be.instanceOf(InvariantViolation);
        expect(raw.prepare('SELECT count(*) FROM timestamp_oracle').pluck().get()).to.equal(0);
      } finally {
        raw.close();
        await o.close();
      }
    });
  });
});
