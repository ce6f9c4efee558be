/**
 * Test helpers for txn-wal, after the reference system's test utilities:
 * - {@link CommitLog} records every write the test believes committed and checks
 *   reads against it (`assertEq`, `assertSnapshot`, `assertSubscribe`);
 * - `openTxns`, `expectRegister(s)`, `expectCommitAt`, `writer`, `reader`,
 *   `writeDirectly` set up the common cases with string keys and unit values.
 */
import { AssertionError, expect } from 'chai';
import { Registry } from 'prom-client';
import type { PersistClient } from '../../src/persist/client.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import type { ReadHandle } from '../../src/persist/read-handle.js';
import type { WriteHandle } from '../../src/persist/write-handle.js';
import { Metrics } from '../../src/persist/metrics.js';
import type { Tidy } from '../../src/txn/tidy.js';
import type { Txn } from '../../src/txn/txn.js';
import { TxnsCache } from '../../src/txn/txns-cache.js';
import { TxnsHandle, type TxnsHandleOptions } from '../../src/txn/txns-handle.js';
import { STRING_UNIT } from './persist.js';
import { RxDataSubscribe } from './rx.js';

export type Row = [key: string, ts: number, diff: number];
export type LoggedWrite = [dataId: ShardId, key: string, ts: number, diff: number];

/** Metrics for tests live in their own registry, away from the global one. */
export const testMetrics = Metrics.forRegistry(new Registry());

export function openTxns(
  client: PersistClient,
  txnsId: ShardId = newShardId(),
  opts: Partial<TxnsHandleOptions<string, null>> = {},
): Promise<TxnsHandle<string, null>> {
  return TxnsHandle.open(client, { txnsId, codecs: STRING_UNIT, initTs: 0, metrics: testMetrics, ...opts });
}

export function writer(client: PersistClient, dataId: ShardId): Promise<WriteHandle<string, null>> {
  return client.openWriter(dataId, STRING_UNIT);
}

export function reader(client: PersistClient, dataId: ShardId): Promise<ReadHandle<string, null>> {
  return client.openLeasedReader(dataId, STRING_UNIT, { useCriticalSince: true });
}

export async function expectRegisters(txns: TxnsHandle<string, null>, registerTs: number, amount: number): Promise<ShardId[]> {
  const ids = Array.from({ length: amount }, () => newShardId());
  const writers = await Promise.all(ids.map((id) => writer(txns.client, id)));
  const res = await txns.register(registerTs, writers);
  if (!res.ok) throw new AssertionError(`register at ${registerTs} failed: txns upper is ${res.current}`);
  return ids;
}

export async function expectRegister(txns: TxnsHandle<string, null>, registerTs: number): Promise<ShardId> {
  const [id] = await expectRegisters(txns, registerTs, 1);
  return id!;
}

/** Commits `txn` at `commitTs` (failing the test if the time was taken) and applies it; returns the tidy. */
export async function commitApplied<K, V>(txns: TxnsHandle<K, V>, txn: Txn<K, V>, commitTs: number): Promise<Tidy> {
  const res = await txn.commitAt(txns, commitTs);
  if (!res.ok) throw new AssertionError(`commit at ${commitTs} failed: txns upper is ${res.current}`);
  return res.apply.apply(txns);
}

/** Commits `keys` (diff +1) to `dataId` at `commitTs`, applies it, logs it; returns the tidy. */
export async function expectCommitAt(
  txns: TxnsHandle<string, null>,
  commitTs: number,
  dataId: ShardId,
  keys: string[],
  log: CommitLog,
): Promise<Tidy> {
  const txn = txns.begin();
  for (const k of keys) await txn.write(dataId, k, null, 1);
  const tidy = await commitApplied(txns, txn, commitTs);
  for (const k of keys) log.record([dataId, k, commitTs, 1]);
  return tidy;
}

/** Writes `keys` at `ts` directly to the data shard (a compare-and-append loop), logging them. */
export async function writeDirectly(ts: number, w: WriteHandle<string, null>, keys: string[], log: CommitLog): Promise<void> {
  let current = w.sharedUpper();
  for (;;) {
    const res = await w.compareAndAppend(keys.map((k) => [k, null, ts, 1] as const), current, ts + 1);
    if (res.ok) {
      for (const k of keys) log.record([w.shardId, k, ts, 1]);
      return;
    }
    current = res.current;
  }
}

/** A Txn that remembers its writes, so the log can record them once committed. */
export class TestTxn {
  readonly writes: LoggedWrite[] = [];
  constructor(readonly txn: Txn<string, null>) {}
  async write(dataId: ShardId, key: string, diff = 1): Promise<void> {
    this.writes.push([dataId, key, -1, diff]);
    await this.txn.write(dataId, key, null, diff);
  }
}

