/**
 * Read-write transactions at each isolation level, in one process (one host, its
 * key locks) and across two "processes" (two clients, two TxnsHandles on one
 * txns shard, no shared locks): lost updates are prevented everywhere, write skew is
 * allowed under snapshot and prevented under serializable, reads never see dirty or
 * skewed data, and the seed 004 scenario (read at 23, a commit at 24, refresh to
 * 25, commit at 26).
 */
import { expect } from 'chai';
import { LogicalClock } from '../../src/coord/logical-clock.js';
import { KeyLocks, LockConflict } from '../../src/db/key-locks.js';
import { ISOLATION_LEVELS, ReadWriteTransaction, type IsolationLevel } from '../../src/db/read-write-transaction.js';
import { TransactionClosed, ValidationFailed } from '../../src/db/transaction-errors.js';
import { TxnsTransactionHost } from '../../src/db/txns-transaction-host.js';
import { transact } from '../../src/db/transact.js';
import { TooManyConflicts } from '../../src/db/transaction-errors.js';
import { xorshift32 } from '../support/rng.js';
import { openLocation } from '../../src/location/location.js';
import { PersistClient } from '../../src/persist/client.js';
import { Codecs } from '../../src/persist/codec.js';
import { InvalidUsage } from '../../src/persist/errors.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { TxnsHandle } from '../../src/txn/txns-handle.js';
import { observe } from '../support/async.js';
import { expectReject } from '../support/persist.js';
import { testMetrics } from '../support/txn.js';

const CODECS = { key: Codecs.string, val: Codecs.json<number>() };
const FAST = { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 10 } };

interface Proc {
  client: PersistClient;
  txns: TxnsHandle<string, number>;
  host: TxnsTransactionHost<string, number>;
  close(): Promise<void>;
}

/** One "process": its own client, TxnsHandle and host, on the shared in-memory location. */
async function proc(locationName: string, txnsId: ShardId, dataIds: ShardId[], oracle?: LogicalClock): Promise<Proc> {
  const client = await PersistClient.open(await openLocation(`mem://${locationName}`), { config: FAST });
  const txns = await TxnsHandle.open(client, { txnsId, codecs: CODECS, initTs: 0, metrics: testMetrics });
  const writers = await Promise.all(dataIds.map((id) => client.openWriter(id, CODECS)));
  // Registering a shard that is already registered only hands this handle its writer.
  for (let ts = await txns.fetchRecentUpper(); ; ) {
    const res = await txns.register(ts, writers);
    if (res.ok) break;
    ts = res.current;
  }
  const host = new TxnsTransactionHost(txns, { oracle, locks: new KeyLocks() });
  return {
    client,
    txns,
    host,
    async close() {
      await host.close();
      await txns.close();
      await client.close();
    },
  };
}

