/**
 * Byte-level tests of how txn-wal stores its bookkeeping (spec §2.2, appendix #12),
 * and ports of the two reference tests in lib.rs (spec §3 #1 `commit_log`, #2
 * `unique_batch_serialization`).
 */
import { fileURLToPath } from 'node:url';
import { AssertionError, expect } from 'chai';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { Codecs } from '../../src/persist/codec.js';
import { InvalidUsage, InvariantViolation, StoredFormatError } from '../../src/persist/errors.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { parseIdBatch, wrapIdBatch } from '../../src/txn/id-batch.js';
import { decodeTs, encodeTs, TS_BYTES } from '../../src/txn/timestamp-bytes.js';
import { TxnsCodecDefault, appendEntry, entryTs, registerEntry, type TxnsEntry } from '../../src/txn/txns-codec.js';
import { expectBytes, utf8 } from '../support/bytes.js';
import { memClient } from '../support/persist.js';
import { CommitLog, type Row } from '../support/txn.js';

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const bytes = (...xs: number[]) => new Uint8Array(xs);

/** A fixed shard id, so the byte expectations below are literal. */
const D0: ShardId = 's0a1b2c3d-0000-4000-8000-00000000beef';

/** fast-check: a lowercase "s"+uuid shard id. */
const shardIdArb = fc.uuid().map((u) => `s${u.toLowerCase()}`);
const tsArb = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(0, 255, 256, 2 ** 32, 2 ** 53 - 1), fc.maxSafeNat());
const entryArb: fc.Arbitrary<TxnsEntry> = fc.oneof(
  fc.record({ id: shardIdArb, ts: tsArb }).map(({ id, ts }) => registerEntry(id, ts)),
  // A committed batch pointer is never empty (it is a ProtoIdBatch with a 16-byte id).
  fc
    .record({ id: shardIdArb, ts: tsArb, batch: fc.uint8Array({ minLength: 1, maxLength: 64 }) })
    .map(({ id, ts, batch }) => appendEntry(id, ts, batch)),
);

/** The fields of a protobuf message, in wire order: field number, wire type, and bytes for length-delimited ones. */
function protoFields(buf: Uint8Array): { field: number; wireType: number; bytes?: Uint8Array }[] {
  const r = protobuf.Reader.create(buf);
  const out: { field: number; wireType: number; bytes?: Uint8Array }[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (wireType === 2) out.push({ field, wireType, bytes: r.bytes() });
    else {
      r.skipType(wireType);
      out.push({ field, wireType });
    }
  }
  return out;
}

