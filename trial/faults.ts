/**
 * The seeded fault trial from the command line: runs `runFaultTrial`
 * (test/trial/fault-trial.ts) for many seeds, prints each failing seed's anomalies,
 * the distinct anomalies over all seeds (one example seed and stack each) and a
 * totals table. Exits 1 if any seed found an anomaly, 2 on a bad argument.
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
import { formatAnomalies, runFaultTrial, type Anomaly, type FaultTrialResult } from '../test/trial/fault-trial.js';

const HELP = `Usage: npm run trial:faults -- [options]

Runs the seeded storage-fault trial (a txn-wal workload over a Location whose Blob
and Consensus fail a fraction of calls, then a check of everything it wrote).

Options:
  --seeds N         how many seeds to run (default 20)
  --first-seed N    the first seed; seeds are consecutive from here (default 1)
  --fault-rate F    fraction of storage calls that fail, in [0, 1] (default 0.1;
                    half refused before acting, half acting with the reply lost)
  --ops N           logical writes per seed (default 40)
  --help            this text

Exit status: 0 when no seed found an anomaly, 1 when one did, 2 on a bad argument.`;

class UsageError extends Error {}

interface Args {
  seeds: number;
  firstSeed: number;
  faultRate: number;
  ops: number;
}

function parseArgs(argv: readonly string[]): Args | 'help' {
  const args: Args = { seeds: 20, firstSeed: 1, faultRate: 0.1, ops: 40 };
  const value = (i: number, name: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${name} needs a value`);
    return v;
  };
  const integer = (raw: string, name: string, min: number): number => {
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const take = (): string => {
      if (inline !== undefined) return inline;
      return value(i++, arg);
    };
    switch (arg) {
      case '--help':
      case '-h':
        return 'help';
      case '--seeds':
        args.seeds = integer(take(), '--seeds', 1);
        break;
      case '--first-seed':
        args.firstSeed = integer(take(), '--first-seed', 0);
        break;
      case '--ops':
        args.ops = integer(take(), '--ops', 1);
        break;
      case '--fault-rate': {
        const raw = take();
        const f = Number(raw);
        if (!(raw.trim() !== '' && f >= 0 && f <= 1)) throw new UsageError(`--fault-rate must be a number in [0, 1], got ${JSON.stringify(raw)}`);
        args.faultRate = f;
        break;
      }
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(argv[i])}`);
    }
  }
  return args;
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

async function main(): Promise<number> {
  let args: Args | 'help';
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`trial:faults: ${err.message}\n\n${HELP}\n`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const tty = process.stderr.isTTY === true;
  const started = performance.now();
  const results: FaultTrialResult[] = [];
  const groups = new Map<string, Group>();
  for (let i = 0; i < args.seeds; i++) {
    const seed = args.firstSeed + i;
    if (tty) process.stderr.write(`\r\x1b[K seed ${seed} (${i + 1}/${args.seeds}), ${results.filter((r) => r.anomalies.length > 0).length} failing so far`);
    const r = await runFaultTrial({ seed, faultRate: args.faultRate, ops: args.ops });
    results.push(r);
    if (r.anomalies.length > 0) {
      if (tty) process.stderr.write('\r\x1b[K');
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
  if (tty) process.stderr.write('\r\x1b[K');

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

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`trial:faults: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  },
);
