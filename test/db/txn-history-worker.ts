/**
 * Child process of the transaction history trial (txn-history.ts): runs random
 * read-write transactions over a few hot keys and prints what each attempt read,
 * wrote and how it ended, so the parent can check the history. Usage:
 *
 *   node --import tsx test/db/txn-history-worker.ts <location> <txnsId> <dataId> <worker> <isolation> <txns> <seed>
 *
 * Every value written is unique (`<worker>.<attempt>`), so a read names the write
 * it saw. Three transactions run at once in the process. Events, one JSON line each, written synchronously (a SIGKILL loses none
 * that were printed):
 *   {"event":"attempt","id":"w1.4","readTs":17,"reads":{"k0":"w0.2","k2":null},"writes":{"k0":"w1.4"}}
 *       printed before commit() is called: the attempt may land even if nothing follows;
 *   {"event":"committed","id":"w1.4","commitTs":19}
 *   {"event":"conflict","id":"w1.4","error":"ValidationFailed"}   nothing of it was written
 *   {"event":"done"}
 * The process never closes its client: a SIGKILL may come at any point.
 */
import { appendFileSync, writeSync } from 'node:fs';
import { LogicalClock } from '../../src/coord/logical-clock.js';
import { ReadWriteTransaction, type IsolationLevel } from '../../src/db/read-write-transaction.js';
import { isConflict } from '../../src/db/transact.js';
import { TxnsTransactionHost } from '../../src/db/txns-transaction-host.js';
import { openLocation } from '../../src/location/location.js';
import { PersistClient } from '../../src/persist/client.js';
import type { ShardId } from '../../src/persist/shard-id.js';
import { TxnsHandle } from '../../src/txn/txns-handle.js';
import { xorshift32 } from '../support/rng.js';
import { HISTORY_CODECS, HOT_KEYS } from './txn-history.js';


function emit(event: object): void {
  writeSync(1, JSON.stringify(event) + '\n');
}

async function main(): Promise<void> {
  const [location, txnsId, dataId, worker, isolation, txnsArg, seedArg] = process.argv.slice(2) as [
    string,
    ShardId,
    ShardId,
    string,
    IsolationLevel,
    string,
    string,
  ];
  const client = await PersistClient.open(await openLocation(location), {
    config: { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 20 } },
  });
  const txns = await TxnsHandle.open(client, { txnsId, codecs: HISTORY_CODECS, initTs: 0 });
  const writer = await client.openWriter(dataId, HISTORY_CODECS);
  for (let ts = await txns.fetchRecentUpper(); ; ) {
    const res = await txns.register(ts, [writer]);
    if (res.ok) break;
    ts = res.current;
  }
  const oracle = isolation === 'strict-serializable' ? new LogicalClock() : undefined;
  const host = new TxnsTransactionHost(txns, { oracle });
  const coll = host.collection(dataId);
  const next = xorshift32(Number(seedArg));
  // Several transactions in flight at once, so they overlap in this process too (key
  // locks meet) as well as across processes (validation meets).
  let n = 0;
  const total = Number(txnsArg);
  const lane = async (): Promise<void> => {
    while (n < total) {
      const id = `${worker}.${n++}`;
      await runOne(id);
    }
  };
  // Where each transaction is, for a stuck worker's trace (TXNWAL_TRIAL_TRACE=<file>).
  const where = new Map<string, string>();
  const tracePath = process.env.TXNWAL_TRIAL_TRACE;
  if (tracePath) {
    setInterval(() => appendFileSync(tracePath, `${worker} ${new Date().toISOString()} ${JSON.stringify([...where])}\n`), 5000).unref();
  }
  const step = async <T>(id: string, name: string, p: Promise<T>): Promise<T> => {
    where.set(id, name);
    const v = await p;
    where.set(id, `${name} done`);
    return v;
  };
  const runOne = async (id: string): Promise<void> => {
    const tx = await step(id, 'begin', ReadWriteTransaction.begin(host, { isolation }));
    const reads: Record<string, string | null> = {};
    const writes: Record<string, string> = {};
    try {
      // Mostly two keys read and one of them written: the shape of write skew.
      const first = HOT_KEYS[next() % HOT_KEYS.length]!;
      const second = HOT_KEYS[(HOT_KEYS.indexOf(first) + 1 + (next() % (HOT_KEYS.length - 1))) % HOT_KEYS.length]!;
      const keys = next() % 4 === 0 ? [first] : [first, second];
      for (const k of keys) reads[k] = (await step(id, `get ${k}`, tx.get(coll, k))) ?? null;
      const shape = next() % 6;
      const written = shape === 0 ? [] : shape === 1 ? keys : [keys[next() % keys.length]!];
      for (const k of written) {
        await step(id, `set ${k}`, tx.set(coll, k, id));
        writes[k] = id;
      }
      emit({ event: 'attempt', id, readTs: tx.readTs, reads, writes });
      const { commitTs } = await step(id, 'commit', tx.commit());
      where.delete(id);
      emit({ event: 'committed', id, commitTs });
    } catch (err) {
      tx.abort();
      where.delete(id);
      if (!isConflict(err)) throw err;
      // A conflict before commit() printed nothing of the attempt: say what it was.
      emit({ event: 'conflict', id, error: (err as Error).name, reads, writes });
    }
  };
  await Promise.all([lane(), lane(), lane()]);
  emit({ event: 'done' });
  process.exit(0);
}

main().catch((err: unknown) => {
  emit({ event: 'error', error: String((err as Error)?.stack ?? err) });
  process.exit(1);
});
