/**
 * txn-wal benchmark: `npm run bench:txn` (or `npx tsx bench/txn.ts --parts tps,latency,rss`).
 *
 * Three measurements, each compared with a baseline measured in the same run:
 *
 *  1. tps: single-row transactions, commit + apply, sequential, on `mem://` and on
 *     `file:<tmp>` (SQLite consensus + file blob). One data shard registered in a
 *     fresh txns shard; each transaction writes one row, carries the previous apply's
 *     Tidy, commits at the next timestamp and applies; `compactTo(ts)` every 100
 *     commits, as a controller would. Reported as transactions/s and as a ratio to
 *     the raw `Consensus.compareAndSet` rate of the same backend (the shared
 *     baseline of bench/support.ts), with the state writes (CaS) each txn costs.
 *  2. latency: commit + apply latency of one row to ONE shard while 1, 100 and
 *     10,000 data shards are registered (mem://, registered in chunks of 500 at
 *     successive timestamps, nothing forgotten). A commit is one txns write, and it
 *     advances the logical upper of every registered shard, so latency(10,000) /
 *     latency(1) should stay near 1. Each configuration runs in its own child process
 *     (`--latency-child`, on its own `mem://`), so its GC and maintenance stay its
 *     own; all are set up first, then driven in turns from the parent, interleaved:
 *     3 runs (TXNWAL_BENCH_LATENCY_RUNS) of 40 rounds, each round one slice of
 *     commits per configuration in alternating order, so load from other processes
 *     falls on all of them alike. Each run reports its own p50 and mean ratio to the
 *     1-shard configuration. Registration stops early, and says so, past its budget.
 *  3. rss: peak RSS while ONE transaction of TXNWAL_BENCH_TXN_BYTES (1 GiB) of
 *     key+value bytes (rows of 1 KiB) is written, committed and applied on
 *     `file:<tmp>`. Txn spills its buffered writes to Blob past `spillThresholdBytes`
 *     (4 MiB), so memory should stay bounded. Runs the COMPILED package: src/ and this
 *     file are compiled with tsconfig.build.json's options into a temp dir and run by
 *     plain `node --expose-gc` (`--rss-child`), so neither tsx nor the earlier parts
 *     count in the RSS. The peak per phase is the kernel's high-water mark (VmHWM,
 *     reset per phase through /proc/self/clear_refs; elsewhere a sampling worker
 *     thread). Progress lines say where the RSS is (V8 heap, ArrayBuffers, node
 *     binary, malloc heap, anonymous mappings). The background maintenance
 *     (compaction) the apply triggers is flushed afterwards and reported as a separate
 *     phase. TXNWAL_BENCH_RSS_REUSE_VALUE=1 writes every value from one reused array;
 *     TXNWAL_BENCH_RSS_NODE_FLAGS adds node flags to the child (e.g. `--heap-prof`).
 *     The baseline, in a second child of the same run (`--rss-floor-child`): the same
 *     writer loop copying each row into one buffer of the spill threshold, no Txn —
 *     what Node and the writer's own garbage cost; the ratio peak ÷ floor is the
 *     figure that survives another Node version or machine.
 *
 * Profiling: TXNWAL_BENCH_CPU_PROF=<dir> writes a CPU profile of each measured tps loop
 * and of one extra latency slice per shard count (bench/support.ts `profiled`);
 * summarize with `npx tsx bench/profile-summary.ts <file>`.
 *
 * Settings (env): TXNWAL_BENCH_SECONDS (3, part 1 per backend), TXNWAL_BENCH_LATENCY_SECONDS
 * (2, part 2 per shard count per run), TXNWAL_BENCH_LATENCY_RUNS (3), TXNWAL_BENCH_SHARDS
 * (10000, the largest shard count), TXNWAL_BENCH_REGISTER_BUDGET_S (60), TXNWAL_BENCH_TXN_BYTES
 * (1GiB; plain bytes or with a KiB/MiB/GiB suffix), TXNWAL_BENCH_ROW_BYTES (1024),
 * TXNWAL_BENCH_RSS_REUSE_VALUE (0), TXNWAL_BENCH_RSS_NODE_FLAGS ('').
 * Arguments: --parts tps,latency,rss (default: all three); --backends mem,file (part 1; default both).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { on } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { cp, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  Codecs,
  PersistClient,
  Tidy,
  TxnsHandle,
  newShardId,
  openLocation,
  type Blob,
  type Consensus,
  type Location,
  type ShardId,
  type WriteHandle,
} from '../src/index.js';
import type { CaSResult, SeqNo, VersionedData } from '../src/backend.js';
import {
  UsageError,
  argChoices,
  consensusCasRate,
  envNumber,
  fmtBytes,
  fmtInt,
  fmtLatency,
  fmtMs,
  fmtRate,
  fmtRatio,
  log,
  machineSummary,
  mean,
  profiled,
  quantile,
  removeTempDirs,
  renderTable,
  runBench,
  runFor,
  tempDir,
  timed,
  type RateResult,
} from './support.js';


const PARTS = ['tps', 'latency', 'rss'] as const;
const TPS_BACKENDS = ['mem', 'file'] as const;

const SECONDS = envNumber('TXNWAL_BENCH_SECONDS', 3);
const WARMUP_SECONDS = Math.min(0.5, SECONDS / 4);
const LATENCY_SECONDS = envNumber('TXNWAL_BENCH_LATENCY_SECONDS', 2);
/** Part 2: independent runs, each giving its own latency ratio. */
const LATENCY_RUNS = Math.max(1, Math.round(envNumber('TXNWAL_BENCH_LATENCY_RUNS', 3)));
/** Part 2: slices per configuration per run (interleaved with the other configurations). */
const LATENCY_SLICES = 40;
const MAX_SHARDS = Math.round(envNumber('TXNWAL_BENCH_SHARDS', 10_000));
const REGISTER_BUDGET_S = envNumber('TXNWAL_BENCH_REGISTER_BUDGET_S', 60);
const TXN_BYTES = envBytes('TXNWAL_BENCH_TXN_BYTES', 2 ** 30);
const ROW_BYTES = Math.round(envNumber('TXNWAL_BENCH_ROW_BYTES', 1024));
/**
 * Part 3: write every row's value from one reused array (TXNWAL_BENCH_RSS_REUSE_VALUE=1)
 * instead of a fresh one per row, to tell the library's memory from the garbage a
 * writer allocating per row leaves for V8 to collect.
 */
const REUSE_VALUE = process.env.TXNWAL_BENCH_RSS_REUSE_VALUE === '1';
/** Shards per register call in part 2. */
const REGISTER_CHUNK = 500;
/** `compactTo` cadence, in commits. */
const COMPACT_EVERY = 100;
/** RSS sampling interval of part 3. */
const SAMPLE_MS = 50;

