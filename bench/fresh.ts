/**
 * Cross-process freshness: `npm run bench:fresh` (about 90 s; `--backends file,postgres`).
 *
 * A writer process commits single-update transactions through `txnSink` (ack after
 * apply, the default) at one commit every 1 s, 100 ms and 10 ms; a reader process
 * follows the data shard with `dataSubscribe$` (default config: the wake-up channel
 * plus the `listenPoll` fallback). Per transaction: latency = the moment the reader
 * received the update − the moment the writer got its ack (one machine, one clock;
 * negative when the reader was first). Reported: p50 / p99 / max per rate, on
 * `file:` and on Postgres, next to the baseline measured in the same run: writer and
 * reader in ONE process on `file:` (woken in-process, no channel needed).
 * Against the baseline: `p50 − in-process p50`, what a second process adds at that
 * rate (a difference, not a ratio: the in-process p50 is about zero, even negative).
 *
 * `reader loop stall` = the longest the reader's event loop was blocked during the
 * rate (monitorEventLoopDelay): better-sqlite3 is synchronous, so the reader's own
 * writes (since downgrades, lease heartbeats) block its loop while they wait for the
 * writer's lock and for fsync; a long stall shows up as latency whatever woke it.
 *
 * Then, with nothing written (after TXNWAL_BENCH_FRESH_SETTLE_S = 3 s for the
 * maintenance the last writes started), each reader's CPU over TXNWAL_BENCH_FRESH_IDLE_S
 * seconds (process.cpuUsage, user + system, as % of one core): the cost of an idle,
 * live subscription (the fallback poll while the channel is up is one Consensus read
 * per second per waiting shard).
 *
 * Last, NOTIFY's cost on the write path (Postgres): sequential compare-and-sets with
 * and without the `pg_notify` in the statement (PostgresConsensus option `notify`),
 * with one process LISTENing, alternating A B A B rounds of
 * TXNWAL_BENCH_FRESH_CAS_S seconds; CaS/s and the ratio with ÷ without.
 *
 * Settings (env): TXNWAL_BENCH_FRESH_SAMPLES ("20,30,50": samples at 1 s, 100 ms,
 * 10 ms), TXNWAL_BENCH_FRESH_IDLE_S (10), TXNWAL_BENCH_FRESH_CAS_S (1.5).
 * TXNWAL_BENCH_FRESH_PROF_DIR (unset: a directory for a CPU profile of each child).
 * Postgres: TXNWAL_TEST_PG_URL, or an embedded server started (and stopped) here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Subject, type Subscription } from 'rxjs';
import { PostgresConsensus } from '../src/location/postgres-consensus.js';
import { PostgresStateChanges } from '../src/location/postgres-state-changes.js';
import { Codecs, PersistClient, TxnsHandle, dataSubscribe$, newShardId, txnSink, type ShardId } from '../src/index.js';
import {
  argChoices,
  envNumber,
  fmtRatio,
  log,
  machineSummary,
  quantile,
  removeTempDirs,
  renderTable,
  runBench,
  startBenchPostgres,
  stopBenchPostgres,
  tempDir,
  printHelp,
} from './support.js';

const CODECS = { key: Codecs.string, val: Codecs.unit };
const INTERVALS_MS = [1000, 100, 10];
const SAMPLES = (process.env.TXNWAL_BENCH_FRESH_SAMPLES ?? '20,30,50').split(',').map(Number);
const IDLE_S = envNumber('TXNWAL_BENCH_FRESH_IDLE_S', 10);
const SETTLE_S = Number(process.env.TXNWAL_BENCH_FRESH_SETTLE_S ?? 3);
const CAS_S = envNumber('TXNWAL_BENCH_FRESH_CAS_S', 1.5);
const WARMUP = 20;
const BACKENDS = ['file', 'postgres'] as const;

/** Milliseconds since the epoch with sub-millisecond precision, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

// ---------- the child: writer, reader, or both in one process ----------

interface Writer {
  /** Commits `count` transactions `intervalMs` apart, keys `<first>…`; the ack times. */
  run(intervalMs: number, count: number, first: number): Promise<number[]>;
}

