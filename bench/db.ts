/**
 * Front-door benchmark: `npm run bench:db [-- --backends mem,file] [--submitters 1,100]`.
 *
 * What the front door costs over the layer it is built on. For each backend and
 * number of concurrent submitters, single-row blind writes for TXNWAL_BENCH_SECONDS:
 * - **baseline**: a lower-level {@link GroupCommitter} over its own TxnsHandle
 *   (string/unit codecs, one registered data shard) with the location's durable
 *   oracle (`openTimestampOracle(url)`), ack after apply;
 * - **db.write**: `openDatabase(url)` on the same location, one collection
 *   (string/unit), `db.write({ items: [[key, null, 1]] })` (ack 'readable' = after apply).
 * Both run in the same process, on the same location (a named `mem://bench-db`, or one
 * `file:<tmp>`), alternating baseline / db / baseline / db so drift hits both; each
 * side's figures are the sum of its two rounds. Printed: writes/s, p50 and p99
 * acknowledgement latency, and the ratio db ÷ baseline (target ≥ 0.9: the front
 * door should cost nothing next to a commit). After each run the rows are read back:
 * every acknowledged write is there once.
 *
 * Settings (env): TXNWAL_BENCH_SECONDS (2 per round), TXNWAL_BENCH_WARMUP_SECONDS (0.5).
 */
import { performance } from 'node:perf_hooks';
import { GroupCommitter, openTimestampOracle } from '../src/coord/index.js';
import { Codecs, PersistClient, TxnsHandle, newShardId, openDatabase } from '../src/index.js';
import {
  UsageError,
  argChoices,
  argList,
  envNumber,
  fmtInt,
  fmtLatency,
  fmtMs,
  fmtRate,
  fmtRatio,
  log,
  machineSummary,
  quantile,
  removeTempDirs,
  renderTable,
  runBench,
  tempDir,
} from './support.js';

const SECONDS = envNumber('TXNWAL_BENCH_SECONDS', 2);
const WARMUP_SECONDS = envNumber('TXNWAL_BENCH_WARMUP_SECONDS', 0.5);
const BACKENDS = ['mem', 'file'] as const;
type Backend = (typeof BACKENDS)[number];
const CODECS = { key: Codecs.string, val: Codecs.unit } as const;
const ROUNDS = 2;

interface Run {
  writes: number;
  seconds: number;
  latencies: number[];
}

/** `submitters` loops of write → await ack for `seconds`. */
async function drive(write: (key: string) => Promise<unknown>, submitters: number, seconds: number, prefix: string): Promise<Run> {
  const latencies: number[] = [];
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let writes = 0;
  await Promise.all(
    Array.from({ length: submitters }, async (_, s) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const t0 = performance.now();
        await write(`${prefix}${s}.${i}`);
        latencies.push(performance.now() - t0);
        writes++;
      }
    }),
  );
  return { writes, seconds: (performance.now() - start) / 1000, latencies };
}

function expectRows(side: string, rows: readonly (readonly [unknown, unknown, number, ...unknown[]])[], expected: number): void {
  const total = rows.reduce((n, r) => n + (r.length === 4 ? (r[3] as number) : r[2]), 0);
  if (rows.length !== expected || total !== expected) {
    throw new Error(`${side}: read back ${rows.length} rows (diff sum ${total}); ${expected} were acknowledged`);
  }
}

/** One baseline round: a GroupCommitter of its own on the location. */
async function baselineRound(url: string, submitters: number, round: number): Promise<Run> {
  const client = await PersistClient.open(url);
  const oracle = await openTimestampOracle(url);
  try {
    const txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs: CODECS });
    const gc = await GroupCommitter.open(txns, oracle, { ack: 'apply' });
    const dataId = newShardId();
    await gc.register([await client.openWriter(dataId, CODECS, { purpose: 'bench data' })]);
    const write = (key: string) => gc.submitWrite({ [dataId]: [[key, null, 1]] });
    const warm = await drive(write, submitters, WARMUP_SECONDS, `w${round}.`);
    const run = await drive(write, submitters, SECONDS, `k${round}.`);
    await gc.close();
    const reader = await client.openLeasedReader(dataId, CODECS, { purpose: 'bench verify' });
    expectRows('baseline', await reader.snapshotAndFetch(await oracle.readTs()), warm.writes + run.writes);
    await reader.expire();
    await txns.close();
    return run;
  } finally {
    await oracle.close();
    await client.close();
  }
}

