/**
 * Child process for the txn-wal crash-recovery tests. It commits a fixed plan of
 * transactions across two data shards and then leaves without finishing the work a
 * well-behaved committer would do. Usage:
 *
 *   unapplied <location> <txnsId> <d0> <d1> <exit|sigkill>
 *       commits 2 and 3 are applied (3 carries the tidy of 2); commits 4, 5 and 6 are
 *       not applied (4 carries the tidy of 3). Then it exits (or SIGKILLs itself)
 *       right after the last commitAt succeeded.
 *   untidied <location> <txnsId> <d0> <d1> <exit|sigkill>
 *       every commit is applied and carries the previous commit's tidy, but the tidy
 *       of the last commit (6) is never committed.
 *   mid-apply <location> <txnsId> <d0> <d1> <appends>
 *       commits 2..6 without applying, then runs applyLe(6) and SIGKILLs itself as
 *       soon as `appends` compare-and-appends to the data shards (successful or not)
 *       have returned: a crash in the middle of the apply, at a chosen point.
 *   read <location> <txnsId> <dataId> <asOf>
 *       prints the logical contents of dataId at asOf as JSON rows [key, ts, diff].
 *
 * Every event is printed as one JSON line on stdout with a synchronous write, so
 * nothing is lost when the process kills itself:
 *   {"event":"committed","ts":4,"writes":[[dataId,key,diff],...],"applied":false}
 *   {"event":"applied","ts":3}            (an apply finished)
 *   {"event":"append","shard":…,"upper":[from,to],"res":{"ok":true}}   (mid-apply only)
 *   {"event":"leaving","how":"exit"}      (about to exit or be killed)
 * The process never closes its client or handles: recovery may not depend on it.
 */
import { writeSync } from 'node:fs';
import { Codecs, PersistClient, type ShardId } from '../../src/persist/index.js';
import { TxnsCache } from '../../src/txn/txns-cache.js';
import { TxnsHandle } from '../../src/txn/txns-handle.js';
import type { Tidy } from '../../src/txn/tidy.js';
import { WriteHandle } from '../../src/persist/write-handle.js';

/** One planned transaction: rows `[shard index, key, diff]` committed at `ts`. */
interface PlannedCommit {
  ts: number;
  rows: [shard: 0 | 1, key: string, diff: number][];
}

/**
 * The plan: several rows per commit, some commits touching both shards, one
 * touching only d1, one only d0, and a retraction of an earlier row.
 */
const PLAN: PlannedCommit[] = [
  { ts: 2, rows: [[0, 'a@2', 1], [0, 'b@2', 1], [1, 'x@2', 1], [1, 'y@2', 1]] },
  { ts: 3, rows: [[1, 'z@3', 1], [1, 'w@3', 1], [1, 't@3', 1]] },
  { ts: 4, rows: [[0, 'c@4', 1], [0, 'd@4', 1], [1, 'x@2', -1], [1, 'u@4', 1]] },
  { ts: 5, rows: [[0, 'e@5', 1], [0, 'f@5', 1], [0, 'b@2', -1]] },
  { ts: 6, rows: [[0, 'h@6', 1], [0, 'i@6', 1], [1, 'v@6', 1], [1, 's@6', 1]] },
];
const REGISTER_TS = 1;

const codecs = { key: Codecs.string, val: Codecs.unit };

function emit(event: Record<string, unknown>): void {
  writeSync(1, JSON.stringify(event) + '\n');
}

function leave(how: 'exit' | 'sigkill'): never {
  emit({ event: 'leaving', how });
  if (how === 'sigkill') process.kill(process.pid, 'SIGKILL');
  process.exit(0);
}

/**
 * Wraps WriteHandle.compareAndAppendBatch (in this process only) so the process
 * SIGKILLs itself once `limit` calls on the given shards have returned; with limit 0,
 * before the first one. Each returned call is reported as an "append" event.
 */
function killAfterDataAppends(shards: Set<ShardId>, limit: number): void {
  const proto = WriteHandle.prototype as unknown as {
    compareAndAppendBatch: (this: WriteHandle<unknown, unknown>, ...args: unknown[]) => Promise<unknown>;
  };
  const original = proto.compareAndAppendBatch;
  let returned = 0;
  proto.compareAndAppendBatch = async function (this: WriteHandle<unknown, unknown>, ...args: unknown[]) {
    if (!shards.has(this.shardId)) return original.apply(this, args);
    if (returned >= limit) leave('sigkill');
    const res = await original.apply(this, args);
    returned++;
    emit({ event: 'append', shard: this.shardId, upper: [args[1], args[2]], res });
    if (returned >= limit) leave('sigkill');
    return res;
  };
}

async function setUp(location: string, txnsId: ShardId, d0: ShardId, d1: ShardId) {
  const client = await PersistClient.open(location);
  const txns = await TxnsHandle.open(client, { txnsId, codecs });
  const res = await txns.register(REGISTER_TS, [await client.openWriter(d0, codecs), await client.openWriter(d1, codecs)]);
  if (!res.ok) throw new Error(`register at ${REGISTER_TS} failed: txns upper is ${res.current}`);
  return { client, txns };
}

/** Commits one planned transaction (with `tidy` attached) and reports it. */
async function commit(
  txns: TxnsHandle<string, null>,
  ids: [ShardId, ShardId],
  c: PlannedCommit,
  tidy: Tidy | undefined,
  applied: boolean,
) {
  const txn = txns.begin();
  for (const [shard, key, diff] of c.rows) await txn.write(ids[shard], key, null, diff);
  if (tidy) txn.tidy(tidy);
  const res = await txn.commitAt(txns, c.ts);
  if (!res.ok) throw new Error(`commit at ${c.ts} failed: txns upper is ${res.current}`);
  emit({ event: 'committed', ts: c.ts, writes: c.rows.map(([s, k, d]) => [ids[s], k, d]), applied });
  return res.apply;
}

const [cmd, location, txnsId, a, b, c] = process.argv.slice(2);
if (cmd === 'unapplied' || cmd === 'untidied' || cmd === 'mid-apply') {
  const ids: [ShardId, ShardId] = [a!, b!];
  const { txns } = await setUp(location!, txnsId!, ids[0], ids[1]);
  let tidy: Tidy | undefined;
  for (const planned of PLAN) {
    const applyNow = cmd === 'untidied' || (cmd === 'unapplied' && planned.ts <= 3);
    const apply = await commit(txns, ids, planned, tidy, applyNow);
    tidy = undefined;
    if (applyNow) {
      tidy = await apply.apply(txns);
      emit({ event: 'applied', ts: planned.ts });
    }
  }
  if (cmd === 'mid-apply') {
    const last = PLAN[PLAN.length - 1]!.ts;
    killAfterDataAppends(new Set(ids), Number(c));
    await txns.applyLe(last);
    emit({ event: 'applied', ts: last });
  }
  leave(c === 'sigkill' ? 'sigkill' : 'exit');
} else if (cmd === 'read') {
  const client = await PersistClient.open(location!);
  const dataId = a!;
  const asOf = Number(b);
  const cache = await TxnsCache.open(client, txnsId!, { onlyDataId: dataId });
  await cache.updateGt(asOf);
  const reader = await client.openLeasedReader(dataId, codecs, { useCriticalSince: true });
  const rows = await cache.dataSnapshot(dataId, asOf).snapshotAndFetch(reader);
  emit({ event: 'read', rows: rows.map(([k, , t, d]) => [k, t, d]) });
  await client.close();
  process.exit(0);
} else {
  throw new Error(`unknown command ${cmd}`);
}
