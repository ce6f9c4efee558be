/**
 * Atomic two-collection transactions on Postgres: `npm run bench:pg [-- --submitters 1,8,32]`.
 *
 * The workload a user would otherwise write straight against Postgres: each
 * transaction puts one row into each of two collections, atomically, and is
 * acknowledged once durable and readable. Both sides run against the SAME Postgres
 * server in the same run, with the same number of concurrent submitters:
 * - **postgres** (the baseline): one connection per submitter, `BEGIN; INSERT INTO a;
 *   INSERT INTO b; COMMIT` with synchronous commit (the embedded server runs with fsync
 *   and synchronous_commit on, unlike the test suite's; an external one is reported as is);
 * - **txnwal**: a `postgres://…?blob=file:` location (consensus on that server, blobs
 *   in a temp dir), one TxnsHandle, a {@link GroupCommitter} with the Postgres timestamp
 *   oracle on that server, ack after apply (the default), two registered collections;
 *   each submitter loops `submitWrite({ [a]: [row], [b]: [row] })`.
 * Rounds alternate postgres / txnwal / postgres / txnwal per submitter count, so drift
 * hits both; each side's figures are the sum of its rounds. Printed: txn/s, p50 / p99
 * latency, txnwal ÷ postgres, group commits, and the Postgres statements (each one its
 * own server transaction: every call autocommits) per group commit, by operation, on
 * txnwal's side — what a group costs the server.
 * Also measured first: one raw compare-and-set round trip (sequential CaS on one key),
 * the floor a single submitter's commit is compared against (target: within 3×).
 * After each txnwal round, every acknowledged row is in both collections once.
 *
 * Settings (env): TXNWAL_BENCH_SECONDS (2 per round), TXNWAL_BENCH_WARMUP_SECONDS (0.5),
 * TXNWAL_TEST_PG_URL (otherwise Postgres is started embedded).
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { GroupCommitter, openTimestampOracle } from '../src/coord/index.js';
import { PostgresPool } from '../src/location/postgres-pool.js';
import { Codecs, PersistClient, TxnsHandle, newShardId, openLocation, type ShardId } from '../src/index.js';
import {
  UsageError,
  argList,
  consensusCasRate,
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
} from './support.js';

const SECONDS = envNumber('TXNWAL_BENCH_SECONDS', 2);
const WARMUP_SECONDS = envNumber('TXNWAL_BENCH_WARMUP_SECONDS', 0.5);
const ROUNDS = 2;
const CODECS = { key: Codecs.string, val: Codecs.unit } as const;

interface Run {
  txns: number;
  seconds: number;
  latencies: number[];
}

/** `submitters` loops of `txn(submitter, i)` → await, for `seconds`. */
async function drive(submitters: number, seconds: number, txn: (s: number, i: number) => Promise<unknown>): Promise<Run> {
  const latencies: number[] = [];
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: submitters }, async (_, s) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const t0 = performance.now();
        await txn(s, i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { txns: latencies.length, seconds: (performance.now() - start) / 1000, latencies };
}

function sum(runs: Run[]): Run {
  return {
    txns: runs.reduce((n, r) => n + r.txns, 0),
    seconds: runs.reduce((n, r) => n + r.seconds, 0),
    latencies: runs.flatMap((r) => r.latencies).sort((x, y) => x - y),
  };
}

/**
 * Counts the statements every PostgresPool in this process runs, by operation
 * (`compareAndSet`, `scan`, `writeTs`, …): each is one server transaction. A bench-only
 * patch of the prototype, removed by the returned function.
 */
function countStatements(): { counts: Map<string, number>; stop(): void } {
  const counts = new Map<string, number>();
  const original = PostgresPool.prototype.run;
  PostgresPool.prototype.run = function (this: PostgresPool, ...args: Parameters<PostgresPool['run']>) {
    counts.set(args[1], (counts.get(args[1]) ?? 0) + 1);
    return original.apply(this, args);
  };
  return { counts, stop: () => void (PostgresPool.prototype.run = original) };
}

