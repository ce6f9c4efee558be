/**
 * Persist benchmark: `npm run bench:persist` (or `npx tsx bench/persist.ts --backends mem,file`);
 * `npm run bench` runs it and then bench/txn.ts.
 *
 * For each backend, in one run:
 *  a. raw Consensus compare-and-set: sequential CaS on one key, seqno +1 each time,
 *     a 200-byte payload, for BENCH_SECONDS;
 *  b. compare-and-append through a WriteHandle: one shard, one small update per
 *     append, sequential, for BENCH_SECONDS; printed as a rate and as b/a (each
 *     append is one state CaS plus encoding, and the background rollups, GC and
 *     compaction it triggers);
 *  c. snapshot read: a shard of BENCH_SNAPSHOT_UPDATES distinct keys written as
 *     BENCH_SNAPSHOT_BATCHES large batches (BatchBuilder + compareAndAppendBatch),
 *     background maintenance flushed, then `snapshotAndFetch(upper - 1)` timed and
 *     compared with a baseline from the same run: `Codecs.string.decode` of the same
 *     number of pre-encoded keys into an array (no protobuf, no consolidation, no I/O).
 *
 * Backends: mem (`mem://`), file (`file:<fresh temp dir>`: SQLite consensus + file
 * blob), postgres (consensus on Postgres; blob in a fresh temp dir by default, or
 * `mem://` with BENCH_PG_BLOB=mem). Postgres comes from TXNWAL_TEST_PG_URL or is
 * started embedded; if it cannot be started the postgres row is skipped.
 *
 * Settings (env): BENCH_SECONDS (2), BENCH_SNAPSHOT_UPDATES (1000000),
 * BENCH_SNAPSHOT_BATCHES (10), BENCH_PG_BLOB (file | mem), TXNWAL_TEST_PG_URL.
 * Argument: --backends mem,file,postgres (default: all three).
 */
import { randomBytes } from 'node:crypto';
import { Codecs, PersistClient, newShardId, openLocation, type Location } from '../src/index.js';
import {
  CAS_PAYLOAD_BYTES,
  argList,
  consensusCasRate,
  envNumber,
  fmtInt,
  fmtMs,
  fmtRate,
  fmtRatio,
  machineSummary,
  removeTempDirs,
  renderTable,
  runFor,
  startBenchPostgres,
  stopBenchPostgres,
  tempDir,
  timed,
  type BenchPostgres,
  type RateResult,
} from './support.js';

const BACKENDS = ['mem', 'file', 'postgres'] as const;
type Backend = (typeof BACKENDS)[number];

const SECONDS = envNumber('BENCH_SECONDS', 2);
const SNAPSHOT_UPDATES = Math.round(envNumber('BENCH_SNAPSHOT_UPDATES', 1_000_000));
const SNAPSHOT_BATCHES = Math.min(SNAPSHOT_UPDATES, Math.round(envNumber('BENCH_SNAPSHOT_BATCHES', 10)));
const PG_BLOB = process.env.BENCH_PG_BLOB ?? 'file';

/** A bad argument or setting: reported without a stack trace. */
class UsageError extends Error {}
/** The postgres backend cannot run here: its row is skipped, the bench goes on. */
class PostgresUnavailable extends Error {}

interface Row {
  backend: Backend;
  location: string;
  cas?: RateResult;
  append?: RateResult;
  build?: { ms: number; maintenanceMs: number };
  snapshot?: { ms: number; updates: number };
  skipped?: string;
}

function log(line: string): void {
  process.stdout.write(line + '\n');
}

function parseBackends(): Backend[] {
  const asked = argList(process.argv.slice(2), 'backends') ?? [...BACKENDS];
  for (const b of asked) {
    if (!(BACKENDS as readonly string[]).includes(b)) {
      throw new UsageError(`unknown backend ${JSON.stringify(b)}: use --backends with any of ${BACKENDS.join(',')}`);
    }
  }
  return asked as Backend[];
}

/** The keys of the snapshot shard: distinct, fixed width (`key-0000042`). */
function snapshotKey(i: number): string {
  return `key-${String(i).padStart(7, '0')}`;
}

// ---------- baseline ----------

/** Decodes/s of `Codecs.string.decode` over SNAPSHOT_UPDATES pre-encoded keys (best of 5). */
function decodeBaseline(): { perSecond: number; ms: number } {
  const encoded = new Array<Uint8Array>(SNAPSHOT_UPDATES);
  for (let i = 0; i < SNAPSHOT_UPDATES; i++) encoded[i] = Codecs.string.encode(snapshotKey(i));
  let best = Infinity;
  let sink = 0;
  for (let run = 0; run < 5; run++) {
    const start = performance.now();
    const out = new Array<string>(encoded.length);
    for (let i = 0; i < encoded.length; i++) out[i] = Codecs.string.decode(encoded[i]!);
    best = Math.min(best, performance.now() - start);
    sink += out.length;
  }
  if (sink !== 5 * SNAPSHOT_UPDATES) throw new Error('baseline decoded the wrong number of keys');
  return { perSecond: SNAPSHOT_UPDATES / (best / 1000), ms: best };
}

