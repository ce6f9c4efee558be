/**
 * Protobuf schemas of everything persist stores (proto/persist.proto), loaded once.
 *
 * Every stored object carries `formatVersion`; {@link checkFormatVersion} refuses
 * objects from a newer format with a message that says to upgrade, rather than
 * misreading them.
 */
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import { StoredFormatError } from './errors.js';

/** Bumped on any incompatible change to the stored formats. */
export const FORMAT_VERSION = 1;
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
  if (found !== FORMAT_VERSION) {
    throw new StoredFormatError(
      `${what} has format version ${found}, this build reads version ${FORMAT_VERSION}` +
        (found > FORMAT_VERSION ? ': it was written by a newer txnwal; upgrade this process.' : '.'),
    );
  }
}

/** protobufjs decodes uint64 as a Long (or number); we only store values below 2^53. */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v ?? 0);
}