async function openWriter(client: PersistClient, txnsId: ShardId, dataId: ShardId): Promise<Writer> {
  const txns = await TxnsHandle.open(client, { txnsId, codecs: CODECS });
  const reg = await txns.register(1, [await client.openWriter(dataId, CODECS)]);
  if (!reg.ok) throw new Error(`register at 1: taken, current ${reg.current}`);
  const input = new Subject<Array<readonly [ShardId, string, null, number]>>();
  let onAck: (() => void) | undefined;
  input.pipe(txnSink(txns, { firstTs: 2 })).subscribe({ next: () => onAck?.(), error: (err) => fail(err) });
  return {
    async run(intervalMs, count, first) {
      const acks: number[] = [];
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        await new Promise<void>((resolve) => {
          onAck = () => {
            acks.push(now());
            resolve();
          };
          input.next([[dataId, String(first + i), null, 1]]);
        });
        const wait = intervalMs - (performance.now() - started);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      return acks;
    },
  };
}

/** Subscribes and records when each key arrives; resolves once caught up. */
async function openReader(client: PersistClient, txnsId: ShardId, dataId: ShardId) {
  const arrivals = new Map<string, number>();
  let sub!: Subscription;
  await new Promise<void>((resolve) => {
    sub = dataSubscribe$(client, txnsId, dataId, { codecs: CODECS, asOf: 1 }).subscribe({
      next: (ev) => {
        const t = now();
        if (ev.kind === 'updates') {
          for (const [k] of ev.updates) if (!arrivals.has(k)) arrivals.set(k, t);
        } else if (ev.upper > 1) resolve();
      },
      error: (err) => fail(err),
    });
  });
  return { arrivals, sub };
}

function fail(err: unknown): never {
  process.stderr.write(`fresh child failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}

/** Runs commands from stdin: `run <interval> <count> <first>`, `arrivals`, `idle <s>`, `exit`. */
async function child(role: 'writer' | 'reader' | 'both', url: string, txnsId: ShardId, dataId: ShardId): Promise<void> {
  const client = await PersistClient.open(url);
  const writer = role === 'reader' ? undefined : await openWriter(client, txnsId, dataId);
  const reader = role === 'writer' ? undefined : await openReader(client, txnsId, dataId);
  const reply = (v: unknown) => process.stdout.write(JSON.stringify(v) + '\n');
  // How long the event loop was blocked (synchronous SQLite calls wait for locks and fsync).
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  reply('ready');
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [cmd, ...args] = line.split(' ');
    if (cmd === 'run') reply(await writer!.run(Number(args[0]), Number(args[1]), Number(args[2])));
    else if (cmd === 'arrivals') reply(Object.fromEntries(reader!.arrivals));
    else if (cmd === 'stall') {
      reply(loop.max / 1e6);
      loop.reset();
    }
    else if (cmd === 'idle') {
      // The stall monitor's 1 ms timer alone costs ~2% of a core: not the reader's.
      loop.disable();
      const cpu = process.cpuUsage();
      const wall = performance.now();
      await new Promise((r) => setTimeout(r, Number(args[0]) * 1000));
      const used = process.cpuUsage(cpu);
      reply(((used.user + used.system) / 1000 / (performance.now() - wall)) * 100);
    } else if (cmd === 'exit') break;
  }
  reader?.sub.unsubscribe();
  await client.close();
  process.exit(0);
}

// ---------- the parent ----------

interface Child {
  ask(cmd: string): Promise<unknown>;
  process: ChildProcess;
}

async function startChild(role: string, url: string, txnsId: ShardId, dataId: ShardId): Promise<Child> {
  // TXNWAL_BENCH_FRESH_PROF_DIR: a V8 CPU profile of every child, to find what stalls a reader.
  const profDir = process.env.TXNWAL_BENCH_FRESH_PROF_DIR;
  const prof = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}/${role}`] : [];
  const proc = spawn(process.execPath, [...prof, '--import', 'tsx', fileURLToPath(import.meta.url), 'child', role, url, txnsId, dataId], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const queued: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else queued.push(line);
  });
  const exited = new Promise<never>((_, reject) =>
    proc.once('exit', (code) => reject(new Error(`${role} child exited with code ${code}`))),
  );
  const next = () =>
    Promise.race([queued.length > 0 ? Promise.resolve(queued.shift()!) : new Promise<string>((r) => waiting.push(r)), exited]);
  await next(); // ready
  return {
    process: proc,
    async ask(cmd) {
      proc.stdin!.write(cmd + '\n');
      return JSON.parse(await next()) as unknown;
    },
  };
}