/** The server's durability settings, for the report. */
async function durability(url: string): Promise<string> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const show = async (name: string) => (await admin.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name];
    return `fsync ${await show('fsync')}, synchronous_commit ${await show('synchronous_commit')}`;
  } finally {
    await admin.end();
  }
}

// ---------- the baseline: plain Postgres ----------

async function openPostgresSide(url: string, submitters: number) {
  const pool = new pg.Pool({ connectionString: url, max: submitters });
  const tables = [`bench_pg_a_${process.pid}`, `bench_pg_b_${process.pid}`];
  for (const t of tables) await pool.query(`CREATE TABLE ${t} (k text PRIMARY KEY)`);
  const conns = await Promise.all(Array.from({ length: submitters }, () => pool.connect()));
  let round = 0;
  return {
    async run(seconds: number): Promise<Run> {
      round++;
      return drive(submitters, seconds, async (s, i) => {
        const conn = conns[s]!;
        const key = `${round}-${s}-${i}`;
        await conn.query('BEGIN');
        await conn.query(`INSERT INTO ${tables[0]} (k) VALUES ($1)`, [key]);
        await conn.query(`INSERT INTO ${tables[1]} (k) VALUES ($1)`, [key]);
        await conn.query('COMMIT');
      });
    },
    async close() {
      for (const c of conns) c.release();
      for (const t of tables) await pool.query(`DROP TABLE ${t}`).catch(() => undefined);
      await pool.end();
    },
  };
}

// ---------- txnwal: group commit over Postgres consensus ----------

