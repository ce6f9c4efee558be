/**
 * `npm run demo`: the bank on the embedded default location.
 *
 *   npm run demo [-- --dir ./.txnwal-data --seconds 10 --in-flight 4 --seed 1]
 *
 * Opens (or reopens) a bank of 4 branches × 25 accounts in `<dir>` (file: location:
 * SQLite consensus + file blob), commits random transfers through `txnSink` for
 * `--seconds`, and follows every branch with a `dataSubscribe$` pipeline that keeps
 * balances and the total incrementally, checking at every frontier that the total
 * is what was deposited. A status line shows commits/s, the frontier, the total and
 * whether the invariant held. Exits 0 if it always held, 1 otherwise.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openBank, runTransfers } from './bank.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: './.txnwal-data' },
    seconds: { type: 'string', default: '10' },
    'in-flight': { type: 'string', default: '4' },
    seed: { type: 'string', default: String(Date.now() % 100_000) },
  },
});
const seconds = Number(values.seconds);
const inFlight = Number(values['in-flight']);
const seed = Number(values.seed);
for (const [name, v] of [['--seconds', seconds], ['--in-flight', inFlight], ['--seed', seed]] as const) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`${name} must be a positive number, got ${JSON.stringify(values[name.slice(2) as 'seconds'])}`);
    process.exit(2);
  }
}
const dir = path.resolve(values.dir!);
const tty = process.stdout.isTTY;

const bank = await openBank(`file:${dir}`);
console.log(
  `${bank.reopened ? 'reopened' : 'opened'} the bank in ${dir}: ${bank.branches.length} branches, ${bank.accounts.size} accounts, ` +
    `total ${bank.expectedTotal}; transfers for ${seconds}s (seed ${seed})`,
);

const started = Date.now();
let lastPrint = 0;
const stats = await runTransfers(bank, {
  seconds,
  inFlight,
  seed,
  onState: (s, st) => {
    const now = Date.now();
    if (now - lastPrint < (tty ? 200 : 1000)) return;
    lastPrint = now;
    const rate = st.commits / Math.max(0.001, (now - started) / 1000);
    const line =
      `commits ${st.commits} (${rate.toFixed(0)}/s)  frontier ${s.frontier}  total ${s.total}  ` +
      `branches [${s.perBranch.join(', ')}]  invariant ${st.violations === 0 ? 'OK' : `VIOLATED ${st.violations}×`}`;
    if (tty) process.stdout.write(`\r${line}\u001b[K`);
    else console.log(line);
  },
});
if (tty) process.stdout.write('\n');
const elapsed = (Date.now() - started) / 1000;
console.log(
  `done: ${stats.commits} transactions in ${elapsed.toFixed(1)}s (${(stats.commits / elapsed).toFixed(0)}/s), ` +
    `last commit at ${stats.lastCommitTs}, reader caught up at frontier ${stats.frontier}; ` +
    `total ${stats.total} checked at ${stats.statesChecked} frontiers: ` +
    (stats.violations === 0 ? 'invariant OK' : `invariant VIOLATED at ${stats.violations} frontiers`),
);
await bank.close();
process.exit(stats.violations === 0 && stats.total === bank.expectedTotal ? 0 : 1);
