/**
 * Protobuf schemas of everything persist stores (proto/persist.proto), loaded once,
 * and the checksum that seals the objects persist keeps in Blob and Consensus.
 *
 * Format versions: every stored object carries `formatVersion`. This build writes
 * {@link FORMAT_VERSION} and reads every version from {@link OLDEST_READABLE_FORMAT_VERSION}
 * up to it; {@link checkFormatVersion} refuses a newer one with a message that says
 * to upgrade, rather than misreading it.
 * - 1: the first release. No checksums.
 * - 2: parts (`ProtoPart`, in Blob or inline in state), rollups (`ProtoStateRollup`)
 *   and state diffs (`ProtoStateDiff`) end in a checksum trailer. Nothing else changed,
 *   so a version 1 `ProtoBatch` reads exactly like a version 2 one.
 * - 3: a part may store a column whose entries are all alike as that one entry
 *   (`ProtoPart.has_time`, `has_diff`, `has_key_width`, `has_val_width`): a batch's
 *   times and diffs are usually all equal, and a keys-only collection's values all
 *   empty. Nothing else changed, so any other version 2 object reads exactly like a
 *   version 3 one.
 *
 * The checksum trailer (format version 2 on): the encoded message is followed by
 * field 15 as a `fixed32`, i.e. the 5 bytes `7d c0 c1 c2 c3`, where `c0..c3` is the
 * little-endian CRC-32 (zlib's, IEEE polynomial) of every byte before them, the
 * message and the `7d` tag byte. The trailer is always the last 5 bytes, whatever
 * fields a later format adds, so the checksum is checked before anything is parsed,
 * with one CRC call over the whole object. Every later format keeps it.
 *
 * Reading a sealed message ({@link decodeChecksummed}):
 * - the trailer is present and its CRC matches: parse, then check the format version;
 * - otherwise the object is accepted only as a legacy (version 1) object: it must
 *   parse as a whole, say format version exactly 1 and have no field 15. Anything
 *   else is a StoredFormatError saying the object is corrupt (or, for a whole message
 *   with no trailer and no field 15 that claims a newer version, saying to upgrade).
 * CRC-32 catches every single and double bit flip (in objects up to 512 MiB) and every
 * burst of up to 32 bits, and misses other damage with probability 2^-32. Damage can
 * pass a sealed object off as legacy only by flips in chosen places: a version 2
 * object takes three (version `02` to `01` is two bits, hiding field 15 one more), a
 * version 3 one two (`03` to `01` is one bit); and a version 3 part that stores
 * compact columns is refused as legacy whatever the flips, since version 1 had none.
 * Legacy objects themselves are read unchecked: they never had a checksum.
 */
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { StoredFormatError } from './errors.js';

/** The format version this build writes. Bumped on any incompatible change to the stored formats. */
export const FORMAT_VERSION = 3;
/** The oldest format version this build still reads. */
const OLDEST_READABLE_FORMAT_VERSION = 1;
/** The last format version whose parts, rollups and state diffs carry no checksum. */
const LEGACY_UNCHECKSUMMED_FORMAT_VERSION = 1;
/** The version string recorded in transmittable batches. */
export const BUILD_VERSION = '0.1.0';

const protoPath = fileURLToPath(new URL('../../proto/persist.proto', import.meta.url));
const root = protobuf.loadSync(protoPath);

function type(name: string): protobuf.Type {
  return root.lookupType(`txnwal.persist.${name}`);
}

export const Proto = {
  Part: type('ProtoPart'),
  HollowPart: type('ProtoHollowPart'),
  HollowBatch: type('ProtoHollowBatch'),
  Batch: type('ProtoBatch'),
  ShardMeta: type('ProtoShardMeta'),
  RollupRef: type('ProtoRollupRef'),
  LeasedReader: type('ProtoLeasedReader'),
  CriticalReader: type('ProtoCriticalReader'),
  Writer: type('ProtoWriter'),
  Schema: type('ProtoSchema'),
  SpineBatch: type('ProtoSpineBatch'),
  StateRollup: type('ProtoStateRollup'),
  StateDiff: type('ProtoStateDiff'),
} as const;

export function encodeMessage(t: protobuf.Type, value: object): Uint8Array {
  return t.encode(value).finish();
}

/** Decodes `bytes` as `t`, turning a protobuf parse failure into a StoredFormatError naming `what`. */
export function decodeMessage<T>(t: protobuf.Type, bytes: Uint8Array, what: string): T {
  try {
    return t.decode(bytes) as unknown as T;
  } catch (err) {
    throw new StoredFormatError(`${what} is not a valid ${t.name}: ${(err as Error).message}`);
  }
}

