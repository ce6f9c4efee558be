/**
 * `txnwal inspect <url> [name]`: what a location holds.
 *
 * Without a name: every collection of the catalog with its data shard, physical
 * and logical upper, since, spine size, readers and writers, and its untidied
 * commits; the txns shard the same way; and the unapplied transactions as the
 * library's `TxnsCache.unapplied()` sees them (count, bytes, oldest time; a batch is
 * `applied` once its data shard's upper is past its time, and stays listed until
 * it is tidied). A location with shards but no catalog lists its shards.
 *
 * With a name: that collection in depth: every spine batch (description, since,
 * parts with their sizes), its rollups, its live state versions (seqnos, bytes in
 * Consensus) and the size of its state.
 *
 * `--json` prints one JSON document: {@link InspectReport} or {@link CollectionDetail}.
 *
 * Example:
 * ```
 * $ txnwal inspect file:./data
 * collection  shard          upper  logical  since  batches  parts  bytes  readers  writers  unapplied
 * accounts    s1b2c…         7      9        0      3        3      812 B  1        1        1
 * ```
 */
import type { Command } from 'commander';
import type { CatalogEntry } from '../../db/catalog.js';
import type { ShardId } from '../../persist/shard-id.js';
import { encodeRollupState } from '../../persist/state-codec.js';
import { StateVersions } from '../../persist/state-versions.js';
import type { ShardState } from '../../persist/state.js';
import { URL_HELP, type CliCommand } from '../command.js';
import { isRegistered, logicalUpper, pendingBatches } from '../logical-read.js';
import { formatBytes, formatTable, printJson, printLine } from '../output.js';
import type { ShardReader } from '../shard-reader.js';
import { partTotals, shardSummary, type ShardSummary } from '../shard-summary.js';
import { StoreView } from '../store.js';
import { readTxnsView, type TxnsView } from '../txns-view.js';

/** A committed batch the txns shard still points at. */
export interface PendingBatchInfo {
  collection: string | null;
  shardId: string;
  ts: number;
  parts: number;
  bytes: number;
  updates: number;
  /** The data shard's upper is past `ts`: applied, waiting to be tidied. */
  applied: boolean;
}

/** Unapplied work, as counts (per collection) or in full (the location). */
export interface UnappliedSummary {
  /** Distinct commit times among the batches. */
  transactions: number;
  batches: number;
  bytes: number;
  /** The oldest batch's time, or null with none. */
  oldestTs: number | null;
}

/** One collection in the overview. */
export interface CollectionInfo extends ShardSummary {
  name: string;
  registered: boolean;
  /** Null when the data shard was never created (a crash between catalog entry and registration). */
  physicalUpper: number | null;
  logicalUpper: number;
  unapplied: UnappliedSummary;
}

/** `inspect <url> --json` (with a catalog). */
export interface InspectReport {
  url: string;
  catalog: true;
  txns: (ShardSummary & { logicalUpper: number }) | null;
  unapplied: UnappliedSummary & { registerForget: number; minUnappliedTs: number; pending: PendingBatchInfo[] };
  collections: CollectionInfo[];
}

/** `inspect <url> --json` for a location without a catalog. */
export interface BareReport {
  url: string;
  catalog: false;
  shards: ShardSummary[];
}

/** `inspect <url> <name> --json`. */
export interface CollectionDetail {
  url: string;
  collection: CollectionInfo;
  state: {
    seqno: number;
    earliestSeqno: number;
    liveVersions: number;
    consensusBytes: number;
    stateBytes: number;
    walltimeMs: number;
    hostname: string;
  };
  rollups: { seqno: number; key: string; bytes: number | null }[];
  batches: {
    id: number;
    lower: number;
    upper: number;
    since: number;
    updates: number;
    parts: { key: string | null; inline: boolean; bytes: number; updates: number; tsRewrite: number | null; keep: { lower: number; upper: number } | null }[];
  }[];
  pending: PendingBatchInfo[];
}

function summarizePending(pending: readonly PendingBatchInfo[]): UnappliedSummary {
  return {
    transactions: new Set(pending.map((p) => p.ts)).size,
    batches: pending.length,
    bytes: pending.reduce((n, p) => n + p.bytes, 0),
    oldestTs: pending.length === 0 ? null : Math.min(...pending.map((p) => p.ts)),
  };
}