const CHILD_FLAG = '--rss-child';
/** Argument of the RSS floor child: the same writer loop without txnwal (see {@link rssFloorChild}). */
const FLOOR_CHILD_FLAG = '--rss-floor-child';
const LATENCY_CHILD_FLAG = '--latency-child';
const RESULT_MARKER = '@@txn-bench-result ';
/**
 * Extra node flags for the RSS child, from TXNWAL_BENCH_RSS_NODE_FLAGS (space-separated),
 * e.g. `--heap-prof --heap-prof-dir=/tmp/prof` to see what holds the memory.
 */
const RSS_CHILD_NODE_FLAGS = (process.env.TXNWAL_BENCH_RSS_NODE_FLAGS ?? '').split(/\s+/).filter((f) => f !== '');

/** Bytes from the environment: `1073741824`, `1_073_741_824`, `512MiB`, `1GiB`, `64KiB`. */
function envBytes(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const m = /^\s*([\d_.]+)\s*(B|KiB|MiB|GiB|K|M|G)?\s*$/i.exec(raw);
  const unit = (m?.[2] ?? 'B').toUpperCase()[0]!;
  const n = m ? Number(m[1]!.replace(/_/g, '')) * ({ B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 } as Record<string, number>)[unit]! : NaN;
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${name}=${JSON.stringify(raw)}: expected a positive size, e.g. 1073741824 or 1GiB`);
  }
  return Math.round(n);
}

// ---------- storage counters ----------

/** Counts of the storage writes made through a {@link countingLocation}. */
interface StorageCounts {
  cas: number;
  blobSet: number;
  blobSetBytes: number;
}

function zeroCounts(): StorageCounts {
  return { cas: 0, blobSet: 0, blobSetBytes: 0 };
}

function diffCounts(a: StorageCounts, b: StorageCounts): StorageCounts {
  const out = zeroCounts();
  for (const k of Object.keys(out) as (keyof StorageCounts)[]) out[k] = a[k] - b[k];
  return out;
}

/**
 * The location with every Consensus compare-and-set and Blob set counted (one
 * increment and a delegation: noise next to a state write). Closing it closes the
 * inner location.
 */
function countingLocation(inner: Location): { location: Location; counts: StorageCounts } {
  const counts = zeroCounts();
  const c = inner.consensus;
  const b = inner.blob;
  const consensus: Consensus = {
    head: (key) => c.head(key),
    compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult> {
      counts.cas++;
      return c.compareAndSet(key, expected, next);
    },
    scan: (key, from, limit) => c.scan(key, from, limit),
    truncate: (key, seqno) => c.truncate(key, seqno),
    listKeys: () => c.listKeys(),
    close: () => c.close(),
  };
  const blob: Blob = {
    get: (key) => b.get(key),
    set: (key, value) => {
      counts.blobSet++;
      counts.blobSetBytes += value.byteLength;
      return b.set(key, value);
    },
    delete: (key) => b.delete(key),
    listKeysAndMetadata: (prefix, fn) => b.listKeysAndMetadata(prefix, fn),
    restore: (key) => b.restore(key),
    close: () => b.close(),
  };
  return { location: { blob, consensus, url: inner.url, close: () => inner.close() }, counts };
}

// ---------- the transaction loop ----------

const UNIT_CODECS = { key: Codecs.string, val: Codecs.unit };

/**
 * One data shard in a fresh txns shard, and the intended commit loop: write one row,
 * carry the previous apply's tidy, commit at the next timestamp, apply.
 */
class SingleRowCommitter {
  /** Next commit timestamp. */
  ts: number;
  commits = 0;
  private prevTidy = new Tidy();

  private constructor(
    readonly txns: TxnsHandle<string, null>,
    readonly dataId: ShardId,
    firstTs: number,
  ) {
    this.ts = firstTs;
  }

  /** Opens a txns handle on a fresh txns shard with `dataId` (a fresh shard by default) registered at 1. */
  static async open(client: PersistClient, dataId: ShardId = newShardId()): Promise<SingleRowCommitter> {
    const txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs: UNIT_CODECS });
    const writer = await client.openWriter(dataId, UNIT_CODECS, { purpose: 'bench data' });
    const reg = await txns.register(1, [writer]);
    if (!reg.ok) throw new Error(`register at 1: taken, current ${reg.current}`);
    return new SingleRowCommitter(txns, dataId, 2);
  }

  static attach(txns: TxnsHandle<string, null>, dataId: ShardId, nextTs: number): SingleRowCommitter {
    return new SingleRowCommitter(txns, dataId, nextTs);
  }

  /** One transaction: commit + apply of one row. */
  async commitOne(): Promise<void> {
    const txn = this.txns.begin();
    await txn.write(this.dataId, `k${this.commits}`, null, 1);
    txn.tidy(this.prevTidy);
    const res = await txn.commitAt(this.txns, this.ts);
    if (!res.ok) throw new Error(`commit at ${this.ts}: taken, current ${res.current} (one handle should never race)`);
    this.prevTidy = await res.apply.apply(this.txns);
    this.ts++;
    this.commits++;
  }

  /**
   * `compactTo(last commit ts)` every {@link COMPACT_EVERY} commits. Returns whether
   * it ran. Not `compactTo(this.ts)`: compactTo first waits for the txns upper to
   * pass its argument (as the reference's `update_gt` does), and nothing would ever
   * write at the next timestamp while we wait.
   */
  async maybeCompact(): Promise<boolean> {
    if (this.commits % COMPACT_EVERY !== 0) return false;
    await this.txns.compactTo(this.ts - 1);
    return true;
  }

  /** Checks the data shard holds exactly one row per commit (read at the last commit). */
  async verify(client: PersistClient): Promise<void> {
    const reader = await client.openLeasedReader(this.dataId, UNIT_CODECS, { purpose: 'bench verify' });
    try {
      const rows = await reader.snapshotAndFetch(this.ts - 1);
      const total = rows.reduce((n, r) => n + r[3], 0);
      if (rows.length !== this.commits || total !== this.commits) {
        throw new Error(`data shard holds ${rows.length} rows (diff sum ${total}) after ${this.commits} commits`);
      }
    } finally {
      await reader.expire();
    }
  }
}

// ---------- part 1: transactions per second ----------

interface TpsRow {
  backend: string;
  location: string;
  cas: RateResult;
  txn: RateResult;
  compactions: number;
  /** Storage calls during the measured loop (background maintenance included). */
  counts: StorageCounts;
}

async function benchTps(backend: 'mem' | 'file'): Promise<TpsRow> {
  const url = backend === 'mem' ? 'mem://' : `file:${await tempDir('txnwal-bench-txn-file-')}`;
  const shown = backend === 'mem' ? 'mem://' : 'file:<tmp> (SQLite + files)';
  const inner = await openLocation(url);
  const { location, counts } = countingLocation(inner);
  // The client shares the location and does not close it; we do, last.
  const client = await PersistClient.open(location);
  try {
    const cas = await consensusCasRate(inner.consensus, SECONDS);
    log(`  [${backend}] raw consensus CaS: ${fmtInt(cas.ops)} in ${cas.seconds.toFixed(2)} s = ${fmtRate(cas.perSecond)}/s`);

    const c = await SingleRowCommitter.open(client);
    await runFor(WARMUP_SECONDS, async () => {
      await c.commitOne();
      await c.maybeCompact();
    });
    const warm = c.commits;
    const before = { ...counts };
    let compactions = 0;
    const txn = await profiled(`txn-tps-${backend}`, () =>
      runFor(SECONDS, async () => {
        await c.commitOne();
        if (await c.maybeCompact()) compactions++;
      }),
    );
    const used = diffCounts(counts, before);
    log(
      `  [${backend}] txn commit+apply: ${fmtInt(txn.ops)} in ${txn.seconds.toFixed(2)} s = ${fmtRate(txn.perSecond)}/s ` +
        `(after ${fmtInt(warm)} warm-up; ${compactions} compactTo; ${(used.cas / txn.ops).toFixed(2)} CaS/txn)`,
    );
    await c.verify(client);
    await c.txns.close();
    return { backend, location: shown, cas, txn, compactions, counts: used };
  } finally {
    await client.close();
    await location.close();
  }
}

// ---------- part 2: latency vs registered shards ----------

/** A throwaway commit loop, so the first shard count measured does not pay for JIT warm-up. */
async function warmUp(): Promise<void> {
  const client = await PersistClient.open('mem://');
  try {
    const c = await SingleRowCommitter.open(client);
    const r = await runFor(1, async () => {
      await c.commitOne();
      await c.maybeCompact();
    });
    log(`  warm-up: ${fmtInt(r.ops)} commits in ${r.seconds.toFixed(1)} s (not measured)`);
    await c.txns.close();
  } finally {
    await client.close();
  }
}

/** One configuration of part 2: a txns shard with `registered` data shards, commits going to one. */
interface LatencyConfig {
  asked: number;
  registered: number;
  registerMs: number;
  reduced: boolean;
  committer: SingleRowCommitter;
  client: PersistClient;
  location: Location;
  counts: StorageCounts;
  /** State compare-and-sets issued during the measured commits (maintenance included). */
  cas: number;
}

interface LatencyRow {
  asked: number;
  registered: number;
  registerMs: number;
  reduced: boolean;
  /** Sorted latencies per run. */
  runs: number[][];
  /** Storage calls per measured commit. */
  casPerCommit: number;
}

/** Registers `asked` data shards (in chunks) in a fresh txns shard on its own `mem://`, and warms its commit loop. */
async function setUpLatency(asked: number): Promise<LatencyConfig> {
  const label = `${fmtInt(asked)} shard${asked === 1 ? '' : 's'}`;
  const { location, counts } = countingLocation(await openLocation('mem://'));
  const client = await PersistClient.open(location);
  const txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs: UNIT_CODECS });
  const target = newShardId();
  let registered = 0;
  let ts = 1;
  let reduced = false;
  const progressEvery = Math.max(REGISTER_CHUNK, Math.ceil(asked / 10 / REGISTER_CHUNK) * REGISTER_CHUNK);
  const reg = await timed(async () => {
    const start = performance.now();
    while (registered < asked) {
      const n = Math.min(REGISTER_CHUNK, asked - registered);
      const ids = Array.from({ length: n }, (_, i) => (registered + i === 0 ? target : newShardId()));
      const writers: WriteHandle<string, null>[] = [];
      for (const id of ids) writers.push(await client.openWriter(id, UNIT_CODECS, { purpose: 'bench data' }));
      const res = await txns.register(ts, writers);
      if (!res.ok) throw new Error(`register at ${ts}: taken, current ${res.current}`);
      ts++;
      registered += n;
      const elapsed = (performance.now() - start) / 1000;
      if (asked > REGISTER_CHUNK && (registered % progressEvery === 0 || registered === asked)) {
        log(
          `  [${label}] registered ${fmtInt(registered)}/${fmtInt(asked)} in ${elapsed.toFixed(1)} s ` +
            `(${fmtRate(registered / elapsed)} shards/s)`,
        );
      }
      if (registered < asked && elapsed > REGISTER_BUDGET_S) {
        reduced = true;
        log(
          `  [${label}] registration passed its ${REGISTER_BUDGET_S} s budget: measuring with ` +
            `${fmtInt(registered)} shards instead of ${fmtInt(asked)}`,
        );
        break;
      }
    }
  });
  const committer = SingleRowCommitter.attach(txns, target, ts);
  await runFor(Math.min(0.5, LATENCY_SECONDS / 4), async () => {
    await committer.commitOne();
    await committer.maybeCompact();
  });
  log(`  [${label}] set up: register ${fmtMs(reg.ms)}, then ${fmtInt(committer.commits)} warm-up commits`);
  return {
    asked,
    registered,
    registerMs: reg.ms,
    reduced,
    committer,
    client,
    location,
    counts,
    cas: 0,
  };
}