async function openTxnwalSide(pgUrl: string) {
  const blob = await tempDir('txnwal-bench-pg-');
  const url = new URL(pgUrl);
  url.searchParams.set('blob', `file:${blob}`);
  const client = await PersistClient.open(await openLocation(url.toString()));
  const txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs: CODECS, initTs: 0 });
  const oracle = await openTimestampOracle(pgUrl, { timeline: `bench-pg-${process.pid}-${Date.now()}` });
  const committer = await GroupCommitter.open(txns, oracle);
  const ids: [ShardId, ShardId] = [newShardId(), newShardId()];
  await committer.register(await Promise.all(ids.map((id) => client.openWriter(id, CODECS))));
  let round = 0;
  let acked = 0;
  let lastTs = 0;
  return {
    committer,
    async run(submitters: number, seconds: number): Promise<Run> {
      round++;
      const r = await drive(submitters, seconds, async (s, i) => {
        const key = `${round}-${s}-${i}`;
        const { commitTs } = await committer.submitWrite({ [ids[0]]: [[key, null, 1]], [ids[1]]: [[key, null, 1]] });
        lastTs = Math.max(lastTs, commitTs);
      });
      acked += r.txns;
      return r;
    },
    /**
     * Every acknowledged row, once, in both collections (ack is after apply, so both
     * shards are physically written through the last acknowledged commit).
     */
    async check(): Promise<void> {
      for (const id of ids) {
        const reader = await client.openLeasedReader(id, CODECS, { purpose: 'bench:pg check' });
        try {
          const rows = await reader.snapshotAndFetch(lastTs);
          const total = rows.reduce((n, [, , , d]) => n + d, 0);
          if (total !== acked || rows.some(([, , , d]) => d !== 1)) {
            throw new Error(`collection ${id}: ${total} rows for ${acked} acknowledged transactions`);
          }
        } finally {
          await reader.expire();
        }
      }
    },
    async close() {
      await committer.close();
      await txns.close();
      await oracle.close();
      await client.close();
    },
  };
}

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    log('usage: npm run bench:pg [-- --submitters 1,8,32]   (env: TXNWAL_BENCH_SECONDS, TXNWAL_TEST_PG_URL)');
    return 0;
  }
  const submitterCounts = (argList(process.argv.slice(2), 'submitters') ?? ['1', '8', '32']).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--submitters: expected positive integers, got ${JSON.stringify(s)}`);
    return n;
  });
  // An embedded server starts with fsync and synchronous_commit on (test servers run
  // without them): a commit without a disk flush flatters whoever commits most often.
  process.env.TXNWAL_TEST_PG_DURABLE = '1';
  log(`bench:pg — atomic two-collection transactions, txnwal group commit vs plain Postgres; ${machineSummary()}`);
  const server = await startBenchPostgres();
  log(`Postgres: ${server.origin}; ${SECONDS} s × ${ROUNDS} rounds per side and submitter count`);
  const rows: string[][] = [];
  const costRows: string[][] = [];
  try {
    log(`Postgres durability: ${await durability(server.url)}`);
    const location = await openLocation(`${server.url}${server.url.includes('?') ? '&' : '?'}blob=mem://bench-pg-cas`);
    const cas = await consensusCasRate(location.consensus, SECONDS);
    await location.close();
    const casMs = (cas.seconds * 1000) / cas.ops;
    log(`one compare-and-set round trip (sequential, ${cas.ops} CaS): ${fmtLatency(casMs)}`);

    const ours = await openTxnwalSide(server.url);
    try {
      for (const submitters of submitterCounts) {
        const base = await openPostgresSide(server.url, submitters);
        try {
          await base.run(WARMUP_SECONDS);
          await ours.run(submitters, WARMUP_SECONDS);
          const baseRuns: Run[] = [];
          const ourRuns: Run[] = [];
          const groupsBefore = ours.committer.stats.groupCommits;
          const statements = new Map<string, number>();
          for (let r = 0; r < ROUNDS; r++) {
            baseRuns.push(await base.run(SECONDS));
            const counting = countStatements();
            try {
              ourRuns.push(await ours.run(submitters, SECONDS));
            } finally {
              counting.stop();
            }
            for (const [op, n] of counting.counts) statements.set(op, (statements.get(op) ?? 0) + n);
          }
          await ours.check();
          const groups = ours.committer.stats.groupCommits - groupsBefore;
          const [b, o] = [sum(baseRuns), sum(ourRuns)];
          const [bRate, oRate] = [b.txns / b.seconds, o.txns / o.seconds];
          const p50 = quantile(o.latencies, 0.5);
          rows.push(
            [String(submitters), 'postgres', fmtRate(bRate), fmtLatency(quantile(b.latencies, 0.5)), fmtLatency(quantile(b.latencies, 0.99)), '', ''],
            [
              '',
              'txnwal',
              fmtRate(oRate),
              fmtLatency(p50),
              fmtLatency(quantile(o.latencies, 0.99)),
              fmtRatio(oRate / bRate),
              `${(p50 / casMs).toFixed(1)}×`,
            ],
          );
          const total = [...statements.values()].reduce((x, y) => x + y, 0);
          const byOp = [...statements]
            .sort((x, y) => y[1] - x[1])
            .map(([op, n]) => `${op} ${(n / groups).toFixed(2)}`)
            .join(', ');
          costRows.push([String(submitters), String(groups), (o.txns / groups).toFixed(1), (total / groups).toFixed(2), byOp]);
        } finally {
          await base.close();
        }
      }
    } finally {
      await ours.close();
    }
    log(renderTable(['submitters', 'system', 'txn/s', 'p50', 'p99', 'txnwal ÷ postgres', 'p50 ÷ one CaS'], rows));
    log('');
    log('txnwal: Postgres statements (server transactions) per group commit');
    log(renderTable(['submitters', 'group commits', 'txns per group', 'statements per group', 'by operation'], costRows));
  } finally {
    log(await stopBenchPostgres(server));
    await removeTempDirs();
  }
  return 0;
}

await runBench(main);
