/**
 * Read-write transactions through the front door: db.transaction / db.transact over
 * named collections of different types, commits that every later read sees (the
 * oracle hears of them), blind writes that wait for a transaction's key locks, and
 * conflicts between two databases on one location (two "processes").
 */
import { expect } from 'chai';
import { Codecs } from '../../src/index.js';
import { openDatabase, type Database } from '../../src/db/index.js';
import { TransactionClosed, ValidationFailed } from '../../src/db/transaction-errors.js';
import { observe } from '../support/async.js';
import { expectReject } from '../support/persist.js';
import { yieldMacrotask } from '../../src/persist/wait.js';

const QUICK = { persist: { config: { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 20 } } } };
const ACCOUNTS = { key: Codecs.string, val: Codecs.json<number>() };
const AUDIT = { key: Codecs.json<{ n: number }>(), val: Codecs.string };

describe('db: read-write transactions through the front door', function () {
  this.timeout(30_000);
  const dbs: Database[] = [];
  let names = 0;
  afterEach(async () => {
    for (const db of dbs.splice(0).reverse()) await db.close();
  });

  async function open(name: string): Promise<Database> {
    const db = await openDatabase(`mem://${name}`, QUICK);
    dbs.push(db);
    await db.collection('accounts', ACCOUNTS);
    await db.collection('audit', AUDIT);
    return db;
  }
  const fresh = () => `db-txn-${process.pid}-${names++}`;

  it('reads, locks and writes collections of different types by name or handle; commits are seen by snapshot and later transactions', async () => {
    const db = await open(fresh());
    const accounts = await db.collection('accounts', ACCOUNTS);
    await db.write({ accounts: [['alice', 100, 1]] });
    const tx = await db.transaction({ isolation: 'serializable' });
    const balance = (await tx.getForUpdate(accounts, 'alice'))!;
    expect(balance).to.equal(100);
    await tx.set('accounts', 'alice', balance - 30);
    await tx.set('accounts', 'bob', 30);
    await tx.add('audit', { n: 1 }, 'alice→bob 30', 1);
    const { commitTs } = await tx.commit();
    // The oracle heard of the commit: a default-time snapshot includes it.
    const snap = await db.snapshot(['accounts', 'audit']);
    expect(snap.asOf).to.be.at.least(commitTs);
    expect(snap.collections.accounts!.sort()).to.deep.equal([
      ['alice', 70, 1],
      ['bob', 30, 1],
    ]);
    expect(snap.collections.audit).to.deep.equal([[{ n: 1 }, 'alice→bob 30', 1]]);
    const { value } = await db.transact(async (t) => ((await t.get('accounts', 'alice')) as number) + (await t.get(accounts, 'bob'))!);
    expect(value).to.equal(100);
    await expectReject(tx.set('accounts', 'carol', 1), TransactionClosed);
  });

  it('a blind write to a key a transaction holds waits for the transaction, then lands after it', async () => {
    const db = await open(fresh());
    await db.write({ accounts: [['alice', 100, 1]] });
    const tx = await db.transaction();
    const balance = (await tx.getForUpdate('accounts', 'alice')) as number;
    const blind = observe(db.write({ accounts: [['alice', 999, 1]] }));
    const other = await db.write({ accounts: [['bob', 1, 1]] });
    await yieldMacrotask();
    expect(blind.settled, 'a write to another key went through; the one to the locked key waits').to.equal(false);
    await tx.set('accounts', 'alice', balance + 5);
    const { commitTs } = await tx.commit();
    const { commitTs: blindTs } = await blind.promise;
    expect(blindTs).to.be.above(commitTs);
    expect(other.commitTs).to.be.below(commitTs);
    const snap = await db.snapshot('accounts', blindTs);
    expect(snap.collections.accounts!.sort()).to.deep.equal([
      ['alice', 105, 1],
      ['alice', 999, 1],
      ['bob', 1, 1],
    ]);
  });

  it('two databases on one location: the second read-modify-write of a key fails validation; transact runs it again and wins', async () => {
    const name = fresh();
    const a = await open(name);
    const b = await open(name);
    await a.write({ accounts: [['x', 0, 1]] });
    const t1 = await a.transaction();
    const t2 = await b.transaction();
    const x1 = (await t1.get('accounts', 'x')) as number;
    const x2 = (await t2.get('accounts', 'x')) as number;
    await t1.set('accounts', 'x', x1 + 1);
    await t2.set('accounts', 'x', x2 + 1);
    await t1.commit();
    await expectReject(t2.commit(), ValidationFailed, /key "x" of collection "accounts" was changed/);
    const { attempts } = await b.transact(async (t) => {
      await t.set('accounts', 'x', ((await t.get('accounts', 'x')) as number) + 1);
    });
    expect(attempts).to.equal(1);
    const snap = await a.snapshot('accounts');
    expect(snap.collections.accounts).to.deep.equal([['x', 2, 1]]);
  });
});