describe('db: read-write transactions', function () {
  this.timeout(30_000);
  let procs: Proc[] = [];
  let names = 0;
  afterEach(async () => {
    for (const p of procs.reverse()) await p.close();
    procs = [];
  });

  async function setup(processes: number, oracle?: LogicalClock): Promise<{ ps: Proc[]; data: ShardId }> {
    const name = `rw-txn-${process.pid}-${names++}`;
    const txnsId = newShardId();
    const data = newShardId();
    for (let i = 0; i < processes; i++) procs.push(await proc(name, txnsId, [data], oracle));
    return { ps: procs, data };
  }

  /** Commits `values` in one transaction (at any level) and returns its commit time. */
  async function put(p: Proc, data: ShardId, values: Record<string, number>, isolation?: IsolationLevel): Promise<number> {
    const coll = p.host.collection(data);
    const tx = await ReadWriteTransaction.begin(p.host, { isolation });
    for (const [k, v] of Object.entries(values)) await tx.set(coll, k, v);
    return (await tx.commit()).commitTs;
  }

  for (const isolation of ISOLATION_LEVELS) {
    describe(`at ${isolation}`, () => {
      const oracleFor = () => (isolation === 'strict-serializable' ? new LogicalClock() : undefined);

      it('reads its own writes, commits atomically, and a later transaction reads the commit', async () => {
        const { ps, data } = await setup(1, oracleFor());
        const p = ps[0]!;
        const coll = p.host.collection(data);
        const tx = await ReadWriteTransaction.begin(p.host, { isolation });
        expect(await tx.get(coll, 'alice')).to.equal(undefined);
        await tx.set(coll, 'alice', 10);
        await tx.set(coll, 'bob', 5);
        expect(await tx.get(coll, 'alice')).to.equal(10);
        expect(await tx.scan(coll)).to.deep.equal([
          ['alice', 10, 1],
          ['bob', 5, 1],
        ]);
        const { commitTs } = await tx.commit();
        const next = await ReadWriteTransaction.begin(p.host, { isolation });
        expect(next.readTs).to.be.at.least(commitTs);
        expect(await next.get(coll, 'alice')).to.equal(10);
        await next.delete(coll, 'bob');
        await next.commit();
        const last = await ReadWriteTransaction.begin(p.host, { isolation });
        expect(await last.scan(coll)).to.deep.equal([['alice', 10, 1]]);
        last.abort();
        await expectReject(last.commit(), TransactionClosed, /already aborted/);
      });

      it('prevents lost updates across processes: the second read-modify-write of a key fails validation', async () => {
        const { ps, data } = await setup(2, oracleFor());
        const [a, b] = ps as [Proc, Proc];
        await put(a, data, { x: 0 }, isolation);
        const ca = a.host.collection(data);
        const cb = b.host.collection(data);
        const t1 = await ReadWriteTransaction.begin(a.host, { isolation });
        const t2 = await ReadWriteTransaction.begin(b.host, { isolation });
        // Both read the same committed value (no one's writes are visible to the other).
        const x1 = (await t1.get(ca, 'x'))!;
        const x2 = (await t2.get(cb, 'x'))!;
        expect([x1, x2]).to.deep.equal([0, 0]);
        await t1.set(ca, 'x', x1 + 1);
        await t2.set(cb, 'x', x2 + 1);
        const { commitTs } = await t1.commit();
        const err = (await expectReject(t2.commit(), ValidationFailed, /key "x".*changed at/)) as ValidationFailed;
        expect(err.conflictTs).to.equal(commitTs);
        expect(err.use).to.equal('write');
        const check = await ReadWriteTransaction.begin(b.host, { isolation });
        expect(await check.get(cb, 'x')).to.equal(1);
        check.abort();
      });

      it('prevents lost updates in one process: the older transaction waits for the lock, then fails validation; the younger dies at once', async () => {
        const { ps, data } = await setup(1, oracleFor());
        const p = ps[0]!;
        await put(p, data, { x: 0 }, isolation);
        const coll = p.host.collection(data);
        const older = await ReadWriteTransaction.begin(p.host, { isolation });
        const younger = await ReadWriteTransaction.begin(p.host, { isolation });
        await younger.set(coll, 'x', 1);
        const waiting = observe(older.set(coll, 'x', 2));
        await younger.commit();
        await expectReject(waiting.promise, ValidationFailed, /changed at/);
        older.abort();
        const third = await ReadWriteTransaction.begin(p.host, { isolation });
        const fourth = await ReadWriteTransaction.begin(p.host, { isolation });
        await third.getForUpdate(coll, 'x');
        await expectReject(fourth.set(coll, 'x', 3), LockConflict, /older transaction/);
        third.abort();
        fourth.abort();
        expect(p.host.locks.size, 'ended transactions hold no locks').to.equal(0);
      });

      it(`write skew is ${isolation === 'snapshot' ? 'allowed' : 'prevented'}`, async () => {
        const { ps, data } = await setup(2, oracleFor());
        const [a, b] = ps as [Proc, Proc];
        await put(a, data, { x: 1, y: 1 }, isolation);
        const ca = a.host.collection(data);
        const cb = b.host.collection(data);
        // The rule: x + y >= 1. Each transaction checks it and takes one of them to 0.
        const t1 = await ReadWriteTransaction.begin(a.host, { isolation });
        const t2 = await ReadWriteTransaction.begin(b.host, { isolation });
        expect((await t1.get(ca, 'x'))! + (await t1.get(ca, 'y'))!).to.equal(2);
        expect((await t2.get(cb, 'x'))! + (await t2.get(cb, 'y'))!).to.equal(2);
        await t1.set(ca, 'x', 0);
        await t2.set(cb, 'y', 0);
        await t1.commit();
        if (isolation === 'snapshot') {
          await t2.commit();
        } else {
          const err = (await expectReject(t2.commit(), ValidationFailed)) as ValidationFailed;
          expect(err.use).to.equal('read');
          expect(err.key).to.equal('x');
        }
        const check = await ReadWriteTransaction.begin(a.host, { isolation });
        const sum = (await check.get(ca, 'x'))! + (await check.get(ca, 'y'))!;
        expect(sum).to.equal(isolation === 'snapshot' ? 0 : 1);
        check.abort();
      });

      it('a scan is validated against keys inserted into its range (phantoms) under the serializable levels', async () => {
        const { ps, data } = await setup(2, oracleFor());
        const [a, b] = ps as [Proc, Proc];
        await put(a, data, { 'order-1': 1 }, isolation);
        const ca = a.host.collection(data);
        const t1 = await ReadWriteTransaction.begin(a.host, { isolation });
        expect(await t1.scan(ca, { from: 'order-', to: 'order.' })).to.have.length(1);
        await t1.set(ca, 'count', 1);
        await put(b, data, { 'order-2': 1 }, isolation);
        if (isolation === 'snapshot') await t1.commit();
        else await expectReject(t1.commit(), ValidationFailed, /"order-2"/);
      });

      it('never reads dirty or skewed data: every read is at the read timestamp', async () => {
        const { ps, data } = await setup(2, oracleFor());
        const [a, b] = ps as [Proc, Proc];
        await put(a, data, { x: 1, y: 1 }, isolation);
        const ca = a.host.collection(data);
        const cb = b.host.collection(data);
        const reader = await ReadWriteTransaction.begin(a.host, { isolation });
        expect(await reader.get(ca, 'x')).to.equal(1);
        // Uncommitted writes of another transaction are invisible (no dirty read) …
        const writer = await ReadWriteTransaction.begin(b.host, { isolation });
        await writer.set(cb, 'x', 2);
        await writer.set(cb, 'y', 2);
        expect(await reader.get(ca, 'y')).to.equal(1);
        // … and so are committed ones after the read timestamp (no read skew).
        await writer.commit();
        expect(await reader.get(ca, 'y')).to.equal(1);
        expect(await reader.commit(), 'a read-only transaction commits at its read time').to.deep.equal({ commitTs: reader.readTs });
      });
    });
  }

  it("seed 004: read ts 23, a commit of the key at 24 fails the lock; refreshed to 25, the transaction commits at 26", async () => {
    const { ps, data } = await setup(2);
    const [a, b] = ps as [Proc, Proc];
    const ca = a.host.collection(data);
    // Bring the txns upper to 24, with alice written at 22.
    const seed = a.txns.begin();
    await seed.write(data, 'alice', 100, 1);
    let res = await seed.commitAt(a.txns, 22);
    expect(res.ok).to.equal(true);
    res = await a.txns.begin().commitAt(a.txns, 23);
    expect(res.ok).to.equal(true);
    await a.txns.applyLe(23);
    const tx = await ReadWriteTransaction.begin(a.host, { isolation: 'serializable' });
    expect(tx.readTs).to.equal(23);
    expect(await tx.get(ca, 'alice')).to.equal(100);
    // Another process commits alice at 24, then something else at 25.
    const other = b.txns.begin();
    await other.write(data, 'alice', 100, -1);
    await other.write(data, 'alice', 90, 1);
    expect((await other.commitAt(b.txns, 24)).ok).to.equal(true);
    expect((await b.txns.begin().commitAt(b.txns, 25)).ok).to.equal(true);
    await b.txns.applyLe(25);
    const err = (await expectReject(tx.getForUpdate(ca, 'alice'), ValidationFailed, /changed at 24, after this transaction's read timestamp 23/)) as ValidationFailed;
    expect(err.conflictTs).to.equal(24);
    expect(await tx.refreshReadTs()).to.equal(25);
    const balance = (await tx.getForUpdate(ca, 'alice'))!;
    expect(balance).to.equal(90);
    await tx.set(ca, 'alice', balance - 10);
    expect(await tx.commit()).to.deep.equal({ commitTs: 26 });
  });

  it('strict serializable takes its timestamps from the oracle and tells it the commit', async () => {
    const oracle = new LogicalClock();
    const { ps, data } = await setup(1, oracle);
    const p = ps[0]!;
    const coll = p.host.collection(data);
    await oracle.applyWrite((await oracle.writeTs()).timestamp);
    const tx = await ReadWriteTransaction.begin(p.host, { isolation: 'strict-serializable' });
    expect(tx.readTs, 'reads everything the oracle saw complete').to.be.at.least(await oracle.readTs());
    await tx.set(coll, 'k', 1);
    const handedOut = await oracle.peekWriteTs();
    const { commitTs } = await tx.commit();
    expect(commitTs, 'a fresh oracle timestamp (the wall clock), not the txns upper').to.be.above(handedOut);
    expect(await oracle.readTs(), 'the oracle heard of the commit').to.be.at.least(commitTs);
    const after = await ReadWriteTransaction.begin(p.host, { isolation: 'strict-serializable' });
    expect(await after.get(coll, 'k')).to.equal(1);
    after.abort();
  });

  it('refuses what it cannot do, saying what to do instead', async () => {
    const { ps, data } = await setup(1);
    const p = ps[0]!;
    const coll = p.host.collection(data);
    await expectReject(ReadWriteTransaction.begin(p.host, { isolation: 'repeatable-read' as IsolationLevel }), InvalidUsage, /use one of 'snapshot'/);
    await expectReject(ReadWriteTransaction.begin(p.host, { isolation: 'strict-serializable' }), InvalidUsage, /needs a timestamp oracle/);
    const tx = await ReadWriteTransaction.begin(p.host);
    await tx.add(coll, 'm', 7, 2);
    await expectReject(tx.get(coll, 'm'), InvalidUsage, /read multiset collections with rows\(\)/);
    expect(await tx.rows(coll, 'm')).to.deep.equal([[7, 2]]);
    await expectReject(tx.refreshReadTs(tx.readTs - 1), InvalidUsage, /only moves up/);
    await tx.commit();
    await expectReject(tx.set(coll, 'm', 1), TransactionClosed, /already committed/);
  });

  it('keeps arrangement history only as far back as open transactions read', async () => {
    const { ps, data } = await setup(1);
    const p = ps[0]!;
    const coll = p.host.collection(data);
    await put(p, data, { k: 1 });
    const old = await ReadWriteTransaction.begin(p.host);
    expect(await old.get(coll, 'k')).to.equal(1);
    for (let i = 2; i <= 5; i++) await put(p, data, { k: i });
    const arr = await coll.arrangement();
    expect(arr.since, 'pinned by the open transaction').to.be.at.most(old.readTs);
    expect(await old.get(coll, 'k'), 'still exact at its read time').to.equal(1);
    const newest = await ReadWriteTransaction.begin(p.host);
    await arr.waitForFrontier(newest.readTs);
    old.abort();
    expect(arr.since, 'the release compacted up to the oldest read time still open').to.equal(newest.readTs);
    newest.abort();
    expect(await (await ReadWriteTransaction.begin(p.host)).get(coll, 'k')).to.equal(5);
  });
  describe('transact', () => {
    it('runs conflicting transfers again until they commit: balances never go negative and the total holds, across two processes', async () => {
      const { ps, data } = await setup(2);
      const accounts = ['a', 'b', 'c'];
      await put(ps[0]!, data, { a: 30, b: 30, c: 30 });
      let done = 0;
      let refused = 0;
      const worker = async (p: Proc, seed: number) => {
        const next = xorshift32(seed);
        const coll = p.host.collection(data);
        for (let i = 0; i < 8; i++) {
          const from = accounts[next() % 3]!;
          const to = accounts[(accounts.indexOf(from) + 1 + (next() % 2)) % 3]!;
          const amount = 1 + (next() % 25);
          const { value } = await transact(
            p.host,
            async (tx) => {
              const balance = (await tx.getForUpdate(coll, from))!;
              if (balance < amount) return 'refused';
              await tx.set(coll, from, balance - amount);
              await tx.set(coll, to, (await tx.getForUpdate(coll, to))! + amount);
              return 'done';
            },
            { maxAttempts: 200 },
          );
          if (value === 'done') done++;
          else refused++;
        }
      };
      await Promise.all([worker(ps[0]!, 1), worker(ps[0]!, 2), worker(ps[1]!, 3), worker(ps[1]!, 4)]);
      expect(done + refused).to.equal(32);
      const check = await ReadWriteTransaction.begin(ps[1]!.host);
      const coll = ps[1]!.host.collection(data);
      const balances = await Promise.all(accounts.map(async (k) => (await check.get(coll, k))!));
      expect(balances.every((b) => b >= 0), `balances ${balances.join(', ')}`).to.equal(true);
      expect(balances.reduce((x, y) => x + y, 0)).to.equal(90);
      check.abort();
    });

    it('gives up after maxAttempts conflicts with TooManyConflicts, and passes other errors through without retrying', async () => {
      const { ps, data } = await setup(2);
      const [a, b] = ps as [Proc, Proc];
      await put(a, data, { x: 0 });
      let runs = 0;
      const err = (await expectReject(
        transact(
          a.host,
          async (tx) => {
            runs++;
            const x = (await tx.get(a.host.collection(data), 'x'))!;
            await put(b, data, { x: x + 100 }); // another process always gets there first
            await tx.set(a.host.collection(data), 'x', x + 1);
          },
          { maxAttempts: 3 },
        ),
        TooManyConflicts,
        /conflicted 3 times/,
      )) as TooManyConflicts;
      expect(runs).to.equal(3);
      expect(err.cause).to.be.instanceOf(ValidationFailed);
      runs = 0;
      await expectReject(
        transact(a.host, async () => {
          runs++;
          throw new Error('business rule');
        }),
        Error,
        /business rule/,
      );
      expect(runs).to.equal(1);
      expect(a.host.locks.size).to.equal(0);
    });
  });
});
