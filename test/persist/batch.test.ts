import { expect } from 'chai';
import {
  BatchConsumed,
  BatchNotFromThisShard,
  IncompatibleVersion,
  InvalidBatchBounds,
  InvalidRewrite,
  UpdateNotBeyondLower,
  newShardId,
  type PersistClient,
} from '../../src/persist/index.js';
import { UpdateColumns } from '../../src/persist/update-columns.js';
import { STRING_UNIT, expectReject, memClient, rows, sorted } from '../support/persist.js';

describe('persist: batches', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient({ blobTargetSizeBytes: 1024 });
  });
  afterEach(() => client.close());

  it('a large batch is cut into parts uploaded to Blob; a small one stays inline', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    const small = await w.batch(rows(0, 'a'), 0, 1);
    expect(small.hollow.parts).to.have.length(1);
    expect(small.hollow.parts[0]!.inline).to.be.instanceOf(Uint8Array);
    await small.delete();
    const b = await w.builder(0);
    for (let i = 0; i < 500; i++) await b.add(`key-${i}`, null, i % 7, 1);
    const big = await b.finish(7);
    expect(big.hollow.parts.length).to.be.greaterThan(5);
    for (const p of big.hollow.parts) expect(await client.location.blob.get(p.key!)).to.be.instanceOf(Uint8Array);
    expect(await w.compareAndAppendBatch([big], 0, 7)).to.deep.equal({ ok: true });
    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect(await r.snapshotAndFetch(6)).to.have.length(500);
  });

  it('addColumns lends the builder a buffer without copying it; the buffer is left as it was, to be reused', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    const cols = new UpdateColumns();
    for (let i = 0; i < 40; i++) cols.push(STRING_UNIT.key.encode(`k${i}`), STRING_UNIT.val.encode(null), 0, 1);
    const b = await w.builder(0);
    await b.addColumns(cols);
    // A row added after the lent buffer goes to a copy of it, never into the caller's columns.
    await b.addEncoded(STRING_UNIT.key.encode('late'), STRING_UNIT.val.encode(null), 0, 1);
    expect(cols.length).to.equal(40);
    const batch = await b.finish(1);
    expect(batch.updateCount).to.equal(41);
    expect(await w.compareAndAppendBatch([batch], 0, 1)).to.deep.equal({ ok: true });
    const r = await client.openLeasedReader(id, STRING_UNIT);
    const keys = (await r.snapshotAndFetch(0)).map(([k]) => k);
    expect(keys.sort()).to.deep.equal([...Array.from({ length: 40 }, (_, i) => `k${i}`), 'late'].sort());
  });

  it('a lent buffer larger than the target size is uploaded as several parts of about the target', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    const cols = new UpdateColumns();
    // 200 keys of 6 bytes: 30 bytes a row as parts are cut, 6 KB in all, 1 KiB target.
    for (let i = 0; i < 200; i++) cols.push(STRING_UNIT.key.encode(`k${String(i).padStart(5, '0')}`), STRING_UNIT.val.encode(null), 0, 1);
    const b = await w.builder(0);
    await b.addColumns(cols);
    const batch = await b.finish(1);
    const parts = batch.hollow.parts;
    expect(parts.length).to.be.within(5, 7);
    for (const p of parts) expect(p.updateCount * 30).to.be.below(1024 + 30);
    expect(parts.reduce((n, p) => n + p.updateCount, 0)).to.equal(200);
    expect(await w.compareAndAppendBatch([batch], 0, 1)).to.deep.equal({ ok: true });
    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect((await r.snapshotAndFetch(0)).length).to.equal(200);
  });

  it('addColumns refuses rows below the batch lower, naming the time', async () => {
    const w = await client.openWriter(newShardId(), STRING_UNIT);
    const cols = new UpdateColumns();
    cols.push(STRING_UNIT.key.encode('a'), STRING_UNIT.val.encode(null), 2, 1);
    const b = await w.builder(3);
    expect(() => b.addColumns(cols)).to.throw(UpdateNotBeyondLower, /time 2 is below 3/);
  });

  it('a transmittable batch is appended by another writer of the same shard', async () => {
    const id = newShardId();
    const w1 = await client.openWriter(id, STRING_UNIT);
    const w2 = await client.openWriter(id, STRING_UNIT);
    const b = await w1.batch(rows(0, 'x', 'y'), 0, 1);
    const bytes = b.intoTransmittable();
    expect(b.isConsumed).to.equal(true);
    await expectReject(w1.compareAndAppendBatch([b], 0, 1), BatchConsumed, /build a new one/);
    const again = w2.batchFromTransmittable(bytes);
    expect(await w2.compareAndAppendBatch([again], 0, 1)).to.deep.equal({ ok: true });
    const other = await client.openWriter(newShardId(), STRING_UNIT);
    expect(() => other.batchFromTransmittable(bytes)).to.throw(BatchNotFromThisShard, /writer of s/);
  });

  it('rewriteTs re-timestamps in metadata only, under the spec rules', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    const b = await w.batch(rows(0, 'a', 'b'), 0, 1);
    expect(() => b.rewriteTs(5, 5)).to.throw(InvalidRewrite, /below the new upper/);
    b.rewriteTs(3, 4);
    expect(() => b.rewriteTs(2, 5)).to.throw(InvalidRewrite, /may not go backwards/);
    expect(() => b.rewriteTs(4, 3)).to.throw(InvalidRewrite);
    b.rewriteTs(5, 6);
    // Retried later at a newer time: the same blobs, a new time.
    await w.compareAndAppend([], 0, 5);
    await expectReject(w.compareAndAppendBatch([b], 5, 7), InvalidRewrite, /its own upper 6/);
    expect(await w.compareAndAppendBatch([b], 5, 6)).to.deep.equal({ ok: true });
    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect(sorted(await r.snapshotAndFetch(4))).to.deep.equal([]);
    expect(sorted(await r.snapshotAndFetch(5))).to.deep.equal(sorted(rows(5, 'a', 'b')));
  });

  it('a rewritten batch survives being made transmittable', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    const b = await w.batch(rows(0, 'a'), 0, 1);
    b.rewriteTs(2, 3);
    const again = w.batchFromTransmittable(b.intoTransmittable());
    expect(again.rewrittenTs).to.equal(2);
    await w.compareAndAppend([], 0, 2);
    expect(await w.compareAndAppendBatch([again], 2, 3)).to.deep.equal({ ok: true });
    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect(await r.snapshotAndFetch(2)).to.deep.equal(rows(2, 'a'));
  });

  it('checks that batches cover the append interval, and truncates wider ones', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(0, 'first'), 0, 2);
    const narrow = await w.batch(rows(3, 'n'), 3, 4);
    await expectReject(w.compareAndAppendBatch([narrow], 2, 4), InvalidBatchBounds, /lower <= 2/);
    // Without validation a narrower batch is accepted as is.
    expect(await w.compareAndAppendBatch([narrow], 2, 4, { validatePartBounds: false })).to.deep.equal({ ok: true });
    const wide = await w.batch([...rows(1, 'old'), ...rows(4, 'in'), ...rows(8, 'late')], 0, 10);
    expect(await w.compareAndAppendBatch([wide], 4, 6)).to.deep.equal({ ok: true });
    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect(sorted(await r.snapshotAndFetch(5))).to.deep.equal(sorted(rows(5, 'first', 'n', 'in')));
  });

  it('moves inline data to Blob when the shard is over its inline budget', async () => {
    const c = await memClient({ inlineWritesTotalMaxBytes: 600, compaction: false });
    try {
      const id = newShardId();
      const w = await c.openWriter(id, STRING_UNIT);
      for (let t = 0; t < 20; t++) await w.compareAndAppend([[`${'z'.repeat(100)}${t}`, null, t, 1]], t, t + 1);
      const m = c.shardMachine(id);
      expect(m.state.meta.inlineBytes).to.be.at.most(600);
      const blobParts = m.state.spine.flatMap((b) => b.batch.parts).filter((p) => p.key);
      expect(blobParts.length).to.be.greaterThan(10);
      const r = await c.openLeasedReader(id, STRING_UNIT);
      expect(await r.snapshotAndFetch(19)).to.have.length(20);
    } finally {
      await c.close();
    }
  });

  it('a failed compare-and-append deletes the batch it built', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    const big = Array.from({ length: 200 }, (_, i) => [`k${i}`, null, 5, 1] as const);
    expect(await w.compareAndAppend(big, 5, 6)).to.deep.equal({ ok: false, current: 0 });
    let blobs = 0;
    await client.location.blob.listKeysAndMetadata(`${id}/w`, () => blobs++);
    expect(blobs).to.equal(0);
  });
});

