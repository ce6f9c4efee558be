/**
 * Scraping over HTTP, as Prometheus does: `serveMetrics` on a free port during a
 * database workload (two scrapes: names, TYPE lines, counters that increase), the
 * handler mounted in a server of the user's own, and the answers to wrong methods,
 * wrong paths and bad options.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { Codecs, InvalidArgument } from '../../src/index.js';
import { metricsHandler, openDatabase, serveMetrics, type Database, type MetricsServer } from '../../src/db/index.js';
import { Metrics } from '../../src/persist/metrics.js';
import { conventionProblems, parseExposition, sample, type Family } from '../support/metrics.js';

const STRING_UNIT = { key: Codecs.string, val: Codecs.unit };
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

async function get(url: string, init?: RequestInit): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(url, init);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('db: metrics over HTTP', function () {
  this.timeout(60_000);
  let db: Database | undefined;
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    await db?.close();
    server = undefined;
    db = undefined;
  });

  it('serveMetrics during a workload: two scrapes parse, carry TYPE lines, and their counters increase', async () => {
    const metrics = Metrics.forRegistry(new Registry());
    db = await openDatabase('mem://', { metrics });
    await db.collection('accounts', STRING_UNIT);
    server = await serveMetrics(db, { port: 0 });
    expect(server.url).to.equal(`http://127.0.0.1:${server.port}/metrics`);

    // A workload that keeps committing while we scrape.
    let stop = false;
    let written = 0;
    let onWrite: (() => void) | undefined;
    const workload = (async () => {
      for (let i = 0; !stop; i++) {
        await db!.write({ accounts: [[`k${i}`, null, 1]] });
        written++;
        onWrite?.();
      }
    })();
    /** Resolves once the workload has committed `n` writes in all. */
    const waitForWrites = (n: number) =>
      new Promise<void>((resolve) => {
        onWrite = () => {
          if (written >= n) resolve();
        };
        onWrite();
      });
    const scrapeOnce = async (): Promise<Map<string, Family>> => {
      const res = await get(server!.url);
      expect(res.status).to.equal(200);
      expect(res.type).to.equal(CONTENT_TYPE);
      return parseExposition(res.body);
    };
    await waitForWrites(3);
    const first = await scrapeOnce();
    const seen = written;
    await waitForWrites(seen + 3);
    const second = await scrapeOnce();
    stop = true;
    await workload;

    expect(conventionProblems(second)).to.deep.equal([]);
    for (const [name, type] of [
      ['txnwal_consensus_compare_and_sets_total', 'counter'],
      ['txnwal_txn_ops_started_total', 'counter'],
      ['txnwal_group_commits_total', 'counter'],
      ['txnwal_group_commit_group_size', 'histogram'],
      ['txnwal_storage_call_duration_seconds', 'histogram'],
      ['txnwal_group_commit_queue_depth', 'gauge'],
    ] as const) {
      expect(second.get(name)?.type, `TYPE of ${name}`).to.equal(type);
    }
    const moved: [string, Record<string, string>][] = [
      ['txnwal_consensus_compare_and_sets_total', { outcome: 'committed' }],
      ['txnwal_txn_ops_succeeded_total', { op: 'commit' }],
      ['txnwal_group_commits_total', { outcome: 'committed' }],
      ['txnwal_group_commit_group_size_count', {}],
      ['txnwal_storage_call_duration_seconds_count', { call: 'consensus_compare_and_set' }],
    ];
    for (const [name, labels] of moved) {
      expect(sample(second, name, labels), `${name} increased between scrapes`).to.be.greaterThan(sample(first, name, labels));
    }
  });

  it('answers HEAD without a body, other methods with 405, other paths with 404; close() ends it', async () => {
    const registry = new Registry();
    server = await serveMetrics(registry, { port: 0, path: '/scrape' });
    const head = await fetch(server.url, { method: 'HEAD' });
    expect(head.status).to.equal(200);
    expect(await head.text()).to.equal('');
    const post = await get(server.url, { method: 'POST' });
    expect(post.status).to.equal(405);
    expect(post.body).to.match(/metrics are read with GET/);
    const elsewhere = await get(server.url.replace('/scrape', '/metrics'));
    expect(elsewhere.status).to.equal(404);
    expect(elsewhere.body).to.match(/metrics are at \/scrape/);
    const url = server.url;
    await server.close();
    await server.close(); // idempotent
    server = undefined;
    let refused = false;
    await fetch(url).catch(() => (refused = true));
    expect(refused, 'nothing listens after close()').to.equal(true);
  });

  it("metricsHandler mounts in the user's own server; db.metricsHandler and db.serveMetrics do the same", async () => {
    const metrics = Metrics.forRegistry(new Registry());
    db = await openDatabase('mem://', { metrics });
    await db.collection('x', STRING_UNIT);
    await db.write({ x: [['1', null, 1]] });
    const scrape = db.metricsHandler();
    const fromMetrics = metricsHandler(metrics);
    const own: Server = createServer((req, res) => {
      if (req.url === '/metrics') return scrape(req, res);
      if (req.url === '/metrics2') return fromMetrics(req, res);
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('the app');
    });
    await new Promise<void>((resolve) => own.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(own.address() as AddressInfo).port}`;
      expect((await get(`${base}/`)).body).to.equal('the app');
      const a = await get(`${base}/metrics`);
      const b = await get(`${base}/metrics2`);
      expect(a.type).to.equal(CONTENT_TYPE);
      expect(sample(parseExposition(a.body), 'txnwal_group_commits_total', { outcome: 'committed' })).to.be.greaterThan(0);
      expect(parseExposition(b.body).has('txnwal_group_commits_total')).to.equal(true);
    } finally {
      own.closeAllConnections();
      await new Promise<void>((resolve) => own.close(() => resolve()));
    }
    server = await db.serveMetrics({ port: 0 });
    expect(parseExposition((await get(server.url)).body).has('txnwal_txn_ops_started_total')).to.equal(true);
  });

  it('refuses bad sources and options with errors that say what to pass', async () => {
    expect(() => metricsHandler({} as Registry)).to.throw(InvalidArgument, /a Database, a Metrics object or a prom-client Registry/);
    const registry = new Registry();
    for (const [opts, message] of [
      [{}, /serveMetrics option port must be a TCP port/],
      [{ port: -1 }, /port must be a TCP port, an integer 0–65535/],
      [{ port: 70000 }, /0–65535/],
      [{ port: 0, path: 'metrics' }, /path must be a path starting with '\/'/],
    ] as const) {
      let err: unknown;
      try {
        await serveMetrics(registry, opts as { port: number });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(opts)).to.be.instanceOf(InvalidArgument);
      expect((err as Error).message).to.match(message);
    }
    // A port in use is a clear error naming it.
    server = await serveMetrics(registry, { port: 0 });
    let err: unknown;
    try {
      await serveMetrics(registry, { port: server.port });
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.match(new RegExp(`could not listen on 127\\.0\\.0\\.1:${server.port}: .*EADDRINUSE`));
  });
});
