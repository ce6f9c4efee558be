/**
 * `npm run dashboard`: the bank, live, in a browser.
 *
 *   npm run dashboard [-- --dir ./.txnwal-data/dashboard] [--port 8080] [--host 127.0.0.1] [--seed 1] [--in-flight 4] [--no-transfers]   (--help for usage)
 *
 * Opens (or reopens) the bank of `examples/bank` in the database in `<dir>` (file:
 * location: SQLite consensus + file blob), keeps committing random atomic transfers
 * in the background, and serves a page at the printed URL (server.ts): balances as a
 * heatmap, totals and the invariant, the frontier and every collection's logical
 * upper, physical upper and since, unapplied transactions, and live charts of
 * commits/s and commit → view lag. Open it in several tabs: they share one pipeline.
 * `--no-transfers` only watches.
 *
 * Ctrl-C (or SIGTERM) ends every stream, waits for the writes already submitted and
 * closes the database, and exits within 2 s whatever happens (a step that overruns
 * is abandoned and named on stderr; everything acknowledged is durable already). A
 * second Ctrl-C exits at once.
 */
import path from 'node:path';
import { DEFAULT_DATA_DIR, cliArgs, fail } from '../cli.js';
import { startDashboard } from './server.js';

const USAGE = `
usage: npm run dashboard [-- --dir <dir>] [--port 8080] [--host 127.0.0.1] [--seed <n>] [--in-flight <n>] [--no-transfers]

The bank, live in a browser: balances, totals and the invariant, frontiers, unapplied
transactions, commits/s and commit → view lag (Server-Sent Events from one pipeline).
  --dir <dir>       the database (a file: location), default ${DEFAULT_DATA_DIR}/dashboard
  --port <port>     0 to 65535 (0 picks a free port), default 8080
  --host <host>     the address to listen on, default 127.0.0.1
  --seed <n>        seed of the background transfers
  --in-flight <n>   transfers outstanding at a time, default 4
  --no-transfers    only watch (numbers change only if another process writes)
`;

const { values } = cliArgs(USAGE, {
  options: {
    dir: { type: 'string', default: `${DEFAULT_DATA_DIR}/dashboard` },
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    seed: { type: 'string' },
    'in-flight': { type: 'string', default: '4' },
    'no-transfers': { type: 'boolean', default: false },
  },
});
const port = Number(values.port);
if (values.port.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
  fail(`--port must be an integer from 0 to 65535 (0 picks a free port), got ${JSON.stringify(values.port)}`);
}
const seed = values.seed === undefined ? undefined : Number(values.seed);
if (seed !== undefined && !(Number.isInteger(seed) && seed > 0)) fail(`--seed must be a positive integer, got ${JSON.stringify(values.seed)}`);
const inFlight = Number(values['in-flight']);
if (!(Number.isInteger(inFlight) && inFlight >= 1 && inFlight <= 1000)) fail(`--in-flight must be an integer from 1 to 1000, got ${JSON.stringify(values['in-flight'])}`);
const dir = path.resolve(values.dir);

let dashboard;
try {
  dashboard = await startDashboard({ location: `file:${dir}`, port, host: values.host!, seed, inFlight, transfers: !values['no-transfers'] });
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

/** However long closing takes, the process is gone this long after the first signal. */
// 1.5 s, leaving room within the promised 2 s for a loaded machine to run the exit.
const EXIT_DEADLINE_MS = 1500;

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) {
    // A second Ctrl-C: the user really wants out.
    console.error(`${signal} again: exiting at once`);
    process.exit(130);
  }
  stopping = true;
  console.log(`${signal}: closing (streams end, submitted transfers finish, the database closes)…`);
  const started = performance.now();
  const deadline = setTimeout(() => {
    console.error(`closing took over ${EXIT_DEADLINE_MS} ms; exiting without waiting for the rest (acknowledged writes are durable)`);
    process.exit(0);
  }, EXIT_DEADLINE_MS);
  dashboard.close().then(
    () => {
      console.log(`closed in ${Math.round(performance.now() - started)} ms`);
      clearTimeout(deadline);
      // Exit now rather than when the last stray handle (a lease timer, a socket) lets go.
      process.exit(process.exitCode ?? 0);
    },
    (err: unknown) => {
      console.error('closing failed:', err);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
