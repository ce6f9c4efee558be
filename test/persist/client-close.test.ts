/**
 * Closing a PersistClient settles every call still waiting on it: a listen waiting
 * for the next write, `waitForUpperPast`, a snapshot at a future time. They reject
 * with ClientClosed instead of polling forever (or until the process is killed).
 */
import { expect } from 'chai';
import { ClientClosed, newShardId, type PersistClient } from '../../src/persist/index.js';
import { observe } from '../support/async.js';
import { STRING_UNIT, expectReject, memClient, rows } from '../support/persist.js';

describe('persist: closing a client settles pending waits', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient();
  });
  afterEach(async () => {
    await client.close();
  });

  /** Resolves once some wait on the shard's state is registered (the call is really waiting). */
  async function waiting(id: string): Promise<void> {
    const machine = client.shardMachine(id);
    while (machine.waiterCount === 0) await new Promise((r) => setImmediate(r));
  }

  it('a pending listen.next() rejects with ClientClosed', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(0, 'a'), 0, 1);
    const r = await client.openLeasedReader(id, STRING_UNIT);
    const listen = await r.listen(0);
    expect(await listen.next()).to.deep.equal([{ kind: 'updates', updates: [] }, { kind: 'progress', upper: 1 }]);
    const pending = observe(listen.next());
    await waiting(id);
    expect(pending.settled).to.equal(false);
    await client.close();
    await expectReject(pending.promise, ClientClosed, /closed/);
  });

  it('a pending waitForUpperPast and a snapshot at a future time reject with ClientClosed', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    const r = await client.openLeasedReader(id, STRING_UNIT);
    const upper = observe(w.waitForUpperPast(5));
    const snap = observe(r.snapshotAndFetch(5));
    await waiting(id);
    await client.close();
    await expectReject(upper.promise, ClientClosed);
    await expectReject(snap.promise, ClientClosed);
  });
});
