/**
 * Group commit benchmark: `npx tsx bench/coord.ts [--backends mem,file] [--submitters 1,10,100,1000]`.
 *
 * Single-row blind writes through a {@link GroupCommitter} (LogicalClock oracle on the
 * wall clock, ack after apply, compactTo every 100 group commits), with 1, 10, 100 and
 * 1,000 concurrent submitters, each submitting its next write as soon as the last one
 * is acknowledged. All writes go to ONE registered collection (blind writes share the
 * group's lock, so they never wait for each other). Measured on `mem://` and on
 * `file:<tmp>` (SQLite consensus + file blob):
 * - writes/s, and its ratio to the raw `Consensus.compareAndSet` rate of the same
 *   backend measured in the same run (bench/support.ts): a group commit costs a few
 *   CaS whatever its size, so with many submitters the ratio should be far above 1;
 * - group commits/s and rows per group commit;
 * - p50 / p99 acknowledgement latency (submit → promise resolved).
 * After each cell the data shard is read back: it must hold every acknowledged row once.
 *
 * Note: timestamps are wall-clock milliseconds, and a group commit waits while the
 * oracle is ahead of the clock, so group commits are capped near 1,000/s per timeline
 * (as in the reference system); more throughput comes from bigger groups.
 *
 * Profiling: TXNWAL_BENCH_CPU_PROF=<dir> writes a CPU profile of each cell's measured
 * window (bench/support.ts `profiled`); summarize with `npx tsx bench/profile-summary.ts <file>`.
 *
 * Settings (env): TXNWAL_BENCH_SECONDS (2, measured seconds per cell and for the CaS
 * baseline), TXNWAL_BENCH_WARMUP_SECONDS (0.5 per cell).
 */
import { performance } from 'node:perf_hooks';
import { GroupCommitter, LogicalClock } from '../src/coord/index.js';
import { Codecs, PersistClient, TxnsHandle, newShardId, openLocation, type Location } from '../src/index.js';
import {
  UsageError,
  argChoices,
  argList,
  consensusCasRate,
  cpuUsSince,
  envNumber,
  fmtInt,
  fmtLatency,
  fmtMs,
  fmtRate,
  fmtRatio,
  log,
  machineSummary,
  profiled,
  quantile,
  removeTempDirs,
  renderTable,
  runBench,
  tempDir,
  type RateResult,
} from './support.js';


const SECONDS = envNumber('TXNWAL_BENCH_SECONDS', 2);
const WARMUP_SECONDS = envNumber('TXNWAL_BENCH_WARMUP_SECONDS', 0.5);
const BACKENDS = ['mem', 'file'] as const;
type Backend = (typeof BACKENDS)[number];
const DEFAULT_SUBMITTERS = [1, 10, 100, 1000];
const COMPACT_EVERY = 100;
const CODECS = { key: Codecs.string, val: Codecs.unit } as const;