/** Commits to `cfg` for `ms`, pushing each commit + apply latency to `into`. */
async function measureSlice(cfg: LatencyConfig, into: number[], ms: number): Promise<void> {
  const c = cfg.committer;
  const before = cfg.counts.cas;
  const deadline = performance.now() + ms;
  do {
    const t0 = performance.now();
    await c.commitOne();
    into.push(performance.now() - t0);
    await c.maybeCompact();
  } while (performance.now() < deadline);
  cfg.cas += cfg.counts.cas - before;
}

/** Parent → latency child. */
type LatencyRequest = { slice: number } | { profile: string; ms: number } | { finish: true };
/** Latency child → parent. */
type LatencyReply =
  | { ready: true; asked: number; registered: number; registerMs: number; reduced: boolean }
  | { latencies: number[] }
  | { finished: true; casPerCommit: number };

/**
 * The child of part 2: sets up one configuration (`--latency-child <shards>`), then
 * runs the slices of commits the parent asks for and sends their latencies back.
 */
async function latencyChild(asked: number): Promise<void> {
  const send = (m: LatencyReply) => new Promise<void>((resolve, reject) => process.send!(m, (err: Error | null) => (err ? reject(err) : resolve())));
  await warmUp();
  const cfg = await setUpLatency(asked);
  await send({ ready: true, asked, registered: cfg.registered, registerMs: cfg.registerMs, reduced: cfg.reduced });
  let commits = 0;
  for await (const [m] of on(process, 'message') as AsyncIterable<[LatencyRequest]>) {
    if ('slice' in m) {
      const latencies: number[] = [];
      await measureSlice(cfg, latencies, m.slice);
      commits += latencies.length;
      await send({ latencies });
    } else if ('profile' in m) {
      await profiled(m.profile, () => measureSlice(cfg, [], m.ms));
      await send({ latencies: [] });
    } else {
      await cfg.committer.verify(cfg.client);
      await cfg.committer.txns.close();
      await cfg.client.close();
      await cfg.location.close();
      await send({ finished: true, casPerCommit: cfg.cas / commits });
      process.disconnect();
      return;
    }
  }
}