function pendingInfo(view: TxnsView, dataId: ShardId, name: string | null, physicalUpper: number | undefined): PendingBatchInfo[] {
  return pendingBatches(view, dataId).map((p) => {
    const t = partTotals([p.batch]);
    return { collection: name, shardId: dataId, ts: p.ts, parts: t.parts, bytes: t.bytes, updates: t.updates, applied: physicalUpper !== undefined && p.ts < physicalUpper };
  });
}

/** The summary of a shard that does not exist yet. */
function emptySummary(id: string): ShardSummary {
  return {
    shardId: id,
    keyCodec: 'bytes',
    valCodec: 'bytes',
    seqno: 0,
    upper: 0,
    since: 0,
    batches: 0,
    parts: 0,
    partBytes: 0,
    inlineBytes: 0,
    updates: 0,
    leasedReaders: [],
    criticalReaders: [],
    writers: [],
  };
}

function collectionInfo(entry: CatalogEntry, state: ShardState | undefined, view: TxnsView, now: number): { info: CollectionInfo; pending: PendingBatchInfo[] } {
  const pending = pendingInfo(view, entry.shardId, entry.name, state?.meta.upper);
  const summary = state ? shardSummary(state, now) : emptySummary(entry.shardId);
  const info: CollectionInfo = {
    name: entry.name,
    ...summary,
    keyCodec: entry.keyCodec,
    valCodec: entry.valCodec,
    registered: isRegistered(view, entry.shardId),
    physicalUpper: state ? state.meta.upper : null,
    logicalUpper: logicalUpper(view, entry.shardId, state?.meta.upper ?? 0),
    unapplied: summarizePending(pending),
  };
  return { info, pending };
}

async function overview(store: StoreView, txnsId: ShardId): Promise<InspectReport> {
  const now = Date.now();
  const txnsReader = await store.shard(txnsId);
  // The txns view first, then the data shards (logical-read.ts says why).
  const view = await readTxnsView(txnsReader, txnsId);
  const entries = await store.collections();
  const states = await Promise.all(entries.map(async (e) => (await store.shard(e.shardId))?.state));
  const collections: CollectionInfo[] = [];
  const pending: PendingBatchInfo[] = [];
  entries.forEach((e, i) => {
    const c = collectionInfo(e, states[i], view, now);
    collections.push(c.info);
    pending.push(...c.pending);
  });
  // Commits to shards no catalog entry names (dropped collections) are unapplied work too.
  const named = new Set(entries.map((e) => e.shardId));
  for (const b of view.cache.unappliedBatchList()) {
    if (named.has(b.dataId) || pending.some((p) => p.shardId === b.dataId)) continue;
    const state = (await store.shard(b.dataId))?.state;
    pending.push(...pendingInfo(view, b.dataId, null, state?.meta.upper));
  }
  pending.sort((a, b) => a.ts - b.ts || (a.shardId < b.shardId ? -1 : 1));
  return {
    url: store.location.url,
    catalog: true,
    txns: txnsReader ? { ...shardSummary(txnsReader.state, now), logicalUpper: view.upper } : null,
    unapplied: {
      ...summarizePending(pending),
      registerForget: view.cache.unappliedRegisters.length,
      minUnappliedTs: view.upper === 0 ? 0 : view.cache.minUnappliedTs(),
      pending,
    },
    collections,
  };
}

async function bare(store: StoreView): Promise<BareReport> {
  const now = Date.now();
  const shards: ShardSummary[] = [];
  for (const id of store.shardIds()) {
    const reader = await store.shard(id);
    if (reader) shards.push(shardSummary(reader.state, now));
  }
  return { url: store.location.url, catalog: false, shards };
}

