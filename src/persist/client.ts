/**
 * PersistClient: the entry point to a persist location.
 *
 * `PersistClient.open(url)` opens a location (`mem://`, `file:<dir>`, `postgres://…`,
 * see location/location.ts) and hands out handles on shards. Handles on one shard
 * opened through one client share a cached copy of its state, so in-process readers
 * are woken as soon as an in-process writer commits.
 *
 * Example:
 * ```ts
 * const client = await PersistClient.open('file:./data');
 * const id = newShardId();
 * const codecs = { key: Codecs.string, val: Codecs.unit };
 * const w = await client.openWriter(id, codecs);
 * await w.compareAndAppend([['hello', null, 0, 1]], 0, 1);
 * const r = await client.openLeasedReader(id, codecs);
 * await r.snapshotAndFetch(0);   // [['hello', null, 0, 1]]
 * await client.close();
 * ```
 */
import type { Location, LocationOptions } from '../location/location.js';
import { openLocation } from '../location/location.js';
import {
  checkCodecs,
  checkOpaque,
  invalidArgument,
  optionalBoolean,
  optionalString,
  optionsObject,
} from './argument-checks.js';
import type { ShardCodecs } from './codec.js';
import { resolveConfig, type PersistConfig } from './config.js';
import { compactShard } from './compaction.js';
import { HandleExpired, InvalidArgument } from './errors.js';
import { gcShard } from './gc.js';
import { acquireSharedMergeWorker, type MergeWorker } from './merge-worker.js';
import { Machine } from './machine.js';
import { Opaque } from './opaque.js';
import { ReadHandle } from './read-handle.js';
import { Metrics } from './metrics.js';
import { PersistMetrics } from './persist-metrics.js';
import { registerCodecSchemas, type ShardContext } from './shard-handle-context.js';
import {
  assertCriticalReaderId,
  assertShardId,
  CONTROLLER_CRITICAL_SINCE,
  newLeasedReaderId,
  type CriticalReaderId,
  type ShardId,
} from './shard-id.js';
import { SinceHandle } from './since-handle.js';
import { registerCriticalReader, registerLeasedReader } from './state-commands.js';
import { meteredStorage, StorageMetrics } from './storage-metrics.js';
import { countRetries } from './storage-retry.js';
import { WriteHandle } from './write-handle.js';

/**
 * Options of {@link PersistClient.open}.
 *
 * Example:
 * ```ts
 * await PersistClient.open('file:./data', { config: { compaction: false }, location: { dirMode: 0o750 } });
 * ```
 */
export interface PersistClientOptions {
  /** Overrides of the persist defaults ({@link PersistConfig}). */
  config?: Partial<PersistConfig>;
  /** How a `file:` location URL creates directories and files (default owner-only). */
  location?: LocationOptions;
  /**
   * Where the client's storage and persist metrics go (`Metrics.forRegistry(registry)`);
   * also the default of every TxnsHandle opened on this client. Default: prom-client's
   * global registry.
   */
  metrics?: Metrics;
}

/**
 * Options of {@link PersistClient.openWriter}.
 *
 * Example:
 * ```ts
 * await client.openWriter(id, codecs, { purpose: 'orders ingest' });
 * ```
 */
export interface OpenWriterOptions {
  /** Why the writer is opened; shown by tooling. */
  purpose?: string;
}

/**
 * Options of {@link PersistClient.openLeasedReader}.
 *
 * Example:
 * ```ts
 * await client.openLeasedReader(id, codecs, { purpose: 'dashboard', useCriticalSince: true });
 * ```
 */
export interface OpenReaderOptions {
  /** Why the reader is opened; shown by tooling. */
  purpose?: string;
  /** Start at the meet of the critical readers' sinces rather than the shard since. */
  useCriticalSince?: boolean;
}

/**
 * Options of {@link PersistClient.openCriticalSince}.
 *
 * Example:
 * ```ts
 * await client.openCriticalSince(id, codecs, { readerId: CONTROLLER_CRITICAL_SINCE, defaultOpaque: Opaque.u64(0) });
 * ```
 */