/** One configuration's child process, driven over IPC. */
class LatencyProcess {
  private readonly replies: LatencyReply[] = [];
  private waiting: ((m: LatencyReply) => void) | undefined;
  private failure: Error | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: LatencyReply) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w(m);
      else this.replies.push(m);
    });
    child.once('exit', (code) => {
      this.failure ??= new Error(`the latency child exited with ${code}`);
      this.waiting?.({ latencies: [] });
    });
  }

  static spawn(asked: number): LatencyProcess {
    const script = fileURLToPath(import.meta.url);
    const flags = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
    const child = spawn(process.execPath, [...flags, script, LATENCY_CHILD_FLAG, String(asked)], {
      cwd: path.resolve(path.dirname(script), '..'),
      env: process.env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new LatencyProcess(child);
  }

  /** The next reply (the exit of the child is an error, unless it finished). */
  async next(): Promise<LatencyReply> {
    const m = this.replies.shift() ?? (await new Promise<LatencyReply>((resolve) => (this.waiting = resolve)));
    if (this.failure && !('finished' in m)) throw this.failure;
    return m;
  }

  async ask(req: LatencyRequest): Promise<LatencyReply> {
    if (this.failure) throw this.failure;
    this.child.send(req);
    return this.next();
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill();
  }
}

/**
 * Part 2. Each configuration lives in its own child process, so a configuration's
 * own costs stay its own (above all the GC of its heap: 10,000 registered shards are
 * ~85 MiB of it, whose collections would otherwise stall the other configurations'
 * commits as often as its own). All are set up first, then driven in turns from
 * here, interleaved: each of {@link LATENCY_RUNS} runs is {@link LATENCY_SLICES}
 * rounds, and every round gives each configuration one slice of commits (in
 * alternating order, one process running at a time), so load from other processes
 * falls on all of them alike. Each run yields its own ratio against the 1-shard
 * configuration.
 */
async function benchLatency(shardCounts: readonly number[]): Promise<LatencyRow[]> {
  const procs: LatencyProcess[] = [];
  try {
    const rows: LatencyRow[] = [];
    for (const n of shardCounts) {
      const p = LatencyProcess.spawn(n);
      procs.push(p);
      const ready = await p.next();
      if (!('ready' in ready)) throw new Error('the latency child did not report ready');
      const { asked, registered, registerMs, reduced } = ready;
      rows.push({ asked, registered, registerMs, reduced, runs: Array.from({ length: LATENCY_RUNS }, () => []), casPerCommit: NaN });
    }
    const sliceMs = (LATENCY_SECONDS * 1000) / LATENCY_SLICES;
    const order = rows.map((_, i) => i);
    for (let run = 0; run < LATENCY_RUNS; run++) {
      for (let round = 0; round < LATENCY_SLICES; round++) {
        for (const i of round % 2 === 0 ? order : [...order].reverse()) {
          const reply = await procs[i]!.ask({ slice: sliceMs });
          if (!('latencies' in reply)) throw new Error('the latency child sent no latencies');
          rows[i]!.runs[run]!.push(...reply.latencies);
        }
      }
      const base = rows[0]!;
      const sortedRun = (r: LatencyRow) => [...r.runs[run]!].sort((a, b) => a - b);
      log(
        `  run ${run + 1}/${LATENCY_RUNS}: ` +
          rows
            .map((r) => {
              const l = sortedRun(r);
              const b = sortedRun(base);
              return (
                `${fmtInt(r.registered)} shards p50 ${fmtLatency(quantile(l, 0.5))} mean ${fmtLatency(mean(l))}` +
                (r === base ? '' : ` (${fmtRatio(quantile(l, 0.5) / quantile(b, 0.5))} / ${fmtRatio(mean(l) / mean(b))})`)
              );
            })
            .join('; '),
      );
    }
    // With TXNWAL_BENCH_CPU_PROF: one more slice per configuration under the profiler, not counted.
    if (process.env.TXNWAL_BENCH_CPU_PROF) {
      for (const [i, r] of rows.entries()) await procs[i]!.ask({ profile: `txn-latency-${r.registered}-shards`, ms: LATENCY_SECONDS * 1000 });
    }
    for (const [i, r] of rows.entries()) {
      const done = await procs[i]!.ask({ finish: true });
      if (!('finished' in done)) throw new Error('the latency child did not finish');
      r.casPerCommit = done.casPerCommit;
      r.runs = r.runs.map((l) => [...l].sort((a, b) => a - b));
    }
    return rows;
  } finally {
    for (const p of procs) p.kill();
  }
}

// ---------- part 3: peak RSS of one big transaction (child process) ----------

type Phase = 'write' | 'commit' | 'apply' | 'maintenance';
const PHASES: readonly Phase[] = ['write', 'commit', 'apply', 'maintenance'];

interface RssResult {
  dataBytes: number;
  rows: number;
  rowBytes: number;
  /** RSS of the child with the package's modules loaded, before anything is opened. */
  modulesRss: number;
  baselineRss: number;
  /** Peak RSS per phase. */
  peaks: Record<Phase, number>;
  phaseMs: Record<Phase, number>;
  samples: number;
  /** How the peaks were measured. */
  peakMethod: string;
  blobBytes: number;
  blobSets: number;
  spillThresholdBytes: number;
  /** The data shard's spine after the apply, and after maintenance. */
  spineBefore: string;
  spineAfter: string;
  /** The same writer loop without a Txn, in its own child (rssFloorChild). */
  floor?: FloorResult;
}

/** What {@link rssFloorChild} measured. */
interface FloorResult {
  baselineRss: number;
  peakRss: number;
  ms: number;
}

/** A shard's spine as `[lower,upper) updates/parts` per batch, oldest first. */
function describeSpine(client: PersistClient, shardId: ShardId): string {
  const spine = client.shardMachine(shardId).state.spine;
  return spine
    .map(({ batch: b }) => `[${b.lower},${b.upper}) ${fmtInt(b.updateCount)} updates/${b.parts.length} parts`)
    .join(', ');
}

/** Peak RSS per phase, however it is measured. */
interface PeakTracker {
  /** How the peaks are measured, for the report. */
  readonly method: string;
  phase(phase: Phase): void;
  stop(): Promise<{ peaks: Partial<Record<Phase | 'setup', number>>; samples: number }>;
}

const PROC_STATUS = '/proc/self/status';
const PROC_CLEAR_REFS = '/proc/self/clear_refs';

/** The kernel's peak RSS of this process (VmHWM), in bytes. */
function kernelPeakRss(): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(PROC_STATUS, 'utf8'));
  if (!m) throw new Error(`${PROC_STATUS} has no VmHWM line`);
  return Number(m[1]) * 1024;
}

