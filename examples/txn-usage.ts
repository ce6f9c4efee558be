/**
 * The txn-wal usage example, end to end, on the embedded default location
 * (`file:<dir>`: SQLite consensus + file blob). Run it with
 * `npm run example:txn [-- <dir>]`; without a directory it uses a fresh temp dir.
 *
 * Steps (each prints a narrated line, prefixed with "#"):
 *  1. open a txns shard (the write-ahead log that coordinates the data shards);
 *  2. register two data shards, d0 at t=1 and d1 at t=2;
 *  3. commit one transaction touching both shards at t=3, then apply it so reads
 *     at t=3 can be served from the data shards themselves;
 *  4. commit a second transaction that also carries the first one's tidy (the
 *     retraction of its now-applied batch pointers): t=3 is already taken, so the
 *     commit reports the least free time (4) and we commit there;
 *  5. read both shards as of t=4 through `dataSubscribe$`: d1 was not touched at 4,
 *     yet it is readable at 4 because the commit at 4 advanced its *logical* upper.
 *
 * A temp dir it created itself is removed at the end; a directory given on the
 * command line is kept (each run uses new shard ids, so runs do not interfere).
 *
 * Besides the narration, it prints one machine-checkable line per shard read:
 *   d1 at 4: [["1",4,-1]]
 *   d0 at 4: [["0",4,1],["2",4,1]]
 * (rows are [key, time, diff], sorted; the snapshot part is reported at the as-of time).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  Codecs,
  PersistClient,
  TxnsHandle,
  dataSubscribe$,
  newShardId,
  toAsyncIterable,
  type ShardId,
  type Update,
} from '../src/index.js';
import { cliArgs } from './cli.js';

const { positionals } = cliArgs(
  `
usage: npm run example:txn [-- <dir>]

The txn-wal layer end to end: register two data shards, commit across them, apply,
tidy, and read both at one time. <dir> is a file: location to use (kept); without
it, a fresh temp dir (removed at the end).
`,
  { allowPositionals: true },
);
if (positionals.length > 1) {
  console.error(`expected at most one directory, got ${positionals.length} arguments (see --help)`);
  process.exit(1);
}

const codecs = { key: Codecs.string, val: Codecs.unit };

function say(line: string): void {
  console.log(`# ${line}`);
}

/** `[key, time, diff]` rows, sorted, as compact JSON. */
function rowsJson(updates: readonly Update<string, null>[]): string {
  const rows = updates.map(([k, , t, d]) => [k, t, d] as const);
  rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1] || a[2] - b[2]));
  return JSON.stringify(rows);
}

async function readAt(client: PersistClient, txnsId: ShardId, dataId: ShardId, asOf: number): Promise<Update<string, null>[]> {
  const rows: Update<string, null>[] = [];
  // The stream follows both inputs (the physical shard and the txns remap). Once its
  // progress passes asOf every time <= asOf is complete; leaving the loop releases the readers.
  for await (const ev of toAsyncIterable(dataSubscribe$(client, txnsId, dataId, { codecs, asOf }))) {
    if (ev.kind === 'updates') rows.push(...ev.updates);
    else if (ev.upper > asOf) break;
  }
  return rows;
}

async function main(): Promise<void> {
  const ownDir = !positionals[0];
  const dir = ownDir ? await mkdtemp(path.join(os.tmpdir(), 'txnwal-example-')) : path.resolve(positionals[0]!);
  const client = await PersistClient.open(`file:${dir}`);
  say(`opened file:${dir}`);
  let txns: TxnsHandle<string, null> | undefined;
  try {
    // 1. The txns shard. Opening initializes it if needed (its upper becomes 1).
    const txnsId = newShardId();
    txns = await TxnsHandle.open(client, { txnsId, codecs });
    say(`opened txns shard ${txnsId}`);

    // 2. Registration is bookkeeping: commits to a shard may happen after its register time.
    const d0 = newShardId();
    const d1 = newShardId();
    const r0 = await txns.register(1, [await client.openWriter(d0, codecs)]);
    if (!r0.ok) throw new Error(`register d0 at 1 failed: txns upper is ${r0.current}`);
    const r1 = await txns.register(2, [await client.openWriter(d1, codecs)]);
    if (!r1.ok) throw new Error(`register d1 at 2 failed: txns upper is ${r1.current}`);
    say(`registered d0=${d0} at t=1 and d1=${d1} at t=2`);

    // 3. A transaction across both shards. It is durable once commitAt returns ok; reads at
    //    t=3 wait until it is applied (copied into the data shards). Whoever commits usually
    //    applies, but after a crash any other handle's applyLe would do it.
    const first = txns.begin();
    await first.write(d0, '0', null, 1);
    await first.write(d1, '1', null, -1);
    const c1 = await first.commitAt(txns, 3);
    if (!c1.ok) throw new Error(`commit at 3 failed: txns upper is ${c1.current}`);
    say('committed {d0: +"0", d1: -"1"} at t=3 (durable, not yet readable)');
    const tidy = await c1.apply.apply(txns);
    say(`applied the commit at t=3; its tidy retracts ${tidy.size} batch pointer(s) from the txns shard`);

    // 4. A contended commit: t=3 is taken, so the outcome is a value naming the least free
    //    time. The txn keeps its contents (and the tidy) for the retry.
    const second = txns.begin();
    await second.write(d0, '2', null, 1);
    second.tidy(tidy);
    const taken = await second.commitAt(txns, 3);
    if (taken.ok) throw new Error('a second commit at 3 should not succeed');
    say(`commit at t=3 again -> ${JSON.stringify({ ok: taken.ok, current: taken.current })}: t=3 is taken`);
    const c2 = await second.commitAt(txns, taken.current);
    if (!c2.ok) throw new Error(`commit at ${taken.current} failed: txns upper is ${c2.current}`);
    await c2.apply.apply(txns);
    say(`committed {d0: +"2"} plus the tidy at t=${taken.current} and applied it; this also advances d1's logical upper`);
    if (taken.current !== 4) throw new Error(`expected the least free time to be 4, got ${taken.current}`);

    // 5. Reads. d1 was last written at 3, so its physical upper is still 4, but the txns
    //    shard knows nothing was committed to d1 at 4: opening the read fills [4, 5) of d1
    //    with an empty append (metadata only) and the read at 4 completes at once.
    const d1Rows = await readAt(client, txnsId, d1, 4);
    say('read d1 as of t=4 with dataSubscribe$ (rows are [key, time, diff])');
    console.log(`d1 at 4: ${rowsJson(d1Rows)}`);
    const d0Rows = await readAt(client, txnsId, d0, 4);
    say('read d0 as of t=4 with dataSubscribe$');
    console.log(`d0 at 4: ${rowsJson(d0Rows)}`);
    say('done');
  } finally {
    await txns?.close();
    await client.close();
    if (ownDir) await rm(dir, { recursive: true, force: true });
  }
}

await main();
