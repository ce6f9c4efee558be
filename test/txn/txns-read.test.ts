/**
 * TxnsRead and its remap subscriptions (data-remap.ts): the waits end cleanly on
 * abort and close, and the pump follows the txns shard only while someone needs it.
 * The entries themselves are checked through the dataSubscribe operator
 * (test/operators/data-subscribe*.test.ts).
 */
import { expect } from 'chai';
import { getEventListeners } from 'node:events';
import type { PersistClient } from '../../src/persist/client.js';
import { InvariantViolation } from '../../src/persist/errors.js';
import { TxnsRead } from '../../src/txn/txns-read.js';
import { flush, observe, rejection, waitFor } from '../support/async.js';
import { memClient } from '../support/persist.js';
import { expectRegister, openTxns } from '../support/txn.js';

const abortListeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

describe('txn: TxnsRead', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient();
  });
  afterEach(async () => {
    await client.close();
  });

  it("an aborted updateGt rejects with the signal's reason, removes its listener and stops the pump", async () => {
    const txns = await openTxns(client);
    const read = await TxnsRead.start(client, txns.txnsId);
    try {
      const ac = new AbortController();
      const p = observe(read.updateGt(50, { signal: ac.signal }));
      await waitFor(() => read.isFollowing);
      expect(abortListeners(ac.signal)).to.equal(1);
      const reason = new Error('gave up');
      ac.abort(reason);
      await flush();
      expect(p.error).to.equal(reason);
      expect(abortListeners(ac.signal)).to.equal(0);
      await waitFor(() => !read.isFollowing);
    } finally {
      await read.close();
    }
  });

  it('a resolved updateGt leaves no listener on a long-lived signal', async () => {
    const txns = await openTxns(client);
    await expectRegister(txns, 1); // txns upper 2
    const read = await TxnsRead.start(client, txns.txnsId);
    try {
      const ac = new AbortController();
      const p = read.updateGt(2, { signal: ac.signal });
      await expectRegister(txns, 2); // txns upper 3
      expect(await p).to.equal(3);
      expect(abortListeners(ac.signal)).to.equal(0);
    } finally {
      await read.close();
    }
  });

  it('a remap next() can be aborted and asked again; close rejects a pending one and unsubscribes', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const read = await TxnsRead.start(client, txns.txnsId);
    try {
      const sub = await read.subscribeRemaps(d0, 1);
      expect(read.subscriptionCount).to.equal(1);
      expect(await sub.next(), 'the first entry: the snapshot is empty up to the txns upper').to.deep.equal({ physicalUpper: 2, logicalUpper: 2 });

      const ac = new AbortController();
      const aborted = observe(sub.next({ signal: ac.signal }));
      ac.abort();
      await flush();
      expect((aborted.error as Error).name).to.equal('AbortError');
      expect(abortListeners(ac.signal)).to.equal(0);

      const pending = sub.next();
      sub.close();
      expect(await rejection(pending)).to.be.instanceOf(InvariantViolation);
      expect(read.subscriptionCount).to.equal(0);
      await waitFor(() => !read.isFollowing);
    } finally {
      await read.close();
    }
  });
});