/**
 * Linux: the kernel's own high-water mark of RSS (VmHWM), reset at each phase by
 * writing 5 to /proc/self/clear_refs. Exact (no peak between samples is missed) and
 * it costs the measured process nothing: no sampler thread, whose own heap would
 * count in the RSS being measured.
 */
class KernelPeakTracker implements PeakTracker {
  readonly method = 'kernel high-water mark (VmHWM), reset per phase';
  private current: Phase | 'setup' = 'setup';
  private readonly peaks: Partial<Record<Phase | 'setup', number>> = {};
  private samples = 0;

  static available(): boolean {
    try {
      kernelPeakRss();
      writeFileSync(PROC_CLEAR_REFS, '5');
      return true;
    } catch {
      return false;
    }
  }

  phase(phase: Phase): void {
    this.close();
    this.current = phase;
    writeFileSync(PROC_CLEAR_REFS, '5');
  }

  private close(): void {
    this.peaks[this.current] = Math.max(this.peaks[this.current] ?? 0, kernelPeakRss());
    this.samples++;
  }

  stop(): Promise<{ peaks: Partial<Record<Phase | 'setup', number>>; samples: number }> {
    this.close();
    return Promise.resolve({ peaks: this.peaks, samples: this.samples });
  }
}

/** RSS sampler on its own thread, so samples keep coming while the main thread is busy. */
const SAMPLER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let phase = 'setup';
const peaks = {};
let samples = 0;
const sample = () => {
  const rss = process.memoryUsage.rss();
  samples++;
  if (!(rss <= (peaks[phase] ?? 0))) peaks[phase] = rss;
};
const timer = setInterval(sample, workerData.intervalMs);
parentPort.on('message', (m) => {
  sample();
  if (m.phase) phase = m.phase;
  if (m.stop) {
    clearInterval(timer);
    parentPort.postMessage({ peaks, samples });
    parentPort.close();
  }
});
`;

/** Elsewhere: RSS sampled every {@link SAMPLE_MS} by a worker thread (whose own memory counts too). */
class SampledPeakTracker implements PeakTracker {
  readonly method = `sampled every ${SAMPLE_MS} ms by a worker thread`;
  private readonly worker: Worker;
  private constructor() {
    this.worker = new Worker(SAMPLER_SOURCE, { eval: true, workerData: { intervalMs: SAMPLE_MS } });
  }
  static async start(): Promise<SampledPeakTracker> {
    const s = new SampledPeakTracker();
    await new Promise<void>((resolve, reject) => {
      s.worker.once('online', resolve);
      s.worker.once('error', reject);
    });
    return s;
  }
  phase(phase: Phase): void {
    this.worker.postMessage({ phase });
  }
  async stop(): Promise<{ peaks: Partial<Record<Phase | 'setup', number>>; samples: number }> {
    const done = new Promise<{ peaks: Partial<Record<Phase | 'setup', number>>; samples: number }>((resolve, reject) => {
      this.worker.once('message', resolve);
      this.worker.once('error', reject);
    });
    this.worker.postMessage({ stop: true });
    const out = await done;
    await this.worker.terminate();
    return out;
  }
}

/**
 * Where the RSS is, for the progress lines: V8's heap (committed / used), memory
 * outside it held by JS objects (ArrayBuffers: slabs, encoded parts, caller arrays),
 * and on Linux the resident pages of the node binary, of malloc's heap (small
 * allocations, and large ones once glibc's mmap threshold has grown) and of anonymous
 * mappings (V8's heap pages, large ArrayBuffers).
 */
function whereRssIs(): string {
  const m = process.memoryUsage();
  let out = `V8 heap ${fmtBytes(m.heapTotal)}/${fmtBytes(m.heapUsed)} used, ArrayBuffers ${fmtBytes(m.arrayBuffers)}`;
  try {
    const byKind = { binary: 0, malloc: 0, anon: 0 };
    let kind: keyof typeof byKind | undefined;
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) {
        const name = head[1]!;
        kind = name === '' ? 'anon' : name === '[heap]' ? 'malloc' : name === process.execPath ? 'binary' : undefined;
        continue;
      }
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss && kind) byKind[kind] += Number(rss[1]) * 1024;
    }
    out += `; resident: node binary ${fmtBytes(byKind.binary)}, malloc heap ${fmtBytes(byKind.malloc)}, anonymous ${fmtBytes(byKind.anon)}`;
  } catch {
    // Not Linux: the V8 figures alone.
  }
  return out;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** The child: one transaction of TXN_BYTES on `file:<dir>`; prints progress, then a result line. */
async function rssChild(dir: string): Promise<void> {
  const keyWidth = 11; // `k` + 10 digits
  if (ROW_BYTES <= keyWidth) throw new UsageError(`TXNWAL_BENCH_ROW_BYTES must be above ${keyWidth}`);
  const valBytes = ROW_BYTES - keyWidth;
  const rows = Math.max(1, Math.ceil(TXN_BYTES / ROW_BYTES));
  const dataBytes = rows * ROW_BYTES;
  const template = randomBytes(valBytes);
  // The floor: node with every module of the package loaded (static imports), nothing opened.
  gc();
  const modulesRss = process.memoryUsage.rss();

  const sampler: PeakTracker = KernelPeakTracker.available() ? new KernelPeakTracker() : await SampledPeakTracker.start();
  const { location, counts } = countingLocation(await openLocation(`file:${dir}`));
  const client = await PersistClient.open(location);
  const codecs = { key: Codecs.string, val: Codecs.bytes };
  const txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs });
  const dataId = newShardId();
  const reg = await txns.register(1, [await client.openWriter(dataId, codecs, { purpose: 'bench data' })]);
  if (!reg.ok) throw new Error(`register at 1: taken, current ${reg.current}`);

  gc();
  await new Promise((r) => setTimeout(r, 200));
  gc();
  const baselineRss = process.memoryUsage.rss();
  log(
    `RSS with the modules loaded ${fmtBytes(modulesRss)} (${whereRssIs()}); after setup (baseline) ${fmtBytes(baselineRss)}; writing ${fmtInt(rows)} rows of ${ROW_BYTES} B (${fmtBytes(dataBytes)}), ` +
      `${REUSE_VALUE ? 'values from one reused array' : 'each value a fresh array'}, ` +
      `spill threshold ${fmtBytes(txns.spillThresholdBytes)}`,
  );
  const phaseMs = {} as Record<Phase, number>;
  const start = performance.now();
  let phaseStart = start;
  const enter = (p: Phase) => {
    const now = performance.now();
    sampler.phase(p);
    phaseStart = now;
  };
  const leave = (p: Phase) => (phaseMs[p] = performance.now() - phaseStart);

  const txn = txns.begin();
  enter('write');
  let nextReport = 1;
  await writerLoop(rows, template, async (key, val, i) => {
    await txn.write(dataId, key, val, 1);
    if ((i + 1) * 10 >= rows * nextReport) {
      const s = (performance.now() - phaseStart) / 1000;
      log(
        `write ${nextReport * 10}%: ${fmtInt(i + 1)} rows, ${fmtBytes((i + 1) * ROW_BYTES)} in ${s.toFixed(1)} s; ` +
          `RSS ${fmtBytes(process.memoryUsage.rss())} (${whereRssIs()}); ${fmtBytes(counts.blobSetBytes)} in ${counts.blobSet} blobs`,
      );
      nextReport++;
    }
  });
  leave('write');

  enter('commit');
  const res = await txn.commitAt(txns, 2);
  if (!res.ok) throw new Error(`commit at 2: taken, current ${res.current}`);
  leave('commit');
  log(`commit: ${fmtMs(phaseMs.commit)}; RSS ${fmtBytes(process.memoryUsage.rss())}`);

  enter('apply');
  await res.apply.apply(txns);
  leave('apply');
  log(`apply: ${fmtMs(phaseMs.apply)}; RSS ${fmtBytes(process.memoryUsage.rss())}`);

  // What the apply left behind: the background compaction, rollups and GC it started.
  const spineBefore = describeSpine(client, dataId);
  log(`data shard spine before maintenance: ${spineBefore}`);
  enter('maintenance');
  await client.flushMaintenance();
  leave('maintenance');
  const spineAfter = describeSpine(client, dataId);
  log(`maintenance (background compaction of the data shard) flushed: ${fmtMs(phaseMs.maintenance)}; spine now ${spineAfter}`);

  const { peaks, samples } = await sampler.stop();
  // The applied data: every row, at the commit time, in the data shard's spine.
  const state = client.shardMachine(dataId).state;
  const applied = state.spine.reduce((n, b) => n + b.batch.updateCount, 0);
  if (state.meta.upper !== 3 || applied !== rows) {
    throw new Error(`data shard: upper ${state.meta.upper}, ${applied} updates; expected upper 3 and ${rows}`);
  }
  const blobBytes = counts.blobSetBytes;
  const blobSets = counts.blobSet;
  await txns.close();
  await client.close();
  await location.close();
  const peakOf = (p: Phase) => peaks[p] ?? 0;
  const result: RssResult = {
    dataBytes,
    rows,
    rowBytes: ROW_BYTES,
    modulesRss,
    baselineRss,
    peaks: Object.fromEntries(PHASES.map((p) => [p, peakOf(p)])) as Record<Phase, number>,
    phaseMs,
    samples,
    peakMethod: sampler.method,
    blobBytes,
    blobSets,
    spillThresholdBytes: txns.spillThresholdBytes,
    spineBefore,
    spineAfter,
  };
  process.stdout.write(RESULT_MARKER + JSON.stringify(result) + '\n');
}

/**
 * The writer of part 3, shared by the Txn child and the floor child so both run the
 * same loop: row `i` has key `k` + `i` in 10 digits and a value of `template`'s
 * length starting with `i` — a fresh array per row, or one reused array with
 * TXNWAL_BENCH_RSS_REUSE_VALUE=1 (a Txn copies what it buffers, so a writer may reuse
 * one) — and each row is awaited.
 */
async function writerLoop(
  rows: number,
  template: Uint8Array,
  write: (key: string, val: Uint8Array, i: number) => Promise<void>,
): Promise<void> {
  const reused = REUSE_VALUE ? new Uint8Array(template.byteLength) : undefined;
  const reusedView = reused ? new DataView(reused.buffer) : undefined;
  for (let i = 0; i < rows; i++) {
    const val = reused ?? new Uint8Array(template.byteLength);
    val.set(template);
    (reusedView ?? new DataView(val.buffer)).setUint32(0, i);
    await write(`k${String(i).padStart(10, '0')}`, val, i);
  }
}

/**
 * The floor for part 3, measured in the same run: the same process (package loaded,
 * nothing opened), the same writer loop (a key string and, unless
 * TXNWAL_BENCH_RSS_REUSE_VALUE, a fresh value array per row, an awaited call per row),
 * each row's bytes copied into one buffer of the spill threshold, and no Txn. Its peak
 * is what Node and the writer's own garbage cost before txnwal holds anything, so the
 * Txn's own memory is the difference.
 */
async function rssFloorChild(bufferBytes: number): Promise<void> {
  const keyWidth = 11;
  const valBytes = ROW_BYTES - keyWidth;
  const rows = Math.max(1, Math.ceil(TXN_BYTES / ROW_BYTES));
  const template = randomBytes(valBytes);
  const buffer = new Uint8Array(bufferBytes);
  const encoder = new TextEncoder();
  let used = 0;
  const copy = async (key: string, val: Uint8Array): Promise<void> => {
    if (used + key.length * 3 + val.byteLength > buffer.byteLength) used = 0;
    used += encoder.encodeInto(key, buffer.subarray(used)).written;
    buffer.set(val, used);
    used += val.byteLength;
  };
  gc();
  await new Promise((r) => setTimeout(r, 200));
  gc();
  const baselineRss = process.memoryUsage.rss();
  const sampler: PeakTracker = KernelPeakTracker.available() ? new KernelPeakTracker() : await SampledPeakTracker.start();
  sampler.phase('write');
  const t0 = performance.now();
  await writerLoop(rows, template, copy);
  const ms = performance.now() - t0;
  const { peaks } = await sampler.stop();
  const result: FloorResult = { baselineRss, peakRss: peaks.write ?? 0, ms };
  process.stdout.write(RESULT_MARKER + JSON.stringify(result) + '\n');
}

/**
 * Compiles the package as it ships (tsconfig.build.json's options) together with this
 * benchmark into `<dir>/out`, so the RSS child runs plain JavaScript on plain `node`:
 * no tsx loader thread and no on-the-fly transpiling in the process being measured
 * (that alone is about 35 MiB of RSS). The library's JavaScript is exactly what `npm
 * run build` puts in `dist/`; `proto/` is copied beside it (encoding.ts loads it from
 * `../../proto`) and `node_modules` linked, so `out/` resolves like the installed package.
 */
async function buildCompiled(dir: string, root: string): Promise<string> {
  const out = path.join(dir, 'out');
  const tsconfig = path.join(dir, 'tsconfig.json');
  await writeFile(
    tsconfig,
    JSON.stringify({
      extends: path.join(root, 'tsconfig.build.json'),
      compilerOptions: {
        rootDir: root,
        outDir: out,
        declaration: false,
        noEmit: false,
        incremental: false,
        // Type packages are looked up beside the tsconfig, which is not in the repo; mocha's
        // because bench/support.ts can import the test Postgres helper.
        typeRoots: [path.join(root, 'node_modules', '@types')],
        types: ['node', 'mocha'],
      },
      include: [path.join(root, 'src'), path.join(root, 'bench/txn.ts'), path.join(root, 'bench/support.ts')],
    }),
  );
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const t0 = performance.now();
  const code = await new Promise<number | null>((resolve, reject) => {
    const p = spawn(process.execPath, [tsc, '-p', tsconfig], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    p.once('error', reject);
    p.once('close', resolve);
  });
  if (code !== 0) throw new Error(`compiling the package for the RSS child failed (tsc exited with ${code})`);
  await cp(path.join(root, 'proto'), path.join(out, 'proto'), { recursive: true });
  await symlink(path.join(root, 'node_modules'), path.join(out, 'node_modules'), 'dir');
  log(`  compiled src/ (tsconfig.build.json) and this benchmark into ${out} in ${fmtMs(performance.now() - t0)}`);
  return path.join(out, 'bench', 'txn.js');
}

/** Runs the compiled benchmark with `args` in a fresh `node --expose-gc`; echoes its progress, returns its result line. */
async function runRssChild<T>(compiled: string, root: string, args: string[], label: string): Promise<T> {
  const child = spawn(process.execPath, ['--expose-gc', ...RSS_CHILD_NODE_FLAGS, compiled, ...args], {
    cwd: root,
    env: process.env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let result: T | undefined;
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    if (line.startsWith(RESULT_MARKER)) result = JSON.parse(line.slice(RESULT_MARKER.length)) as T;
    else log(`  [${label}] ${line}`);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0 || !result) throw new Error(`the ${label} exited with ${code}${result ? '' : ' and no result'}`);
  return result;
}

/**
 * Runs {@link rssChild} in a fresh process on the compiled package, then
 * {@link rssFloorChild} with a buffer of the spill threshold the Txn used.
 */
async function benchRss(): Promise<RssResult> {
  const dir = await tempDir('txnwal-bench-txn-rss-');
  const script = fileURLToPath(import.meta.url);
  const root = path.resolve(path.dirname(script), '..');
  // Already compiled (someone ran the .js): use it as it is.
  const compiled = script.endsWith('.js') ? script : await buildCompiled(await tempDir('txnwal-bench-txn-build-'), root);
  const result = await runRssChild<RssResult>(compiled, root, [CHILD_FLAG, dir], 'rss child');
  log('  the same writer loop without txnwal (the floor):');
  result.floor = await runRssChild<FloorResult>(compiled, root, [FLOOR_CHILD_FLAG, String(result.spillThresholdBytes)], 'floor child');
  return result;
}

// ---------- main ----------

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    log('usage: npm run bench:txn [-- --parts tps,latency,rss] [--backends mem,file]');
    log('env: TXNWAL_BENCH_SECONDS (3), TXNWAL_BENCH_LATENCY_SECONDS (2), TXNWAL_BENCH_LATENCY_RUNS (3),');
    log('     TXNWAL_BENCH_SHARDS (10000), TXNWAL_BENCH_REGISTER_BUDGET_S (60), TXNWAL_BENCH_TXN_BYTES (1GiB),');
    log("     TXNWAL_BENCH_ROW_BYTES (1024), TXNWAL_BENCH_RSS_REUSE_VALUE (0), TXNWAL_BENCH_RSS_NODE_FLAGS ('')");
    return 0;
  }
  const latencyAt = process.argv.indexOf(LATENCY_CHILD_FLAG);
  if (latencyAt >= 0) {
    const n = Number(process.argv[latencyAt + 1]);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${LATENCY_CHILD_FLAG} needs a shard count`);
    await latencyChild(n);
    return 0;
  }
  const floorAt = process.argv.indexOf(FLOOR_CHILD_FLAG);
  if (floorAt >= 0) {
    const bytes = Number(process.argv[floorAt + 1]);
    if (!Number.isSafeInteger(bytes) || bytes < 1) throw new UsageError(`${FLOOR_CHILD_FLAG} needs a buffer size in bytes`);
    await rssFloorChild(bytes);
    return 0;
  }
  const childAt = process.argv.indexOf(CHILD_FLAG);
  if (childAt >= 0) {
    const dir = process.argv[childAt + 1];
    if (!dir) throw new UsageError(`${CHILD_FLAG} needs a directory`);
    await rssChild(dir);
    return 0;
  }

  const parts = argChoices('parts', PARTS);
  const tpsBackends = argChoices('backends', TPS_BACKENDS);
  const shardCounts = [...new Set([1, Math.min(100, MAX_SHARDS), MAX_SHARDS])];
  log('txnwal txn-wal benchmark');
  log(`  ${machineSummary()}`);
  log(
    `  TXNWAL_BENCH_SECONDS=${SECONDS} TXNWAL_BENCH_LATENCY_SECONDS=${LATENCY_SECONDS} TXNWAL_BENCH_SHARDS=${MAX_SHARDS} ` +
      `TXNWAL_BENCH_REGISTER_BUDGET_S=${REGISTER_BUDGET_S} TXNWAL_BENCH_TXN_BYTES=${TXN_BYTES} ` +
      `TXNWAL_BENCH_ROW_BYTES=${ROW_BYTES} parts=${parts.join(",")} backends=${tpsBackends.join(",")}`,
  );

  const started = performance.now();
  const tps: TpsRow[] = [];
  const latency: LatencyRow[] = [];
  let rss: RssResult | undefined;
  let failed = false;
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      failed = true;
      log(`  [${what}] FAILED: ${(err as Error).stack ?? String(err)}`);
    }
  };
  try {
    if (parts.includes('tps')) {
      log('\n1. single-row transactions (commit + apply):');
      for (const backend of tpsBackends) await attempt(backend, async () => void tps.push(await benchTps(backend)));
    }
    if (parts.includes('latency')) {
      log('\n2. commit + apply latency vs registered data shards (mem://):');
      await attempt('latency', async () => void latency.push(...(await benchLatency(shardCounts))));
    }
    if (parts.includes('rss')) {
      log(`\n3. peak RSS of one ${fmtBytes(TXN_BYTES)} transaction (file:<tmp>, child process):`);
      await attempt('rss', async () => void (rss = await benchRss()));
    }
  } finally {
    await removeTempDirs();
  }

  log(`\nResults (total ${fmtMs(performance.now() - started)})`);
  if (tps.length > 0) {
    log('\n1. single-row transactions, commit + apply, sequential, one handle');
    log(
      renderTable(
        ['backend', 'location', 'CaS/s', 'txn/s', 'txn/CaS', 'CaS/txn', 'ms/txn', 'CPU/txn', 'CPU/CaS', 'txns'],
        tps.map((r) => [
          r.backend,
          r.location,
          fmtRate(r.cas.perSecond),
          fmtRate(r.txn.perSecond),
          fmtRatio(r.txn.perSecond / r.cas.perSecond),
          (r.counts.cas / r.txn.ops).toFixed(2),
          fmtLatency(1000 / r.txn.perSecond),
          `${fmtInt(r.txn.cpuUsPerOp)} us`,
          fmtRatio(r.txn.cpuUsPerOp / r.cas.cpuUsPerOp),
          fmtInt(r.txn.ops),
        ]),
      ),
    );
    log(`   CaS/s: raw Consensus.compareAndSet on one key, 200-byte payload, ${SECONDS} s, same backend, same run.`);
    log(`   txn/s: write 1 row + tidy + commitAt + apply, ${SECONDS} s after ${WARMUP_SECONDS} s warm-up, compactTo every ${COMPACT_EVERY};`);
    log('   txn/CaS = txn/s ÷ CaS/s; CaS/txn = state compare-and-sets issued per txn (txns + data shard, maintenance included).');
    log('   CPU/txn = process CPU time (user + system, all threads) per txn; CPU/CaS = that ÷ the CPU per raw CaS (steadier than');
    log('   the rates when other processes share the machine).');
  }
  if (latency.length > 0) {
    const base = latency.find((r) => r.asked === 1);
    const all = (r: LatencyRow) => r.runs.flat().sort((a, b) => a - b);
    const perRun = (r: LatencyRow, stat: (xs: number[]) => number) =>
      base ? r.runs.map((l, i) => stat(l) / stat(base.runs[i]!)) : [];
    const p50 = (xs: number[]) => quantile(xs, 0.5);
    const ratios = (xs: number[]) => (xs.length === 0 ? '-' : xs.map(fmtRatio).join(' '));
    log('\n2. commit + apply latency of one row to ONE shard vs registered data shards (mem://), interleaved');
    log(
      renderTable(
        ['shards', 'register', 'commits', 'p50', 'mean', 'p99', 'CaS/commit', 'p50/p50(1) per run', 'mean/mean(1) per run'],
        latency.map((r) => {
          const l = all(r);
          return [
            fmtInt(r.registered) + (r.reduced ? ` (asked ${fmtInt(r.asked)})` : ''),
            fmtMs(r.registerMs),
            fmtInt(l.length),
            fmtLatency(p50(l)),
            fmtLatency(mean(l)),
            fmtLatency(quantile(l, 0.99)),
            r.casPerCommit.toFixed(2),
            r === base ? '-' : ratios(perRun(r, p50)),
            r === base ? '-' : ratios(perRun(r, mean)),
          ];
        }),
      ),
    );
    const big = latency[latency.length - 1];
    if (base && big && big !== base) {
      const worst = Math.max(...perRun(big, p50), ...perRun(big, mean));
      log(
        `   latency(${fmtInt(big.registered)})/latency(1), worst of p50 and mean over ${big.runs.length} runs: ${fmtRatio(worst)} ` +
          '(near 1: a commit is one txns write whatever the shard count).',
      );
    }
    log(
      `   Each configuration in its own process, all set up first, then driven in turns: ${LATENCY_RUNS} runs × ${LATENCY_SLICES} rounds, each ` +
        `round a ${fmtMs((LATENCY_SECONDS * 1000) / LATENCY_SLICES)} slice of commits per configuration (order alternating),`,
    );
    log(`   ${LATENCY_SECONDS} s per configuration per run. Shards registered ${REGISTER_CHUNK} per register call at successive timestamps.`);
    log('   latency = commitAt + apply (compactTo every 100 commits runs outside the timed part).');
    if (latency.some((r) => r.reduced)) log(`   REDUCED: registration passed its ${REGISTER_BUDGET_S} s budget (TXNWAL_BENCH_REGISTER_BUDGET_S).`);
  }
  if (rss) {
    const r: RssResult = rss;
    const during = Math.max(r.peaks.write, r.peaks.commit, r.peaks.apply);
    log(`\n3. peak RSS, one transaction of ${fmtInt(r.rows)} rows × ${r.rowBytes} B = ${fmtBytes(r.dataBytes)} (file:<tmp>)`);
    const row = (what: string, peak: number, ms: number, baseline = r.baselineRss) => [
      what,
      fmtMs(ms),
      fmtBytes(baseline),
      fmtBytes(peak),
      fmtBytes(peak - baseline),
      fmtRatio(peak / r.dataBytes),
      fmtRatio((peak - baseline) / r.dataBytes),
    ];
    log(
      renderTable(
        ['phase', 'time', 'baseline RSS', 'peak RSS', 'peak-baseline', 'peak/data', '(peak-base)/data'],
        [
          row('write', r.peaks.write, r.phaseMs.write),
          row('commit', r.peaks.commit, r.phaseMs.commit),
          row('apply', r.peaks.apply, r.phaseMs.apply),
          row('write+commit+apply', during, r.phaseMs.write + r.phaseMs.commit + r.phaseMs.apply),
          row('maintenance after apply', r.peaks.maintenance, r.phaseMs.maintenance),
          ...(r.floor ? [row('floor: same writer loop, no Txn', r.floor.peakRss, r.floor.ms, r.floor.baselineRss)] : []),
        ],
      ),
    );
    const mibs = r.dataBytes / 2 ** 20 / ((r.phaseMs.write + r.phaseMs.commit + r.phaseMs.apply) / 1000);
    log(
      `   peak RSS: ${r.peakMethod} (${r.samples} readings); spill threshold ${fmtBytes(r.spillThresholdBytes)}; ` +
        `${fmtBytes(r.blobBytes)} written to Blob in ${fmtInt(r.blobSets)} blobs; write+commit+apply at ${mibs.toFixed(0)} MiB/s.`,
    );
    log('   peak/data = peak RSS ÷ transaction data size (key+value bytes); baseline = RSS after setup, before the first write.');
    log("   'maintenance after apply' = the data shard's background compaction/rollup/GC, flushed and measured separately;");
    log(`   data shard spine before it: ${r.spineBefore}; after: ${r.spineAfter}.`);
    if (r.floor) {
      log(
        `   floor = a fresh process with the package loaded running the same writer loop (${REUSE_VALUE ? 'one reused value array' : 'a fresh value array per row'}, ` +
          `an awaited call per row), copying each row into one ${fmtBytes(r.spillThresholdBytes)} buffer, no Txn: ` +
                    `write+commit+apply peak ÷ floor = ${fmtRatio(during / r.floor.peakRss)}; the Txn's own memory ≈ ${fmtBytes(during - r.floor.peakRss)}.`,
      );
    }
  }
  return failed ? 1 : 0;
}

await runBench(main);