/** One db.write round: a fresh collection in the location's database. */
async function dbRound(url: string, submitters: number, round: number): Promise<Run> {
  const db = await openDatabase(url);
  try {
    const name = `items_${submitters}_${round}_${Date.now()}`;
    await db.collection(name, CODECS);
    const write = (key: string) => db.write({ [name]: [[key, null, 1]] });
    const warm = await drive(write, submitters, WARMUP_SECONDS, `w${round}.`);
    const run = await drive(write, submitters, SECONDS, `k${round}.`);
    const snap = await db.snapshot(name);
    expectRows('db.write', snap.collections[name]!, warm.writes + run.writes);
    await db.drop(name);
    return run;
  } finally {
    await db.close();
  }
}

function merge(runs: Run[]): Run {
  return {
    writes: runs.reduce((n, r) => n + r.writes, 0),
    seconds: runs.reduce((n, r) => n + r.seconds, 0),
    latencies: runs.flatMap((r) => r.latencies).sort((a, b) => a - b),
  };
}

interface Cell {
  backend: Backend;
  submitters: number;
  baseline: Run;
  db: Run;
}

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    log('usage: npm run bench:db [-- --backends mem,file] [--submitters 1,100]');
    log('env: TXNWAL_BENCH_SECONDS (2 per round), TXNWAL_BENCH_WARMUP_SECONDS (0.5)');
    return 0;
  }
  const backends = argChoices('backends', BACKENDS);
  const submitters = (argList(process.argv.slice(2), 'submitters') ?? ['1', '100']).map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--submitters: ${JSON.stringify(s)} is not a positive integer`);
    return n;
  });
  log('txnwal front-door benchmark: db.write vs GroupCommitter, same location, same run');
  log(`  ${machineSummary()}`);
  log(`  TXNWAL_BENCH_SECONDS=${SECONDS} TXNWAL_BENCH_WARMUP_SECONDS=${WARMUP_SECONDS} rounds=${ROUNDS} backends=${backends.join(',')} submitters=${submitters.join(',')}`);
  const started = performance.now();
  const cells: Cell[] = [];
  let failed = false;
  try {
    for (const backend of backends) {
      const url = backend === 'mem' ? 'mem://bench-db' : `file:${await tempDir('txnwal-bench-db-')}`;
      try {
        for (const n of submitters) {
          const base: Run[] = [];
          const front: Run[] = [];
          for (let round = 0; round < ROUNDS; round++) {
            base.push(await baselineRound(url, n, round));
            front.push(await dbRound(url, n, round));
            const [b, d] = [base.at(-1)!, front.at(-1)!];
            log(`  [${backend}] ${fmtInt(n)} submitters, round ${round + 1}: baseline ${fmtRate(b.writes / b.seconds)}/s, db.write ${fmtRate(d.writes / d.seconds)}/s`);
          }
          const cell = { backend, submitters: n, baseline: merge(base), db: merge(front) };
          cells.push(cell);
          log(
            `  [${backend}] ${fmtInt(n)} submitters: baseline ${fmtRate(cell.baseline.writes / cell.baseline.seconds)}/s, ` +
              `db.write ${fmtRate(cell.db.writes / cell.db.seconds)}/s (read back OK)`,
          );
        }
      } catch (err) {
        failed = true;
        log(`  [${backend}] FAILED: ${(err as Error).stack ?? String(err)}`);
      }
    }
  } finally {
    await removeTempDirs();
  }
  log(`\nResults (total ${fmtMs(performance.now() - started)})`);
  log(
    renderTable(
      ['backend', 'submitters', 'GroupCommitter/s', 'db.write/s', 'db/base', 'p50 base', 'p50 db', 'p99 base', 'p99 db', 'p50 db/base'],
      cells.map((c) => {
        const b = c.baseline.writes / c.baseline.seconds;
        const d = c.db.writes / c.db.seconds;
        const pb = quantile(c.baseline.latencies, 0.5);
        const pd = quantile(c.db.latencies, 0.5);
        return [
          c.backend,
          fmtInt(c.submitters),
          fmtRate(b),
          fmtRate(d),
          fmtRatio(d / b),
          fmtLatency(pb),
          fmtLatency(pd),
          fmtLatency(quantile(c.baseline.latencies, 0.99)),
          fmtLatency(quantile(c.db.latencies, 0.99)),
          fmtRatio(pd / pb),
        ];
      }),
    ),
  );
  log('   single-row writes, ack after apply; db/base = db.write/s ÷ GroupCommitter/s (target ≥ 0.9).');
  return failed ? 1 : 0;
}

await runBench(main);