async function detail(store: StoreView, txnsId: ShardId, name: string): Promise<CollectionDetail> {
  const entry = await store.collection(name);
  const view = await readTxnsView(await store.shard(txnsId), txnsId);
  const reader: ShardReader | undefined = await store.shard(entry.shardId);
  const state = reader?.state;
  const { info, pending } = collectionInfo(entry, state, view, Date.now());
  const versions = await new StateVersions({ shardId: entry.shardId, blob: store.ctx.blob, consensus: store.ctx.consensus, cfg: store.ctx.cfg }).scanAll();
  const blobSizes = new Map<string, number>();
  await store.ctx.blob.listKeysAndMetadata(`${entry.shardId}/`, (key, size) => blobSizes.set(key, size));
  return {
    url: store.location.url,
    collection: info,
    state: {
      seqno: state?.seqno ?? 0,
      earliestSeqno: versions[0]?.seqno ?? 0,
      liveVersions: versions.length,
      consensusBytes: versions.reduce((n, v) => n + v.data.byteLength, 0),
      stateBytes: state ? encodeRollupState(state).byteLength : 0,
      walltimeMs: state?.walltimeMs ?? 0,
      hostname: state?.hostname ?? '',
    },
    rollups: state ? [...state.rollups].sort(([a], [b]) => a - b).map(([seqno, key]) => ({ seqno, key, bytes: blobSizes.get(key) ?? null })) : [],
    batches: (state?.spine ?? []).map(({ id, batch }) => ({
      id,
      lower: batch.lower,
      upper: batch.upper,
      since: batch.since,
      updates: batch.updateCount,
      parts: batch.parts.map((p) => ({
        key: p.key ?? null,
        inline: p.inline !== undefined,
        bytes: p.encodedSizeBytes,
        updates: p.updateCount,
        tsRewrite: p.tsRewrite ?? null,
        keep: p.keep ? { lower: p.keep.lower, upper: p.keep.upper } : null,
      })),
    })),
    pending,
  };
}

function readersCell(s: ShardSummary): string {
  return String(s.leasedReaders.length + s.criticalReaders.length);
}

function printOverview(r: InspectReport): void {
  printLine(`location ${r.url}`);
  if (r.txns) {
    printLine(`txns shard ${r.txns.shardId}: upper ${r.txns.upper}, since ${r.txns.since}, seqno ${r.txns.seqno}, ${r.txns.parts} parts (${formatBytes(r.txns.partBytes)})`);
  } else {
    printLine('txns shard: not created yet');
  }
  const u = r.unapplied;
  printLine(
    `unapplied: ${u.transactions} transactions, ${u.batches} batches, ${formatBytes(u.bytes)}` +
      (u.oldestTs === null ? '' : `, oldest at ${u.oldestTs}`) +
      (u.registerForget > 0 ? `; ${u.registerForget} registrations or forgets` : ''),
  );
  printLine('');
  if (r.collections.length === 0) {
    printLine('no collections');
    return;
  }
  printLine(
    formatTable(
      ['collection', 'shard', 'upper', 'logical', 'since', 'batches', 'parts', 'bytes', 'readers', 'writers', 'unapplied', 'codecs'],
      r.collections.map((c) => [
        c.name,
        c.shardId,
        c.physicalUpper === null ? '-' : String(c.physicalUpper),
        String(c.logicalUpper),
        String(c.since),
        String(c.batches),
        String(c.parts),
        formatBytes(c.partBytes),
        readersCell(c),
        String(c.writers.length),
        String(c.unapplied.batches),
        `${c.keyCodec}/${c.valCodec}`,
      ]),
    ),
  );
  const holders = r.collections.flatMap((c) => [
    ...c.leasedReaders.map((x) => [c.name, 'leased reader', x.id, String(x.since), x.purpose, x.expired ? 'expired' : 'live']),
    ...c.criticalReaders.map((x) => [c.name, 'critical since', x.id, String(x.since), x.purpose, '']),
    ...c.writers.map((x) => [c.name, 'writer', x.id, '-', x.purpose, x.expired ? 'expired' : 'live']),
  ]);
  if (holders.length > 0) {
    printLine('');
    printLine(formatTable(['collection', 'holder', 'id', 'since', 'purpose', 'lease'], holders));
  }
  if (u.pending.length > 0) {
    printLine('');
    printLine(
      formatTable(
        ['ts', 'collection', 'shard', 'parts', 'bytes', 'updates', 'state'],
        u.pending.map((p) => [String(p.ts), p.collection ?? '(dropped)', p.shardId, String(p.parts), formatBytes(p.bytes), String(p.updates), p.applied ? 'applied, not tidied' : 'not applied']),
      ),
    );
  }
}