describe('persist: the transmittable batch format', () => {
  it('refuses a batch from an incompatible txnwal version, naming both versions', async () => {
    const { Proto } = await import('../../src/persist/encoding.js');
    const client = await memClient();
    try {
      const w = await client.openWriter(newShardId(), STRING_UNIT);
      const bytes = (await w.batch(rows(0, 'a'), 0, 1)).intoTransmittable();
      const msg = Proto.Batch.decode(bytes) as unknown as { version: string };
      msg.version = '9.0.0';
      const future = w.batchFromTransmittable(Proto.Batch.encode(msg).finish());
      await expectReject(w.compareAndAppendBatch([future], 0, 1), IncompatibleVersion, /txnwal 9\.0\.0.*cannot read/);
      expect(await w.fetchRecentUpper()).to.equal(0);
    } finally {
      await client.close();
    }
  });

  it('reserves field 4 (txn-wal relies on it) and never writes it', async () => {
    const { Proto } = await import('../../src/persist/encoding.js');
    expect(Proto.Batch.reserved).to.deep.include([4, 4]);
    const client = await memClient();
    try {
      const w = await client.openWriter(newShardId(), STRING_UNIT);
      const bytes = (await w.batch(rows(0, 'a'), 0, 1)).intoTransmittable();
      const fields = topLevelFieldNumbers(bytes);
      expect(fields).to.include.members([1, 2, 3, 5, 6, 7]);
      expect(fields).to.not.include(4);
    } finally {
      await client.close();
    }
  });
});

/** The field numbers of a protobuf message's top-level fields (length-delimited or varint). */
function topLevelFieldNumbers(bytes: Uint8Array): number[] {
  const out: number[] = [];
  let i = 0;
  const varint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (i < bytes.length) {
    const tag = varint();
    out.push(Math.floor(tag / 8));
    const wire = tag & 7;
    if (wire === 0) varint();
    else if (wire === 2) {
      const length = varint();
      i += length;
    }
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`unexpected wire type ${wire}`);
  }
  return out;
}
