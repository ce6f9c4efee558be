/**
 * The seeded fault trial from the command line: runs `runFaultTrial`
 * (test/trial/fault-trial.ts) for many seeds, prints each failing seed's anomalies,
 * the distinct anomalies over all seeds (one example seed and stack each) and a
 * totals table. Exits 1 if any seed found an anomaly or on a bad option (one line,
 * examples/cli.ts's conventions; `--help` prints the usage), 2 if it crashed.
 *
 * Progress is shown on a TTY (stderr) and left out in pipes.
 *
 * Example:
 * ```
 * npm run trial:faults -- --seeds 200
 * npm run trial:faults -- --first-seed 17 --seeds 1 --fault-rate 0.2 --ops 80
 * ```
 */
import { performance } from 'node:perf_hooks';
import { cliArgs, fail, integerOption, progressLine } from '../examples/cli.js';
import { formatAnomalies, runFaultTrial, type Anomaly, type FaultTrialResult } from '../test/trial/fault-trial.js';

const HELP = `usage: npm run trial:faults -- [options]

Runs the seeded storage-fault trial (a txn-wal workload over a Location whose Blob
and Consensus fail a fraction of calls, then a check of everything it wrote).

Options:
  --seeds N         how many seeds to run (default 20)
  --first-seed N    the first seed; seeds are consecutive from here (default 1)
  --fault-rate F    fraction of storage calls that fail, in [0, 1] (default 0.1;
                    half refused before acting, half acting with the reply lost)
  --ops N           logical writes per seed (default 40)
  --help            this text

Progress goes to stderr when it is a terminal. Exit status: 0 when no seed found an
anomaly, 1 when one did or on a bad option (one line on stderr), 2 if the trial
itself crashed.`;

interface Args {
  seeds: number;
  firstSeed: number;
  faultRate: number;
  ops: number;
}

function parseArgs(): Args {
  const { values } = cliArgs(HELP, {
    options: {
      seeds: { type: 'string', default: '20' },
      'first-seed': { type: 'string', default: '1' },
      'fault-rate': { type: 'string', default: '0.1' },
      ops: { type: 'string', default: '40' },
    },
  });
  const raw = values['fault-rate'];
  const faultRate = Number(raw);
  if (!(raw.trim() !== '' && faultRate >= 0 && faultRate <= 1)) fail(`--fault-rate must be a number in [0, 1], got ${JSON.stringify(raw)}`);
  return {
    seeds: integerOption(values.seeds, '--seeds', 1),
    firstSeed: integerOption(values['first-seed'], '--first-seed', 0),
    faultRate,
    ops: integerOption(values.ops, '--ops', 1),
  };
}

/** An anomaly's description with ids, keys and numbers replaced, so equal findings group together. */
function signature(a: Anomaly): string {
  return `[${a.kind}] ${a.description}`
    .replace(/s[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<shard>')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>')
    .replace(/\d+:\d+/g, '<key>')
    .replace(/\d+/g, 'N');
}

interface Group {
  count: number;
  seeds: Set<number>;
  example: Anomaly;
  exampleSeed: number;
}

function table(rows: [string, string | number][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${String(v).padStart(8)}`).join('\n');
}

function firstFrames(err: unknown, n: number): string | undefined {
  if (!(err instanceof Error) || !err.stack) return undefined;
  const lines = err.stack.split('\n');
  return lines.slice(0, n + 1).map((l) => `      ${l}`).join('\n');
}

async function main(args: Args): Promise<number> {
  const progress = progressLine();
  const started = performance.now();
  const results: FaultTrialResult[] = [];
  const groups = new Map<string, Group>();
  for (let i = 0; i < args.seeds; i++) {
    const seed = args.firstSeed + i;
    progress.update(`seed ${seed} (${i + 1}/${args.seeds}), ${results.filter((r) => r.anomalies.length > 0).length} failing so far`);
    const r = await runFaultTrial({ seed, faultRate: args.faultRate, ops: args.ops });
    results.push(r);
    if (r.anomalies.length > 0) {
      progress.clear();
      process.stdout.write(`seed ${seed}: ${r.anomalies.length} anomalies\n${formatAnomalies(r.anomalies)}\n`);
    }
    for (const a of r.anomalies) {
      const sig = signature(a);
      const g = groups.get(sig);
      if (g) {
        g.count++;
        g.seeds.add(seed);
      } else {
        groups.set(sig, { count: 1, seeds: new Set([seed]), example: a, exampleSeed: seed });
      }
    }
  }
  progress.clear();

  if (groups.size > 0) {
    process.stdout.write(`\nDistinct anomalies (${groups.size}):\n`);
    const sorted = [...groups.entries()].sort((a, b) => b[1].seeds.size - a[1].seeds.size);
    for (const [sig, g] of sorted) {
      process.stdout.write(`- ${sig}\n    ${g.count}× in ${g.seeds.size} seed(s); e.g. seed ${g.exampleSeed}: ${g.example.description}\n`);
      const stack = firstFrames(g.example.error, 8);
      if (stack) process.stdout.write(`${stack}\n`);
    }
  }

  const sum = (f: (r: FaultTrialResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const byKind = new Map<string, number>();
  for (const r of results) for (const a of r.anomalies) byKind.set(a.kind, (byKind.get(a.kind) ?? 0) + 1);
  const failing = results.filter((r) => r.anomalies.length > 0);
  process.stdout.write(
    `\nTotals over ${results.length} seed(s) (${args.firstSeed}..${args.firstSeed + args.seeds - 1}), ` +
      `fault rate ${args.faultRate}, ${args.ops} ops each, ${((performance.now() - started) / 1000).toFixed(1)} s:\n` +
      table([
        ['writes', sum((r) => r.ops)],
        ['acked', sum((r) => r.acked)],
        ['failed, mayHaveHappened: false', sum((r) => r.failedDefinite)],
        ['failed, mayHaveHappened: true', sum((r) => r.failedMaybe)],
        ['other errors', sum((r) => r.otherErrors)],
        ['injected determinate faults', sum((r) => r.faults.determinate)],
        ['injected indeterminate faults', sum((r) => r.faults.indeterminate)],
        ['slow calls', sum((r) => r.faults.slow)],
        ...[...byKind].sort().map(([k, n]): [string, number] => [`anomalies: ${k}`, n]),
        ['anomalies', sum((r) => r.anomalies.length)],
        ['failing seeds', failing.length],
      ]) +
      '\n',
  );
  if (failing.length > 0) process.stdout.write(`Failing seeds: ${failing.map((r) => r.seed).join(' ')}\n`);
  return failing.length > 0 ? 1 : 0;
}

main(parseArgs()).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`trial:faults: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  },
);
