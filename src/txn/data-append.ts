/**
 * Appends to data shards (spec §2.5): what apply and the register/forget fill write.
 *
 * - `emptyCaa`: idempotent "make the upper `> ts`" with empty appends (also used to
 *   initialize the txns shard's upper).
 * - `applyCaa`: appends committed batches to a data shard at `[upper, commitTs+1)`.
 *   Applying is definite work on definite input: if the data upper is already past
 *   `commitTs`, someone else did it, and it is skipped (invariant I4).
 *
 * Every compare-and-append attempt and its outcome is logged at debug level through
 * the client's pino logger (silent by default).
 *
 * Example: a commit at 5 to d0 whose upper is 3: `applyCaa` appends its batches at
 * `[3, 6)`; a second handle applying the same commit finds the upper 6 > 5 and skips.
 */
import type { Logger } from 'pino';
import type { Batch } from '../persist/batch.js';
import { InvariantViolation } from '../persist/errors.js';
import { isClosed, stepForward } from '../persist/time.js';
import type { WriteHandle } from '../persist/write-handle.js';
import type { ApplyWriter } from './apply-writer.js';
import { parseIdBatch } from './id-batch.js';

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
