/**
 * A writer "machine" of the multi-machine trial (multi-machine.ts): its own process,
 * its own PersistClient on the shared Postgres + S3 location, its own TxnsHandle on the
 * shared txns shard. Usage:
 *
 *   multi-writer-child.ts <location> <txnsId> <dataIds,comma,separated> <writer> <incarnation> <seed>
 *
 * It registers the data shards through its handle (idempotent: they already are), then
 * commits transactions until its stdin closes: each writes one unique key
 * `${writer}.${incarnation}.${n}` to 1–3 of the data shards, at the next free txns time
 * (commitAtNextTimestamp with nextFreeTxnsTime: three writers race for timestamps and
 * learn from refusals), then applies it and carries the tidy into its next transaction.
 *
 * Every step is one JSON line on stdout, written synchronously, so a SIGKILL loses none:
 *   {"event":"ready"}
 *   {"event":"attempt","key":…,"shards":[…]}        before commitAt
 *   {"event":"acked","key":…,"ts":…}                 the commit landed (acknowledged)
 *   {"event":"failed","key":…,"mayHaveHappened":…,"error":…}
 *   {"event":"applied","ts":…}                       (or "apply-failed": a later apply covers it)
 *   {"event":"done"}                                 stdin closed, client closed
 */
import { writeSync } from 'node:fs';
import { commitAtNextTimestamp, nextFreeTxnsTime } from '../../src/coord/timestamp-source.js';
import { mayHaveHappened } from '../../src/location/errors.js';
import { PersistClient } from '../../src/persist/client.js';
import type { ShardId } from '../../src/persist/shard-id.js';
import type { Tidy } from '../../src/txn/tidy.js';
import { TxnsHandle } from '../../src/txn/txns-handle.js';
import { STRING_UNIT } from '../support/persist.js';
import { xorshift32 } from '../support/rng.js';
import { MULTI_TRIAL_CONFIG } from './multi-machine-config.js';

function emit(event: Record<string, unknown>): void {
  writeSync(1, JSON.stringify(event) + '\n');
}

const [location, txnsId, dataArg, writer, incarnation, seedArg] = process.argv.slice(2);
const dataIds = dataArg!.split(',') as ShardId[];
const next = xorshift32(Number(seedArg) * 7919 + Number(incarnation) * 104729 + 1);

let stopping = false;
process.stdin.on('end', () => (stopping = true));
process.stdin.resume();

const client = await PersistClient.open(location!, { config: MULTI_TRIAL_CONFIG });
const txns = await TxnsHandle.open(client, { txnsId: txnsId as ShardId, codecs: STRING_UNIT });
const writers = await Promise.all(dataIds.map((id) => client.openWriter(id, STRING_UNIT)));
const times = nextFreeTxnsTime(1);
await commitAtNextTimestamp(times, (ts) => txns.register(ts, writers));
emit({ event: 'ready' });

/** `count` of `ids`, chosen at random (a partial Fisher–Yates shuffle). */
function pick(ids: readonly ShardId[], count: number): ShardId[] {
  const copy = [...ids];
  for (let i = 0; i < count; i++) {
    const j = i + (next() % (copy.length - i));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, count);
}

let tidy: Tidy | undefined;
for (let n = 0; !stopping; n++) {
  const key = `${writer}.${incarnation}.${n}`;
  const shards = pick(dataIds, 1 + (next() % Math.min(3, dataIds.length)));
  emit({ event: 'attempt', key, shards });
  const txn = txns.begin();
  let committed: { ts: number; apply: () => Promise<Tidy> };
  try {
    for (const s of shards) await txn.write(s, key, null, 1);
    if (tidy) txn.tidy(tidy);
    // Whatever happens to this commit, its tidy is not offered again: retracting the
    // same pointers twice (if a "may have happened" commit did land) would be worse
    // than leaving them for a later compaction.
    tidy = undefined;
    const { ts, landed } = await commitAtNextTimestamp(times, (at) => txn.commitAt(txns, at));
    committed = { ts, apply: () => landed.apply.apply(txns) };
    emit({ event: 'acked', key, ts });
  } catch (err) {
    emit({ event: 'failed', key, mayHaveHappened: mayHaveHappened(err), error: String(err) });
    continue;
  }
  try {
    tidy = await committed.apply();
    emit({ event: 'applied', ts: committed.ts });
  } catch (err) {
    // Acknowledged all the same: any later apply (ours or another writer's) applies it.
    emit({ event: 'apply-failed', ts: committed.ts, error: String(err) });
  }
}
await txns.close();
await client.close();
emit({ event: 'done' });
process.exit(0);