export interface OpenCriticalSinceOptions {
  /** The critical reader to open (default: a new one); the same id reopens the same since. */
  readerId?: CriticalReaderId;
  /** The opaque a new critical reader starts with (default `Opaque.u64(0)`). */
  defaultOpaque?: Opaque;
  /** Why the handle is opened; shown by tooling. */
  purpose?: string;
}

/**
 * The entry point to a persist location: opens it from a URL and hands out writers, readers and
 * critical sinces on its shards (created on first open).
 *
 * Use it directly when you manage shards yourself; `openDatabase` builds named collections on top
 * of it.
 *
 * Example:
 * ```ts
 * const client = await PersistClient.open('file:./data');
 * const id = newShardId();
 * const codecs = { key: Codecs.string, val: Codecs.unit };
 * const w = await client.openWriter(id, codecs);
 * await w.compareAndAppend([['hello', null, 0, 1]], 0, 1);
 * const r = await client.openLeasedReader(id, codecs);
 * await r.snapshotAndFetch(0);   // [['hello', null, 0, 1]]
 * await client.close();
 * ```
 */
export class PersistClient {
  private readonly machines = new Map<ShardId, Machine>();
  private readonly readers = new Set<ReadHandle<unknown, unknown>>();
  private readonly writers = new Set<WriteHandle<unknown, unknown>>();
  private closed = false;
  /** This client's hold on the process's merge worker (merge-worker.ts), taken on its first bigger merge. */
  private merges: { worker: MergeWorker; release(): Promise<void> } | undefined;
  /**
   * @internal The location's Blob and Consensus as every handle of this client uses
   * them: each call counted and timed in the storage metrics.
   */
  readonly storage: { readonly blob: Location['blob']; readonly consensus: Location['consensus'] };
  private readonly persistMetrics: PersistMetrics;

  private constructor(
    /** The location the client runs on (its Blob, Consensus and wake-up channel). */
    readonly location: Location,
    /** The effective configuration: the defaults with the options' overrides. */
    readonly cfg: PersistConfig,
    private readonly ownsLocation: boolean,
    /** Where this client's metrics go (and the default of the layers above it). */
    readonly metrics: Metrics,
  ) {
    const storageMetrics = StorageMetrics.of(metrics);
    this.storage = meteredStorage(location, storageMetrics);
    countRetries(cfg, storageMetrics.retries);
    this.persistMetrics = PersistMetrics.of(metrics);
  }

  /** Opens a client on a location URL (or an already opened Location, which the client will not close). */
  static async open(location: string | Location, opts: PersistClientOptions = {}): Promise<PersistClient> {
    const given = optionsObject(opts, 'PersistClient.open options');
    const cfg = resolveConfig(given.config);
    const metrics = Metrics.option(given.metrics, 'PersistClient.open option metrics', Metrics.default);
    if (typeof location === 'string') {
      if (!LOCATION_SCHEMES.some((scheme) => location.startsWith(scheme))) {
        // Only the scheme is echoed: the rest of a mistyped URL may hold a password.
        const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(location)?.[0];
        throw new InvalidArgument(
          `PersistClient.open location must be a URL starting with ${LOCATION_SCHEMES.join(', ')} (or an opened Location), ` +
            `got a string ${scheme === undefined ? 'with no URL scheme' : `with scheme ${JSON.stringify(scheme)}`}`,
        );
      }
      const locationOpts = optionsObject(given.location, 'PersistClient.open option location');
      return new PersistClient(await openLocation(location, locationOpts), cfg, true, metrics);
    }
    checkLocation(location);
    return new PersistClient(location, cfg, false, metrics);
  }

  /** The merge worker compaction hands merges to, or undefined when `compactionWorker` is off. */
  private mergeWorker(): MergeWorker | undefined {
    if (!this.cfg.compactionWorker || this.closed) return undefined;
    return (this.merges ??= acquireSharedMergeWorker(this.cfg.logger)).worker;
  }

