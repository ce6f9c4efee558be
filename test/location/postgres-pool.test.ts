/**
 * PostgresPool, through PostgresConsensus: what a dropped connection does to the one
 * call using it (and only to it), that the process survives, that the pool recovers
 * after a server restart, and that close() settles every call. The timestamp oracle
 * shares the pool; its twins of these scenarios are in test/coord/postgres-oracle.test.ts.
 */
import { expect } from 'chai';
import pg from 'pg';
import { DeterminateError, IndeterminateError, LocationUsageError } from '../../src/location/errors.js';
import { PostgresConsensus } from '../../src/location/postgres-consensus.js';
import { APPLICATION_NAME } from '../../src/location/postgres-pool.js';
import { observe, rejection } from '../support/async.js';
import { utf8 } from '../support/bytes.js';
import {
  connectAdmin,
  freshTestDatabaseUrl,
  restartTestPostgres,
  runDropChild,
  sessionPids,
  terminateBackends,
  waitUntilBlocked,
} from '../support/postgres.js';

describe('PostgresPool (through PostgresConsensus)', function () {
  let url: string;
  let admin: pg.Client;

  before(async function () {
    this.timeout(60_000);
    url = await freshTestDatabaseUrl();
  });

  beforeEach(async function () {
    admin = await connectAdmin(url);
  });

  afterEach(async function () {
    await admin.end();
  });

  /** Locks the whole consensus table from the admin connection, so every statement on it blocks. */
  async function lockTable(): Promise<void> {
    await admin.query('BEGIN');
    await admin.query('LOCK TABLE consensus IN ACCESS EXCLUSIVE MODE');
  }

  it('the process survives its connections being terminated again and again under load', async function () {
    this.timeout(120_000);
    const report = await runDropChild('consensus', url);
    expect(report.unexpected).to.deep.equal([]);
    // The terminations did hit calls in flight, and only those calls failed.
    expect(Object.keys(report.failures).length).to.be.greaterThan(0);
    expect(report.afterwards).to.equal('ok');
  });

  it('keeps poolMin connections warm after a burst, so the next statements need no new connection', async function () {
    const c = await PostgresConsensus.open(url, { poolMin: 2, idleTimeoutMs: 50 });
    /** `n` heads at once, each on its own connection: the table is locked until all of them wait. */
    const burst = async (n: number) => {
      await lockTable();
      const heads = Array.from({ length: n }, (_, i) => c.head(`warm-${i}`));
      while ((await sessionPids(admin, APPLICATION_NAME)).length < n) await new Promise((r) => setImmediate(r));
      await waitUntilBlocked(admin, '%FROM consensus%');
      await admin.query('ROLLBACK');
      await Promise.all(heads);
    };
    try {
      await burst(5);
      // The three beyond poolMin close once idle for 50 ms; two stay however long they sit.
      let pids = await sessionPids(admin, APPLICATION_NAME);
      while (pids.length > 2) pids = await sessionPids(admin, APPLICATION_NAME);
      expect(pids).to.have.length(2);
      // A burst of two runs on those two: no connection is made (a new one would be a new server process).
      await burst(2);
      expect(await sessionPids(admin, APPLICATION_NAME)).to.deep.equal(pids);
    } finally {
      await c.close();
    }
  });

  it('a read whose connection is terminated fails determinately, and the next read works', async function () {
    const c = await PostgresConsensus.open(url);
    try {
      await c.compareAndSet('read-killed', undefined, { seqno: 1, data: utf8('x') });
      await lockTable();
      const head = observe(c.head('read-killed'));
      await waitUntilBlocked(admin, '%FROM consensus%');
      expect(await terminateBackends(admin, "wait_event_type = 'Lock'")).to.equal(1);
      const err = await rejection(head.promise);
      expect(err).to.be.instanceOf(DeterminateError);
      expect(err.message).to.include('head "read-killed"');
      await admin.query('ROLLBACK');
      expect((await c.head('read-killed'))?.seqno).to.equal(1);
    } finally {
      await c.close();
    }
  });

  it('close() cuts off a statement stuck in the server: a write in flight rejects as indeterminate', async function () {
    this.timeout(10_000);
    const c = await PostgresConsensus.open(url, { closeGraceMs: 50 });
    await c.compareAndSet('close-cas', undefined, { seqno: 1, data: utf8('x') });
    await lockTable();
    const cas = observe(c.compareAndSet('close-cas', 1, { seqno: 2, data: utf8('y') }));
    await waitUntilBlocked(admin, '%last_seq%');
    await c.close();
    const err = await rejection(cas.promise);
    expect(err).to.be.instanceOf(IndeterminateError);
    expect(err.message).to.include('closed while the statement was in flight');
    await admin.query('ROLLBACK');
  });

  it('close() rejects a call still waiting for a connection at once, with a closed-store usage error', async function () {
    this.timeout(10_000);
    const c = await PostgresConsensus.open(url, { poolMax: 1, closeGraceMs: 50, connectTimeoutMs: 60_000 });
    await lockTable();
    const first = observe(c.head('close-wait'));
    await waitUntilBlocked(admin, '%FROM consensus%');
    // The only connection is busy: this one waits in the pool's queue.
    const second = observe(c.head('close-wait-2'));
    await c.close();
    expect(await rejection(second.promise)).to.be.instanceOf(LocationUsageError);
    expect(await rejection(first.promise)).to.be.instanceOf(DeterminateError);
    await admin.query('ROLLBACK');
    expect(await rejection(c.head('after-close'))).to.be.instanceOf(LocationUsageError);
  });

  it('keeps working across a server restart without being reopened', async function () {
    this.timeout(60_000);
    const c = await PostgresConsensus.open(url);
    try {
      expect(await c.compareAndSet('restart', undefined, { seqno: 1, data: utf8('x') })).to.equal('committed');
      await admin.end();
      if (!(await restartTestPostgres())) this.skip();
      expect((await c.head('restart'))?.seqno).to.equal(1);
      expect(await c.compareAndSet('restart', 1, { seqno: 2, data: utf8('y') })).to.equal('committed');
    } finally {
      admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await c.close();
    }
  });
});