interface RateRow {
  setup: string;
  intervalMs: number;
  latencies: number[];
  /** The longest the reader's event loop was blocked during the rate. */
  stallMs: number;
}

/** Runs every rate on one setup; returns the rows and the child(ren) whose idle CPU is measured later. */
async function measure(setup: string, url: string, inProcess: boolean): Promise<{ rows: RateRow[]; readers: Child[]; done: () => void }> {
  const [txnsId, dataId] = [newShardId(), newShardId()];
  const writer = await startChild(inProcess ? 'both' : 'writer', url, txnsId, dataId);
  const reader = inProcess ? writer : await startChild('reader', url, txnsId, dataId);
  let first = 0;
  const runRate = async (intervalMs: number, count: number) => {
    await reader.ask('stall');
    const acks = (await writer.ask(`run ${intervalMs} ${count} ${first}`)) as number[];
    const keys = acks.map((_, i) => String(first + i));
    first += count;
    // The last arrival may trail its ack: ask until every key is there.
    for (;;) {
      const arrivals = (await reader.ask('arrivals')) as Record<string, number>;
      if (keys.every((k) => k in arrivals)) {
        const stallMs = (await reader.ask('stall')) as number;
        return { latencies: keys.map((k, i) => arrivals[k]! - acks[i]!).sort((a, b) => a - b), stallMs };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await runRate(10, WARMUP);
  const rows: RateRow[] = [];
  for (const [i, intervalMs] of INTERVALS_MS.entries()) {
    rows.push({ setup, intervalMs, ...(await runRate(intervalMs, SAMPLES[i] ?? 20)) });
  }
  const stop = (c: Child) => void c.process.stdin!.write('exit\n');
  if (!inProcess) stop(writer);
  return { rows, readers: [reader], done: () => stop(reader) };
}

/** Sequential CaS/s with and without NOTIFY in the statement, alternating rounds, one listener. */
async function notifyCost(pgUrl: string): Promise<string[][]> {
  const listener = await PostgresStateChanges.open(pgUrl);
  const stores = { with: await PostgresConsensus.open(pgUrl), without: await PostgresConsensus.open(pgUrl, { notify: false }) };
  const totals = { with: { ops: 0, ms: 0 }, without: { ops: 0, ms: 0 } };
  const data = new Uint8Array(64);
  try {
    for (const round of ['with', 'without', 'with', 'without', 'without', 'with'] as const) {
      const key = `bench-notify-${newShardId()}`;
      const store = stores[round];
      const start = performance.now();
      let seqno = 0;
      while (performance.now() - start < CAS_S * 1000) {
        const r = await store.compareAndSet(key, seqno === 0 ? undefined : seqno, { seqno: seqno + 1, data });
        if (r !== 'committed') throw new Error('bench CaS mismatch');
        seqno++;
      }
      totals[round].ops += seqno;
      totals[round].ms += performance.now() - start;
    }
  } finally {
    await Promise.all([stores.with.close(), stores.without.close(), listener.close()]);
  }
  const rate = (t: { ops: number; ms: number }) => (t.ops / t.ms) * 1000;
  return [
    ['CaS without NOTIFY (baseline)', rate(totals.without).toFixed(0), '1.00'],
    ['CaS with NOTIFY, one listener', rate(totals.with).toFixed(0), fmtRatio(rate(totals.with) / rate(totals.without))],
  ];
}

async function main(): Promise<number> {
  if (printHelp('npm run bench:fresh [-- --backends file,postgres]   (env: see the top of bench/fresh.ts: TXNWAL_BENCH_FRESH_SAMPLES, _IDLE_S, _CAS_S, _PROF_DIR, TXNWAL_TEST_PG_URL)')) return 0;
  const backends = argChoices('backends', BACKENDS);
  log(`bench:fresh — writer ack → reader delivery, ${machineSummary()}`);
  const results: RateRow[] = [];
  const readers: Array<{ setup: string; child: Child }> = [];
  const done: Array<() => void> = [];
  const add = (setup: string, m: Awaited<ReturnType<typeof measure>>) => {
    results.push(...m.rows);
    for (const r of m.readers) readers.push({ setup, child: r });
    done.push(m.done);
  };
  add('file:, one process (baseline)', await measure('file:, one process (baseline)', `file:${await tempDir('txnwal-fresh-')}`, true));
  if (backends.includes('file')) add('file:, two processes', await measure('file:, two processes', `file:${await tempDir('txnwal-fresh-')}`, false));
  let pg: Awaited<ReturnType<typeof startBenchPostgres>> | undefined;
  let notifyRows: string[][] = [];
  try {
    if (backends.includes('postgres')) {
      pg = await startBenchPostgres();
      const u = new URL(pg.url);
      u.searchParams.set('blob', `file:${await tempDir('txnwal-fresh-blob-')}`);
      add('Postgres, two processes', await measure('Postgres, two processes', u.toString(), false));
    }
    log(`\nreader idle CPU over ${IDLE_S} s, all readers at once, nothing written (after ${SETTLE_S} s to settle)`);
    // Background maintenance the last writes started (compaction, GC) is not idling.
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    const idle = await Promise.all(readers.map((r) => r.child.ask(`idle ${IDLE_S}`) as Promise<number>));
    done.forEach((d) => d());
    log(renderTable(['reader', '% of one core'], readers.map((r, i) => [r.setup, idle[i]!.toFixed(2)])));
    if (pg) notifyRows = await notifyCost(pg.url);
  } finally {
    if (pg) log(await stopBenchPostgres(pg));
    await removeTempDirs();
  }
  const baseline = new Map(results.filter((r) => r.setup.endsWith('(baseline)')).map((r) => [r.intervalMs, r]));
  const ms = (x: number) => x.toFixed(2);
  log('\nlatency from the writer\'s ack to the reader\'s delivery (ms; negative: the reader had it first)');
  log(
    renderTable(
      ['setup', 'commit every', 'samples', 'p50', 'p99', 'max', 'p50 − in-process p50', 'reader loop stall'],
      results.map((r) => {
        const base = baseline.get(r.intervalMs)!;
        return [
          r.setup,
          `${r.intervalMs} ms`,
          String(r.latencies.length),
          ms(quantile(r.latencies, 0.5)),
          ms(quantile(r.latencies, 0.99)),
          ms(r.latencies.at(-1)!),
          ms(quantile(r.latencies, 0.5) - quantile(base.latencies, 0.5)),
          ms(r.stallMs),
        ];
      }),
    ),
  );
  if (notifyRows.length > 0) {
    log(`\nNOTIFY on the write path: sequential compare-and-sets, ${CAS_S} s × 3 rounds each, alternating`);
    log(renderTable(['statement', 'CaS/s', '÷ without'], notifyRows));
  }
  return 0;
}

if (process.argv[2] === 'child') {
  const [role, url, txnsId, dataId] = process.argv.slice(3) as ['writer' | 'reader' | 'both', string, ShardId, ShardId];
  await child(role, url, txnsId, dataId);
} else {
  await runBench(main);
}