  private machine(shardId: ShardId): Machine {
    if (this.closed) throw new HandleExpired('this PersistClient was closed; open a new one');
    assertShardId(shardId);
    let m = this.machines.get(shardId);
    if (!m) {
      const pm = this.persistMetrics;
      m = new Machine(shardId, this.storage.blob, this.storage.consensus, this.cfg, {
        compact: (machine) => compactShard(machine, this.mergeWorker()),
        gc: async (machine) => {
          const start = performance.now();
          const report = await gcShard(machine);
          pm.gcRuns.inc();
          pm.gcDeletedBlobs.inc(report.deletedParts + report.deletedRollups);
          pm.gcSeconds.observe((performance.now() - start) / 1000);
          this.cfg.logger.debug({ shard: shardId, ...report }, 'gc');
        },
      }, pm, this.location.stateChanges);
      this.machines.set(shardId, m);
    }
    return m;
  }

  private async context<K, V>(shardId: ShardId, codecs: ShardCodecs<K, V>): Promise<ShardContext<K, V>> {
    const machine = this.machine(shardId);
    await machine.open(codecs.key.name, codecs.val.name);
    return { shardId, machine, blob: this.storage.blob, cfg: this.cfg, codecs };
  }

  /** Opens a writer, creating the shard if it does not exist. */
  async openWriter<K, V>(shardId: ShardId, codecs: ShardCodecs<K, V>, opts: OpenWriterOptions = {}): Promise<WriteHandle<K, V>> {
    assertShardId(shardId);
    checkCodecs(codecs);
    const given = optionsObject(opts, 'openWriter options');
    const purpose = optionalString(given.purpose, 'openWriter option purpose') ?? 'writer';
    const ctx = await this.context(shardId, codecs);
    const writer = new WriteHandle(ctx, purpose, (w) =>
      this.writers.delete(w as WriteHandle<unknown, unknown>),
    );
    this.writers.add(writer as WriteHandle<unknown, unknown>);
    return writer;
  }

  /** Opens a leased reader, creating the shard if it does not exist. */
  async openLeasedReader<K, V>(
    shardId: ShardId,
    codecs: ShardCodecs<K, V>,
    opts: OpenReaderOptions = {},
  ): Promise<ReadHandle<K, V>> {
    assertShardId(shardId);
    checkCodecs(codecs);
    const given = optionsObject(opts, 'openLeasedReader options');
    const purpose = optionalString(given.purpose, 'openLeasedReader option purpose') ?? 'reader';
    const useCriticalSince = optionalBoolean(given.useCriticalSince, 'openLeasedReader option useCriticalSince') ?? false;
    const ctx = await this.context(shardId, codecs);
    const readerId = newLeasedReaderId();
    const { result } = await ctx.machine.apply(
      'register_leased_reader',
      (s) =>
        registerLeasedReader(s, {
          readerId,
          purpose,
          leaseDurationMs: this.cfg.readerLeaseDurationMs,
          nowMs: Date.now(),
          useCriticalSince,
        }),
      { confirmNoop: false },
    );
    const reader = new ReadHandle(ctx, readerId, result.since, purpose, (r) =>
      this.readers.delete(r as ReadHandle<unknown, unknown>),
    );
    this.readers.add(reader as ReadHandle<unknown, unknown>);
    return reader;
  }

  /** Opens (registering if new) a critical since handle. */
  async openCriticalSince<K, V>(
    shardId: ShardId,
    codecs: ShardCodecs<K, V>,
    opts: OpenCriticalSinceOptions = {},
  ): Promise<SinceHandle<K, V>> {
    assertShardId(shardId);
    checkCodecs(codecs);
    const given = optionsObject(opts, 'openCriticalSince options');
    const readerId = given.readerId === undefined ? CONTROLLER_CRITICAL_SINCE : given.readerId;
    assertCriticalReaderId(readerId);
    const purpose = optionalString(given.purpose, 'openCriticalSince option purpose') ?? 'critical since';
    const defaultOpaque = checkOpaque(
      given.defaultOpaque === undefined ? Opaque.u64(0) : given.defaultOpaque,
      'openCriticalSince option defaultOpaque',
    );
    const ctx = await this.context(shardId, codecs);
    const { result } = await ctx.machine.apply(
      'register_critical_reader',
      (s) => registerCriticalReader(s, readerId, purpose, defaultOpaque),
      { confirmNoop: true },
    );
    return new SinceHandle(ctx, readerId, result.since, result.opaque);
  }