// ---------- the three measurements ----------

/** a. Sequential CaS on one fresh key, +1 seqnos, a 200-byte payload (the shared baseline). */
async function benchCas(location: Location): Promise<RateResult> {
  return consensusCasRate(location.consensus, SECONDS);
}

/** b. Sequential compare-and-append, one small update each, on a fresh shard. */
async function benchAppend(client: PersistClient): Promise<RateResult> {
  const writer = await client.openWriter(newShardId(), { key: Codecs.string, val: Codecs.string }, { purpose: 'bench-append' });
  const result = await runFor(SECONDS, async (i) => {
    const res = await writer.compareAndAppend([[`k${i}`, 'v', i, 1]], i, i + 1);
    if (!res.ok) throw new Error(`compareAndAppend ${i}: upper mismatch, current ${res.current}`);
  });
  await client.flushMaintenance();
  await writer.expire();
  return result;
}

/** c. Builds a shard of SNAPSHOT_UPDATES distinct keys, then times one snapshotAndFetch. */
async function benchSnapshot(client: PersistClient, label: string): Promise<Pick<Row, 'build' | 'snapshot'>> {
  const id = newShardId();
  const codecs = { key: Codecs.string, val: Codecs.unit };
  const writer = await client.openWriter(id, codecs, { purpose: 'bench-snapshot-writer' });
  const perBatch = Math.ceil(SNAPSHOT_UPDATES / SNAPSHOT_BATCHES);
  process.stdout.write(
    `  [${label}] c. building ${fmtInt(SNAPSHOT_UPDATES)} updates in ${SNAPSHOT_BATCHES} appends of ~${fmtInt(perBatch)}:`,
  );
  const build = await timed(async () => {
    let written = 0;
    for (let t = 0; t < SNAPSHOT_BATCHES; t++) {
      const n = Math.min(perBatch, SNAPSHOT_UPDATES - written);
      const builder = await writer.builder(t);
      for (let i = written; i < written + n; i++) await builder.add(snapshotKey(i), null, t, 1);
      const batch = await builder.finish(t + 1);
      const res = await writer.compareAndAppendBatch([batch], t, t + 1);
      if (!res.ok) throw new Error(`append ${t} of the snapshot shard: upper mismatch, current ${res.current}`);
      written += n;
      process.stdout.write(` ${fmtRate(written)}`);
    }
  });
  // Compaction of what we just wrote runs in the background; let it finish so the
  // snapshot is timed alone.
  const maintenance = await timed(() => client.flushMaintenance());
  log(` (${fmtMs(build.ms)}; maintenance ${fmtMs(maintenance.ms)})`);
  const asOf = writer.upper() - 1;
  await writer.expire();

  const reader = await client.openLeasedReader(id, codecs, { purpose: 'bench-snapshot-reader' });
  const snap = await timed(() => reader.snapshotAndFetch(asOf));
  await reader.expire();
  if (snap.value.length !== SNAPSHOT_UPDATES) {
    throw new Error(`snapshot at ${asOf} returned ${snap.value.length} updates, expected ${SNAPSHOT_UPDATES}`);
  }
  log(`  [${label}] c. snapshotAndFetch(${asOf}): ${fmtInt(snap.value.length)} updates in ${fmtMs(snap.ms)}`);
  return { build: { ms: build.ms, maintenanceMs: maintenance.ms }, snapshot: { ms: snap.ms, updates: snap.value.length } };
}

// ---------- backends ----------

async function locationUrl(backend: Backend, pg: () => Promise<BenchPostgres>): Promise<{ url: string; shown: string }> {
  switch (backend) {
    case 'mem':
      return { url: 'mem://', shown: 'mem://' };
    case 'file': {
      const dir = await tempDir('txnwal-bench-file-');
      return { url: `file:${dir}`, shown: 'file:<tmp> (SQLite + files)' };
    }
    case 'postgres': {
      let server: BenchPostgres;
      try {
        server = await pg();
      } catch (err) {
        throw new PostgresUnavailable((err as Error).message.split('\n')[0]!);
      }
      const url = new URL(server.url);
      let shown: string;
      if (PG_BLOB === 'mem') {
        url.searchParams.set('blob', `mem://bench-pg-${randomBytes(4).toString('hex')}`);
        shown = 'postgres + blob mem://';
      } else {
        url.searchParams.set('blob', `file:${await tempDir('txnwal-bench-pgblob-')}`);
        shown = 'postgres + blob file:<tmp>';
      }
      return { url: url.toString(), shown };
    }
  }
}

