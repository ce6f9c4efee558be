/**
 * `ProtoIdBatch` (proto/txn.proto): a transmittable batch wrapped with 16 random
 * bytes, so every committed batch pointer serializes uniquely (invariant I3) and its
 * tidy retraction cancels exactly one txns row.
 *
 * `parseIdBatch` also accepts a bare `ProtoBatch` (the legacy form): `ProtoBatch`
 * reserves field 4, so "field 4 present" means "wrapped".
 *
 * Example:
 * ```ts
 * const raw = wrapIdBatch(batch.intoTransmittable());   // differs on every call
 * parseIdBatch(raw);                                     // the ProtoBatch bytes again
 * ```
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { StoredFormatError } from '../persist/errors.js';
import type { TransmittableBatch } from '../persist/batch.js';

const protoPath = fileURLToPath(new URL('../../proto/txn.proto', import.meta.url));
const ProtoIdBatch = protobuf.loadSync(protoPath).lookupType('txnwal.txn.ProtoIdBatch');

/** Wraps a transmittable batch with a fresh random id. */
export function wrapIdBatch(batch: TransmittableBatch): Uint8Array {
  return ProtoIdBatch.encode({ batchId: randomBytes(16), batch }).finish();
}

/** The `ProtoBatch` bytes inside a wrapped batch, or the bytes themselves if they are a bare batch. */
export function parseIdBatch(raw: Uint8Array): TransmittableBatch {
  let decoded: { batch?: Uint8Array };
  try {
    decoded = ProtoIdBatch.decode(raw) as unknown as { batch?: Uint8Array };
  } catch (err) {
    throw new StoredFormatError(`a txns batch pointer is neither a ProtoIdBatch nor a ProtoBatch: ${(err as Error).message}`);
  }
  if (decoded.batch && decoded.batch.length > 0) return Uint8Array.from(decoded.batch);
  return raw;
}