  /**
   * Registers a key/value schema pair in the shard's schema registry (idempotent)
   * and returns its id.
   */
  async registerSchema<K, V>(shardId: ShardId, codecs: ShardCodecs<K, V>): Promise<number> {
    assertShardId(shardId);
    checkCodecs(codecs);
    return registerCodecSchemas(await this.context(shardId, codecs));
  }

  /**
   * The newest registered schema of a shard, or undefined if it has none (or does not exist):
   * its registry `id` and the `keySchema` / `valSchema` of the codecs (see {@link Codec.schema}).
   */
  async latestSchema(shardId: ShardId): Promise<{ id: number; keySchema: string; valSchema: string } | undefined> {
    const state = await this.machine(shardId).refresh();
    if (!state) return undefined;
    let latest: { id: number; keySchema: string; valSchema: string } | undefined;
    for (const [id, s] of state.schemas) if (!latest || id > latest.id) latest = { id, ...s };
    return latest;
  }

  /**
   * A registered schema by id: the `keySchema` / `valSchema` recorded for it, or undefined for an
   * unknown id.
   */
  async getSchema(shardId: ShardId, schemaId: number): Promise<{ keySchema: string; valSchema: string } | undefined> {
    const m = this.machine(shardId);
    let s = m.loaded ? m.state.schemas.get(schemaId) : undefined;
    if (!s) s = (await m.refresh())?.schemas.get(schemaId);
    return s ? { ...s } : undefined;
  }

  /** Waits for background compaction, rollups and GC started so far. */
  async flushMaintenance(): Promise<void> {
    await Promise.all([...this.machines.values()].map((m) => m.flushMaintenance()));
  }

  /** @internal The machine of a shard (tests, inspection). */
  shardMachine(shardId: ShardId): Machine {
    return this.machine(shardId);
  }

  /**
   * Rejects every pending wait (listens, snapshots at future times,
   * `waitForUpperPast`) with ClientClosed, expires the readers and writers this
   * client opened (so they stop holding back compaction and GC at once rather than
   * when their leases run out), waits for maintenance, and closes the location if
   * the client opened it.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    // First, so a pending wait ends with ClientClosed rather than with whatever the
    // expiries below make it see.
    for (const m of this.machines.values()) m.closeWaits();
    for (const r of [...this.readers]) await r.expire().catch(() => undefined);
    for (const w of [...this.writers]) await w.expire().catch(() => undefined);
    await Promise.all([...this.machines.values()].map((m) => m.close()));
    this.closed = true;
    await this.merges?.release();
    if (this.ownsLocation) await this.location.close();
  }
}

/** The URL forms openLocation accepts (location/location.ts). */
const LOCATION_SCHEMES = ['mem://', 'file:', 'postgres://', 'postgresql://'] as const;

const BLOB_METHODS = ['get', 'set', 'delete', 'listKeysAndMetadata', 'restore', 'close'] as const;
const CONSENSUS_METHODS = ['head', 'compareAndSet', 'scan', 'truncate', 'listKeys', 'close'] as const;

/** An opened Location: a Blob and a Consensus (checked by shape: test wrappers are Locations too). */
function checkLocation(v: unknown): asserts v is Location {
  const allowed = 'a location URL string (mem://, file:<dir>, postgres://…?blob=…) or an opened Location';
  if (typeof v !== 'object' || v === null) throw invalidArgument('PersistClient.open location', allowed, v);
  const { blob, consensus } = v as Partial<Location>;
  const hasAll = (o: unknown, methods: readonly string[]) =>
    typeof o === 'object' && o !== null && methods.every((m) => typeof (o as Record<string, unknown>)[m] === 'function');
  if (!hasAll(blob, BLOB_METHODS) || !hasAll(consensus, CONSENSUS_METHODS)) {
    throw invalidArgument(
      'PersistClient.open location',
      `${allowed}, whose blob has ${BLOB_METHODS.join('/')} and consensus ${CONSENSUS_METHODS.join('/')} methods`,
      v,
    );
  }
}
