/**
 * Read-write transaction benchmark: `npm run bench:rw`.
 *
 * Two workloads, each run for BENCH_SECONDS by BENCH_CLIENTS concurrent clients, on
 * txnwal (a `postgres://…?blob=file:` location: consensus on the same Postgres
 * server) and, as the baseline in the same run, on plain Postgres at `SERIALIZABLE`
 * (one connection per client, retrying serialization failures, as an application
 * would):
 *  a. uncontended read-modify-write: each client increments its own key
 *     (read it, write it + 1, commit);
 *  b. hot keys: every client increments one of BENCH_HOT_KEYS keys at random, so
 *     transactions conflict; conflicts are retried (`transact`, or a loop on
 *     SQLSTATE 40001 / 40P01).
 * For each: commits/s, abort rate (conflicted attempts / attempts), p50 and p99 of
 * the latency from the first attempt to the commit, and txnwal ÷ Postgres. Both
 * sides check at the end that the sum of the counters equals the commits.
 *
 * txnwal runs at `serializable` (BENCH_ISOLATION to change). Its clients share one
 * process and one TxnsHandle, as a service's request handlers would.
 *
 * Settings (env): BENCH_SECONDS (3), BENCH_CLIENTS (8), BENCH_HOT_KEYS (2),
 * BENCH_ISOLATION (serializable), TXNWAL_TEST_PG_URL (otherwise Postgres is started
 * embedded).
 */
import pg from 'pg';
import { openLocation } from '../src/location/location.js';
import { PersistClient } from '../src/persist/client.js';
import { Codecs } from '../src/persist/codec.js';
import { newShardId } from '../src/persist/shard-id.js';
import { TxnsHandle } from '../src/txn/txns-handle.js';
import { ReadWriteTransaction, type IsolationLevel } from '../src/db/read-write-transaction.js';
import { transact } from '../src/db/transact.js';
import { TxnsTransactionHost } from '../src/db/txns-transaction-host.js';
import {
  envNumber,
  fmtLatency,
  fmtRate,
  fmtRatio,
  log,
  machineSummary,
  quantile,
  removeTempDirs,
  renderTable,
  runBench,
  startBenchPostgres,
  stopBenchPostgres,
  tempDir,
  printHelp,
} from './support.js';

const SECONDS = envNumber('BENCH_SECONDS', 3);
const CLIENTS = Math.round(envNumber('BENCH_CLIENTS', 8));
const HOT_KEYS = Math.round(envNumber('BENCH_HOT_KEYS', 2));
const ISOLATION = (process.env.BENCH_ISOLATION ?? 'serializable') as IsolationLevel;

interface Outcome {
  commits: number;
  attempts: number;
  latenciesMs: number[];
  seconds: number;
}

/** Runs `clients` loops of `txn(client)` for SECONDS; `txn` returns how many attempts it took. */
async function drive(clients: number, txn: (client: number) => Promise<number>): Promise<Outcome> {
  const latenciesMs: number[] = [];
  let commits = 0;
  let attempts = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const tries = await txn(c); // not `attempts += await …`: that reads attempts before the await
        attempts += tries;
        latenciesMs.push(performance.now() - t0);
        commits++;
      }
    }),
  );
  return { commits, attempts, latenciesMs: latenciesMs.sort((a, b) => a - b), seconds: (performance.now() - start) / 1000 };
}

async function txnwalSide(pgUrl: string): Promise<{ uncontended: Outcome; hot: Outcome }> {
  const blob = await tempDir('txnwal-bench-rw-');
  const url = new URL(pgUrl);
  url.searchParams.set('blob', `file:${blob}`);
  const client = await PersistClient.open(await openLocation(url.toString()));
  const codecs = { key: Codecs.string, val: Codecs.json<number>() };
  const txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs, initTs: 0 });
  const dataId = newShardId();
  const reg = await txns.register(1, [await client.openWriter(dataId, codecs)]);
  if (!reg.ok) throw new Error('register refused');
  const host = new TxnsTransactionHost(txns);
  const coll = host.collection(dataId);
  const increment = async (key: string): Promise<number> => {
    const { attempts } = await transact(
      host,
      async (tx: ReadWriteTransaction) => {
        const v = (await tx.get(coll, key)) ?? 0;
        await tx.set(coll, key, v + 1);
      },
      { isolation: ISOLATION, maxAttempts: 1000 },
    );
    return attempts;
  };
  try {
    const uncontended = await drive(CLIENTS, (c) => increment(`own-${c}`));
    const hot = await drive(CLIENTS, () => increment(`hot-${Math.floor(Math.random() * HOT_KEYS)}`));
    // Check: the counters add up to the commits.
    const check = await ReadWriteTransaction.begin(host);
    let sum = 0;
    for (const [, v] of await check.scan(coll)) sum += v;
    check.abort();
    if (sum !== uncontended.commits + hot.commits) throw new Error(`txnwal: counters sum to ${sum}, but ${uncontended.commits + hot.commits} commits were acknowledged`);
    return { uncontended, hot };
  } finally {
    await host.close();
    await txns.close();
    await client.close();
  }
}

