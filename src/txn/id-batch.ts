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
import { randomFillSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { StoredFormatError } from '../persist/errors.js';
import type { TransmittableBatch } from '../persist/batch.js';

const protoPath = fileURLToPath(new URL('../../proto/txn.proto', import.meta.url));
const ProtoIdBatch = protobuf.loadSync(protoPath).lookupType('txnwal.txn.ProtoIdBatch');

/** Bytes of a batch id. */
const ID_BYTES = 16;
/**
 * Random bytes drawn a page at a time: `randomBytes(16)` per commit set up a crypto job
 * each time (about 2% of a single-row transaction's CPU).
 */
const pool = new Uint8Array(256 * ID_BYTES);
let poolAt = pool.byteLength;

function freshId(): Uint8Array {
  if (poolAt === pool.byteLength) {
    randomFillSync(pool);
    poolAt = 0;
  }
  // A copy: the pool is refilled, and the id is kept in the encoded batch.
  const id = pool.slice(poolAt, poolAt + ID_BYTES);
  poolAt += ID_BYTES;
  return id;
}

/** Wraps a transmittable batch with a fresh random id. */
export function wrapIdBatch(batch: TransmittableBatch): Uint8Array {
  return ProtoIdBatch.encode({ batchId: freshId(), batch }).finish();
}

/** The `ProtoBatch` bytes inside a wrapped batch, or the bytes themselves if they are a bare batch. */
export function parseIdBatch(raw: Uint8Array): TransmittableBatch {
  let decoded: { batch?: Uint8Array };
  try {
    decoded = ProtoIdBatch.decode(raw) as unknown as { batch?: Uint8Array };
  } catch (err) {
    throw new StoredFormatError(`a txns batch pointer is neither a ProtoIdBatch nor a ProtoBatch: ${(err as Error).message}`);
  }
  // A copy of its own (one memcpy), not a view that would keep `raw` alive.
  if (decoded.batch && decoded.batch.length > 0) return new Uint8Array(decoded.batch);
  return raw;
}
