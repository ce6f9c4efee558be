/**
 * The multi-machine trial from the command line: runs `runMultiMachineTrial`
 * (test/trial/multi-machine.ts) for one or more seeds on Postgres + S3 (the test
 * servers of test/support unless TXNWAL_TEST_PG_URL / TXNWAL_TEST_S3_URL name real
 * ones), shows each kill as it happens (on stderr, when it is a terminal) and prints
 * a line of counts per seed: kills, commits acknowledged, failed, unknown (killed
 * mid-commit), transactions seen by the follower, anomalies. Exits 1 if any seed
 * found an anomaly or on a bad option (one line, examples/cli.ts's conventions).
 *
 * Example:
 * ```
 * npm run trial:multi                       # seed 1, 20 kills
 * npm run trial:multi -- --seeds 3 --kills 50 --writers 3 --shards 4
 * ```
 */
import { cliArgs, integerOption, progressLine } from '../examples/cli.js';
import { runMultiMachineTrial } from '../test/trial/multi-machine.js';
import { stopTestPostgres } from '../test/support/postgres.js';
import { stopTestS3 } from '../test/support/s3.js';

const HELP = `usage: npm run trial:multi -- [options]

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

Each kill is shown on stderr as it happens when that is a terminal. Exit status: 0
when no seed found an anomaly, 1 when one did or on a bad option (one line on stderr).`;

const { values } = cliArgs(HELP, {
  options: {
    seeds: { type: 'string', default: '1' },
    'first-seed': { type: 'string', default: '1' },
    kills: { type: 'string', default: '20' },
    writers: { type: 'string', default: '3' },
    shards: { type: 'string', default: '3' },
  },
});
const args = {
  seeds: integerOption(values.seeds, '--seeds', 1),
  firstSeed: integerOption(values['first-seed'], '--first-seed', 1),
  kills: integerOption(values.kills, '--kills', 0),
  writers: integerOption(values.writers, '--writers', 1),
  shards: integerOption(values.shards, '--shards', 1),
};
const progress = progressLine();

let anomalies = 0;
try {
  for (let seed = args.firstSeed; seed < args.firstSeed + args.seeds; seed++) {
    const r = await runMultiMachineTrial({
      seed,
      kills: args.kills,
      writers: args.writers,
      dataShards: args.shards,
      log: (line) => progress.update(`seed ${seed}: ${line}`),
    });
    progress.clear();
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
