/**
 * HollowBatch: the metadata of a batch of updates — its description
 * `[lower, upper)` with `since`, and the parts that hold its updates.
 *
 * Invariants:
 * - every update (after its part's rewrite and keep bounds) has `lower <= t < upper`,
 *   except that times below `since` may have been advanced to `since` by compaction;
 * - an empty batch (no parts) only moves the upper: appending one is metadata-only.
 */
import { toNumber } from './encoding.js';
import { hollowPartFromProto, hollowPartToProto, type HollowPart, type ProtoHollowPartShape } from './part.js';

export interface HollowBatch {
  readonly lower: number;
  readonly upper: number;
  readonly since: number;
  readonly parts: readonly HollowPart[];
  readonly updateCount: number;
}

export interface ProtoHollowBatchShape {
  lower: number;
  upper: number;
  since: number;
  parts: ProtoHollowPartShape[];
  updateCount: number | { toNumber(): number };
}

export function hollowBatchToProto(b: HollowBatch): object {
  return {
    lower: b.lower,
    upper: b.upper,
    since: b.since,
    parts: b.parts.map(hollowPartToProto),
    updateCount: b.updateCount,
  };
}

export function hollowBatchFromProto(p: ProtoHollowBatchShape): HollowBatch {
  return {
    lower: p.lower,
    upper: p.upper,
    since: p.since,
    parts: p.parts.map(hollowPartFromProto),
    updateCount: toNumber(p.updateCount),
  };
}

export function inlineBytes(b: HollowBatch): number {
  let n = 0;
  for (const p of b.parts) if (p.inline) n += p.inline.byteLength;
  return n;
}
