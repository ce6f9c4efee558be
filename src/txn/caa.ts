/**
 * The compare-and-append helpers every txn-wal operation is built from (spec §2.5).
 *
 * - `smallCaa`: one compare-and-append of a few rows, logged at debug level with
 *   the rows; a mismatch returns the current upper.
 * - `emptyCaa`: idempotent "make the upper `> ts`" with empty appends.
 * - `applyCaa`: appends committed batches to a data shard at `[upper, commitTs+1)`.
 *   Applying is definite work on definite input: if the data upper is already past
 *   `commitTs`, someone else did it, and it is skipped (invariant I4).
 * - `cads`: downgrades the txns shard's critical since, fenced by its opaque.
 *
 * Every compare-and-append attempt and its outcome is logged at debug level through
 * the client's pino logger (silent by default).
 */
import type { Logger } from 'pino';
import type { PersistClient } from '../persist/client.js';
import type { Batch } from '../persist/batch.js';
import { codecSchema, type ShardCodecs } from '../persist/codec.js';
import { InvariantViolation } from '../persist/errors.js';
import type { Opaque } from '../persist/opaque.js';
import type { SinceHandle } from '../persist/since-handle.js';
import { isClosed, stepForward } from '../persist/time.js';
import type { Update } from '../persist/update.js';
import type { WriteHandle } from '../persist/write-handle.js';
import { Fenced } from './errors.js';
import { parseIdBatch } from './id-batch.js';

/** Compare-and-append of `updates` at `[upper, newUpper)`; a mismatch returns the current upper. */
export async function smallCaa<K, V>(
  name: string,
  log: Logger,
  writer: WriteHandle<K, V>,
  updates: Update<K, V>[],
  upper: number,
  newUpper: number,
): Promise<{ ok: true } | { ok: false; current: number }> {
  log.debug({ shard: writer.shardId, upper, newUpper, updates: updates.length }, `CaA ${name} [${upper},${newUpper})`);
  const res = await writer.compareAndAppend(updates, upper, newUpper);
  if (res.ok) {
    log.debug({ shard: writer.shardId }, `CaA ${name} [${upper},${newUpper}) success`);
    return res;
  }
  if (isClosed(res.current)) throw new InvariantViolation(`${name}: shard ${writer.shardId} was closed`);
  log.debug({ shard: writer.shardId, current: res.current }, `CaA ${name} [${upper},${newUpper}) mismatch`);
  return res;
}

/**
 * Makes the shard's upper `> ts` with empty appends (`WriteHandle.advanceUpper`).
 * Idempotent; a closed shard (upper Infinity) is past every time. Each attempt is
 * logged by persist's state machine ('state cas').
 */
export async function emptyCaa<K, V>(name: string, writer: WriteHandle<K, V>, ts: number, log?: Logger): Promise<void> {
  if (ts < writer.sharedUpper()) return;
  const newUpper = stepForward(ts);
  log?.debug({ shard: writer.shardId, newUpper }, `CaA ${name} empty to ${newUpper}`);
  await writer.advanceUpper(newUpper);
}

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

/** Appends the committed batches `raws` to the data shard at `commitTs`, unless that is already done. */
export async function applyCaa<K, V>(
  apply: ApplyWriter<K, V>,
  raws: Uint8Array[],
  commitTs: number,
  log: Logger,
  ensureSchemaMatch = true,
): Promise<void> {
  // Applied commits stay in the cache until their tidy lands, so most calls find the
  // work done: check the upper before paying for decoding the batches.
  let batches: Batch[] | undefined;
  const consumed = () => {
    for (const b of batches ?? []) if (!b.isConsumed) b.markConsumed('applied by another handle');
  };
  let upper = apply.writer.sharedUpper();
  for (;;) {
    if (commitTs < upper) {
      log.debug({ shard: apply.writer.shardId, commitTs, upper }, `CaA data apply t=${commitTs} already done`);
      consumed();
      return;
    }
    batches ??= raws.map((raw) => apply.writer.batchFromTransmittable(parseIdBatch(raw)));
    if (ensureSchemaMatch) await apply.matchBatchSchema(batches);
    log.debug(
      { shard: apply.writer.shardId, commitTs, batches: batches.length },
      `CaA data apply t=${commitTs} [${upper},${stepForward(commitTs)})`,
    );
    const res = await apply.writer.compareAndAppendBatch(batches, upper, stepForward(commitTs), { validatePartBounds: true });
    if (res.ok) {
      log.debug({ shard: apply.writer.shardId, commitTs }, `CaA data apply t=${commitTs} success`);
      return;
    }
    if (isClosed(res.current)) {
      // Closed while we raced: nothing more can be appended (and nothing is lost:
      // whoever closed it did so past every applied commit or by misuse).
      consumed();
      throw new InvariantViolation(`data shard ${apply.writer.shardId} was closed while applying the commit at ${commitTs}`);
    }
    log.debug({ shard: apply.writer.shardId, current: res.current }, `CaA data apply t=${commitTs} mismatch`);
    upper = res.current;
  }
}

/**
 * Downgrades the txns critical since to `ts`, fenced by `token`, the opaque the
 * handle adopted when it opened. A mismatch means another process installed a new
 * opaque: this handle is fenced out.
 */
export async function cads<K, V>(since: SinceHandle<K, V>, ts: number, token: Opaque): Promise<void> {
  if (!(since.since() < ts)) return;
  const res = await since.compareAndDowngradeSince(token, [token, ts]);
  if (!res.ok) {
    throw new Fenced(
      `the txns shard's since is now owned by another process (opaque ${formatOpaque(res.opaque)}, ours ` +
        `${formatOpaque(token)}); this TxnsHandle was fenced out: stop using it`,
    );
  }
}

function formatOpaque(o: Opaque): string {
  return `${o.codec}:${Buffer.from(o.bytes).toString('hex')}`;
}
