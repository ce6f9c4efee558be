/**
 * The transaction history trial from the command line: runs `runHistoryTrial`
 * (test/db/txn-history.ts) — worker processes running read-write transactions over
 * hot keys on a fresh `file:` location, SIGKILLed at random points and replaced —
 * for each isolation level asked for and each seed, checks every history and
 * prints counts: commits, conflicts, kills, attempts cut short by a kill (and how
 * many of those landed), anomalies. Exits 1 if any history had an anomaly, 2 on a
 * bad argument.
 *
 * Progress is shown on a TTY (stderr) and left out in pipes.
 *
 * Example:
 * ```
 * npm run trial:txn -- --workers 4 --txns 100 --kills 10 --seeds 3
 * npm run trial:txn -- --isolation snapshot --seeds 1
 * ```
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ISOLATION_LEVELS, type IsolationLevel } from '../src/db/read-write-transaction.js';
import { runHistoryTrial, type HistoryTrialResult } from '../test/db/txn-history.js';

const HELP = `Usage: npm run trial:txn -- [options]

Runs read-write transactions from several worker processes over a few hot keys of
one collection on a fresh file: location, SIGKILLs workers at random points and
replaces them, then checks the recorded history: atomic (never partly visible),
durable (every acknowledged commit present once), reads at the read timestamp, and
serializable (acyclic dependency graph) or snapshot-isolated, by level.

Options:
  --isolation L   snapshot, serializable, strict-serializable, or all (default all)
  --workers N     worker processes at once (default 4)
  --txns N        transactions per worker slot (default 60)
  --kills N       SIGKILLs per history (default 6)
  --seeds N       histories per level, seeds 1..N (default 2)
  --help          this text

Exit status: 0 when no history had an anomaly, 1 when one did, 2 on a bad argument.`;

class UsageError extends Error {}

function positive(raw: string | undefined, name: string, dflt: number, min = 1): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      isolation: { type: 'string' },
      workers: { type: 'string' },
      txns: { type: 'string' },
      kills: { type: 'string' },
      seeds: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help' as const;
  const iso = values.isolation ?? 'all';
  if (iso !== 'all' && !ISOLATION_LEVELS.includes(iso as IsolationLevel)) {
    throw new UsageError(`--isolation must be one of ${[...ISOLATION_LEVELS, 'all'].join(', ')}, got ${JSON.stringify(iso)}`);
  }
  return {
    levels: iso === 'all' ? [...ISOLATION_LEVELS] : [iso as IsolationLevel],
    workers: positive(values.workers, 'workers', 4),
    txns: positive(values.txns, 'txns', 60),
    kills: positive(values.kills, 'kills', 6, 0),
    seeds: positive(values.seeds, 'seeds', 2),
  };
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`trial:txn: ${(err as Error).message}\n(see --help)\n`);
      return 2;
    }
    throw err;
  }
  if (args === 'help') {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const tty = process.stderr.isTTY;
  const rows: { level: IsolationLevel; seed: number; r: HistoryTrialResult; ms: number }[] = [];
  for (const level of args.levels) {
    for (let seed = 1; seed <= args.seeds; seed++) {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-trial-txn-'));
      const started = Date.now();
      try {
        const r = await runHistoryTrial({
          location: `file:${dir}`,
          isolation: level,
          workers: args.workers,
          txnsPerWorker: args.txns,
          kills: args.kills,
          seed,
          onProgress: tty
            ? (p) => process.stderr.write(`\r${level} seed ${seed}: ${p.commits} commits, ${p.conflicts} conflicts, ${p.kills} kills   `)
            : undefined,
        });
        if (tty) process.stderr.write('\r\x1b[K');
        rows.push({ level, seed, r, ms: Date.now() - started });
        for (const a of r.anomalies) process.stdout.write(`${level} seed ${seed}: ${a}\n`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
  const header = ['level', 'seed', 'commits', 'conflicts', 'read-only', 'kills', 'cut short', 'of those landed', 'anomalies', 'seconds'];
  const table = rows.map(({ level, seed, r, ms }) => [
    level,
    String(seed),
    String(r.commits),
    String(r.conflicts),
    String(r.readOnly),
    String(r.kills),
    String(r.unknown),
    String(r.unknownLanded),
    String(r.anomalies.length),
    (ms / 1000).toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  process.stdout.write(line(header) + '\n' + table.map(line).join('\n') + '\n');
  const anomalies = rows.reduce((n, x) => n + x.r.anomalies.length, 0);
  process.stdout.write(`${anomalies} anomalies in ${rows.length} histories\n`);
  return anomalies === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`trial:txn failed: ${String((err as Error)?.stack ?? err)}\n`);
    process.exit(1);
  },
);