function printBare(r: BareReport): void {
  printLine(`location ${r.url}: no txnwal catalog; ${r.shards.length} persist shards`);
  printLine('');
  printLine(
    formatTable(
      ['shard', 'upper', 'since', 'seqno', 'batches', 'parts', 'bytes', 'readers', 'writers', 'codecs'],
      r.shards.map((s) => [s.shardId, String(s.upper), String(s.since), String(s.seqno), String(s.batches), String(s.parts), formatBytes(s.partBytes), readersCell(s), String(s.writers.length), `${s.keyCodec}/${s.valCodec}`]),
    ),
  );
}

function printDetail(d: CollectionDetail): void {
  const c = d.collection;
  printLine(`collection ${c.name} (${c.keyCodec}/${c.valCodec}) in ${d.url}`);
  printLine(`shard ${c.shardId}: upper ${c.physicalUpper ?? '-'} (logical ${c.logicalUpper}${c.registered ? ', registered' : ', not registered'}), since ${c.since}`);
  printLine(
    `state: seqno ${d.state.seqno}, live versions ${d.state.earliestSeqno}..${d.state.seqno} (${d.state.liveVersions}, ${formatBytes(d.state.consensusBytes)} in consensus), ` +
      `state ${formatBytes(d.state.stateBytes)}, ${c.updates} updates in ${c.parts} parts (${formatBytes(c.partBytes)}, ${formatBytes(c.inlineBytes)} inline)`,
  );
  printLine('');
  printLine(
    formatTable(
      ['batch', 'lower', 'upper', 'since', 'updates', 'parts', 'bytes', 'part keys'],
      d.batches.map((b) => [
        String(b.id),
        String(b.lower),
        String(b.upper),
        String(b.since),
        String(b.updates),
        String(b.parts.length),
        formatBytes(b.parts.reduce((n, p) => n + p.bytes, 0)),
        b.parts.map((p) => (p.inline ? 'inline' : p.key!) + (p.tsRewrite === null ? '' : ` @${p.tsRewrite}`)).join(', '),
      ]),
    ),
  );
  printLine('');
  printLine(formatTable(['rollup seqno', 'bytes', 'key'], d.rollups.map((r) => [String(r.seqno), r.bytes === null ? '-' : formatBytes(r.bytes), r.key])));
  if (d.pending.length > 0) {
    printLine('');
    printLine(formatTable(['pending ts', 'parts', 'bytes', 'updates', 'state'], d.pending.map((p) => [String(p.ts), String(p.parts), formatBytes(p.bytes), String(p.updates), p.applied ? 'applied, not tidied' : 'not applied'])));
  }
}

/** `txnwal inspect`. */
export const inspectCommand: CliCommand = {
  register(program: Command) {
    program
      .command('inspect')
      .summary('show collections, shards, uppers, sinces, readers and unapplied transactions')
      .description(
        'Show what a location holds: each collection with its data shard, physical and logical upper, since, ' +
          'parts, readers and writers, and the unapplied transactions. With a collection name: its batches, parts, ' +
          'rollups and state versions. Reads only.',
      )
      .argument('<url>', 'the location, e.g. file:./data')
      .argument('[name]', 'one collection to show in depth')
      .option('--json', 'print one JSON document instead of tables')
      .addHelpText(
        'after',
        `${URL_HELP}

Examples:
  txnwal inspect file:./data
  txnwal inspect file:./data accounts --json | jq .batches`,
      )
      .action(async (url: string, name: string | undefined, opts: { json?: boolean }) => {
        const store = await StoreView.open(url);
        try {
          if (name !== undefined) {
            const d = await detail(store, store.requireTxnsId(), name);
            if (opts.json) printJson(d);
            else printDetail(d);
          } else if (store.txnsId === undefined) {
            const r = await bare(store);
            if (opts.json) printJson(r);
            else printBare(r);
          } else {
            const r = await overview(store, store.txnsId);
            if (opts.json) printJson(r);
            else printOverview(r);
          }
        } finally {
          await store.close();
        }
      });
  },
};
