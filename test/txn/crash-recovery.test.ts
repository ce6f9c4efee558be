/**
 * Crash recovery of txn-wal across processes on the embedded default location
 * (`file:<dir>`). A child process (crash-child.ts) commits transactions across two
 * data shards and leaves (exits or SIGKILLs itself) before finishing the apply or
 * tidy work; this process then opens a fresh client and TxnsHandle on the same txns
 * shard and checks that nothing committed is lost or applied twice.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PersistClient } from '../../src/persist/client.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import type { Tidy } from '../../src/txn/tidy.js';
import { decodeTs } from '../../src/txn/timestamp-bytes.js';
import { TxnsCache } from '../../src/txn/txns-cache.js';
import type { TxnsHandle } from '../../src/txn/txns-handle.js';
import { STRING_UNIT } from '../support/persist.js';
import { CommitLog, openTxns, writer, type Row } from '../support/txn.js';

const child = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

type ChildEvent =
  | { event: 'committed'; ts: number; writes: [ShardId, string, number][]; applied: boolean }
  | { event: 'applied'; ts: number }
  | { event: 'leaving'; how: 'exit' | 'sigkill' }
  | { event: 'append'; shard: ShardId; upper: [number, number]; res: { ok: boolean } }
  | { event: 'read'; rows: Row[] };

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  events: ChildEvent[];
  stderr: string;
}

/** Runs the child to its end (exit or kill) and parses its JSON lines; never rejects on a non-zero exit. */
function runChild(...args: string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = execFile(process.execPath, ['--import', 'tsx', child, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
      try {
        const events = stdout
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as ChildEvent);
        resolve({ code: proc.exitCode, signal: proc.signalCode, events, stderr });
      } catch (e) {
        reject(new Error(`unparseable child output: ${String(e)}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      }
    });
  });
}

function expectLeft(res: ChildResult, how: 'exit' | 'sigkill'): void {
  if (how === 'sigkill') {
    expect(res.signal, `the child should have been SIGKILLed; stderr:\n${res.stderr}`).to.equal('SIGKILL');
  } else {
    expect(res.code, `the child should have exited 0; stderr:\n${res.stderr}`).to.equal(0);
  }
  expect(res.events.at(-1), 'the child reached the point it leaves at').to.deep.equal({ event: 'leaving', how });
}

function commits(res: ChildResult): Extract<ChildEvent, { event: 'committed' }>[] {
  return res.events.filter((e): e is Extract<ChildEvent, { event: 'committed' }> => e.event === 'committed');
}

/** Records every write the child reported committed. */
function recordAll(log: CommitLog, res: ChildResult): void {
  for (const c of commits(res)) for (const [id, key, diff] of c.writes) log.record([id, key, c.ts, diff]);
}

/** Commit times at which the child wrote to `dataId`. */
function writeTimes(res: ChildResult, dataId: ShardId): number[] {
  return commits(res)
    .filter((c) => c.writes.some(([id]) => id === dataId))
    .map((c) => c.ts);
}

async function physicalUpper(client: PersistClient, dataId: ShardId): Promise<number> {
  const w = await client.openWriter(dataId, STRING_UNIT, { purpose: 'test: physical upper' });
  try {
    return await w.fetchRecentUpper();
  } finally {
    await w.expire();
  }
}

/** `dataId@ts` of every batch pointer a tidy retracts, sorted. */
function tidied(tidy: Tidy): string[] {
  return [...tidy.retractions.values()].map((r) => `${r.dataId}@${decodeTs(r.ts)}`).sort();
}

/** `dataId@ts` of every batch pointer still in the txns shard (committed and not tidied), read by a fresh cache. */
async function untidiedInTxnsShard(client: PersistClient, txnsId: ShardId, through: number): Promise<string[]> {
  const cache = await TxnsCache.open(client, txnsId);
  try {
    await cache.updateGt(through);
    return cache.state.unappliedBatchList().map((b) => `${b.dataId}@${b.ts}`).sort();
  } finally {
    await cache.expire();
  }
}

/** `dataId@ts` for each (shard, commit) pair of the given commits. */
function pointers(res: ChildResult, times: number[]): string[] {
  const out = new Set<string>();
  for (const c of commits(res)) if (times.includes(c.ts)) for (const [id] of c.writes) out.add(`${id}@${c.ts}`);
  return [...out].sort();
}

/**
 * Opens a leased reader on each shard that is never downgraded: it holds the shard's
 * since at 0, so reads from asOf 1 stay possible after other reads moved on.
 */
async function holdSinces(client: PersistClient, ids: ShardId[]): Promise<void> {
  for (const id of ids) {
    const r = await client.openLeasedReader(id, STRING_UNIT, { purpose: 'test: hold the since' });
    expect(r.since(), `since of ${id}`).to.equal(0);
  }
}

/**
 * Reads every shard at `ts` (a snapshot and a `dataSubscribe$` read, advanced to `ts`) and over
 * `[1, ts]` with original times (needs {@link holdSinces}).
 */
async function assertExactlyOnce(log: CommitLog, ids: ShardId[], ts: number): Promise<void> {
  for (const id of ids) {
    await log.assertSnapshot(id, ts);
    // From asOf 1 every write keeps its commit time, so a batch applied twice shows up at its time.
    await log.assertSubscribe(id, 1, ts + 1);
  }
}

/** Reads `dataId` at `asOf` in a separate, fresh process. */
async function readInChild(dir: string, txnsId: ShardId, dataId: ShardId, asOf: number): Promise<Row[]> {
  const res = await runChild('read', `file:${dir}`, txnsId, dataId, String(asOf));
  expect(res.code, res.stderr).to.equal(0);
  const ev = res.events[0];
  if (ev?.event !== 'read') throw new Error(`unexpected child output ${JSON.stringify(res.events)}`);
  return ev.rows;
}

/** Registers the shards through `txns` (a no-op that hands it commit writers), commits `rows` with `tidy`, applies. */
async function commitMore(
  txns: TxnsHandle<string, null>,
  log: CommitLog,
  ids: ShardId[],
  registerTs: number,
  tidy: Tidy,
): Promise<{ ts: number; tidy: Tidy }> {
  const reg = await txns.register(registerTs, await Promise.all(ids.map((id) => writer(txns.client, id))));
  expect(reg.ok, 'registering again through the new handle').to.equal(true);
  const ts = registerTs + 1;
  const txn = txns.begin();
  for (const id of ids) {
    await txn.write(id, `parent-${id.slice(1, 5)}-1`, null, 1);
    await txn.write(id, `parent-${id.slice(1, 5)}-2`, null, 1);
  }
  txn.tidy(tidy);
  const res = await txn.commitAt(txns, ts);
  if (!res.ok) throw new Error(`commit at ${ts} failed: txns upper is ${res.current}`);
  for (const id of ids) {
    log.record([id, `parent-${id.slice(1, 5)}-1`, ts, 1]);
    log.record([id, `parent-${id.slice(1, 5)}-2`, ts, 1]);
  }
  return { ts, tidy: await res.apply.apply(txns) };
}

describe('txn: crash recovery across processes (file:)', function () {
  this.timeout(180_000);
  let dir: string;
  let location: string;
  let txnsId: ShardId;
  let ids: [ShardId, ShardId];
  let client: PersistClient | undefined;
  let txns: TxnsHandle<string, null> | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-crash-'));
    location = `file:${dir}`;
    txnsId = newShardId();
    ids = [newShardId(), newShardId()];
  });
  afterEach(async () => {
    await txns?.close().catch(() => undefined);
    await client?.close().catch(() => undefined);
    txns = undefined;
    client = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  for (const how of ['exit', 'sigkill'] as const) {
    it(`commits the child left unapplied (${how}) are applied by a fresh handle, exactly once`, async () => {
      const res = await runChild('unapplied', location, txnsId, ids[0], ids[1], how);
      expectLeft(res, how);
      const cs = commits(res);
      expect(cs.map((c) => c.ts)).to.deep.equal([2, 3, 4, 5, 6]);
      expect(cs.filter((c) => c.applied).map((c) => c.ts)).to.deep.equal([2, 3]);
      expect(cs.some((c) => c.writes.some(([id]) => id === ids[0]) && c.writes.some(([id]) => id === ids[1])), 'a txn to both shards').to.equal(true);
      const unapplied = [4, 5, 6];
      const lastTs = 6;

      client = await PersistClient.open(location);
      const log = new CommitLog(client, txnsId);
      recordAll(log, res);
      await holdSinces(client, ids);

      // Before anything here touches them: the data shards were not written past the
      // last applied commit, so the unapplied commits really are not in them yet.
      for (const id of ids) {
        const firstUnapplied = Math.min(...writeTimes(res, id).filter((t) => unapplied.includes(t)));
        const upper = await physicalUpper(client, id);
        expect(upper, `physical upper of ${id} before the apply`).to.be.at.most(firstUnapplied);
      }
      // The commits are durable: the txns shard still holds their batch pointers (those of
      // 2 and 3 were tidied by the commits after them).
      expect(await untidiedInTxnsShard(client, txnsId, lastTs)).to.deep.equal(pointers(res, unapplied));

      txns = await openTxns(client, txnsId);
      const tidy = await txns.applyLe(lastTs);
      expect(tidied(tidy), 'the apply tidies exactly the unapplied commits').to.deep.equal(pointers(res, unapplied));
      for (const id of ids) {
        const upper = await physicalUpper(client, id);
        expect(upper, `physical upper of ${id} after the apply`).to.be.above(Math.max(...writeTimes(res, id)));
      }
      await assertExactlyOnce(log, ids, lastTs);

      // A second apply is a no-op: the data shards are not written (their uppers stay where
      // the apply and the reads left them), the contents are the same.
      const uppers = await Promise.all(ids.map((id) => physicalUpper(client!, id)));
      const again = await txns.applyLe(lastTs);
      expect(await Promise.all(ids.map((id) => physicalUpper(client!, id)))).to.deep.equal(uppers);
      expect(tidied(again)).to.deep.equal(tidied(tidy));
      await assertExactlyOnce(log, ids, lastTs);

      // Life goes on: the new handle commits (carrying the tidy) and the shard is clean after.
      const more = await commitMore(txns, log, ids, lastTs + 1, tidy);
      await assertExactlyOnce(log, ids, more.ts);
      expect(await untidiedInTxnsShard(client, txnsId, more.ts)).to.deep.equal(ids.map((id) => `${id}@${more.ts}`).sort());

      // And another fresh process reads the same.
      await txns.close();
      txns = undefined;
      for (const id of ids) log.assertEq(id, more.ts, more.ts + 1, await readInChild(dir, txnsId, id, more.ts));
    });
  }

  for (const how of ['exit', 'sigkill'] as const) {
    it(`a txn the child applied but never tidied (${how}) is read exactly once, and commits continue`, async () => {
      const res = await runChild('untidied', location, txnsId, ids[0], ids[1], how);
      expectLeft(res, how);
      const cs = commits(res);
      expect(cs.map((c) => c.ts)).to.deep.equal([2, 3, 4, 5, 6]);
      expect(cs.every((c) => c.applied)).to.equal(true);
      const lastTs = 6;

      client = await PersistClient.open(location);
      const log = new CommitLog(client, txnsId);
      recordAll(log, res);
      await holdSinces(client, ids);

      // The child applied everything: each data shard is physically past its last write…
      for (const id of ids) {
        expect(await physicalUpper(client, id), `physical upper of ${id}`).to.be.above(Math.max(...writeTimes(res, id)));
      }
      // …but the pointers of the last commit were never retracted.
      expect(await untidiedInTxnsShard(client, txnsId, lastTs)).to.deep.equal(pointers(res, [lastTs]));

      txns = await openTxns(client, txnsId);
      const uppersBefore = await Promise.all(ids.map((id) => physicalUpper(client!, id)));
      const tidy = await txns.applyLe(lastTs);
      // Nothing was appended again, and the tidy covers the applied-but-untidied commit.
      expect(await Promise.all(ids.map((id) => physicalUpper(client!, id)))).to.deep.equal(uppersBefore);
      expect(tidied(tidy)).to.deep.equal(pointers(res, [lastTs]));
      await assertExactlyOnce(log, ids, lastTs);

      const more = await commitMore(txns, log, ids, lastTs + 1, tidy);
      await assertExactlyOnce(log, ids, more.ts);
      expect(await untidiedInTxnsShard(client, txnsId, more.ts)).to.deep.equal(ids.map((id) => `${id}@${more.ts}`).sort());
      // Tidying the last one leaves the txns shard with no batch pointers at all.
      const done = await txns.tidyAt(more.ts + 1, more.tidy);
      expect(done).to.deep.equal({ ok: true });
      expect(await untidiedInTxnsShard(client, txnsId, more.ts + 1)).to.deep.equal([]);
      await assertExactlyOnce(log, ids, more.ts + 1);

      // With nothing left to apply, the txns shard may compact; a fresh process still reads
      // everything from the compacted txns shard.
      await txns.compactTo(more.ts + 1);
      await txns.close();
      txns = undefined;
      for (const id of ids) log.assertEq(id, more.ts + 1, more.ts + 2, await readInChild(dir, txnsId, id, more.ts + 1));
    });
  }

  // The apply of commits 2..6 takes 8 data-shard appends here (d0 at 2, 4, 5, 6 and d1
  // at 2, 3, 4, 6, some merged into one append); the child dies after the k-th returned.
  for (const appends of [0, 1, 3, 4, 5, 7, 8]) {
    it(`a child SIGKILLed in the middle of an apply (after ${appends} data appends) leaves nothing lost or doubled`, async () => {
      const res = await runChild('mid-apply', location, txnsId, ids[0], ids[1], String(appends));
      expectLeft(res, 'sigkill');
      expect(commits(res).map((c) => c.ts)).to.deep.equal([2, 3, 4, 5, 6]);
      const acked = res.events.filter((e): e is Extract<ChildEvent, { event: 'append' }> => e.event === 'append');
      expect(acked, 'data appends the child saw return').to.have.length(appends);
      expect(res.events.some((e) => e.event === 'applied'), 'the child died before its apply finished').to.equal(false);
      const lastTs = 6;

      client = await PersistClient.open(location);
      const log = new CommitLog(client, txnsId);
      recordAll(log, res);
      await holdSinces(client, ids);
      // Whatever the child saw succeed is durable; nothing went past the last commit.
      for (const id of ids) {
        const ackedUpper = Math.max(0, ...acked.filter((e) => e.shard === id && e.res.ok).map((e) => e.upper[1]));
        const upper = await physicalUpper(client, id);
        expect(upper, `physical upper of ${id} after the crash`).to.be.at.least(ackedUpper).and.at.most(lastTs + 1);
      }

      txns = await openTxns(client, txnsId);
      const tidy = await txns.applyLe(lastTs);
      // The child tidied nothing, so the tidy covers every commit, whoever applied it.
      expect(tidied(tidy)).to.deep.equal(pointers(res, [2, 3, 4, 5, 6]));
      for (const id of ids) expect(await physicalUpper(client, id)).to.be.above(Math.max(...writeTimes(res, id)));
      await assertExactlyOnce(log, ids, lastTs);
      await txns.applyLe(lastTs);
      await assertExactlyOnce(log, ids, lastTs);
      const more = await commitMore(txns, log, ids, lastTs + 1, tidy);
      await assertExactlyOnce(log, ids, more.ts);
      expect(await untidiedInTxnsShard(client, txnsId, more.ts)).to.deep.equal(ids.map((id) => `${id}@${more.ts}`).sort());
    });
  }
});