/** Sums diffs of equal (key, ts), drops zeros, sorts. */
export function consolidateRows(rows: Iterable<Row>): Row[] {
  const sums = new Map<string, Row>();
  for (const [k, t, d] of rows) {
    const id = JSON.stringify([k, t]);
    const prev = sums.get(id);
    if (prev) prev[2] += d;
    else sums.set(id, [k, t, d]);
  }
  return [...sums.values()]
    .filter((r) => r[2] !== 0)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
}

function formatRows(rows: Row[]): string {
  return `[${rows.map(([k, t, d]) => `(${JSON.stringify(k)}, ${t}, ${d})`).join(', ')}]`;
}

export class CommitLog {
  private readonly writes: LoggedWrite[] = [];

  constructor(
    readonly client: PersistClient,
    readonly txnsId: ShardId,
  ) {}

  record(w: LoggedWrite): void {
    this.writes.push(w);
  }

  recordTxn(commitTs: number, txn: TestTxn): void {
    for (const [id, k, , d] of txn.writes) this.record([id, k, commitTs, d]);
  }

  /**
   * Checks `actual` equals the logged writes of `dataId`, with times advanced to
   * `asOf` and everything at or past `until` dropped (from both sides).
   */
  assertEq(dataId: ShardId, asOf: number, until: number, actual: Iterable<Row>): void {
    const expected = consolidateRows(
      this.writes.filter(([id, , ts]) => id === dataId && Math.max(ts, asOf) < until).map(([, k, ts, d]) => [k, Math.max(ts, asOf), d] as Row),
    );
    const got = consolidateRows([...actual].filter(([, t]) => t < until));
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      throw new AssertionError(`${dataId} as_of=${asOf} until=${until}\n left: ${formatRows(got)}\n right: ${formatRows(expected)}`);
    }
  }

  /**
   * Reads `dataId` at `asOf` through a fresh single-shard cache and a snapshot, checks
   * a `dataSubscribe$` read from `asOf` yields the same rows, and checks both against the log.
   */
  async assertSnapshot(dataId: ShardId, asOf: number): Promise<void> {
    const snapshot = await this.snapshotRows(dataId, asOf);
    const sub = await this.subscribe(dataId, asOf, asOf + 1);
    try {
      // The subscription may already hold updates past asOf; compare up to asOf.
      const viaSubscribe = consolidateRows(outputRows(sub).filter(([, t]) => t <= asOf));
      expect(consolidateRows(snapshot), `snapshot and subscribe of ${dataId} at ${asOf} differ`).to.deep.equal(viaSubscribe);
    } finally {
      sub.close();
    }
    this.assertEq(dataId, asOf, asOf + 1, snapshot);
  }

  /** Subscribes from `asOf` past `until - 1` and checks the output against the log. */
  async assertSubscribe(dataId: ShardId, asOf: number, until: number): Promise<void> {
    const sub = await this.subscribe(dataId, asOf, until);
    try {
      this.assertEq(dataId, asOf, until, outputRows(sub));
    } finally {
      sub.close();
    }
  }

  /** `dataId`'s contents at `asOf`, read through a fresh single-shard cache and a snapshot. */
  async snapshotRows(dataId: ShardId, asOf: number): Promise<Row[]> {
    const cache = await TxnsCache.open(this.client, this.txnsId, { onlyDataId: dataId });
    try {
      await cache.updateGt(asOf);
      const snap = cache.dataSnapshot(dataId, asOf);
      const r = await reader(this.client, dataId);
      try {
        return toRows(await snap.snapshotAndFetch(r));
      } finally {
        await r.expire();
      }
    } finally {
      await cache.expire();
    }
  }

  /** A `dataSubscribe$` pipeline from `asOf` (see RxDataSubscribe), stepped until its progress passes `until - 1`. */
  async subscribe(dataId: ShardId, asOf: number, until: number): Promise<RxDataSubscribe> {
    const sub = RxDataSubscribe.open(this.client, this.txnsId, dataId, { asOf });
    try {
      await sub.stepPast(until - 1);
    } catch (err) {
      sub.close();
      throw err;
    }
    return sub;
  }
}

/** Updates as `[key, ts, diff]` rows. */
export function toRows(updates: readonly (readonly [string, null, number, number])[]): Row[] {
  return updates.map(([k, , t, d]) => [k, t, d] as Row);
}

/** Converts a subscription's output to rows. */
export function outputRows(sub: { output(): readonly (readonly [string, null, number, number])[] }): Row[] {
  return toRows(sub.output());
}