describe('txn: TxnsCodecDefault (spec §2.2, byte-exact)', () => {
  it('encodes the key as the UTF-8 "s<uuid>" string of the data shard', () => {
    const [key] = TxnsCodecDefault.encode(registerEntry(D0, 1));
    expect(key).to.equal(D0);
    expectBytes(TxnsCodecDefault.codecs.key.encode(key), utf8(D0));
    expect(TxnsCodecDefault.codecs.key.encode(key)[0]).to.equal(0x73); // 's'
    expect(TxnsCodecDefault.codecs.key.decode(utf8(D0))).to.equal(D0);
    // The key codec refuses anything that is not a shard id.
    expect(() => TxnsCodecDefault.codecs.key.encode('not-a-shard')).to.throw(InvalidUsage);
    expect(() => TxnsCodecDefault.codecs.key.encode(D0.toUpperCase())).to.throw(InvalidUsage);
  });

  it('encodes a Register (and a forget, the same row with diff -1) as exactly the 8 little-endian ts bytes', () => {
    const [, val] = TxnsCodecDefault.encode(registerEntry(D0, 258));
    expectBytes(val, bytes(0x02, 0x01, 0, 0, 0, 0, 0, 0));
    expectBytes(TxnsCodecDefault.encode(registerEntry(D0, 0))[1], new Uint8Array(8));
    expectBytes(TxnsCodecDefault.encode(registerEntry(D0, 2 ** 32 + 1))[1], bytes(1, 0, 0, 0, 1, 0, 0, 0));
    expectBytes(
      TxnsCodecDefault.encode(registerEntry(D0, Number.MAX_SAFE_INTEGER))[1],
      bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00),
    );
    // The value is a copy: mutating it does not change the entry.
    const e = registerEntry(D0, 7);
    const [, v] = TxnsCodecDefault.encode(e);
    v[0] = 99;
    expect(entryTs(e)).to.equal(7);
  });

  it('encodes an Append as the batch bytes followed by the 8 ts bytes', () => {
    const batch = bytes(0xaa, 0xbb, 0xcc);
    const [key, val] = TxnsCodecDefault.encode(appendEntry(D0, 258, batch));
    expect(key).to.equal(D0);
    expect(hex(val)).to.equal('aabbcc' + '0201000000000000');
    // The ts may also be given as its bytes (a tidy reuses the original ts bytes).
    const [, val2] = TxnsCodecDefault.encode(appendEntry(D0, encodeTs(258), batch));
    expectBytes(val2, val);
    // A batch that itself ends in 8 zero bytes is still split at the last 8.
    const tricky = new Uint8Array(12).fill(0);
    tricky[0] = 1;
    const [, val3] = TxnsCodecDefault.encode(appendEntry(D0, 5, tricky));
    expect(val3.length).to.equal(20);
    const back = TxnsCodecDefault.decode(D0, val3);
    expect(back.kind).to.equal('append');
    expect(entryTs(back)).to.equal(5);
    expectBytes(back.kind === 'append' ? back.batch : undefined, tricky);
  });

  it('decodes by splitting off the last 8 bytes: Register if nothing remains, Append otherwise', () => {
    const reg = TxnsCodecDefault.decode(D0, bytes(0x02, 0x01, 0, 0, 0, 0, 0, 0));
    expect(reg.kind).to.equal('register');
    expect(reg.dataId).to.equal(D0);
    expect(entryTs(reg)).to.equal(258);

    const app = TxnsCodecDefault.decode(D0, bytes(9, 0x02, 0x01, 0, 0, 0, 0, 0, 0));
    expect(app.kind).to.equal('append');
    expect(app.dataId).to.equal(D0);
    expect(entryTs(app)).to.equal(258);
    expectBytes(app.kind === 'append' ? app.batch : undefined, bytes(9));
    expectBytes(app.ts, bytes(0x02, 0x01, 0, 0, 0, 0, 0, 0));
  });

  it('refuses a value shorter than 8 bytes', () => {
    for (let n = 0; n < TS_BYTES; n++) {
      expect(() => TxnsCodecDefault.decode(D0, new Uint8Array(n)), `${n} bytes`).to.throw(InvariantViolation);
    }
  });

  it('round-trips every entry byte-exactly (property)', () => {
    fc.assert(
      fc.property(entryArb, (e) => {
        const [k, v] = TxnsCodecDefault.encode(e);
        // The stored key bytes are the shard id's UTF-8 bytes.
        expectBytes(TxnsCodecDefault.codecs.key.encode(k), utf8(e.dataId));
        const back = TxnsCodecDefault.decode(TxnsCodecDefault.codecs.key.decode(TxnsCodecDefault.codecs.key.encode(k)), v);
        expect(back.kind).to.equal(e.kind);
        expect(back.dataId).to.equal(e.dataId);
        expect(hex(back.ts)).to.equal(hex(e.ts));
        expect(entryTs(back)).to.equal(entryTs(e));
        if (e.kind === 'append') {
          expect(back.kind === 'append' && hex(back.batch)).to.equal(hex(e.batch));
          expect(v.length).to.equal(e.batch.length + 8);
        } else {
          expect(v.length).to.equal(8);
        }
        // Re-encoding gives the same bytes.
        expectBytes(TxnsCodecDefault.encode(back)[1], v);
      }),
      { numRuns: 300 },
    );
  });

  it('decode then encode is the identity on every value of 8 or more bytes whose ts is safe (property)', () => {
    fc.assert(
      fc.property(shardIdArb, fc.uint8Array({ maxLength: 40 }), tsArb, (id, prefix, ts) => {
        const val = new Uint8Array([...prefix, ...encodeTs(ts)]);
        const e = TxnsCodecDefault.decode(id, val);
        expect(e.kind).to.equal(prefix.length === 0 ? 'register' : 'append');
        expect(entryTs(e)).to.equal(ts);
        expectBytes(TxnsCodecDefault.encode(e)[1], val);
      }),
      { numRuns: 300 },
    );
  });
});