async function runBackend(backend: Backend, pg: () => Promise<BenchPostgres>): Promise<Row> {
  let target: { url: string; shown: string };
  try {
    target = await locationUrl(backend, pg);
  } catch (err) {
    if (!(err instanceof PostgresUnavailable)) throw err;
    log(`  [${backend}] skipped: Postgres could not be started: ${err.message}`);
    return { backend, location: '-', skipped: 'Postgres could not be started' };
  }
  const row: Row = { backend, location: target.shown };
  let location: Location;
  try {
    location = await openLocation(target.url);
  } catch (err) {
    if (backend !== 'postgres') throw err;
    const why = (err as Error).message.split('\n')[0]!;
    log(`  [${backend}] skipped: cannot connect to Postgres: ${why}`);
    return { backend, location: '-', skipped: 'cannot connect to Postgres' };
  }
  // The client shares the location and does not close it; we do, last.
  const client = await PersistClient.open(location);
  try {
    row.cas = await benchCas(location);
    log(`  [${backend}] a. consensus CaS: ${fmtInt(row.cas.ops)} in ${row.cas.seconds.toFixed(2)} s = ${fmtRate(row.cas.perSecond)}/s`);
    row.append = await benchAppend(client);
    log(
      `  [${backend}] b. compareAndAppend: ${fmtInt(row.append.ops)} in ${row.append.seconds.toFixed(2)} s = ` +
        `${fmtRate(row.append.perSecond)}/s`,
    );
    Object.assign(row, await benchSnapshot(client, backend));
  } finally {
    await client.close();
    await location.close();
  }
  return row;
}

// ---------- main ----------

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    log('usage: npm run bench:persist [-- --backends mem,file,postgres]');
    log('env: BENCH_SECONDS (2), BENCH_SNAPSHOT_UPDATES (1000000), BENCH_SNAPSHOT_BATCHES (10),');
    log('     BENCH_PG_BLOB (file | mem), TXNWAL_TEST_PG_URL (else an embedded Postgres is started)');
    return 0;
  }
  const backends = parseBackends();
  if (PG_BLOB !== 'file' && PG_BLOB !== 'mem') {
    throw new UsageError(`BENCH_PG_BLOB=${JSON.stringify(PG_BLOB)}: expected file or mem`);
  }
  log('txnwal persist benchmark');
  log(`  ${machineSummary()}`);
  log(
    `  BENCH_SECONDS=${SECONDS} BENCH_SNAPSHOT_UPDATES=${SNAPSHOT_UPDATES} BENCH_SNAPSHOT_BATCHES=${SNAPSHOT_BATCHES} ` +
      `BENCH_PG_BLOB=${PG_BLOB} backends=${backends.join(',')}`,
  );

  const baseline = decodeBaseline();
  log(
    `  baseline: Codecs.string.decode of ${fmtInt(SNAPSHOT_UPDATES)} pre-encoded keys into an array, best of 5: ` +
      `${fmtMs(baseline.ms)} = ${fmtRate(baseline.perSecond)}/s`,
  );

  let server: Promise<BenchPostgres> | undefined;
  const pg = () => (server ??= startBenchPostgres());
  const rows: Row[] = [];
  let failed = false;
  try {
    for (const backend of backends) {
      log(`\n${backend}:`);
      try {
        rows.push(await runBackend(backend, pg));
      } catch (err) {
        failed = true;
        log(`  [${backend}] FAILED: ${(err as Error).stack ?? String(err)}`);
        rows.push({ backend, location: '-', skipped: `failed: ${(err as Error).message.split('\n')[0]}` });
      }
    }
  } finally {
    if (server) {
      const s = await server.catch(() => undefined);
      if (s) {
        const stopped = await stopBenchPostgres(s).catch((err: unknown) => {
          failed = true;
          return `could not stop it: ${(err as Error).message}`;
        });
        log(`\npostgres: ${s.origin}; ${stopped}`);
      }
    }
    await removeTempDirs();
  }

  const header = ['backend', 'location', 'a. CaS/s', 'b. append/s', 'b/a', 'c. snapshot', 'c. updates/s', 'c/decode'];
  const table = rows.map((r) => {
    if (r.skipped) return [r.backend, `skipped (${r.skipped})`];
    const snapRate = r.snapshot ? r.snapshot.updates / (r.snapshot.ms / 1000) : NaN;
    return [
      r.backend,
      r.location,
      fmtRate(r.cas!.perSecond),
      fmtRate(r.append!.perSecond),
      fmtRatio(r.append!.perSecond / r.cas!.perSecond),
      fmtMs(r.snapshot!.ms),
      fmtRate(snapRate),
      fmtRatio(snapRate / baseline.perSecond),
    ];
  });
  log('\nResults');
  log(renderTable(header, table));
  log('');
  log(`a. sequential Consensus.compareAndSet on one key, seqno +1, ${CAS_PAYLOAD_BYTES}-byte payload, ${SECONDS} s.`);
  log(`b. sequential WriteHandle.compareAndAppend, one update per append, ${SECONDS} s, default config`);
  log('   (background compaction, rollups and GC on); b/a = appends per raw CaS.');
  log(
    `c. snapshotAndFetch(upper - 1) of ${fmtInt(SNAPSHOT_UPDATES)} distinct keys written as ${SNAPSHOT_BATCHES} batches, ` +
      'after maintenance settled;',
  );
  log(`   c/decode = snapshot updates/s ÷ Codecs.string.decode keys/s (${fmtRate(baseline.perSecond)}/s, measured above).`);
  return failed ? 1 : 0;
}

const code = await main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof UsageError ? err.message : ((err as Error).stack ?? String(err))}\n`);
  return 1;
});
process.exitCode = code;
