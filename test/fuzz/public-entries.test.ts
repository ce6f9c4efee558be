/**
 * Every public entry, fed garbage (issue 10, finding 8): undefined, null, NaN,
 * ±Infinity, negative and fractional numbers, huge numbers, strings, objects,
 * arrays, bigints, symbols, functions, booleans.
 *
 * Each case feeds one argument (or option) garbage that is not valid for it, with
 * every other argument valid, and asserts:
 * - the call throws or rejects with an InvalidUsage, never a TypeError or another
 *   error: the caller is told what was wrong;
 * - nothing was written or consumed: the txns upper, the data shard's state seqno,
 *   its txns claim and the oracle's timestamps did not move.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { GroupCommitter } from '../../src/coord/group-commit.js';
import { LogicalClock } from '../../src/coord/logical-clock.js';
import { openTimestampOracle } from '../../src/coord/open-oracle.js';
import { PersistClient } from '../../src/persist/client.js';
import { Codecs } from '../../src/persist/codec.js';
import { InvalidUsage } from '../../src/persist/errors.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import type { ReadHandle } from '../../src/persist/read-handle.js';
import type { WriteHandle } from '../../src/persist/write-handle.js';
import { txnSink } from '../../src/sinks/txn-sink.js';
import { claimKey } from '../../src/txn/data-shard-claim.js';
import { Metrics } from '../../src/persist/metrics.js';
import { TxnsCodecDefault } from '../../src/txn/txns-codec.js';
import { TxnsHandle } from '../../src/txn/txns-handle.js';
import { STRING_UNIT } from '../support/persist.js';

/** The garbage every case tries first (fast-check examples), then random garbage. */
const FIXED: unknown[] = [
    undefined,
    null,
    NaN,
    Infinity,
    -Infinity,
    -1,
    -0.5,
    1.5,
    2 ** 53,
    Number.MAX_VALUE,
    true,
    false,
    '',
    '5',
    'x',
    [],
    [1, 2],
    {},
    { a: 1 },
    Symbol('s'),
    () => 1,
    new Date(0),
    new Map(),
    5n,
    -1n,
];

/** Garbage of every kind; each case filters out what is valid for its argument. */
const garbage: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(...FIXED),
  fc.string(),
  fc.integer({ min: -1_000_000, max: -1 }),
  fc.double({ noNaN: false }),
  fc.bigInt(),
  fc.object(),
  fc.array(fc.anything(), { maxLength: 3 }),
);

const isTimestamp = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isSafeInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v);
/** A string that names a location: opening it would really open (or create) one. */
const isLocationUrl = (v: unknown) => typeof v === 'string' && /^(mem:|file:|postgres)/.test(v);
/** Options objects accept unknown keys (fc.object() makes many), so any object is "valid" there. */
/** An empty array, Map or plain object: a valid "nothing" for collection arguments. */
const isEmptyCollection = (v: unknown) =>
  (Array.isArray(v) && v.length === 0) ||
  (v instanceof Map && v.size === 0) ||
  (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype && Object.keys(v).length === 0);
const isOptions = (v: unknown) => v === undefined || (typeof v === 'object' && v !== null && !Array.isArray(v));

interface Case {
  name: string;
  /** Values the argument accepts, left out of the garbage. */
  valid?: (v: unknown) => boolean;
  call: (g: unknown) => unknown;
}

/** Throws and rejects alike become the error; a call that settles is undefined. */
async function errorOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    return err;
  }
}

/** Garbage typed as whatever the parameter wants. */
const as = (v: unknown): never => v as never;

