/**
 * `txnwal serve-metrics`, run as the built command against `file:` and Postgres
 * stores made by the library, scraped over HTTP:
 * - the families have help and TYPE lines and follow the naming conventions
 *   (test/support/metrics.ts), and their values are what the library sees: the
 *   uppers, the catalog, and a transaction the test leaves unapplied, counted as
 *   `not_applied`;
 * - serving changes nothing: every Consensus head is the same afterwards;
 * - during a workload written through `openDatabase` in the test process, a
 *   collection's logical upper moves past each commit (waited for by scraping
 *   again), the next apply finishes the unapplied transaction, and the refresh
 *   histogram counts reads;
 * - values are cached for `--interval-ms`: a write in between is not seen and no read
 *   is made; two refreshes asked for at once are one read (in process);
 * - a read that fails after startup is counted, drops the store's series and is
 *   logged once; the next good read brings them back;
 * - startup errors are one line and exit 1 before anything listens; SIGINT exits 0.
 */
import { cp, mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { Codecs, newShardId, openDatabase, PersistClient, type Database as TxnwalDatabase, type ShardId } from '../../src/index.js';
import { StoreExporter } from '../../src/cli/store-exporter.js';
import { StoreView } from '../../src/cli/store.js';
import { conventionProblems, parseExposition, sample, type Family } from '../support/metrics.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';
import type { ChildResult } from '../support/run-child.js';
import { builtCli, consensusHeads, leaveUnapplied, libraryView, makeBank, runCli, spawnCli, tempDir, type LibraryView, type RunningCli } from './cli-support.js';

const BYTES = { key: Codecs.bytes, val: Codecs.bytes };

/** Every family the command serves, with its type. */
const FAMILIES: Record<string, string> = {
  txnwal_store_up: 'gauge',
  txnwal_store_collections: 'gauge',
  txnwal_store_read_timestamp_seconds: 'gauge',
  txnwal_store_refresh_seconds: 'histogram',
  txnwal_store_refresh_errors_total: 'counter',
  txnwal_collection_physical_upper: 'gauge',
  txnwal_collection_logical_upper: 'gauge',
  txnwal_collection_since: 'gauge',
  txnwal_collection_batches: 'gauge',
  txnwal_collection_parts: 'gauge',
  txnwal_collection_bytes: 'gauge',
  txnwal_collection_readers: 'gauge',
  txnwal_collection_writers: 'gauge',
  txnwal_collection_unapplied_batches: 'gauge',
  txnwal_txns_upper: 'gauge',
  txnwal_txns_since: 'gauge',
  txnwal_txns_parts: 'gauge',
  txnwal_txns_bytes: 'gauge',
  txnwal_txns_readers: 'gauge',
  txnwal_txns_unapplied: 'gauge',
  txnwal_txns_unapplied_batches: 'gauge',
  txnwal_txns_unapplied_bytes: 'gauge',
  txnwal_txns_oldest_unapplied_ts: 'gauge',
  txnwal_txns_upper_age_seconds: 'gauge',
};

/** The families that describe the store, absent while a read fails. */
const STORE_SERIES = Object.keys(FAMILIES).filter((n) => !/^txnwal_store_(up|refresh_)/.test(n));

interface Served {
  cli: RunningCli;
  url: string;
}

/** Starts serve-metrics on a free port and waits for the URL it prints. */
async function serve(storeUrl: string, extra: string[] = []): Promise<Served> {
  const cli = await spawnCli(['serve-metrics', storeUrl, '--port', '0', ...extra]);
  const [line] = await cli.waitFor((ls) => ls.length >= 1, 'the scrape URL');
  expect(line).to.match(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  return { cli, url: line! };
}

async function scrapeHttp(url: string): Promise<Map<string, Family>> {
  const res = await fetch(url);
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** Scrapes until `cond` holds: the values are read at scrape time, so scraping again is the wait. */
async function scrapeUntil(url: string, cond: (f: Map<string, Family>) => boolean, what: string, ms = 60_000): Promise<Map<string, Family>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const f = await scrapeHttp(url);
    if (cond(f)) return f;
    if (Date.now() > deadline) expect.fail(`timed out after ${ms} ms scraping for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Resolves once the command's stderr matches `re` (checked at every chunk it writes). */
function stderrMatches(cli: RunningCli, re: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (re.test(cli.stderr())) {
        cli.child.stderr.off('data', check);
        resolve();
      }
    };
    // After cli-support's own listener: stderr() already holds the chunk.
    cli.child.stderr.on('data', check);
    void cli.exited.then(() => reject(new Error(`the command exited before ${what}; stderr:\n${cli.stderr()}`)));
    check();
  });
}

/** SIGINT, then the exit code and how long it took. */
async function interrupt(served: Served): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  served.cli.child.kill('SIGINT');
  const { code } = await served.cli.exited;
  return { code, ms: Date.now() - started };
}

async function stop(served: Served): Promise<void> {
  const { code, ms } = await interrupt(served);
  expect(code, `exit code after SIGINT; stderr: ${served.cli.stderr()}`).to.equal(0);
  expect(ms, 'exits promptly after SIGINT').to.be.below(5_000);
}

function scenario(kind: string, makeUrl: () => Promise<{ url: string; cleanup: () => Promise<void> }>): void {
  describe(`txnwal serve-metrics on a ${kind} store`, function () {
    this.timeout(180_000);
    let url: string;
    let cleanup: () => Promise<void>;
    let lib: LibraryView;
    let pendingTs: number;
    let db: TxnwalDatabase | undefined;

    before(async () => {
      await builtCli();
      ({ url, cleanup } = await makeUrl());
      const bank = await makeBank(url);
      const collections = await bank.db.collections();
      const txnsId = bank.db.txnsId;
      await bank.db.close();
      const accounts = collections.find((c) => c.name === 'accounts')!;
      pendingTs = await leaveUnapplied(url, txnsId, accounts.shardId, [['dave', 3]]);
      lib = await libraryView(url, collections, txnsId);
    });
    after(async () => {
      await db?.close();
      await cleanup?.();
    });

    it('serves every family with help and TYPE, by the conventions, with the values the library sees; changes nothing', async () => {
      const heads = await consensusHeads(url);
      const served = await serve(url, ['--interval-ms', '0']);
      try {
        const f = await scrapeHttp(served.url);
        expect(conventionProblems(f)).to.deep.equal([]);
        const types = Object.fromEntries([...f.values()].map((x) => [x.name, x.type]));
        expect(types).to.deep.equal(FAMILIES);
        for (const x of f.values()) expect(x.help, `${x.name} help`).to.have.length.above(10);

        expect(sample(f, 'txnwal_store_up')).to.equal(1);
        expect(sample(f, 'txnwal_store_collections')).to.equal(2);
        expect(sample(f, 'txnwal_store_refresh_errors_total')).to.equal(0);
        expect(sample(f, 'txnwal_store_refresh_seconds_count')).to.be.at.least(1);
        expect(sample(f, 'txnwal_txns_upper')).to.equal(lib.txnsUpper);
        for (const c of lib.collections) {
          const labels = { collection: c.name };
          expect(sample(f, 'txnwal_collection_physical_upper', labels), `${c.name} physical upper`).to.equal(lib.uppers.get(c.shardId));
          expect(sample(f, 'txnwal_collection_logical_upper', labels), `${c.name} logical upper is the txns upper`).to.equal(lib.txnsUpper);
          expect(sample(f, 'txnwal_collection_since', labels)).to.be.at.most(lib.uppers.get(c.shardId)!);
          expect(sample(f, 'txnwal_collection_parts', labels), `${c.name} parts`).to.be.above(0);
          expect(sample(f, 'txnwal_collection_bytes', labels), `${c.name} bytes`).to.be.above(0);
        }
        expect(sample(f, 'txnwal_txns_readers', { kind: 'critical' }), 'the txns shard has its critical since handle').to.be.at.least(1);

        // The transaction left unapplied: one commit time, one batch of accounts, not applied.
        expect(sample(f, 'txnwal_txns_unapplied', { state: 'not_applied' })).to.equal(1);
        expect(sample(f, 'txnwal_txns_unapplied_batches', { state: 'not_applied' })).to.equal(1);
        expect(sample(f, 'txnwal_txns_unapplied_bytes', { state: 'not_applied' })).to.be.above(0);
        expect(sample(f, 'txnwal_collection_unapplied_batches', { collection: 'accounts', state: 'not_applied' })).to.equal(1);
        expect(sample(f, 'txnwal_collection_unapplied_batches', { collection: 'audit', state: 'not_applied' })).to.equal(0);
        expect(lib.uppers.get(lib.collections.find((c) => c.name === 'accounts')!.shardId), 'the data upper is not past the unapplied commit').to.be.at.most(pendingTs);
        // Both states together are what the library's TxnsCache counts as unapplied.
        const batches = sample(f, 'txnwal_txns_unapplied_batches', { state: 'not_applied' }) + sample(f, 'txnwal_txns_unapplied_batches', { state: 'applied' });
        expect(batches).to.equal(lib.unapplied.length);
        expect(sample(f, 'txnwal_txns_oldest_unapplied_ts')).to.equal(Math.min(...lib.unapplied.map((u) => u.ts)));
        // Timestamps here are the default oracle's wall-clock milliseconds: the age is a plausible number of seconds.
        const age = sample(f, 'txnwal_txns_upper_age_seconds');
        expect(age).to.be.above(-60).and.below(3600);

        // Scrape a few more times, each a fresh read (--interval-ms 0).
        for (let i = 0; i < 3; i++) await scrapeHttp(served.url);
        const last = await scrapeHttp(served.url);
        expect(sample(last, 'txnwal_store_refresh_seconds_count')).to.be.above(sample(f, 'txnwal_store_refresh_seconds_count'));
      } finally {
        await stop(served);
      }
      expect(served.cli.stderr()).to.equal('');
      expect(await consensusHeads(url), 'every Consensus head is unchanged').to.deep.equal(heads);
    });

    it('during a workload: the logical upper moves past each commit, the next apply finishes the unapplied transaction', async () => {
      db = await openDatabase(url);
      await db.collection('accounts', { key: Codecs.string, val: Codecs.unit });
      await db.collection('audit', { key: Codecs.json(), val: Codecs.unit });
      const served = await serve(url, ['--interval-ms', '20']);
      try {
        const first = await scrapeHttp(served.url);
        const before = sample(first, 'txnwal_collection_logical_upper', { collection: 'accounts' });
        let commitTs = 0;
        for (let i = 0; i < 5; i++) {
          ({ commitTs } = await db.write({ accounts: [[`w${i}`, null, 1]], audit: [[{ i }, null, 1]] }));
          const ts = commitTs;
          await scrapeUntil(served.url, (f) => sample(f, 'txnwal_collection_logical_upper', { collection: 'accounts' }) > ts, `accounts' logical upper past ${ts}`);
        }
        expect(commitTs).to.be.above(before);
        const f = await scrapeUntil(
          served.url,
          (x) => sample(x, 'txnwal_txns_unapplied', { state: 'not_applied' }) === 0,
          'the apply after the first write to finish the transaction left unapplied',
        );
        expect(sample(f, 'txnwal_collection_physical_upper', { collection: 'accounts' }), 'applied: the data upper is past it').to.be.above(pendingTs);
        expect(sample(f, 'txnwal_collection_logical_upper', { collection: 'audit' })).to.be.above(commitTs);
        expect(sample(f, 'txnwal_store_refresh_seconds_count'), 'the refresh histogram counts reads').to.be.above(sample(first, 'txnwal_store_refresh_seconds_count'));
        expect(conventionProblems(f)).to.deep.equal([]);
      } finally {
        await stop(served);
      }
    });

    it('caches between scrapes: within --interval-ms a write is not seen and the store is not read again', async () => {
      const served = await serve(url, ['--interval-ms', '600000']);
      try {
        const first = await scrapeHttp(served.url);
        const upper = sample(first, 'txnwal_txns_upper');
        const { commitTs } = await db!.write({ accounts: [['cached', null, 1]] });
        expect(commitTs).to.be.at.least(upper);
        const again = await Promise.all([1, 2, 3, 4, 5].map(() => scrapeHttp(served.url)));
        for (const f of again) {
          expect(sample(f, 'txnwal_txns_upper'), 'the cached upper').to.equal(upper);
          expect(sample(f, 'txnwal_store_refresh_seconds_count'), 'only the startup read').to.equal(1);
          expect(sample(f, 'txnwal_store_read_timestamp_seconds')).to.equal(sample(first, 'txnwal_store_read_timestamp_seconds'));
        }
      } finally {
        await stop(served);
      }
    });
  });
}

