/**
 * Txn.writeMany: many rows of one shard in one call read back exactly as the same
 * rows written one by one; a bad row is refused by its index and leaves the Txn as it
 * was (all or nothing); past the spill threshold the rows go to Blob and commit once.
 */
import { expect } from 'chai';
import { PersistClient } from '../../src/persist/client.js';
import { InvalidUsage } from '../../src/persist/errors.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { expectReject, memClient } from '../support/persist.js';
import { CommitLog, commitApplied, expectRegister, openTxns } from '../support/txn.js';

describe('txn: Txn.writeMany', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient();
  });
  afterEach(() => client.close());

  it('rows written in bulk read back as the same rows written one by one, non-ASCII keys included', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const [bulk, single] = [await expectRegister(txns, 1), await expectRegister(txns, 2)];
    const keys = ['alice', 'bob', 'ü', '日本', '🙂', '', 'bob'];
    const txn = txns.begin();
    await txn.writeMany(bulk, keys.map((k, i) => [k, null, i % 2 === 0 ? 1 : 2] as const));
    for (const [i, k] of keys.entries()) await txn.write(single, k, null, i % 2 === 0 ? 1 : 2);
    for (const [i, k] of keys.entries()) {
      log.record([bulk, k, 5, i % 2 === 0 ? 1 : 2]);
      log.record([single, k, 5, i % 2 === 0 ? 1 : 2]);
    }
    await commitApplied(txns, txn, 5);
    await log.assertSnapshot(bulk, 5);
    await log.assertSnapshot(single, 5);
    await txns.close();
  });

  it('a bad row is refused by its index and nothing of the call is buffered', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const txn = txns.begin();
    await expectReject(txn.writeMany('not-a-shard', [['a', null, 1]]), Error, /writeMany data shard id.*newShardId/);
    await expectReject(txn.writeMany(d0, [['a', null, 1], ['b', null, 1.5]]), Error, /writeMany rows\[1\] diff/);
    await expectReject(txn.writeMany(d0, [['a', null, 1], [7 as unknown as string, null, 1]]), InvalidUsage, /Codecs.string/);
    await expectReject(txn.writeMany(d0, [['a', null, 1], ['b', null] as unknown as [string, null, number]]), InvalidUsage, /rows\[1\].*\[key, val, diff\]/);
    await expectReject(txn.writeMany(d0, 5 as unknown as []), InvalidUsage, /writeMany rows/);
    expect(txn.isEmpty, 'no row of a refused call was kept').to.equal(true);
    await txn.writeMany(d0, []);
    expect(txn.isEmpty).to.equal(true);
    await txns.close();
  });

  it('a call refused part way takes its rows back out and keeps the rows buffered before it', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    const txn = txns.begin();
    await txn.write(d0, 'kept', null, 1);
    await txn.writeMany(d0, [['also kept', null, 2]]);
    await expectReject(txn.writeMany(d0, [['dropped 1', null, 1], ['dropped 2', null, 1], ['bad', null, 0.5]]), Error, /writeMany rows\[2\] diff/);
    await txn.write(d0, 'after', null, -1);
    for (const w of [[d0, 'kept', 4, 1], [d0, 'also kept', 4, 2], [d0, 'after', 4, -1]] as const) log.record([...w]);
    await commitApplied(txns, txn, 4);
    await log.assertSnapshot(d0, 4);
    await txns.close();
  });

  it('past the spill threshold the rows go to Blob, and every row commits once', async () => {
    const txns = await openTxns(client, newShardId(), { spillThresholdBytes: 16 * 1024 });
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    let blobs = 0;
    await client.location.blob.listKeysAndMetadata('', () => blobs++);
    const txn = txns.begin();
    for (let chunk = 0; chunk < 4; chunk++) {
      const rows = Array.from({ length: 200 }, (_, i) => [`k${chunk}.${i}-${'v'.repeat(40)}`, null, 1] as const);
      await txn.writeMany(d0, rows);
      for (const [k] of rows) log.record([d0, k, 7, 1]);
    }
    let after = 0;
    await client.location.blob.listKeysAndMetadata('', () => after++);
    expect(after, 'rows were spilled before the commit').to.be.greaterThan(blobs);
    await commitApplied(txns, txn, 7);
    await log.assertSnapshot(d0, 7);
    await txns.close();
  });
});
