/**
 * `npm run demo`: the bank on the embedded default location.
 *
 *   npm run demo [-- --dir ./.txnwal-data --seconds 10 --in-flight 4 --seed 1]   (--help for usage)
 *
 * Opens (or reopens) the database in `<dir>` (file: location: SQLite consensus +
 * file blob) and in it a bank of 4 branch collections × 25 accounts, commits random
 * transfers with `db.write` for `--seconds`, and follows every branch with one
 * `db.subscribe$` pipeline that keeps balances and the total incrementally,
 * checking at every frontier that the total is what was deposited and no account
 * is overdrawn. With `--checked` every transfer is a read-write transaction that
 * checks the balance in the database first (several processes may run at once). A status line shows commits/s, the frontier, the total and
 * whether the invariant held. Exits 0 if it always held, 1 otherwise (or on a
 * bad option).
 */
import path from 'node:path';
import { DEFAULT_DATA_DIR, cliArgs, positiveNumber } from '../cli.js';
import { openBank, runTransfers } from './bank.js';

const USAGE = `
usage: npm run demo [-- --dir <dir>] [--seconds 10] [--in-flight 4] [--seed <n>] [--checked]

The bank: random atomic transfers between accounts in 4 branch collections, and a
live reader checking at every frontier that the total is what was deposited.
  --dir <dir>        the database (a file: location), default ${DEFAULT_DATA_DIR}; reopened if it exists
  --seconds <s>      how long to transfer (default 10)
  --in-flight <n>    writes outstanding at a time (default 4)
  --seed <n>         seed of the transfer generator (default: from the clock)
  --checked          transfers as read-write transactions that check the balance in the
                     database first (db.transact): safe with several processes at once
Exits 0 if the invariant always held, 1 otherwise (or on a bad option).
`;

const { values } = cliArgs(USAGE, {
  options: {
    dir: { type: 'string', default: DEFAULT_DATA_DIR },
    seconds: { type: 'string', default: '10' },
    'in-flight': { type: 'string', default: '4' },
    seed: { type: 'string', default: String((Date.now() % 100_000) + 1) },
    checked: { type: 'boolean', default: false },
  },
});
const seconds = positiveNumber(values.seconds, '--seconds');
const inFlight = positiveNumber(values['in-flight'], '--in-flight');
const seed = positiveNumber(values.seed, '--seed');
const dir = path.resolve(values.dir);
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
  checked: values.checked,
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
  `done: ${stats.commits} transactions in ${elapsed.toFixed(1)}s (${(stats.commits / elapsed).toFixed(0)}/s)` +
    (values.checked ? `, ${stats.refused} refused for insufficient funds` : '') +
    ', ' +
    `last commit at ${stats.lastCommitTs}, reader caught up at frontier ${stats.frontier}; ` +
    `total ${stats.total} checked at ${stats.statesChecked} frontiers: ` +
    (stats.violations === 0 ? 'invariant OK' : `invariant VIOLATED at ${stats.violations} frontiers`),
);
await bank.close();
process.exit(stats.violations === 0 && stats.total === bank.expectedTotal ? 0 : 1);