function parseArgs(): { backends: Backend[]; submitters: number[] } {
  const argv = process.argv.slice(2);
  const backends = argChoices('backends', BACKENDS);
  const submitters = (argList(argv, 'submitters') ?? DEFAULT_SUBMITTERS.map(String)).map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--submitters: ${JSON.stringify(s)} is not a positive integer`);
    return n;
  });
  return { backends, submitters };
}

interface CellResult {
  backend: Backend;
  submitters: number;
  cas: RateResult;
  writes: number;
  seconds: number;
  groupCommits: number;
  /** Acknowledgement latencies in ms, ascending. */
  latencies: number[];
  /** Process CPU µs (all threads) spent in the measured window. */
  cpuUs: number;
}

/** `submitters` loops of submit → await ack for `seconds`; returns the acks and latencies of that window. */
async function drive(
  gc: GroupCommitter<string, null>,
  dataId: string,
  submitters: number,
  seconds: number,
  keyPrefix: string,
): Promise<{ writes: number; seconds: number; latencies: number[]; cpuUs: number }> {
  const latencies: number[] = [];
  const start = performance.now();
  const cpu = process.cpuUsage();
  const deadline = start + seconds * 1000;
  let writes = 0;
  await Promise.all(
    Array.from({ length: submitters }, async (_, s) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const t0 = performance.now();
        await gc.submitWrite({ [dataId]: [[`${keyPrefix}${s}.${i}`, null, 1]] });
        latencies.push(performance.now() - t0);
        writes++;
      }
    }),
  );
  return { writes, seconds: (performance.now() - start) / 1000, latencies, cpuUs: cpuUsSince(cpu) };
}

async function benchCell(backend: Backend, location: Location, cas: RateResult, submitters: number): Promise<CellResult> {
  const client = await PersistClient.open(location);
  try {
    const txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs: CODECS });
    const oracle = new LogicalClock();
    const gc = await GroupCommitter.open(txns, oracle, { ack: 'apply', compactEvery: COMPACT_EVERY });
    const dataId = newShardId();
    await gc.register([await client.openWriter(dataId, CODECS, { purpose: 'bench data' })]);

    const warm = await drive(gc, dataId, submitters, WARMUP_SECONDS, 'w');
    const commitsBefore = gc.stats.groupCommits;
    const run = await profiled(`coord-${backend}-${submitters}`, () => drive(gc, dataId, submitters, SECONDS, 'k'));
    const groupCommits = gc.stats.groupCommits - commitsBefore;
    await gc.close();

    // Every acknowledged row, exactly once (ack is after apply: the shard holds them all).
    const lastTs = await oracle.readTs();
    const reader = await client.openLeasedReader(dataId, CODECS, { purpose: 'bench verify' });
    try {
      const rows = await reader.snapshotAndFetch(lastTs);
      const total = rows.reduce((n, r) => n + r[3], 0);
      const expected = warm.writes + run.writes;
      if (rows.length !== expected || total !== expected) {
        throw new Error(`data shard holds ${rows.length} rows (diff sum ${total}); ${expected} were acknowledged`);
      }
    } finally {
      await reader.expire();
    }
    await txns.close();
    await oracle.close();
    const latencies = run.latencies.sort((a, b) => a - b);
    log(
      `  [${backend}] ${fmtInt(submitters)} submitters: ${fmtInt(run.writes)} writes in ${run.seconds.toFixed(2)} s = ` +
        `${fmtRate(run.writes / run.seconds)}/s, ${fmtInt(groupCommits)} group commits, p50 ${fmtLatency(quantile(latencies, 0.5))} ` +
        `(after ${fmtInt(warm.writes)} warm-up writes; read back OK)`,
    );
    return { backend, submitters, cas, writes: run.writes, seconds: run.seconds, groupCommits, latencies, cpuUs: run.cpuUs };
  } finally {
    await client.close();
  }
}

async function benchBackend(backend: Backend, submitters: number[], out: CellResult[]): Promise<void> {
  const url = backend === 'mem' ? 'mem://' : `file:${await tempDir('txnwal-bench-coord-')}`;
  const location = await openLocation(url);
  try {
    const cas = await consensusCasRate(location.consensus, SECONDS);
    log(`  [${backend}] raw consensus CaS: ${fmtInt(cas.ops)} in ${cas.seconds.toFixed(2)} s = ${fmtRate(cas.perSecond)}/s`);
    for (const n of submitters) out.push(await benchCell(backend, location, cas, n));
  } finally {
    await location.close();
  }
}

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    log('usage: npx tsx bench/coord.ts [--backends mem,file] [--submitters 1,10,100,1000]');
    log('env: TXNWAL_BENCH_SECONDS (2), TXNWAL_BENCH_WARMUP_SECONDS (0.5)');
    return 0;
  }
  const { backends, submitters } = parseArgs();
  log('txnwal group commit benchmark');
  log(`  ${machineSummary()}`);
  log(`  TXNWAL_BENCH_SECONDS=${SECONDS} TXNWAL_BENCH_WARMUP_SECONDS=${WARMUP_SECONDS} backends=${backends.join(',')} submitters=${submitters.join(',')}`);
  const started = performance.now();
  const results: CellResult[] = [];
  let failed = false;
  try {
    for (const backend of backends) {
      try {
        await benchBackend(backend, submitters, results);
      } catch (err) {
        failed = true;
        log(`  [${backend}] FAILED: ${(err as Error).stack ?? String(err)}`);
      }
    }
  } finally {
    await removeTempDirs();
  }

  log(`\nResults (total ${fmtMs(performance.now() - started)})`);
  log('\nsingle-row writes through group commit (one collection, ack after apply)');
  log(
    renderTable(
      ['backend', 'submitters', 'CaS/s', 'writes/s', 'writes/CaS', 'commits/s', 'rows/commit', 'p50 ack', 'p99 ack', 'CPU/write', 'CPU/commit', 'writes'],
      results.map((r) => {
        const rate = r.writes / r.seconds;
        return [
          r.backend,
          fmtInt(r.submitters),
          fmtRate(r.cas.perSecond),
          fmtRate(rate),
          fmtRatio(rate / r.cas.perSecond),
          fmtRate(r.groupCommits / r.seconds),
          (r.writes / Math.max(1, r.groupCommits)).toFixed(1),
          fmtLatency(quantile(r.latencies, 0.5)),
          fmtLatency(quantile(r.latencies, 0.99)),
          `${fmtInt(r.cpuUs / r.writes)} us`,
          `${fmtInt(r.cpuUs / Math.max(1, r.groupCommits))} us`,
          fmtInt(r.writes),
        ];
      }),
    ),
  );
  log(`   CaS/s: raw Consensus.compareAndSet on one key, 200-byte payload, ${SECONDS} s, same backend, same run.`);
  log(`   writes/s: acknowledged single-row writes, ${SECONDS} s after ${WARMUP_SECONDS} s warm-up; writes/CaS = writes/s ÷ CaS/s.`);
  log('   commits/s: group commits (one txns commit + apply each); p50/p99 ack: submit → acknowledged (after apply).');
  log('   CPU/write, CPU/commit: process CPU time (user + system, all threads) per acknowledged write and per group commit.');
  return failed ? 1 : 0;
}

await runBench(main);
