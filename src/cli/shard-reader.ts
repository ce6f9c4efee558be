/**
 * ShardReader: one persist shard read straight from its stored state, without a
 * handle: no reader is registered, no lease is taken, nothing is written.
 *
 * A `ReadHandle` registers a leased reader (a compare-and-set) whose since and
 * seqno hold keep compaction and GC from moving under it. The `txnwal` command
 * must not write, so it reads the state versions itself (`StateVersions.rebuild` /
 * `catchUp`: Consensus scans and rollup fetches) and fetches the parts that state
 * names. Without a hold two things can move underneath it, and both are handled:
 * - **GC deletes a part** (or the rollup) the state it read still named: the state
 *   was replaced meanwhile (compaction merged those parts). {@link ShardReader.read}
 *   then re-reads the state and runs the read again, from the new parts, up to
 *   {@link READ_ATTEMPTS} times; a store that changes faster than that is reported
 *   as such. (`StateVersions.rebuild` retries a vanished rollup the same way.)
 * - **Compaction advances times** below the since to the since. Reads at
 *   `asOf >= since` stay exact; callers compare against the since they read
 *   (see logical-read.ts and tail-follower.ts).
 *
 * Example:
 * ```ts
 * const r = await ShardReader.open(ctx, shardId);        // undefined: no such shard
 * const rows = await r!.read((state, fetch) => readAsOf(state, fetch, 7));
 * await r!.refresh();                                    // catch up with newer versions
 * ```
 */
import type { Blob } from '../location/blob.js';
import type { Consensus } from '../location/consensus.js';
import type { PersistConfig } from '../persist/config.js';
import { decodePartData, interpretPart, type HollowPart, type PartData } from '../persist/part.js';
import { StateVersions } from '../persist/state-versions.js';
import type { ShardState } from '../persist/state.js';
import { withStorageRetry } from '../persist/storage-retry.js';
import { CliError } from './cli-error.js';

/** Reads that find a part deleted under them before the shard counts as changing too fast to read. */
export const READ_ATTEMPTS = 10;

/** What every read needs: the stores and the storage retry settings. */
export interface ReadContext {
  readonly blob: Blob;
  readonly consensus: Consensus;
  readonly cfg: PersistConfig;
}

/** Fetches one part of the state being read; throws {@link PartGone} when GC deleted it. */
export type FetchPart = (part: HollowPart) => Promise<PartData>;

/** A part named by the state we read is no longer in Blob: the state was replaced and GC ran. */
export class PartGone extends Error {
  override readonly name = 'PartGone';
}

/** Fetches a part from `blob` (or its inline bytes) and applies the part's own rewrite and keep bounds. */
export async function fetchStoredPart(ctx: ReadContext, part: HollowPart): Promise<PartData> {
  let bytes = part.inline;
  if (!bytes) {
    const key = part.key!;
    bytes = await withStorageRetry(ctx.cfg, `reading batch part ${key}`, () => ctx.blob.get(key));
    if (!bytes) throw new PartGone(`batch part ${key} is gone from Blob`);
  }
  return interpretPart(part, decodePartData(bytes, `batch part ${part.key ?? '(inline)'}`));
}

/** A read-only view of one shard's latest state (see the module doc). */
export class ShardReader {
  private constructor(
    private readonly ctx: ReadContext,
    private readonly versions: StateVersions,
    readonly shardId: string,
    private current: ShardState,
  ) {}

  /** The shard's newest state, or undefined when it does not exist. */
  static async open(ctx: ReadContext, shardId: string): Promise<ShardReader | undefined> {
    const versions = new StateVersions({ shardId, blob: ctx.blob, consensus: ctx.consensus, cfg: ctx.cfg });
    const state = await versions.rebuild();
    return state && new ShardReader(ctx, versions, shardId, state);
  }

  /** The state last read. */
  get state(): ShardState {
    return this.current;
  }

  /** Catches up with newer versions; returns whether the state changed. */
  async refresh(): Promise<boolean> {
    const next = (await this.versions.catchUp(this.current)) ?? this.current;
    const changed = next.seqno !== this.current.seqno;
    this.current = next;
    return changed;
  }

  /**
   * Runs `body` over the current state with a part fetcher; when a part it fetches
   * is gone (GC raced the read), re-reads the state and runs `body` again.
   */
  async read<T>(body: (state: ShardState, fetch: FetchPart) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await body(this.current, (part) => fetchStoredPart(this.ctx, part));
      } catch (err) {
        if (!(err instanceof PartGone)) throw err;
        if (attempt >= READ_ATTEMPTS) {
          throw new CliError(
            `shard ${this.shardId} changed under ${READ_ATTEMPTS} reads in a row (compaction deleted the parts each one read); try again when it is less busy`,
          );
        }
        // Compaction replaced the parts and GC deleted them: the newer state names their successors.
        const rebuilt = await this.versions.rebuild(this.current);
        if (rebuilt) this.current = rebuilt;
      }
    }
  }
}
