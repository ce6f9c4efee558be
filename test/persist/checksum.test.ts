import { expect } from 'chai';
import type { Location } from '../../src/location/location.js';
import { openLocation } from '../../src/location/location.js';
import { FORMAT_VERSION, Proto, encodeChecksummed, encodeMessage } from '../../src/persist/encoding.js';
import { hollowBatchToProto } from '../../src/persist/hollow-batch.js';
import { PersistClient, StoredFormatError, newShardId, type PersistConfig, type ShardId } from '../../src/persist/index.js';
import { decodePartData, encodePartData } from '../../src/persist/part.js';
import {
  Field,
  decodeDiff,
  decodeRollupState,
  decodeSpineBatch,
  encodeDiff,
  encodeRollupState,
} from '../../src/persist/state-codec.js';
import { STRING_UNIT, rows, sorted } from '../support/persist.js';
import {
  bitPositions,
  flipBit,
  openLegacyShardLocation,
  readLegacyShardFixture,
  toLegacyFormat,
  versionsOf,
  withVersionReplaced,
} from '../support/stored-objects.js';

const QUIET: Partial<PersistConfig> = { compaction: false, awaitMaintenance: true };
/** At least this many flipped bits per object, including every bit of its first and last bytes. */
const FLIPS = 256;

/**
 * Awaits a read of a damaged object: it must fail with a StoredFormatError that
 * names the object and says it is corrupt. Rows coming back, whatever they are,
 * fail the test: every byte of every stored object is covered by its checksum.
 */
async function expectCorrupt(read: Promise<unknown>, names: string, bit: number): Promise<void> {
  let outcome: unknown;
  try {
    outcome = { rows: await read };
  } catch (err) {
    outcome = err;
  }
  expect(outcome, `bit ${bit}: the read returned data`).to.be.instanceOf(StoredFormatError);
  const message = (outcome as Error).message;
  expect(message, `bit ${bit}`).to.include(names);
  expect(message, `bit ${bit}: ${message}`).to.match(/ is corrupt /);
}

/** Opens a fresh client on `location`, runs `f`, and closes the client whatever happens. */
async function withClient<T>(location: Location, f: (c: PersistClient) => Promise<T>): Promise<T> {
  const client = await PersistClient.open(location, { config: QUIET });
  try {
    return await f(client);
  } finally {
    await client.close();
  }
}