describe('txn: encodeTs / decodeTs', () => {
  it('encodes 258 as 02 01 00 00 00 00 00 00 and decodes it back', () => {
    expect(hex(encodeTs(258))).to.equal('0201000000000000');
    expect(decodeTs(bytes(2, 1, 0, 0, 0, 0, 0, 0))).to.equal(258);
    expect(hex(encodeTs(0))).to.equal('0000000000000000');
    expect(hex(encodeTs(0x0102030405))).to.equal('0504030201000000');
  });

  it('round-trips every safe timestamp (property), also at an offset and inside a larger buffer', () => {
    fc.assert(
      fc.property(tsArb, fc.uint8Array({ maxLength: 5 }), fc.uint8Array({ maxLength: 5 }), (ts, pre, post) => {
        const enc = encodeTs(ts);
        expect(enc.length).to.equal(8);
        expect(decodeTs(enc)).to.equal(ts);
        const buf = new Uint8Array([...pre, ...enc, ...post]);
        expect(decodeTs(buf, pre.length)).to.equal(ts);
        // And as a subarray view with a nonzero byteOffset.
        expect(decodeTs(buf.subarray(pre.length, pre.length + 8))).to.equal(ts);
        // Little-endian: the low byte first.
        expect(enc[0]).to.equal(ts % 256);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses to encode a value that is not a non-negative safe integer', () => {
    for (const bad of [-1, 1.5, NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER + 1, 2 ** 64]) {
      expect(() => encodeTs(bad), String(bad)).to.throw(InvalidUsage);
    }
    expect(() => encodeTs('1' as unknown as number)).to.throw(InvalidUsage);
  });

  it('refuses to decode a value beyond Number.MAX_SAFE_INTEGER or fewer than 8 bytes', () => {
    // 2^53 = 00 00 00 00 00 00 20 00
    expect(() => decodeTs(bytes(0, 0, 0, 0, 0, 0, 0x20, 0))).to.throw(InvariantViolation);
    expect(() => decodeTs(new Uint8Array(8).fill(0xff))).to.throw(InvariantViolation);
    expect(decodeTs(bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0))).to.equal(Number.MAX_SAFE_INTEGER);
    expect(() => decodeTs(new Uint8Array(7))).to.throw(InvariantViolation);
    expect(() => decodeTs(new Uint8Array(8), 1)).to.throw(InvariantViolation);
    expect(() => decodeTs(new Uint8Array(0))).to.throw(InvariantViolation);
  });
});

describe('txn: ProtoIdBatch (lib.rs unique_batch_serialization)', () => {
  it('unique_batch_serialization', async () => {
    const client = await memClient();
    try {
      const id = newShardId();
      const write = await client.openWriter(id, { key: Codecs.string, val: Codecs.unit });
      const batch = await write.batch([['foo', null, 0, 1]], 0, 1);
      // Pretend we somehow got two batches that happen to have the same serialization.
      const b0Raw = batch.intoTransmittable();
      const b1Raw = Uint8Array.from(b0Raw);
      expect(b1Raw).to.not.equal(b0Raw);
      expectBytes(b1Raw, b0Raw);
      // They don't if we wrap them in ProtoIdBatch.
      const b0 = wrapIdBatch(b0Raw);
      const b1 = wrapIdBatch(b1Raw);
      expect(hex(b0)).to.not.equal(hex(b1));
      // Wrapping the very same bytes twice differs too.
      expect(hex(wrapIdBatch(b0Raw))).to.not.equal(hex(b0));
      // The transmittable batch round-trips.
      expectBytes(parseIdBatch(b0), b0Raw);
      expectBytes(parseIdBatch(b1), b0Raw);
      // The previous serialization (a bare ProtoBatch) still parses.
      expectBytes(parseIdBatch(b0Raw), b0Raw);

      // The wrapper is a protobuf with field 1 (16 random bytes) and field 4 (the batch), and nothing else.
      const fields = protoFields(b0);
      expect(fields.map((f) => [f.field, f.wireType])).to.deep.equal([
        [1, 2],
        [4, 2],
      ]);
      expect(fields[0]!.bytes!.length).to.equal(16);
      expectBytes(fields[1]!.bytes, b0Raw);
      const ids = new Set([b0, b1, wrapIdBatch(b0Raw)].map((b) => hex(protoFields(b)[0]!.bytes!)));
      expect(ids.size).to.equal(3);
      // The bare ProtoBatch never uses field 4: that is what lets the parser tell them apart.
      expect(protoFields(b0Raw).map((f) => f.field)).to.not.include(4);

      // The unwrapped bytes are a usable batch of the shard: append it and read "foo" back.
      const appended = write.batchFromTransmittable(parseIdBatch(b0));
      expect(await write.compareAndAppendBatch([appended], 0, 1)).to.deep.equal({ ok: true });
      const read = await client.openLeasedReader(id, { key: Codecs.string, val: Codecs.unit });
      expect(await read.snapshotAndFetch(0)).to.deep.equal([['foo', null, 0, 1]]);
      await read.expire();
    } finally {
      await client.close();
    }
  });

  it('ProtoBatch reserves field 4 in proto/persist.proto', () => {
    const root = protobuf.loadSync(fileURLToPath(new URL('../../proto/persist.proto', import.meta.url)));
    const found: protobuf.Type[] = [];
    root.nestedArray.forEach(function walk(n: protobuf.ReflectionObject): void {
      if (n instanceof protobuf.Type && n.name === 'ProtoBatch') found.push(n);
      if (n instanceof protobuf.Namespace) n.nestedArray.forEach(walk);
    });
    expect(found).to.have.length(1);
    const t = found[0]!;
    expect(t.fieldsById[4]).to.equal(undefined);
    // protobufjs stores `reserved 4;` as the inclusive range [4, 4] (its own isReservedId
    // treats the end as exclusive, so check the ranges directly).
    const ranges = (t.reserved ?? []).filter((r): r is number[] => Array.isArray(r));
    expect(ranges.some(([lo, hi]) => lo! <= 4 && 4 <= hi!), JSON.stringify(t.reserved)).to.equal(true);
  });

  it('wraps arbitrary batch bytes so that parse returns them, and every wrap differs (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (raw) => {
        const a = wrapIdBatch(raw);
        const b = wrapIdBatch(raw);
        expect(hex(a)).to.not.equal(hex(b));
        expectBytes(parseIdBatch(a), raw);
        const f = protoFields(a);
        expect(f.map((x) => x.field)).to.deep.equal([1, 4]);
        expect(f[0]!.bytes!.length).to.equal(16);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses bytes that are not a protobuf at all', () => {
    // A truncated length-delimited field 1: claims 16 bytes, has 1.
    expect(() => parseIdBatch(bytes(0x0a, 0x10, 0x01))).to.throw(StoredFormatError);
  });
});

describe('txn: CommitLog (lib.rs commit_log)', () => {
  it('commit_log', async () => {
    const client = await memClient();
    try {
      const [d0, d1] = [newShardId(), newShardId()];
      const log = new CommitLog(client, newShardId());
      log.record([d0, '0', 0, 1]);
      // The reference records "2"@2 through two clones of the log: here, twice (it consolidates).
      log.record([d0, '2', 2, 1]);
      log.record([d0, '2', 2, 1]);
      // A retraction.
      log.record([d0, '3', 3, 1]);
      log.record([d0, '3', 4, -1]);
      // Out of order.
      log.record([d0, '1', 1, 1]);
      // Another shard.
      log.record([d1, '5', 5, 1]);

      // No advancement or truncation.
      log.assertEq(d0, 0, 6, [
        ['0', 0, 1],
        ['1', 1, 1],
        ['2', 2, 2],
        ['3', 3, 1],
        ['3', 4, -1],
      ]);
      log.assertEq(d1, 0, 6, [['5', 5, 1]]);
      // Advancement: the 3s cancel at 4.
      log.assertEq(d0, 4, 6, [
        ['0', 4, 1],
        ['1', 4, 1],
        ['2', 4, 2],
      ]);
      // Truncation.
      log.assertEq(d0, 0, 3, [
        ['0', 0, 1],
        ['1', 1, 1],
        ['2', 2, 2],
      ]);
      // The actual side is consolidated and order-insensitive too, and rows at or past `until` are dropped.
      log.assertEq(d0, 0, 3, [
        ['2', 2, 1],
        ['1', 1, 1],
        ['9', 3, 1],
        ['0', 0, 1],
        ['2', 2, 1],
        ['7', 1, 1],
        ['7', 1, -1],
      ]);
      // A shard nothing was logged for is empty.
      log.assertEq(newShardId(), 0, 10, []);
    } finally {
      await client.close();
    }
  });

  it('assertEq fails with a left (actual) / right (expected) message', async () => {
    const client = await memClient();
    try {
      const d0 = newShardId();
      const log = new CommitLog(client, newShardId());
      log.record([d0, 'foo', 2, 1]);
      log.record([d0, 'foo', 2, 1]);
      const actual: Row[] = [['foo', 2, 1]];
      expect(() => log.assertEq(d0, 2, 3, actual)).to.throw(AssertionError, 'left: [("foo", 2, 1)]\n right: [("foo", 2, 2)]');

      // Each kind of difference is caught: a wrong time, a wrong key, a missing row, an extra row, a wrong diff sign.
      const bad: Row[][] = [
        [['foo', 1, 2]],
        [['bar', 2, 2]],
        [],
        [
          ['foo', 2, 2],
          ['x', 2, 1],
        ],
        [['foo', 2, -2]],
      ];
      for (const rows of bad) expect(() => log.assertEq(d0, 2, 3, rows), JSON.stringify(rows)).to.throw(AssertionError);
      // Not advancing the actual side is a difference (assertEq advances only the expected side).
      const d1 = newShardId();
      log.record([d1, 'a', 1, 1]);
      expect(() => log.assertEq(d1, 3, 5, [['a', 1, 1]])).to.throw(AssertionError, 'left: [("a", 1, 1)]\n right: [("a", 3, 1)]');
      log.assertEq(d1, 3, 5, [['a', 3, 1]]);
      // Rows of another shard never leak in.
      expect(() => log.assertEq(d1, 0, 5, [['a', 1, 1], ['foo', 2, 2]])).to.throw(AssertionError);
    } finally {
      await client.close();
    }
  });
});