const RETRYABLE = new Set(['40001', '40P01']);

async function postgresSide(pgUrl: string): Promise<{ uncontended: Outcome; hot: Outcome }> {
  const pool = new pg.Pool({ connectionString: pgUrl, max: CLIENTS });
  const table = `bench_rw_${process.pid}`;
  await pool.query(`CREATE TABLE ${table} (k text PRIMARY KEY, v bigint NOT NULL)`);
  const increment = async (key: string): Promise<number> => {
    const conn = await pool.connect();
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await conn.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
          const r = await conn.query<{ v: string }>(`SELECT v FROM ${table} WHERE k = $1`, [key]);
          const v = r.rows.length === 0 ? 0 : Number(r.rows[0]!.v);
          await conn.query(`INSERT INTO ${table} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`, [key, v + 1]);
          await conn.query('COMMIT');
          return attempt;
        } catch (err) {
          await conn.query('ROLLBACK').catch(() => undefined);
          if (!RETRYABLE.has((err as { code?: string }).code ?? '')) throw err;
        }
      }
    } finally {
      conn.release();
    }
  };
  try {
    const uncontended = await drive(CLIENTS, (c) => increment(`own-${c}`));
    const hot = await drive(CLIENTS, () => increment(`hot-${Math.floor(Math.random() * HOT_KEYS)}`));
    const { rows } = await pool.query<{ s: string }>(`SELECT coalesce(sum(v), 0) AS s FROM ${table}`);
    if (Number(rows[0]!.s) !== uncontended.commits + hot.commits) throw new Error('postgres: counters do not add up');
    return { uncontended, hot };
  } finally {
    await pool.query(`DROP TABLE ${table}`).catch(() => undefined);
    await pool.end();
  }
}

function row(name: string, side: string, o: Outcome, baseline?: Outcome): string[] {
  const rate = o.commits / o.seconds;
  return [
    name,
    side,
    fmtRate(rate),
    `${((1 - o.commits / o.attempts) * 100).toFixed(1)}%`,
    fmtLatency(quantile(o.latenciesMs, 0.5)),
    fmtLatency(quantile(o.latenciesMs, 0.99)),
    baseline ? fmtRatio(rate / (baseline.commits / baseline.seconds)) : '',
  ];
}

async function main(): Promise<number> {
  if (printHelp('npm run bench:rw   (env: BENCH_SECONDS, BENCH_CLIENTS, BENCH_HOT_KEYS, BENCH_ISOLATION, TXNWAL_TEST_PG_URL)')) return 0;
  log(`# read-write transactions: txnwal (${ISOLATION}, Postgres consensus) vs Postgres SERIALIZABLE`);
  log(machineSummary());
  log(`${CLIENTS} clients, ${SECONDS} s per workload, ${HOT_KEYS} hot keys`);
  const server = await startBenchPostgres();
  log(`Postgres: ${server.origin}`);
  try {
    const base = await postgresSide(server.url);
    const ours = await txnwalSide(server.url);
    log(
      renderTable(
        ['workload', 'system', 'commits/s', 'abort rate', 'p50', 'p99', 'txnwal ÷ pg'],
        [
          row('uncontended read-modify-write', 'postgres', base.uncontended),
          row('', 'txnwal', ours.uncontended, base.uncontended),
          row(`hot keys (${HOT_KEYS})`, 'postgres', base.hot),
          row('', 'txnwal', ours.hot, base.hot),
        ],
      ),
    );
  } finally {
    log(await stopBenchPostgres(server));
    await removeTempDirs();
  }
  return 0;
}

await runBench(main);
