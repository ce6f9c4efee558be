/**
 * ApplyWriter: the data-shard writer apply appends through, whose schema follows
 * the batches it appends.
 *
 * Batches are encoded with the schema of the handle that committed them; a handle
 * that applies them may have opened the shard with an older one. Before appending,
 * the writer switches to the batches' schema (reopening the shard's writer with it),
 * so a batch is always appended under the schema it was written with.
 *
 * Example: the shard's writer has schema 1; a commit from a newer process carries
 * schema 2; `matchBatchSchema([b])` opens a writer with schema 2, expires the old
 * one, and the append that follows records schema 2.
 */
import type { Batch } from '../persist/batch.js';
import type { PersistClient } from '../persist/client.js';
import { codecSchema, type ShardCodecs } from '../persist/codec.js';
import { InvariantViolation } from '../persist/errors.js';
import type { WriteHandle } from '../persist/write-handle.js';

/** `codecs` recording the given schemas in the shard's registry (the codec names stay). */
export function withSchemas<K, V>(codecs: ShardCodecs<K, V>, keySchema: string, valSchema: string): ShardCodecs<K, V> {
  return { key: { ...codecs.key, schema: keySchema }, val: { ...codecs.val, schema: valSchema } };
}

/**
 * A data-shard writer for applying, whose schema follows the batches it appends:
 * batches committed by a handle with a newer schema are appended under that schema.
 */
export class ApplyWriter<K, V> {
  constructor(
    private readonly client: PersistClient,
    private current: WriteHandle<K, V>,
    private codecs: ShardCodecs<K, V>,
  ) {}

  get writer(): WriteHandle<K, V> {
    return this.current;
  }

  /** Switches to the schema recorded on `batches` (they must agree on one). */
  async matchBatchSchema(batches: Batch[]): Promise<void> {
    const schemas = new Map<string, { key: string; val: string }>();
    for (const b of batches) if (b.updateCount > 0) schemas.set(`${b.keySchema}\u0000${b.valSchema}`, { key: b.keySchema, val: b.valSchema });
    if (schemas.size === 0) return;
    if (schemas.size > 1) {
      throw new InvariantViolation(`batches applied together to ${this.current.shardId} carry ${schemas.size} different schemas`);
    }
    const [s] = schemas.values();
    if (s!.key === codecSchema(this.codecs.key) && s!.val === codecSchema(this.codecs.val)) return;
    const codecs = withSchemas(this.codecs, s!.key, s!.val);
    const next = await this.client.openWriter(this.current.shardId, codecs, { purpose: 'txn data apply' });
    await this.current.expire();
    this.current = next;
    this.codecs = codecs;
  }
}
