/**
 * The transaction history trial from the command line: runs `runHistoryTrial`
 * (test/db/txn-history.ts) — worker processes running read-write transactions over
 * hot keys on a fresh `file:` location, SIGKILLed at random points and replaced —
 * for each isolation level asked for and each seed, checks every history and
 * prints counts: commits, conflicts, kills, attempts cut short by a kill (and how
 * many of those landed), anomalies. Exits 1 if any history had an anomaly or on a
 * bad option (one line, examples/cli.ts's conventions).
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
import { cliArgs, fail, integerOption, progressLine } from '../examples/cli.js';
import { ISOLATION_LEVELS, type IsolationLevel } from '../src/db/read-write-transaction.js';
import { runHistoryTrial, type HistoryTrialResult } from '../test/db/txn-history.js';

const HELP = `usage: npm run trial:txn -- [options]

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

Progress goes to stderr when it is a terminal. Exit status: 0 when no history had
an anomaly, 1 when one did or on a bad option (one line on stderr).`;

function parse() {
  const { values } = cliArgs(HELP, {
    options: {
      isolation: { type: 'string', default: 'all' },
      workers: { type: 'string', default: '4' },
      txns: { type: 'string', default: '60' },
      kills: { type: 'string', default: '6' },
      seeds: { type: 'string', default: '2' },
    },
  });
  const iso = values.isolation;
  if (iso !== 'all' && !ISOLATION_LEVELS.includes(iso as IsolationLevel)) {
    fail(`--isolation must be one of ${[...ISOLATION_LEVELS, 'all'].join(', ')}, got ${JSON.stringify(iso)}`);
  }
  return {
    levels: iso === 'all' ? [...ISOLATION_LEVELS] : [iso as IsolationLevel],
    workers: integerOption(values.workers, '--workers', 1),
    txns: integerOption(values.txns, '--txns', 1),
    kills: integerOption(values.kills, '--kills', 0),
    seeds: integerOption(values.seeds, '--seeds', 1),
  };
}

async function main(args: ReturnType<typeof parse>): Promise<number> {
  const progress = progressLine();
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
          onProgress: progress.shown ? (p) => progress.update(`${level} seed ${seed}: ${p.commits} commits, ${p.conflicts} conflicts, ${p.kills} kills`) : undefined,
        });
        progress.clear();
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

main(parse()).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`trial:txn failed: ${String((err as Error)?.stack ?? err)}\n`);
    process.exit(1);
  },
);