describe('persist: checksums on stored objects', () => {
  let location: Location;
  let client: PersistClient;
  let id: ShardId;
  beforeEach(async () => {
    location = await openLocation('mem://');
    id = newShardId();
  });
  afterEach(async () => {
    await client?.close();
    await location.close();
  });

  describe('a flipped bit anywhere in a stored object is a StoredFormatError naming it, never data', () => {
    it('a part in Blob', async () => {
      client = await PersistClient.open(location, { config: { ...QUIET, inlineWritesSingleMaxBytes: 0 } });
      const w = await client.openWriter(id, STRING_UNIT);
      const written = rows(0, ...Array.from({ length: 12 }, (_, i) => `key-${i}`));
      await w.compareAndAppend(written, 0, 1);
      const [part] = client.shardMachine(id).state.spine.flatMap((b) => b.batch.parts);
      const key = part!.key!;
      const original = (await location.blob.get(key))!;
      const r = await client.openLeasedReader(id, STRING_UNIT);
      expect(sorted(await r.snapshotAndFetch(0))).to.deep.equal(sorted(written));

      const bits = bitPositions(original.byteLength, Infinity, 1);
      expect(bits).to.have.length(original.byteLength * 8);
      for (const bit of bits) {
        await location.blob.set(key, flipBit(original, bit));
        await expectCorrupt(r.snapshotAndFetch(0), `batch part ${key}`, bit);
      }
      await location.blob.set(key, original);
      expect(sorted(await r.snapshotAndFetch(0))).to.deep.equal(sorted(written));
    });

    it('a part kept inline in shard state', async () => {
      client = await PersistClient.open(location, { config: QUIET });
      const w = await client.openWriter(id, STRING_UNIT);
      await w.compareAndAppend(rows(0, 'a', 'b', 'c'), 0, 1);
      // The append's state diff inserts the batch, whose one part is inline. Damage the
      // part but keep the diff itself intact (re-encoded, so its own checksum holds):
      // this is the part's checksum at work, not the diff's.
      const head = (await versionsOf(location, id)).at(-1)!;
      const diff = decodeDiff(head.data, 'test');
      const entry = diff.diffs.find((f) => f.field === Field.BATCHES && f.to)!;
      const spineBatch = decodeSpineBatch(entry.to!);
      const part = spineBatch.batch.parts[0]!;
      expect(part.inline, 'the part is inline').to.be.instanceOf(Uint8Array);
      const damagedDiff = (bit: number) => {
        const damagedPart = { ...part, inline: flipBit(part.inline!, bit) };
        const batch = { ...spineBatch.batch, parts: [damagedPart] };
        const to = encodeMessage(Proto.SpineBatch, { id: spineBatch.id, batch: hollowBatchToProto(batch) });
        return encodeDiff({ ...diff, diffs: diff.diffs.map((f) => (f === entry ? { ...f, to } : f)) });
      };

      for (const bit of bitPositions(part.inline!.byteLength, FLIPS, 2)) {
        const damaged = await withVersionReplaced(location, id, head.seqno, damagedDiff(bit));
        await withClient(damaged, async (c) => {
          const r = await c.openLeasedReader(id, STRING_UNIT);
          await expectCorrupt(r.snapshotAndFetch(0), 'batch part (inline)', bit);
        });
      }
    });

    it('a rollup', async () => {
      client = await PersistClient.open(location, { config: { ...QUIET, rollupThreshold: 3, gcMinVersions: 2 } });
      const w = await client.openWriter(id, STRING_UNIT);
      const written = [];
      for (let t = 0; t < 8; t++) {
        written.push(...rows(t, `k${t}`));
        await w.compareAndAppend(rows(t, `k${t}`), t, t + 1);
      }
      // A fresh client rebuilds state from the rollup of the earliest live version.
      const earliest = (await versionsOf(location, id))[0]!.seqno;
      const key = client.shardMachine(id).state.rollups.get(earliest)!;
      expect(earliest, 'GC moved past the first, empty rollup').to.be.greaterThan(1);
      const original = (await location.blob.get(key))!;
      expect(decodeRollupState(original, 'test').spine, 'the rollup holds batches').to.not.be.empty;
      await withClient(location, async (c) => {
        const r = await c.openLeasedReader(id, STRING_UNIT);
        expect(sorted(await r.snapshotAndFetch(7))).to.have.length(written.length);
      });

      for (const bit of bitPositions(original.byteLength, FLIPS, 3)) {
        await location.blob.set(key, flipBit(original, bit));
        await withClient(location, (c) => expectCorrupt(c.openLeasedReader(id, STRING_UNIT), `rollup ${key}`, bit));
      }
    });

    it('a state diff in Consensus', async () => {
      client = await PersistClient.open(location, { config: QUIET });
      const w = await client.openWriter(id, STRING_UNIT);
      await w.compareAndAppend(rows(0, 'a', 'b'), 0, 1);
      const head = (await versionsOf(location, id)).at(-1)!;

      for (const bit of bitPositions(head.data.byteLength, FLIPS, 4)) {
        const damaged = await withVersionReplaced(location, id, head.seqno, flipBit(head.data, bit));
        await withClient(damaged, (c) =>
          expectCorrupt(c.openLeasedReader(id, STRING_UNIT), `state version ${head.seqno} of ${id}`, bit),
        );
      }
    });
  });

  it('a truncated part, or bytes that are not a part at all, are a StoredFormatError naming the key', async () => {
    client = await PersistClient.open(location, { config: { ...QUIET, inlineWritesSingleMaxBytes: 0 } });
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(0, 'a', 'b'), 0, 1);
    const key = client.shardMachine(id).state.spine[0]!.batch.parts[0]!.key!;
    const original = (await location.blob.get(key))!;
    const r = await client.openLeasedReader(id, STRING_UNIT);
    const damaged = [
      original.subarray(0, original.byteLength >> 1),
      original.subarray(0, original.byteLength - 1),
      new Uint8Array(0),
      Buffer.from('{"not":"a part"}'),
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7d, 1, 2, 3, 4]),
    ];
    for (const [i, bytes] of damaged.entries()) {
      await location.blob.set(key, bytes);
      await expectCorrupt(r.snapshotAndFetch(0), `batch part ${key}`, i);
    }
  });

  it('an object stripped of its checksum trailer is refused, not taken for a legacy one', () => {
    const sealed = encodePartData({ keys: [Buffer.from('k')], vals: [new Uint8Array(0)], times: [3], diffs: [1] });
    const stripped = sealed.subarray(0, sealed.byteLength - 5);
    expect(() => decodePartData(stripped, 'part p')).to.throw(StoredFormatError, /part p is corrupt .*no checksum trailer/);
  });

  it('a sealed object of a newer format version asks to upgrade', () => {
    const future = encodeChecksummed(Proto.Part, { formatVersion: 99, count: 0 });
    expect(() => decodePartData(future, 'part p')).to.throw(StoredFormatError, /part p has format version 99.*upgrade/);
  });

  describe('objects written by format version 1 (no checksums) still read', () => {
    const fixture = readLegacyShardFixture();
    const isRollup = (key: string) => /\/v\d+\//.test(key);

    it('each object decodes, and re-encoding it in the old format gives back its exact bytes', () => {
      const blobKeys = Object.keys(fixture.blobs);
      expect(blobKeys.filter(isRollup), 'rollups').to.have.length.greaterThan(1);
      expect(blobKeys.filter((k) => !isRollup(k)), 'parts').to.have.length.greaterThan(1);
      for (const [key, hex] of Object.entries(fixture.blobs)) {
        const bytes = Buffer.from(hex, 'hex');
        const [type, resealed] = isRollup(key)
          ? [Proto.StateRollup, encodeRollupState(decodeRollupState(bytes, key))]
          : [Proto.Part, encodePartData(decodePartData(bytes, key))];
        expect(Buffer.from(toLegacyFormat(type, resealed)).toString('hex'), key).to.equal(hex);
      }
      for (const v of fixture.consensus[fixture.shardId]!) {
        const resealed = encodeDiff(decodeDiff(Buffer.from(v.data, 'hex'), `version ${v.seqno}`));
        expect(Buffer.from(toLegacyFormat(Proto.StateDiff, resealed)).toString('hex'), `version ${v.seqno}`).to.equal(v.data);
      }
    });

    it('a shard stored in format version 1 reads back what was written, and takes new writes on top', async () => {
      await location.close();
      location = await openLegacyShardLocation(fixture);
      client = await PersistClient.open(location, { config: QUIET });
      const legacyId = fixture.shardId as ShardId;
      const asOf = fixture.upper - 1;
      const r = await client.openLeasedReader(legacyId, STRING_UNIT);
      const expected = fixture.rows.map(([k]) => [k, null, asOf, 1] as const);
      expect(sorted(await r.snapshotAndFetch(asOf))).to.deep.equal(sorted(expected));

      // Sealed objects on top of legacy ones: a fresh client reads the mix.
      const w = await client.openWriter(legacyId, STRING_UNIT);
      await w.compareAndAppend(rows(fixture.upper, 'new'), fixture.upper, fixture.upper + 1);
      await withClient(location, async (c) => {
        const r2 = await c.openLeasedReader(legacyId, STRING_UNIT);
        const all = await r2.snapshotAndFetch(fixture.upper);
        expect(sorted(all)).to.deep.equal(
          sorted([...fixture.rows.map(([k]) => [k, null, fixture.upper, 1] as const), ['new', null, fixture.upper, 1]]),
        );
      });
    });

    it('a legacy object that happens to have the trailer tag byte where a trailer would start still reads', () => {
      // A legacy part ends with its last diff as a little-endian float64, so this diff
      // (mantissa 0x7d000000) puts 0x7d 5 bytes from the end, and its last 4 bytes
      // are no checksum of anything.
      const diff = 2 ** 52 + 0x7d000000;
      const data = { keys: [Buffer.from('k')], vals: [new Uint8Array(0)], times: [3], diffs: [diff] };
      const legacy = toLegacyFormat(Proto.Part, encodePartData(data));
      expect(legacy[legacy.byteLength - 5]).to.equal(0x7d);
      expect(decodePartData(legacy, 'legacy part').diffs).to.deep.equal([diff]);
    });

    it('a transmittable batch of format version 1 (as old txns shards hold them) still appends', async () => {
      client = await PersistClient.open(location, { config: QUIET });
      const w = await client.openWriter(id, STRING_UNIT);
      const sealed = (await w.batch(rows(0, 'a'), 0, 1)).intoTransmittable();
      const m = Proto.Batch.decode(sealed) as unknown as { formatVersion: number };
      m.formatVersion = 1;
      const legacy = w.batchFromTransmittable(Proto.Batch.encode(m).finish());
      expect(await w.compareAndAppendBatch([legacy], 0, 1)).to.deep.equal({ ok: true });
      const r = await client.openLeasedReader(id, STRING_UNIT);
      expect(await r.snapshotAndFetch(0)).to.deep.equal(rows(0, 'a'));
    });
  });

  it('a sealed object damaged to say format version 1 is refused, not read unchecked as a legacy one', () => {
    // Legacy objects are read without a checksum, so the legacy path takes only an
    // exact version 1 message: one that still has field 15 is a damaged sealed object.
    const sealed = encodePartData({ keys: [Buffer.from('k')], vals: [new Uint8Array(0)], times: [3], diffs: [1] });
    const legacy = toLegacyFormat(Proto.Part, sealed);
    expect(decodePartData(legacy, 'legacy').times).to.deep.equal([3]);
    const versionByte = 1; // `08 03`: field 1 (format_version), value 3
    expect(sealed[versionByte]).to.equal(FORMAT_VERSION);
    const asVersion1 = Uint8Array.from(sealed);
    asVersion1[versionByte] = 1;
    expect(() => decodePartData(asVersion1, 'part p')).to.throw(StoredFormatError, /part p is corrupt .*checksum mismatch/);
  });
});