export function checkFormatVersion(found: number, what: string): void {
  if (found < OLDEST_READABLE_FORMAT_VERSION || found > FORMAT_VERSION) {
    throw new StoredFormatError(
      `${what} has format version ${found}, this build reads versions ${OLDEST_READABLE_FORMAT_VERSION} to ${FORMAT_VERSION}` +
        (found > FORMAT_VERSION ? ': it was written by a newer txnwal; upgrade this process.' : '.'),
    );
  }
}

// ---- the checksum trailer ----

/** The checksum's field number; every sealed message type declares it as `fixed32`. */
const CHECKSUM_FIELD = 15;
/** The trailer's first byte: field 15, wire type 5 (fixed32). */
const CHECKSUM_TAG = (CHECKSUM_FIELD << 3) | 5;
const CHECKSUM_BYTES = 4;

/** Encodes `value` as `t` (a type with a `checksum` field 15) followed by the checksum trailer. */
export function encodeChecksummed(t: protobuf.Type, value: object): Uint8Array {
  // The placeholder is overwritten in place, so the object is encoded (and copied) once.
  const bytes = t.encode(value).uint32(CHECKSUM_TAG).fixed32(0).finish();
  const end = bytes.byteLength - CHECKSUM_BYTES;
  writeUint32LE(bytes, end, crc32(bytes.subarray(0, end)));
  return bytes;
}

/**
 * Decodes a message written by {@link encodeChecksummed} (or a legacy, version 1
 * one), checking its checksum first. `T` must include `formatVersion`. Throws
 * StoredFormatError naming `what` for a corrupt object, bytes that do not parse, or
 * a format version this build does not read.
 */
export function decodeChecksummed<T extends { formatVersion: number }>(
  t: protobuf.Type,
  bytes: Uint8Array,
  what: string,
): T {
  const end = bytes.byteLength - CHECKSUM_BYTES;
  const hasTrailer = end >= 1 && bytes[end - 1] === CHECKSUM_TAG;
  const computed = hasTrailer ? crc32(bytes.subarray(0, end)) : undefined;
  const stored = hasTrailer ? readUint32LE(bytes, end) : undefined;
  if (hasTrailer && stored === computed) {
    const m = decodeMessage<T>(t, bytes, what);
    checkFormatVersion(m.formatVersion, what);
    return m;
  }

  // No valid checksum: only a legacy object may be read, and only if it is one exactly.
  let m: T | undefined;
  let parseError: string | undefined;
  try {
    m = t.decode(bytes) as unknown as T;
  } catch (err) {
    parseError = (err as Error).message;
  }
  const hasChecksumField = m !== undefined && Object.prototype.hasOwnProperty.call(m, 'checksum');
  if (m && !hasChecksumField) {
    if (m.formatVersion === LEGACY_UNCHECKSUMMED_FORMAT_VERSION) return m;
    // Neither sealed by this build's rules nor a damaged sealed object: a newer format
    // that this build cannot judge, so say that (checkFormatVersion throws for it).
    if (!hasTrailer && m.formatVersion > FORMAT_VERSION) checkFormatVersion(m.formatVersion, what);
  }
  const problem = hasTrailer
    ? `checksum mismatch: expected ${hex(stored!)} (stored), actual ${hex(computed!)} (computed over its first ${end} bytes)`
    : `it has no checksum trailer, and only format version ${LEGACY_UNCHECKSUMMED_FORMAT_VERSION} objects ` +
      `(written before checksums) may lack one`;
  const parsed =
    parseError !== undefined
      ? `; it does not parse as a ${t.name} either (${parseError})`
      : m && !hasChecksumField && m.formatVersion !== LEGACY_UNCHECKSUMMED_FORMAT_VERSION
        ? `; it parses with format version ${m.formatVersion}`
        : '';
  throw new StoredFormatError(`${what} is corrupt (${bytes.byteLength} bytes): ${problem}${parsed}`);
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function writeUint32LE(bytes: Uint8Array, at: number, v: number): void {
  bytes[at] = v & 0xff;
  bytes[at + 1] = (v >>> 8) & 0xff;
  bytes[at + 2] = (v >>> 16) & 0xff;
  bytes[at + 3] = v >>> 24;
}

function readUint32LE(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** protobufjs decodes uint64 as a Long (or number); we only store values below 2^53. */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v ?? 0);
}
