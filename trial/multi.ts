/**
 * The multi-machine trial from the command line: runs `runMultiMachineTrial`
 * (test/trial/multi-machine.ts) for one or more seeds on Postgres + S3 (the test
 * servers of test/support unless TXNWAL_TEST_PG_URL / TXNWAL_TEST_S3_URL name real
 * ones), prints each kill as it happens and a line of counts per seed: kills,
 * commits acknowledged, failed, unknown (killed mid-commit), transactions seen by the
 * follower, anomalies. Exits 1 if any seed found an anomaly, 2 on a bad argument.
 *
 * Example:
 * ```
 * npm run trial:multi                       # seed 1, 20 kills
 * npm run trial:multi -- --seeds 3 --kills 50 --writers 3 --shards 4
 * ```
 */
import { runMultiMachineTrial } from '../test/trial/multi-machine.js';
import { stopTestPostgres } from '../test/support/postgres.js';
import { stopTestS3 } from '../test/support/s3.js';

const HELP = `Usage: npm run trial:multi -- [options]

Three (or --writers) writer processes commit transactions across shared data shards
on Postgres + S3 while a follower process reads them with dataSubscribe$; a writer
is SIGKILLed at a random point and restarted, --kills times. Then every acknowledged
transaction must have been read back exactly once, none partly visible.

Options:
  --seeds N       how many seeds (default 1)
  --first-seed N  the first seed (default 1)
  --kills N       kills per seed (default 20)
  --writers N     writer processes (default 3)
  --shards N      data shards (default 3)
  --help          this text

Exit status: 0 when no seed found an anomaly, 1 when one did, 2 on a bad argument.`;

function parseArgs(argv: readonly string[]): Record<string, number> | 'help' {
  const args: Record<string, number> = { seeds: 1, 'first-seed': 1, kills: 20, writers: 3, shards: 3 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return 'help';
    const name = arg.replace(/^--/, '');
    if (!arg.startsWith('--') || !(name in args)) throw new Error(`unknown argument ${JSON.stringify(arg)}`);
    const n = Number(argv[++i]);
    if (!Number.isSafeInteger(n) || n < (name === 'kills' ? 0 : 1)) throw new Error(`--${name} needs a positive integer, got ${JSON.stringify(argv[i])}`);
    args[name] = n;
  }
  return args;
}

let args: Record<string, number> | 'help';
try {
  args = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(`${(err as Error).message}\n\n${HELP}`);
  process.exit(2);
}
if (args === 'help') {
  console.log(HELP);
  process.exit(0);
}

let anomalies = 0;
try {
  for (let seed = args['first-seed']!; seed < args['first-seed']! + args.seeds!; seed++) {
    const r = await runMultiMachineTrial({
      seed,
      kills: args.kills,
      writers: args.writers,
      dataShards: args.shards,
      log: (line) => console.log(`  seed ${seed}: ${line}`),
    });
    console.log(
      `seed ${seed}: kills ${r.kills}, commits acked ${r.acked}, failed ${r.failed}, unknown ${r.unknown}, ` +
        `seen ${r.seen}, final ts ${r.finalTs}, anomalies ${r.anomalies.length} (${(r.elapsedMs / 1000).toFixed(1)} s)`,
    );
    for (const a of r.anomalies) console.log(`  ANOMALY: ${a}`);
    anomalies += r.anomalies.length;
  }
} finally {
  await stopTestS3();
  await stopTestPostgres();
}
console.log(`anomalies: ${anomalies}`);
process.exitCode = anomalies > 0 ? 1 : 0;
