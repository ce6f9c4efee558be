/**
 * TxnWrite, a Txn's contents for one data shard: buffered rows become one batch at
 * `[0, 1)`, staged transmittable batches become batches of the commit writer, and
 * merging moves everything over without dropping a row.
 */
import { expect } from 'chai';
import type { PersistClient } from '../../src/persist/client.js';
import { Codecs } from '../../src/persist/codec.js';
import { TxnsHandle } from '../../src/txn/txns-handle.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { TxnWrite } from '../../src/txn/txn-write.js';
import { STRING_UNIT, memClient } from '../support/persist.js';
import { CommitLog, commitApplied, expectRegister, openTxns, writer } from '../support/txn.js';

const enc = (s: string) => STRING_UNIT.key.encode(s);
const UNIT = STRING_UNIT.val.encode(null);

describe('txn: TxnWrite (a Txn contents for one shard)', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient();
  });
  afterEach(() => client.close());

  it('uploads buffered rows as one batch at [0, 1) and empties the buffer; nothing buffered uploads nothing', async () => {
    const w = await writer(client, newShardId());
    const t = new TxnWrite();
    await t.uploadBuffered(w);
    expect(t.batches).to.have.length(0);
    t.add(enc('a'), UNIT, 1);
    t.add(enc('b'), UNIT, -1);
    expect(t.isEmpty).to.equal(false);
    await t.uploadBuffered(w);
    expect(t.rows.length).to.equal(0);
    const [batch] = t.takeBatches();
    expect(batch!.updateCount).to.equal(2);
    expect([batch!.lower, batch!.upper]).to.deep.equal([0, 1]);
    expect(t.isEmpty).to.equal(true);
    await batch!.delete();
  });

  it("a Txn's row buffer is reused by the next Txn only once committed or discarded, and carries nothing over", async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    // Committed: its buffer goes back, and the next Txn writes fewer rows into it.
    const first = txns.begin();
    for (let i = 0; i < 300; i++) await first.write(d0, `first-${i}`, null, 1);
    for (let i = 0; i < 300; i++) log.record([d0, `first-${i}`, 3, 1]);
    await commitApplied(txns, first, 3);
    // Discarded with rows still buffered: none of them may reach a later Txn.
    const dropped = txns.begin();
    for (let i = 0; i < 50; i++) await dropped.write(d0, `dropped-${i}`, null, 1);
    await dropped.discard();
    // Two Txns open at once each hold their own buffer.
    const [a, b] = [txns.begin(), txns.begin()];
    await a.write(d0, 'a', null, 1);
    await b.write(d0, 'b', null, 1);
    log.record([d0, 'a', 5, 1]);
    await commitApplied(txns, a, 5);
    await log.assertSnapshot(d0, 5);
    log.record([d0, 'b', 6, 1]);
    await commitApplied(txns, b, 6);
    await log.assertSnapshot(d0, 6);
    await txns.close();
  });

  it('copies the rows it buffers: a writer reusing one value array per row commits every row as written', async () => {
    const txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs: { key: Codecs.string, val: Codecs.bytes } });
    const dataId = newShardId();
    const w = await client.openWriter(dataId, { key: Codecs.string, val: Codecs.bytes });
    expect((await txns.register(1, [w])).ok).to.equal(true);
    const txn = txns.begin();
    const scratch = new Uint8Array(3);
    for (let i = 0; i < 5; i++) {
      scratch.fill(i);
      await txn.write(dataId, `k${i}`, scratch, 1);
    }
    scratch.fill(0xee);
    await commitApplied(txns, txn, 2);
    const r = await client.openLeasedReader(dataId, { key: Codecs.string, val: Codecs.bytes });
    const got = (await r.snapshotAndFetch(2)).map(([k, v]) => [k, [...v]]).sort();
    expect(got).to.deep.equal([0, 1, 2, 3, 4].map((i) => [`k${i}`, [i, i, i]]));
    await r.expire();
    await txns.close();
  });

  it('turns staged transmittable batches into batches of the writer', async () => {
    const w = await writer(client, newShardId());
    const builder = await w.builder(0);
    await builder.add('x', null, 0, 1);
    const built = await builder.finish(1);
    const t = new TxnWrite();
    t.staged.push(built.intoTransmittable());
    t.adoptStaged(w);
    expect(t.staged).to.have.length(0);
    expect(t.batches.map((b) => b.updateCount)).to.deep.equal([1]);
  });

  it('takeFrom moves rows, staged and uploaded batches, leaving the other empty', () => {
    const a = new TxnWrite();
    const b = new TxnWrite();
    a.add(enc('a'), UNIT, 1);
    b.add(enc('b'), UNIT, 2);
    b.staged.push(new Uint8Array([1]));
    a.takeFrom(b);
    expect([a.rows.diff(0), a.rows.diff(1)]).to.deep.equal([1, 2]);
    expect([a.rows.key(0), a.rows.key(1)].map((k) => STRING_UNIT.key.decode(k))).to.deep.equal(['a', 'b']);
    expect(a.staged).to.have.length(1);
    expect(b.isEmpty).to.equal(true);
  });
});
