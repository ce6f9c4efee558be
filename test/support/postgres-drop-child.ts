/**
 * Child process for the dropped-connection tests: a Postgres store under load while an
 * admin connection terminates every one of the store's server connections, over and
 * over (only the store's: they are told apart by their application_name). Usage:
 *   node --import tsx test/support/postgres-drop-child.ts <consensus|oracle> <database url>
 *
 * It runs in a process of its own because what it checks is that the PROCESS survives:
 * a dropped connection that pg reports as an unhandled 'error' event exits it with
 * code 1 (mocha would only report an uncaught error). On success it prints one JSON line
 * `{ failures, unexpected, afterwards }` and exits 0 on its own, with nothing left
 * open: `failures` counts the calls that failed by error class, `unexpected` lists
 * failures that were not a location error, `afterwards` is the result of one more call
 * once the terminations stopped.
 */
import pg from 'pg';
import { PostgresTimestampOracle } from '../../src/coord/postgres-oracle.js';
import { DeterminateError, IndeterminateError } from '../../src/location/errors.js';
import { PostgresConsensus } from '../../src/location/postgres-consensus.js';
import { terminateBackends } from './postgres.js';

const [store, databaseUrl] = process.argv.slice(2) as [string, string];
// The store's connections carry a name of their own, so that only they are terminated
// (not the admin connection here, nor the test's in the parent).
const APP = `txnwal-drop-${process.pid}`;
const url = new URL(databaseUrl);
url.searchParams.set('application_name', APP);
const WORKERS = 16;
const ROUNDS = 60;

/** One call against the store: a CaS after a head, or a write timestamp then a read one. */
type Step = () => Promise<unknown>;

async function openStore(): Promise<{ step: (worker: number) => Step; close: () => Promise<void> }> {
  if (store === 'consensus') {
    const c = await PostgresConsensus.open(url.toString(), { poolMax: 8 });
    return {
      step: (worker) => async () => {
        const key = `drop-${worker % 4}`;
        const head = await c.head(key);
        return c.compareAndSet(key, head?.seqno, { seqno: (head?.seqno ?? 0) + 1, data: new Uint8Array([worker]) });
      },
      close: () => c.close(),
    };
  }
  const o = await PostgresTimestampOracle.open(url.toString(), { poolMax: 8, timeline: 'drop' });
  return {
    step: () => async () => {
      const { timestamp } = await o.writeTs();
      await o.applyWrite(timestamp);
      return o.readTs();
    },
    close: () => o.close(),
  };
}

const failures: Record<string, number> = {};
const unexpected: string[] = [];
const { step, close } = await openStore();
const admin = new pg.Client({ connectionString: databaseUrl });
admin.on('error', (err) => unexpected.push(`admin: ${String(err)}`));
await admin.connect();

let stop = false;
const workers = Array.from({ length: WORKERS }, async (_, worker) => {
  const call = step(worker);
  while (!stop) {
    try {
      await call();
    } catch (err) {
      const known = err instanceof DeterminateError || err instanceof IndeterminateError;
      const name = known ? err.constructor.name : 'other';
      failures[name] = (failures[name] ?? 0) + 1;
      if (!known) unexpected.push(String(err));
    }
  }
});
for (let round = 0; round < ROUNDS; round++) {
  await terminateBackends(admin, `application_name = '${APP}'`);
  // Uneven gaps, so terminations land at every point of a statement's life.
  await new Promise((resolve) => setTimeout(resolve, 3 + (round % 7)));
}
stop = true;
await Promise.all(workers);
const afterwards = await step(0)().then(
  () => 'ok',
  (err: unknown) => String(err),
);
await admin.end();
await close();
process.stdout.write(JSON.stringify({ failures, unexpected, afterwards }) + '\n');
