import { expect } from 'chai';
import { newShardId } from '../../src/persist/shard-id.js';
import { memClient } from '../support/persist.js';
import { CommitLog, expectCommitAt, expectRegister, openTxns, writer } from '../support/txn.js';

describe('smoke', () => {
  it('register_at', async () => {
    const client = await memClient();
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 2);
    expect((await txns.register(3, [await writer(client, d0)])).ok).to.equal(true);
    const d1 = newShardId();
    expect(await txns.register(2, [await writer(client, d1)])).to.deep.equal({ ok: false, current: 4 });
    await expectCommitAt(txns, 4, d0, ['foo'], log);
    expect((await txns.register(5, [await writer(client, d1)])).ok).to.equal(true);
    const d2 = newShardId();
    expect((await txns.register(6, [await writer(client, d0), await writer(client, d2)])).ok).to.equal(true);
    await log.assertSnapshot(d0, 6);
    await log.assertSnapshot(d1, 6);
    await client.close();
  });
});