scenario('file:', async () => {
  const dir = await tempDir('txnwal-cli-serve-');
  return { url: `file:${path.join(dir, 'data')}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

scenario('Postgres', async () => {
  const dir = await tempDir('txnwal-cli-serve-pg-');
  const pgUrl = await freshTestDatabaseUrl();
  return { url: `${pgUrl}?blob=file:${path.join(dir, 'blob')}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

function expectOneLine(r: ChildResult, pattern: RegExp): void {
  const context = `stderr:\n${r.stderr}\nstdout:\n${r.stdout}`;
  expect(r.code, context).to.equal(1);
  expect(r.stdout, `${context}\nnothing on stdout: it never listened`).to.equal('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, context).to.have.length(1);
  expect(lines[0], context).to.match(/^txnwal: /);
  expect(lines[0], context).to.match(pattern);
  expect(r.stderr, 'no stack trace').to.not.match(/\n\s+at /);
}

describe('txnwal serve-metrics: refreshing, failures and startup errors', function () {
  this.timeout(180_000);
  let dir: string;
  let url: string;
  let txnsId: ShardId;

  before(async () => {
    await builtCli();
    dir = await tempDir('txnwal-cli-serve-errors-');
    url = `file:${path.join(dir, 'data')}`;
    const { db } = await makeBank(url);
    txnsId = db.txnsId;
    await db.close();
  });
  after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it('two refreshes asked for at once are one read, so is one scrape of every family; within the interval, none', async () => {
    const store = await StoreView.open(url);
    try {
      const exporter = await StoreExporter.open(store, { intervalMs: 0 });
      const count = async () => sample(parseExposition(await exporter.registry.metrics()), 'txnwal_store_refresh_seconds_count');
      const a = exporter.fresh();
      const b = exporter.fresh();
      expect(b, 'the second caller waits for the read in progress').to.equal(a);
      await a;
      // The startup read and that one; then one scrape: every family asks for a fresh sample, and they share one read.
      expect(await count()).to.equal(3);
      expect(exporter.sample!.collections.map((c) => c.name)).to.deep.equal(['accounts', 'audit']);
      await exporter.close();
      const cached = await StoreExporter.open(store, { intervalMs: 600_000 });
      await Promise.all([cached.fresh(), cached.fresh(), cached.registry.metrics()]);
      expect(sample(parseExposition(await cached.registry.metrics()), 'txnwal_store_refresh_seconds_count'), 'none after the startup read, within the interval').to.equal(1);
    } finally {
      await store.close();
    }
  });

  it('a read that fails after startup: counted, the store series dropped, logged once; the next good read brings them back', async () => {
    // A copy of the store, so the garbage row does not reach the other tests.
    const copy = path.join(dir, 'copy');
    await cp(path.join(dir, 'data'), copy, { recursive: true });
    const served = await serve(`file:${copy}`, ['--interval-ms', '0']);
    try {
      const good = await scrapeHttp(served.url);
      expect(sample(good, 'txnwal_store_up')).to.equal(1);
      // A garbled next state version of the txns shard: the next read fails to decode it.
      const rw = new Database(path.join(copy, 'consensus.sqlite'));
      const { seq } = rw.prepare('SELECT MAX(sequence_number) AS seq FROM consensus WHERE shard = ?').get(txnsId) as { seq: number };
      rw.prepare('INSERT INTO consensus (shard, sequence_number, data) VALUES (?, ?, ?)').run(txnsId, seq + 1, Buffer.from('garbage, not a state diff'));
      try {
        const bad = await scrapeUntil(served.url, (f) => sample(f, 'txnwal_store_up') === 0, 'txnwal_store_up 0');
        expect(sample(bad, 'txnwal_store_refresh_errors_total')).to.be.at.least(1);
        for (const name of STORE_SERIES) expect(bad.get(name)?.samples ?? [], `${name}: no series while the store cannot be read`).to.deep.equal([]);
        await stderrMatches(served.cli, /reading .* failed: the store is corrupt/, 'the failure logged');
        await scrapeHttp(served.url);
        expect(served.cli.stderr().trimEnd().split('\n'), 'logged once, not per scrape').to.have.length(1);
      } finally {
        rw.prepare('DELETE FROM consensus WHERE shard = ? AND sequence_number = ?').run(txnsId, seq + 1);
        rw.close();
      }
      const back = await scrapeUntil(served.url, (f) => sample(f, 'txnwal_store_up') === 1, 'txnwal_store_up 1 again');
      expect(sample(back, 'txnwal_collection_logical_upper', { collection: 'accounts' })).to.equal(sample(good, 'txnwal_collection_logical_upper', { collection: 'accounts' }));
      await stderrMatches(served.cli, /reading .* works again/, 'the recovery logged');
    } finally {
      await stop(served);
    }
  });

  it('--help lists the options and families; --json prints the URL as JSON', async () => {
    const help = await runCli(['serve-metrics', '--help']);
    expect(help.code, help.stderr).to.equal(0);
    expect(help.stdout).to.match(/^Usage: txnwal serve-metrics/).and.include('--port <port>').and.include('--host <host>').and.include('--interval-ms <ms>');
    expect(help.stdout).to.include('txnwal_txns_upper_age_seconds').and.include('wall-clock').and.include('Examples:');
    expect((await runCli(['--help'])).stdout).to.match(/^  serve-metrics /m);
    const cli = await spawnCli(['serve-metrics', url, '--port', '0', '--json']);
    const served = { cli, url: '' };
    try {
      const [line] = await cli.waitFor((ls) => ls.length >= 1, 'the JSON line');
      served.url = (JSON.parse(line!) as { url: string }).url;
      expect(sample(await scrapeHttp(served.url), 'txnwal_store_up')).to.equal(1);
    } finally {
      await stop(served);
    }
    expect(cli.lines.filter((l) => l !== ''), 'nothing else on stdout').to.have.length(1);
  });

  it('startup errors are one line and exit 1, before listening', async () => {
    expectOneLine(await runCli(['serve-metrics', 'bogus://x']), /unsupported location URL "bogus:\/\/x"/);
    expectOneLine(await runCli(['serve-metrics', `file:${path.join(dir, 'no', 'such')}`]), /the store directory .*no\/such does not exist/);
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    expectOneLine(await runCli(['serve-metrics', `file:${empty}`]), /is not a txnwal store/);
    // Persist shards but no database catalog: no collections to export.
    const bare = `file:${path.join(dir, 'bare')}`;
    const client = await PersistClient.open(bare);
    const w = await client.openWriter(newShardId(), BYTES);
    await w.expire();
    await client.close();
    expectOneLine(await runCli(['serve-metrics', bare]), /holds persist shards but no txnwal database catalog/);
    expectOneLine(await runCli(['serve-metrics', url, '--port', '70000']), /--port <port>.*expected a TCP port, an integer from 0 to 65535/);
    expectOneLine(await runCli(['serve-metrics', url, '--interval-ms', 'soon']), /--interval-ms <ms>.*expected milliseconds/);
    // A port in use.
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as { port: number }).port;
      expectOneLine(await runCli(['serve-metrics', url, '--port', String(port)]), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use; pick another --port`));
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
