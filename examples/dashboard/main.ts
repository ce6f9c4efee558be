/**
 * `npm run dashboard`: the bank's live balances in a browser.
 *
 *   npm run dashboard [-- --dir ./.txnwal-data/dashboard] [--port 8080] [--host 127.0.0.1] [--seed 1] [--no-transfers]   (--help for usage)
 *
 * Opens (or reopens) the bank of `examples/bank` in the database in `<dir>` (file:
 * location: SQLite consensus + file blob), keeps committing random atomic transfers
 * in the background, and serves a page at the printed URL that shows — over
 * Server-Sent Events fed by one `db.subscribe$` pipeline — the frontier, the total and whether it is still
 * what was deposited, per-branch totals and every balance, updating live. Open it in
 * several tabs: they share the one pipeline. `--no-transfers` only watches: the
 * numbers then stay put unless another process writes to the same bank.
 * Ctrl-C stops the transfers, lets the reader catch up, and closes everything.
 */
import path from 'node:path';
import { DEFAULT_DATA_DIR, cliArgs, fail } from '../cli.js';
import { startDashboard } from './server.js';

const USAGE = `
usage: npm run dashboard [-- --dir <dir>] [--port 8080] [--host 127.0.0.1] [--seed <n>] [--no-transfers]

The bank's live balances in a browser (Server-Sent Events from one db.subscribe$).
  --dir <dir>       the database (a file: location), default ${DEFAULT_DATA_DIR}/dashboard
  --port <port>     0 to 65535 (0 picks a free port), default 8080
  --host <host>     the address to listen on, default 127.0.0.1
  --seed <n>        seed of the background transfers
  --no-transfers    only watch (numbers change only if another process writes)
`;

const { values } = cliArgs(USAGE, {
  options: {
    dir: { type: 'string', default: `${DEFAULT_DATA_DIR}/dashboard` },
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    seed: { type: 'string' },
    'no-transfers': { type: 'boolean', default: false },
  },
});
const port = Number(values.port);
if (values.port.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
  fail(`--port must be an integer from 0 to 65535 (0 picks a free port), got ${JSON.stringify(values.port)}`);
}
const seed = values.seed === undefined ? undefined : Number(values.seed);
if (seed !== undefined && !(Number.isInteger(seed) && seed > 0)) fail(`--seed must be a positive integer, got ${JSON.stringify(values.seed)}`);
const dir = path.resolve(values.dir);

let dashboard;
try {
  dashboard = await startDashboard({ location: `file:${dir}`, port, host: values.host!, seed, transfers: !values['no-transfers'] });
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
const { bank } = dashboard;
console.log(
  `${bank.reopened ? 'reopened' : 'opened'} the bank in ${dir}: ${bank.branches.length} branches, ${bank.accounts.size} accounts, ` +
    `total ${bank.expectedTotal}${values['no-transfers'] ? '; watching only' : '; transferring in the background'}`,
);
console.log(`dashboard: ${dashboard.url}  (Ctrl-C to stop)`);

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) {
    // A second Ctrl-C while the reader catches up: the user really wants out.
    console.error(`${signal} again: exiting without waiting`);
    process.exit(130);
  }
  stopping = true;
  console.log(`${signal}: closing (transfers stop, the reader catches up)…`);
  dashboard.close().then(
    () => console.log('closed'),
    (err: unknown) => {
      console.error('closing failed:', err);
      process.exitCode = 1;
    },
  );
  // No process.exit on success: once everything is closed nothing keeps the loop alive.
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
