/**
 * Catching up on a written shard: `npm run bench:catchup [-- --batches 100,10000]`.
 *
 * A reader that subscribes to a data shard someone already wrote reads its history
 * first, as fast as it can. For each transaction size B (TXNWAL_BENCH_CATCHUP_UPDATES
 * updates in all, in transactions of B updates each, to one registered data shard on
 * `mem://`, committed and applied before anyone reads), two readers subscribe from the
 * time before the first write until progress passes the last commit:
 * - **shardSubscribe$** (the baseline): the data shard's physical batches, no txn-wal;
 * - **dataSubscribe$**: the same shard through txn-wal, which also follows the txns shard
 *   for logical progress.
 * Both run in the same process, alternating (shard, data, data, shard, …
 * TXNWAL_BENCH_CATCHUP_ROUNDS times each) so drift hits both; figures are the best
 * round of each, and the ratio is dataSubscribe$ ÷ shardSubscribe$ (target ≥ 0.9: the
 * txn-wal layer should cost a reader nothing next to persist). Each reader must see
 * every update exactly once (checked).
 *
 * Profiling: TXNWAL_BENCH_CPU_PROF=<dir> writes a CPU profile of each measured read
 * (bench/support.ts `profiled`).
 *
 * Settings (env): TXNWAL_BENCH_CATCHUP_UPDATES (1000000), TXNWAL_BENCH_CATCHUP_ROUNDS (3).
 */
import { performance } from 'node:perf_hooks';
import { filter, firstValueFrom, type Observable } from 'rxjs';
import { Codecs, PersistClient, TxnsHandle, dataSubscribe$, newShardId, shardSubscribe$, type ShardEvent, type ShardId } from '../src/index.js';
import { Tidy } from '../src/txn/tidy.js';
import {
  UsageError,
  argList,
  envNumber,
  fmtInt,
  fmtMs,
  fmtRate,
  fmtRatio,
  log,
  machineSummary,
  profiled,
  renderTable,
  runBench,
} from './support.js';

const UPDATES = Math.round(envNumber('TXNWAL_BENCH_CATCHUP_UPDATES', 1_000_000));
const ROUNDS = Math.round(envNumber('TXNWAL_BENCH_CATCHUP_ROUNDS', 3));
const CODECS = { key: Codecs.string, val: Codecs.unit } as const;

interface Written {
  client: PersistClient;
  txnsId: ShardId;
  dataId: ShardId;
  /** The time before the first write (readers start here) and of the last commit. */
  asOf: number;
  lastTs: number;
  close(): Promise<void>;
}

/** A fresh mem:// location with `UPDATES` updates in transactions of `batch`, applied. */
async function writeShard(batch: number): Promise<Written> {
  const client = await PersistClient.open('mem://');
  const txnsId = newShardId();
  const dataId = newShardId();
  const txns = await TxnsHandle.open(client, { txnsId, codecs: CODECS, initTs: 0 });
  // Held from before the first write, so the readers read every batch at its own time
  // (a listen), not one snapshot consolidated at the last commit.
  const holds = [await client.openLeasedReader(dataId, CODECS, { purpose: 'bench hold' })];
  const reg = await txns.register(1, [await client.openWriter(dataId, CODECS)]);
  if (!reg.ok) throw new Error('register refused');
  let tidy = new Tidy();
  let ts = 1;
  for (let written = 0; written < UPDATES; written += batch) {
    const n = Math.min(batch, UPDATES - written);
    const txn = txns.begin();
    await txn.writeMany(
      dataId,
      Array.from({ length: n }, (_, i) => [`key-${String(written + i).padStart(9, '0')}`, null, 1] as const),
    );
    txn.tidy(tidy);
    ts++;
    const res = await txn.commitAt(txns, ts);
    if (!res.ok) throw new Error(`commit at ${ts}: taken, current ${res.current}`);
    tidy = await res.apply.apply(txns);
  }
  await txns.close();
  return {
    client,
    txnsId,
    dataId,
    asOf: 1,
    lastTs: ts,
    async close() {
      for (const h of holds) await h.expire();
      await client.close();
    },
  };
}

/** Subscribes, counts updates until progress passes the last commit; the time it took. */
async function catchUp(w: Written, events$: Observable<ShardEvent<string, null>>): Promise<{ ms: number; updates: number }> {
  let updates = 0;
  const start = performance.now();
  await firstValueFrom(
    events$.pipe(
      filter((ev) => {
        if (ev.kind === 'updates') {
          for (const u of ev.updates) updates += u[3];
          return false;
        }
        return ev.upper > w.lastTs;
      }),
    ),
  );
  const ms = performance.now() - start;
  if (updates !== UPDATES) throw new Error(`read ${updates} updates, ${UPDATES} were written`);
  return { ms, updates };
}

const READERS = {
  'shardSubscribe$': (w: Written) => shardSubscribe$(w.client, w.dataId, CODECS, { asOf: w.asOf }),
  'dataSubscribe$': (w: Written) => dataSubscribe$(w.client, w.txnsId, w.dataId, { codecs: CODECS, asOf: w.asOf }),
} as const;
type ReaderName = keyof typeof READERS;

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    log('usage: npm run bench:catchup [-- --batches 100,10000]   (env: TXNWAL_BENCH_CATCHUP_UPDATES, TXNWAL_BENCH_CATCHUP_ROUNDS, TXNWAL_BENCH_CPU_PROF)');
    return 0;
  }
  const batches = (argList(process.argv.slice(2), 'batches') ?? ['100', '10000']).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--batches: expected positive integers, got ${JSON.stringify(s)}`);
    return n;
  });
  log(`bench:catchup — a reader catching up on a written shard, mem://; ${machineSummary()}`);
  log(`${fmtInt(UPDATES)} updates per shard, ${ROUNDS} rounds per reader, best round reported`);
  const rows: string[][] = [];
  for (const batch of batches) {
    const w = await writeShard(batch);
    try {
      const best: Record<ReaderName, number> = { 'shardSubscribe$': Infinity, 'dataSubscribe$': Infinity };
      const order: ReaderName[] = [];
      for (let r = 0; r < ROUNDS; r++) order.push(...((r % 2 === 0 ? ['shardSubscribe$', 'dataSubscribe$'] : ['dataSubscribe$', 'shardSubscribe$']) as ReaderName[]));
      for (const name of order) {
        const { ms } = await profiled(`catchup-${name}-${batch}`, () => catchUp(w, READERS[name](w)));
        best[name] = Math.min(best[name], ms);
      }
      const rate = (name: ReaderName) => UPDATES / (best[name] / 1000);
      for (const name of Object.keys(READERS) as ReaderName[]) {
        rows.push([
          name === 'shardSubscribe$' ? fmtInt(batch) : '',
          name,
          fmtMs(best[name]),
          fmtRate(rate(name)),
          name === 'dataSubscribe$' ? fmtRatio(rate(name) / rate('shardSubscribe$')) : '',
        ]);
      }
    } finally {
      await w.close();
    }
  }
  log(renderTable(['updates per txn', 'reader', 'time', 'updates/s', '÷ shardSubscribe$'], rows));
  return 0;
}

await runBench(main);