describe('fuzz: every public entry refuses garbage with an InvalidUsage and writes nothing', function () {
  this.timeout(120_000);
  let client: PersistClient;
  let txns: TxnsHandle<string, null>;
  let d: ShardId;
  let w: WriteHandle<string, null>;
  let r: ReadHandle<string, null>;
  let clock: LogicalClock;
  let gc: GroupCommitter<string, null>;
  const metrics = Metrics.forRegistry(new Registry());

  async function footprint(): Promise<unknown> {
    const txnsWriter = await client.openWriter(txns.txnsId, TxnsCodecDefault.codecs);
    const txnsUpper = await txnsWriter.fetchRecentUpper();
    await txnsWriter.expire();
    const dataSeqno = (await client.shardMachine(d).refresh())?.seqno;
    const claim = (await client.location.consensus.head(claimKey(d)))?.seqno;
    return { txnsUpper, dataSeqno, claim, readTs: await clock.readTs(), writeTs: await clock.peekWriteTs() };
  }

  before(async () => {
    client = await PersistClient.open('mem://', { config: { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 20 } } });
    txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs: STRING_UNIT, metrics });
    d = newShardId();
    clock = new LogicalClock({ now: () => 0 });
    gc = await GroupCommitter.open(txns, clock, { now: () => 0 });
    await gc.register([await client.openWriter(d, STRING_UNIT)]);
    w = await client.openWriter(d, STRING_UNIT);
    r = await client.openLeasedReader(d, STRING_UNIT);
  });
  after(async () => {
    await gc.close();
    await txns.close();
    await clock.close();
    await client.close();
  });

  const persistCases: Case[] = [
    { name: 'PersistClient.open(location)', valid: isLocationUrl, call: (g) => PersistClient.open(as(g)) },
    { name: 'PersistClient.open(url, options)', valid: isOptions, call: (g) => PersistClient.open('mem://', as(g)) },
    ...(
      [
        'rollupThreshold',
        'gcMinVersions',
        'readerLeaseDurationMs',
        'blobTargetSizeBytes',
        'inlineWritesSingleMaxBytes',
        'readerSinceDowngradeIntervalMs',
      ] as const
    ).map(
      (field): Case => ({
        name: `PersistClient.open config.${field}`,
        // Every field accepts some numbers; none accepts a non-number, NaN, ±Infinity or -1.
        valid: (v) => v === undefined || (typeof v === 'number' && Number.isFinite(v) && v > 0) || v === 0,
        call: (g) => PersistClient.open('mem://', { config: { [field]: g } }),
      }),
    ),
    {
      name: 'PersistClient.open config.storageRetry.attempts',
      valid: (v) => v === undefined || (isSafeInt(v) && (v as number) >= 1),
      call: (g) => PersistClient.open('mem://', { config: { storageRetry: as({ attempts: g }) } }),
    },
    {
      name: 'PersistClient.open config.listenPoll.multiplier',
      valid: (v) => v === undefined || (typeof v === 'number' && Number.isFinite(v) && v >= 1),
      call: (g) => PersistClient.open('mem://', { config: { listenPoll: as({ multiplier: g }) } }),
    },
    { name: 'PersistClient.open config.compaction', valid: (v) => v === undefined || typeof v === 'boolean', call: (g) => PersistClient.open('mem://', { config: { compaction: as(g) } }) },
    { name: 'PersistClient.open config.logger', valid: (v) => v === undefined, call: (g) => PersistClient.open('mem://', { config: { logger: as(g) } }) },
    { name: 'PersistClient.open option metrics', valid: (v) => v === undefined, call: (g) => PersistClient.open('mem://', { metrics: as(g) }) },
    { name: 'openWriter(shardId)', call: (g) => client.openWriter(as(g), STRING_UNIT) },
    { name: 'openWriter(codecs)', call: (g) => client.openWriter(d, as(g)) },
    { name: 'openWriter codecs.key', call: (g) => client.openWriter(d, as({ key: g, val: Codecs.unit })) },
    { name: 'openWriter option purpose', valid: (v) => v === undefined || typeof v === 'string', call: (g) => client.openWriter(d, STRING_UNIT, { purpose: as(g) }) },
    { name: 'openLeasedReader(shardId)', call: (g) => client.openLeasedReader(as(g), STRING_UNIT) },
    { name: 'openLeasedReader(codecs)', call: (g) => client.openLeasedReader(d, as(g)) },
    { name: 'openLeasedReader option useCriticalSince', valid: (v) => v === undefined || typeof v === 'boolean', call: (g) => client.openLeasedReader(d, STRING_UNIT, { useCriticalSince: as(g) }) },
    { name: 'openCriticalSince option readerId', valid: (v) => v === undefined, call: (g) => client.openCriticalSince(d, STRING_UNIT, { readerId: as(g) }) },
    { name: 'openCriticalSince option defaultOpaque', valid: (v) => v === undefined, call: (g) => client.openCriticalSince(d, STRING_UNIT, { defaultOpaque: as(g) }) },
    { name: 'compareAndAppend(updates)', valid: isEmptyCollection, call: (g) => w.compareAndAppend(as(g), w.upper(), w.upper() + 1) },
    { name: 'compareAndAppend a row', call: (g) => w.compareAndAppend(as([g]), w.upper(), w.upper() + 1) },
    { name: 'compareAndAppend a row time', valid: isTimestamp, call: (g) => w.compareAndAppend([['k', null, as(g), 1]], w.upper(), w.upper() + 1) },
    { name: 'compareAndAppend a row diff', valid: isSafeInt, call: (g) => w.compareAndAppend([['k', null, w.upper(), as(g)]], w.upper(), w.upper() + 1) },
    { name: 'compareAndAppend a row key', valid: (v) => typeof v === 'string', call: (g) => w.compareAndAppend([[as(g), null, w.upper(), 1]], w.upper(), w.upper() + 1) },
    { name: 'compareAndAppend expectedUpper', valid: (v) => isTimestamp(v) || v === Infinity, call: (g) => w.compareAndAppend([], as(g), w.upper() + 1) },
    { name: 'compareAndAppend newUpper', valid: (v) => isTimestamp(v) || v === Infinity, call: (g) => w.compareAndAppend([['k', null, w.upper(), 1]], w.upper(), as(g)) },
    { name: 'snapshotAndFetch(asOf)', valid: isTimestamp, call: (g) => r.snapshotAndFetch(as(g)) },
    { name: 'listen(asOf)', valid: isTimestamp, call: (g) => r.listen(as(g)) },
    { name: 'downgradeSince(since)', valid: isTimestamp, call: (g) => r.downgradeSince(as(g)) },
  ];

  const txnCases: Case[] = [
    { name: 'TxnsHandle.open(client)', call: (g) => TxnsHandle.open(as(g), { txnsId: newShardId(), codecs: STRING_UNIT }) },
    { name: 'TxnsHandle.open(options)', call: (g) => TxnsHandle.open(client, as(g)) },
    ...(
      [
        ['txnsId', () => false],
        ['codecs', () => false],
        ['initTs', (v: unknown) => v === undefined || isTimestamp(v)],
        ['metrics', (v: unknown) => v === undefined],
        ['spillThresholdBytes', (v: unknown) => v === undefined || (isSafeInt(v) && (v as number) >= 1)],
        ['opaque', (v: unknown) => v === undefined],
        ['useCriticalSince', (v: unknown) => v === undefined || typeof v === 'boolean'],
        ['applyEnsureSchemaMatch', (v: unknown) => v === undefined || typeof v === 'boolean'],
        ['txnsCodec', (v: unknown) => v === undefined],
      ] as const
    ).map(
      ([field, valid]): Case => ({
        name: `TxnsHandle.open option ${field}`,
        valid,
        call: (g) => TxnsHandle.open(client, { txnsId: newShardId(), codecs: STRING_UNIT, metrics, [field]: g }),
      }),
    ),
    { name: 'register(registerTs)', valid: isTimestamp, call: async (g) => txns.register(as(g), [await client.openWriter(d, STRING_UNIT)]) },
    { name: 'register(writers)', valid: isEmptyCollection, call: (g) => txns.register(1_000, as(g)) },
    { name: 'register(writers[0])', call: (g) => txns.register(1_000, as([g])) },
    {
      name: 'register(an expired writer)',
      valid: () => false,
      call: async () => {
        const expired = await client.openWriter(d, STRING_UNIT);
        await expired.expire();
        return txns.register(1_000, [expired]);
      },
    },
    { name: 'forget(forgetTs)', valid: isTimestamp, call: (g) => txns.forget(as(g), [d]) },
    { name: 'forget(dataIds)', valid: isEmptyCollection, call: (g) => txns.forget(1_000, as(g)) },
    { name: 'forget(dataIds[0])', call: (g) => txns.forget(1_000, as([g])) },
    { name: 'forgetAll(forgetTs)', valid: isTimestamp, call: (g) => txns.forgetAll(as(g)) },
    { name: 'applyLe(ts)', valid: isTimestamp, call: (g) => txns.applyLe(as(g)) },
    { name: 'applyEagerLe(ts)', valid: isTimestamp, call: (g) => txns.applyEagerLe(as(g)) },
    { name: 'compactTo(ts)', valid: isTimestamp, call: (g) => txns.compactTo(as(g)) },
    { name: 'tidyAt(tidy)', call: (g) => txns.tidyAt(1_000, as(g)) },
    { name: 'Txn.write(dataId)', call: (g) => txns.begin().write(as(g), 'k', null, 1) },
    { name: 'Txn.write(key)', valid: (v) => typeof v === 'string', call: (g) => txns.begin().write(d, as(g), null, 1) },
    { name: 'Txn.write(val)', valid: (v) => v === null || v === undefined, call: (g) => txns.begin().write(d, 'k', as(g), 1) },
    { name: 'Txn.write(diff)', valid: isSafeInt, call: (g) => txns.begin().write(d, 'k', null, as(g)) },
    { name: 'Txn.writeBatch(batch)', call: (g) => txns.begin().writeBatch(d, as(g)) },
    { name: 'Txn.merge(other)', call: (g) => txns.begin().merge(as(g)) },
    { name: 'Txn.tidy(tidy)', call: (g) => txns.begin().tidy(as(g)) },
    { name: 'Txn.commitAt(handle)', call: (g) => txns.begin().commitAt(as(g), 1_000) },
    {
      name: 'Txn.commitAt(commitTs)',
      valid: isTimestamp,
      call: async (g) => {
        const txn = txns.begin();
        await txn.write(d, 'k', null, 1);
        return txn.commitAt(txns, as(g));
      },
    },
  ];

  const coordCases: Case[] = [
    { name: 'GroupCommitter.open(txns)', call: (g) => GroupCommitter.open(as(g), clock) },
    { name: 'GroupCommitter.open(oracle)', call: (g) => GroupCommitter.open(txns, as(g)) },
    { name: 'GroupCommitter.open(options)', valid: isOptions, call: (g) => GroupCommitter.open(txns, clock, as(g)) },
    { name: 'GroupCommitter option now', valid: (v) => v === undefined || typeof v === 'function', call: (g) => GroupCommitter.open(txns, clock, { now: as(g) }) },
    { name: 'GroupCommitter option ack', valid: (v) => v === undefined || v === 'apply' || v === 'commit', call: (g) => GroupCommitter.open(txns, clock, { ack: as(g) }) },
    { name: 'GroupCommitter option maxWaitForNowMs', valid: (v) => v === undefined || (typeof v === 'number' && Number.isFinite(v) && v >= 0), call: (g) => GroupCommitter.open(txns, clock, { maxWaitForNowMs: as(g) }) },
    { name: 'GroupCommitter option compactEvery', valid: (v) => v === undefined || isTimestamp(v), call: (g) => GroupCommitter.open(txns, clock, { compactEvery: as(g) }) },
    { name: 'GroupCommitter option metrics', valid: (v) => v === undefined, call: (g) => GroupCommitter.open(txns, clock, { metrics: as(g) }) },
    { name: 'GroupCommitter option readOnly', valid: (v) => v === undefined || typeof v === 'boolean', call: (g) => GroupCommitter.open(txns, clock, { readOnly: as(g) }) },
    { name: 'submitWrite(writes)', valid: isEmptyCollection, call: (g) => gc.submitWrite(as(g)) },
    { name: 'submitWrite rows', valid: isEmptyCollection, call: (g) => gc.submitWrite({ [d]: as(g) }) },
    { name: 'submitWrite a row', call: (g) => gc.submitWrite({ [d]: as([g]) }) },
    { name: 'submitWrite a row diff', valid: isSafeInt, call: (g) => gc.submitWrite({ [d]: [['k', null, as(g)]] }) },
    { name: 'submitInternal(writes)', valid: isEmptyCollection, call: (g) => gc.submitInternal(as(g)) },
    { name: 'submitBackground(writes)', valid: isEmptyCollection, call: (g) => gc.submitBackground(as(g)) },
    { name: 'readThenWrite(collections)', valid: isEmptyCollection, call: (g) => gc.readThenWrite(as(g), async () => undefined) },
    { name: 'readThenWrite(fn)', call: (g) => gc.readThenWrite([d], as(g)) },
    { name: 'GroupCommitter.register(writers)', valid: isEmptyCollection, call: (g) => gc.register(as(g)) },
    { name: 'GroupCommitter.forget(collections)', valid: isEmptyCollection, call: (g) => gc.forget(as(g)) },
    { name: 'new LogicalClock(options)', valid: isOptions, call: (g) => new LogicalClock(as(g)) },
    { name: 'LogicalClock option now', valid: (v) => v === undefined || typeof v === 'function', call: (g) => new LogicalClock({ now: as(g) }) },
    { name: 'LogicalClock option initialTs', valid: (v) => v === undefined || isTimestamp(v), call: (g) => new LogicalClock({ initialTs: as(g) }) },
    { name: 'LogicalClock.applyWrite(ts)', valid: isTimestamp, call: (g) => new LogicalClock().applyWrite(as(g)) },
    { name: 'openTimestampOracle(url)', valid: isLocationUrl, call: (g) => openTimestampOracle(as(g)) },
    { name: 'openTimestampOracle(options)', valid: isOptions, call: (g) => openTimestampOracle('mem://', as(g)) },
    { name: 'openTimestampOracle option timeline', valid: (v) => v === undefined || (typeof v === 'string' && v !== ''), call: (g) => openTimestampOracle('mem://', { timeline: as(g) }) },
    { name: 'openTimestampOracle option initialTs', valid: (v) => v === undefined || isTimestamp(v), call: (g) => openTimestampOracle('mem://', { initialTs: as(g) }) },
  ];

  const sinkCases: Case[] = [
    { name: 'txnSink(handle)', call: (g) => txnSink(as(g)) },
    { name: 'txnSink(options)', valid: isOptions, call: (g) => txnSink(txns, as(g)) },
    { name: 'txnSink option ack', valid: (v) => v === undefined || v === 'apply' || v === 'commit', call: (g) => txnSink(txns, { ack: as(g) }) },
    { name: 'txnSink option firstTs', valid: (v) => v === undefined || isTimestamp(v), call: (g) => txnSink(txns, { firstTs: as(g) }) },
    { name: 'txnSink option oracle', valid: (v) => v === undefined, call: (g) => txnSink(txns, { oracle: as(g) }) },
    { name: 'txnSink option tidyOnComplete', valid: (v) => v === undefined || typeof v === 'boolean', call: (g) => txnSink(txns, { tidyOnComplete: as(g) }) },
  ];

  for (const [layer, cases] of [
    ['persist', persistCases],
    ['txn', txnCases],
    ['coord', coordCases],
    ['sinks', sinkCases],
  ] as const) {
    describe(layer, () => {
      for (const c of cases) {
        it(c.name, async () => {
          const before = await footprint();
          await fc.assert(
            fc.asyncProperty(garbage, async (g) => {
              fc.pre(!(c.valid?.(g) ?? false));
              const err = await errorOf(() => c.call(g));
              if (!(err instanceof InvalidUsage)) {
                throw new Error(
                  `${c.name} with ${fc.stringify(g)}: expected an InvalidUsage, got ${err instanceof Error ? `${err.name}: ${err.message}` : fc.stringify(err)}`,
                );
              }
            }),
            { numRuns: 40 + FIXED.length, examples: FIXED.map((g) => [g] as [unknown]) },
          );
          expect(await footprint(), `${c.name} wrote or consumed something`).to.deep.equal(before);
        });
      }
    });
  }

  it('an error names the argument, the value and its kind', async () => {
    const err = await errorOf(() => PersistClient.open('mem://', { config: { storageRetry: as({ attempts: NaN }) } }));
    expect((err as Error).message).to.equal('config.storageRetry.attempts must be a safe integer >= 1, got NaN');
    const spill = await errorOf(() => TxnsHandle.open(client, { txnsId: newShardId(), codecs: STRING_UNIT, spillThresholdBytes: as('5') }));
    expect((spill as Error).message).to.match(/spillThresholdBytes .*must be a safe integer >= 1, got a string "5"/);
    const big = await errorOf(() => Codecs.json().encode({ n: 5n }));
    expect((big as Error).message).to.match(/field "n", which is a bigint 5n/);
  });
});
