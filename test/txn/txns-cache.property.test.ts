/**
 * Property: `TxnsCacheState.validate()` holds after every step of random histories
 * of register / forget / commit / apply / tidy / compact (spec §2.6, appendix #8),
 * and the cache's answers agree with a naive model written from the spec text
 * (§2.6 `registered_at_progress`, `min_unapplied_ts`, `unapplied`; §2.7
 * `data_snapshot`; §2.8 `data_listen_next`).
 *
 * Two levels:
 * a. model-based, on a bare `TxnsCacheState`: random txns-shard histories as well
 *    behaved TxnsHandles would write them, delivered as a fresh cache opened at some
 *    since would see them (rows below the since advanced to it and consolidated), in
 *    random chunks, with random `markRegisterApplied` calls;
 * b. end to end, on real TxnsHandles over an in-memory persist location.
 *
 * Regression: a push that tidies batches of several shards at one commit time once
 * left a stale write on a shard compacted before the other shard's tidy raised the
 * oldest unapplied time (the regression tests at the bottom of this file).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { PersistClient } from '../../src/persist/client.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { Tidy } from '../../src/txn/tidy.js';
import { encodeTs } from '../../src/txn/timestamp-bytes.js';
import { TxnsCache } from '../../src/txn/txns-cache.js';
import { TxnsCacheState, type TxnsRow, type Unapplied } from '../../src/txn/txns-cache-state.js';
import { appendEntry, registerEntry } from '../../src/txn/txns-codec.js';
import type { TxnsHandle } from '../../src/txn/txns-handle.js';
import { memClient } from '../support/persist.js';
import { CommitLog, openTxns, writer } from '../support/txn.js';
import { xorshift32 } from '../support/rng.js';

function validateCache(state: TxnsCacheState): string | undefined {
  return state.validate();
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function shuffle<T>(xs: T[], next: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

const minOr = (xs: number[], dflt: number) => xs.reduce((m, x) => Math.min(m, x), dflt);

const shardIdsArb = (n: number) => fc.uniqueArray(fc.uuid(), { minLength: n, maxLength: n }).map((us) => us.map((u) => `s${u.toLowerCase()}`));

// ---------------------------------------------------------------------------------
// a. The bare state machine against a naive model.
// ---------------------------------------------------------------------------------

type TidyMode = 'prefix' | 'any';

type GenOp =
  | { kind: 'register'; shards: number[]; gap: number }
  | { kind: 'forget'; shards: number[]; gap: number }
  | {
      kind: 'commit';
      writes: { shard: number; batches: number }[];
      tidy: { frac: number; mask: number } | null;
      salt: Uint8Array;
      gap: number;
    }
  | { kind: 'compact'; frac: number; belowTidy: boolean };

const N_SHARDS = 3;
const shardsArb = fc.uniqueArray(fc.nat(N_SHARDS - 1), { minLength: 1, maxLength: N_SHARDS });
const gapArb = fc.integer({ min: 0, max: 2 });
const genOpArb: fc.Arbitrary<GenOp> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('register' as const), shards: shardsArb, gap: gapArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('forget' as const), shards: shardsArb, gap: gapArb }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('commit' as const),
      writes: fc.array(fc.record({ shard: fc.nat(N_SHARDS - 1), batches: fc.integer({ min: 1, max: 2 }) }), { maxLength: 3 }),
      tidy: fc.option(fc.record({ frac: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), mask: fc.nat() }), {
        nil: null,
      }),
      salt: fc.uint8Array({ maxLength: 4 }),
      gap: gapArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('compact' as const),
      frac: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      belowTidy: fc.boolean(),
    }),
  },
);

interface HAppend {
  dataId: ShardId;
  ts: number;
  raw: Uint8Array;
  /** The persist time of its tidy row, if tidied. */
  tidyT: number | undefined;
}
interface HReg {
  dataId: ShardId;
  ts: number;
  diff: 1 | -1;
}
interface History {
  ids: ShardId[];
  /** Every txns row, with its original persist time (= its ts for +1 rows). */
  rows: TxnsRow[];
  appends: HAppend[];
  regs: HReg[];
  /** Each since the txns shard was compacted to, in order; starts with 0. */
  sinces: number[];
  /** The txns upper at the end. */
  upper: number;
}

/**
 * The rows well-behaved TxnsHandles write: each op is one compare-and-append at a
 * strictly increasing ts (consuming it even when it writes nothing). Register only
 * unregistered shards, forget only registered ones, commit only to registered ones,
 * tidy only earlier appends. With mode 'prefix', a tidy retracts every untidied
 * batch up to some ts, which is all real tidies can do (apply_le applies in ts order,
 * and every tidy is filtered against what is already tidied); with 'any', any subset.
 * A compaction picks a since no later than the oldest untidied batch (invariant I1).
 */
function buildHistory(ids: ShardId[], ops: GenOp[], mode: TidyMode): History {
  const rows: TxnsRow[] = [];
  const appends: HAppend[] = [];
  const regs: HReg[] = [];
  const sinces = [0];
  const registered = new Set<ShardId>();
  let upper = 1; // TxnsHandle.open with initTs 0 leaves the txns upper at 1.
  let batchNo = 0;
  let lastTidyT = 0;
  for (const op of ops) {
    if (op.kind === 'compact') {
      const maxAllowed = minOr(
        appends.filter((a) => a.tidyT === undefined).map((a) => a.ts),
        upper - 1,
      );
      const since = sinces[sinces.length - 1]!;
      // Either anywhere allowed, or just below the latest tidy, so that a fresh cache
      // at that since sees a batch below it whose tidy comes after it.
      const target = op.belowTidy && lastTidyT > 0 ? lastTidyT - 1 : since + 1 + Math.floor(op.frac * (maxAllowed - since));
      if (maxAllowed > since) sinces.push(Math.max(since + 1, Math.min(maxAllowed, target)));
      continue;
    }
    const ts = upper + op.gap;
    upper = ts + 1;
    if (op.kind === 'register' || op.kind === 'forget') {
      for (const s of op.shards) {
        const id = ids[s]!;
        if ((op.kind === 'register') === registered.has(id)) continue;
        const diff = op.kind === 'register' ? 1 : -1;
        rows.push({ entry: registerEntry(id, ts), t: ts, diff });
        regs.push({ dataId: id, ts, diff });
        if (diff === 1) registered.add(id);
        else registered.delete(id);
      }
      continue;
    }
    if (op.tidy) {
      const cands = appends.filter((a) => a.tidyT === undefined && a.ts < ts);
      let chosen: HAppend[];
      if (mode === 'prefix') {
        const tss = [...new Set(cands.map((a) => a.ts))].sort((a, b) => a - b);
        const y = tss[Math.floor(op.tidy.frac * tss.length)];
        chosen = y === undefined ? [] : cands.filter((a) => a.ts <= y);
      } else {
        chosen = cands.filter((_, i) => (op.tidy!.mask >>> i % 31) & 1);
      }
      for (const a of chosen) {
        rows.push({ entry: appendEntry(a.dataId, a.ts, a.raw), t: ts, diff: -1 });
        a.tidyT = ts;
        lastTidyT = ts;
      }
    }
    for (const w of op.writes) {
      const id = ids[w.shard]!;
      if (!registered.has(id)) continue;
      for (let i = 0; i < w.batches; i++) {
        const raw = new Uint8Array([...op.salt, ...new TextEncoder().encode(`#${batchNo++}`)]);
        rows.push({ entry: appendEntry(id, ts, raw), t: ts, diff: 1 });
        appends.push({ dataId: id, ts, raw, tidyT: undefined });
      }
    }
  }
  return { ids, rows, appends, regs, sinces, upper };
}

/**
 * The naive model: what a cache opened at since `S` knows once it has every row
 * below `P`, written from the spec text over the *full* history.
 */
class Naive {
  constructor(
    readonly h: History,
    readonly S: number,
    readonly P: number,
    /** The largest ts given to markRegisterApplied so far (-1: none). */
    readonly marked: number,
  ) {}

  /** §2.6: a shard is known once any register row of it is. */
  seen(id: ShardId): boolean {
    return this.h.regs.some((r) => r.dataId === id && r.ts < this.P);
  }
  /** §2.6 registered_at_progress: its latest register/forget row below P is a register. */
  registered(id: ShardId): boolean {
    const rs = this.h.regs.filter((r) => r.dataId === id && r.ts < this.P);
    return rs.length > 0 && rs[rs.length - 1]!.diff === 1;
  }
  /** Committed (below P) and not tidied (below P). */
  untidied(): HAppend[] {
    return this.h.appends.filter((a) => a.ts < this.P && !(a.tidyT !== undefined && a.tidyT < this.P));
  }
  /**
   * §2.6 push_register: a register/forget row whose time was not advanced by
   * compaction (ts >= S) is unapplied until mark_register_applied passes it.
   */
  unappliedRegs(): HReg[] {
    return this.h.regs.filter((r) => r.ts >= this.S && r.ts < this.P && r.ts > this.marked);
  }
  minUnapplied(): number {
    return minOr([...this.untidied().map((a) => a.ts), ...this.unappliedRegs().map((r) => r.ts)], this.P);
  }
  /** §2.6 unapplied(), canonically ordered (see `canonUnapplied`). */
  unapplied(): string[] {
    const items: Unapplied[] = this.unappliedRegs().map((r) => ({ kind: 'register-forget', dataId: r.dataId, ts: r.ts }));
    const groups = new Map<string, { dataId: ShardId; ts: number; raws: Uint8Array[] }>();
    for (const a of this.untidied()) {
      const k = `${a.ts}|${a.dataId}`;
      const g = groups.get(k);
      if (g) g.raws.push(a.raw);
      else groups.set(k, { dataId: a.dataId, ts: a.ts, raws: [a.raw] });
    }
    for (const g of groups.values()) items.push({ kind: 'batch', ...g });
    return canonUnapplied(items);
  }
  /** §2.7 data_snapshot. */
  snapshot(id: ShardId, asOf: number): { latestWrite: number | undefined; asOf: number; emptyTo: number } {
    const emptyTo = Math.max(asOf + 1, this.S);
    if (!this.seen(id)) return { latestWrite: undefined, asOf, emptyTo };
    const m = minOr(
      this.untidied().map((a) => a.ts),
      this.P,
    );
    const ws = this.h.appends.filter((a) => a.dataId === id && a.ts < this.P && m <= a.ts && a.ts <= asOf).map((a) => a.ts);
    return { latestWrite: ws.length === 0 ? undefined : Math.max(...ws), asOf, emptyTo };
  }
  /** §2.8 data_listen_next. */
  listenNext(id: ShardId, ts: number): { kind: string; ts?: number } {
    const P = this.P;
    if (!this.seen(id)) return ts < P ? { kind: 'read-data-to', ts: P } : { kind: 'wait-for-txns-progress' };
    const rs = this.h.regs.filter((r) => r.dataId === id && r.ts < P);
    let lastReg = 0;
    let forget: number | undefined;
    for (const r of rs) {
      if (r.diff === 1) {
        lastReg = r.ts;
        forget = undefined;
      } else forget = r.ts;
    }
    const writes = this.h.appends.filter((a) => a.dataId === id && a.ts < P).map((a) => a.ts);
    const phys = Math.max(lastReg, forget ?? -1, ...writes);
    if (ts >= P) return { kind: 'wait-for-txns-progress' };
    if (ts <= phys) return { kind: 'read-data-to', ts: phys + 1 };
    if (forget === undefined) return { kind: 'emit-logical-progress', ts: P };
    return { kind: 'read-data-to', ts: P };
  }
}

/** Unapplied items as strings, sorted by (ts, registers first, shard), raws sorted. */
function canonUnapplied(items: Unapplied[]): string[] {
  return items
    .map((u) => ({
      key: [u.ts, u.kind === 'register-forget' ? 0 : 1, u.dataId] as const,
      s: u.kind === 'register-forget' ? `${u.ts} reg ${u.dataId}` : `${u.ts} batch ${u.dataId} [${u.raws.map(hex).sort().join(',')}]`,
    }))
    .sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || (a.key[2] < b.key[2] ? -1 : a.key[2] > b.key[2] ? 1 : 0))
    .map((x) => x.s);
}

/** Everything the cache answers at progress P, checked against the naive model. */
function checkAgainstModel(state: TxnsCacheState, model: Naive, unknown: ShardId, window: number, mode: TidyMode): void {
  const { P, S } = model;
  expect(validateCache(state), `validate() at progress ${P}`).to.equal(undefined);
  expect(state.progressExclusive).to.equal(P);
  expect(state.initTs).to.equal(S);
  const ids = [...model.h.ids, unknown];
  for (const id of ids) expect(state.registeredAtProgress(id, P), `registeredAtProgress(${id}, ${P})`).to.equal(model.registered(id));
  expect(state.allRegisteredAtProgress(P)).to.deep.equal(model.h.ids.filter((id) => model.registered(id)).sort());
  expect(state.minUnappliedTs(), 'minUnappliedTs').to.equal(model.minUnapplied());

  const unapplied = state.unapplied();
  // In ts order; at one ts, registers/forgets before batches.
  for (let i = 1; i < unapplied.length; i++) {
    const [a, b] = [unapplied[i - 1]!, unapplied[i]!];
    expect(a.ts <= b.ts && !(a.ts === b.ts && a.kind === 'batch' && b.kind === 'register-forget'), 'unapplied() order').to.equal(true);
  }
  expect(canonUnapplied(unapplied), 'unapplied()').to.deep.equal(model.unapplied());

  // filterRetractions keeps exactly the untidied batches.
  const all = model.h.appends.map((a) => ({ raw: a.raw, ts: encodeTs(a.ts), dataId: a.dataId }));
  const kept = state.filterRetractions(P, all).map((r) => hex(r.raw));
  expect(kept.sort()).to.deep.equal(model.untidied().map((a) => hex(a.raw)).sort());

  const asOfs = new Set<number>([0, S - 1, S, P - 1]);
  for (let t = Math.max(0, P - window); t < P; t++) asOfs.add(t);
  for (const id of ids) {
    // With tidies out of ts order, a batch tidied below the since vanishes while an
    // older one is still untidied, and the spec's latest_write then depends on what
    // the cache saw; only tidies in ts order (all the API can produce) pin it down.
    for (const asOf of mode === 'prefix' ? asOfs : []) {
      if (asOf < 0 || asOf >= P) continue;
      const snap = state.dataSnapshot(id, asOf);
      expect({ latestWrite: snap.latestWrite, asOf: snap.asOf, emptyTo: snap.emptyTo }, `dataSnapshot(${id}, ${asOf}) at ${P}`).to.deep.equal(
        model.snapshot(id, asOf),
      );
    }
    for (let ts = Math.max(S, P - window); ts <= P; ts++) {
      expect(state.dataListenNext(id, ts), `dataListenNext(${id}, ${ts}) at ${P}`).to.deep.equal(model.listenNext(id, ts));
    }
  }
}

interface Delivery {
  sinceIdx: number;
  consolidateSnapshot: boolean;
  steps: { adv: number; mark: number | null }[];
  seed: number;
}
const deliveryArb: fc.Arbitrary<Delivery> = fc.record({
  sinceIdx: fc.nat(),
  consolidateSnapshot: fc.boolean(),
  steps: fc.array(
    fc.record({
      adv: fc.integer({ min: 0, max: 6 }),
      mark: fc.option(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { nil: null }),
    }),
    { maxLength: 25, size: 'max' },
  ),
  seed: fc.nat(),
});

/** Sums diffs of identical rows (same entry bytes and persist time). */
function consolidate(rows: TxnsRow[]): TxnsRow[] {
  const sums = new Map<string, TxnsRow>();
  for (const r of rows) {
    const e = r.entry;
    const k = `${e.kind}|${e.dataId}|${r.t}|${hex(e.ts)}|${e.kind === 'append' ? hex(e.batch) : ''}`;
    const prev = sums.get(k);
    if (prev) prev.diff += r.diff;
    else sums.set(k, { ...r });
  }
  return [...sums.values()].filter((r) => r.diff !== 0);
}

/**
 * Feeds the history to a fresh cache opened at one of the sinces, as persist would
 * deliver it: rows at or below the since advanced to it (consolidated or not), later
 * rows as written; pushed in random chunks in random order. Checks after every push
 * and every markRegisterApplied. Returns the number of checks.
 */
function replay(h: History, d: Delivery, unknown: ShardId, mode: TidyMode): number {
  const S = h.sinces[d.sinceIdx % h.sinces.length]!;
  // Seeded from the fast-check case, so a failing shuffle replays with it.
  const next = xorshift32(d.seed);
  let snapshot = h.rows.filter((r) => r.t <= S).map((r) => ({ ...r, t: S }));
  if (d.consolidateSnapshot) snapshot = consolidate(snapshot);
  const delivered = [...snapshot, ...h.rows.filter((r) => r.t > S)];
  const state = new TxnsCacheState(newShardId(), S, undefined);
  let prevP = 0;
  let marked = -1;
  let checks = 0;
  const push = (p: number) => {
    const chunk = shuffle(
      delivered.filter((r) => r.t >= prevP && r.t < p).map((r) => ({ ...r })),
      next,
    );
    state.pushEntries(chunk, p);
    prevP = p;
    checkAgainstModel(state, new Naive(h, S, p, marked), unknown, 6, mode);
    checks++;
  };
  for (const step of d.steps) {
    let p = Math.min(h.upper, Math.max(prevP, S) + step.adv);
    if (prevP === 0 && p <= S) p = S + 1; // a cache starts with progress past its since
    push(p);
    if (step.mark !== null) {
      const x = Math.floor(step.mark * p);
      state.markRegisterApplied(x);
      marked = Math.max(marked, x);
      checkAgainstModel(state, new Naive(h, S, p, marked), unknown, 6, mode);
      checks++;
    }
  }
  if (prevP < h.upper) push(h.upper);
  return checks;
}

describe('txn: TxnsCacheState under random txns histories (property, model-based)', function () {
  this.timeout(120_000);

  it('validate() holds and every answer matches the naive model after every push and mark', () => {
    let checks = 0;
    fc.assert(
      fc.property(shardIdsArb(N_SHARDS), fc.array(genOpArb, { maxLength: 30, size: 'max' }), deliveryArb, (ids, ops, d) => {
        const h = buildHistory(ids, ops, 'prefix');
        checks += replay(h, d, newShardId(), 'prefix');
      }),
      { numRuns: 250 },
    );
    console.log(`      (${checks} checks)`);
    expect(checks).to.be.greaterThan(1000);
  });

  it('validate() holds, and the answers but dataSnapshot match, even with tidies in any order', () => {
    // Not reachable through the API (apply_le applies, and so tidies, in ts order), but
    // the state machine must not depend on it for its invariants.
    fc.assert(
      fc.property(shardIdsArb(N_SHARDS), fc.array(genOpArb, { maxLength: 30, size: 'max' }), deliveryArb, (ids, ops, d) => {
        replay(buildHistory(ids, ops, 'any'), d, newShardId(), 'any');
      }),
      { numRuns: 150 },
    );
  });

  it('the generator covers compaction, tidies, forgets and re-registration', () => {
    // Guards against a property that passes because its histories are trivial.
    let compacted = 0;
    let tidiedAcrossSince = 0;
    let reRegistered = 0;
    fc.assert(
      fc.property(shardIdsArb(N_SHARDS), fc.array(genOpArb, { maxLength: 30, size: 'max' }), (ids, ops) => {
        const h = buildHistory(ids, ops, 'prefix');
        const S = h.sinces[h.sinces.length - 1]!;
        if (S > 0) compacted++;
        // An append below some since whose tidy lands after it: a fresh cache there sees it untidied.
        if (h.sinces.some((s) => h.appends.some((a) => a.ts < s && a.tidyT !== undefined && a.tidyT > s))) tidiedAcrossSince++;
        for (const id of ids) if (h.regs.filter((r) => r.dataId === id && r.diff === 1).length > 1) reRegistered++;
      }),
      { numRuns: 200, seed: 42 },
    );
    console.log(`      (of 200 histories: ${compacted} compacted, ${tidiedAcrossSince} tidy across a since, ${reRegistered} re-registrations)`);
    expect(compacted).to.be.greaterThan(50);
    expect(tidiedAcrossSince).to.be.greaterThan(20);
    expect(reRegistered).to.be.greaterThan(20);
  });
});

// ---------------------------------------------------------------------------------
// b. End to end on real TxnsHandles.
// ---------------------------------------------------------------------------------

type H = TxnsHandle<string, null>;
type Key = string; // `${shard index}@${ts}`: one batch per shard per commit

const hArb = fc.nat(1);
const tsGapArb = fc.integer({ min: -2, max: 2 });
const writesArb = fc.array(fc.record({ shard: fc.nat(N_SHARDS - 1), keys: fc.integer({ min: 1, max: 2 }) }), { maxLength: 3 });
const e2eOpArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('register' as const), h: hArb, shards: shardsArb, gap: tsGapArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forget' as const), h: hArb, shards: shardsArb, gap: tsGapArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forgetAll' as const), h: hArb, gap: tsGapArb }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('commit' as const),
      h: hArb,
      writes: writesArb,
      attachTidy: fc.boolean(),
      apply: fc.boolean(),
      gap: tsGapArb,
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('apply' as const), h: hArb, back: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tidyAt' as const), h: hArb, gap: tsGapArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('compact' as const), h: hArb, back: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('open' as const), sameClient: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopenCache' as const), h: hArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('race' as const), writes: fc.tuple(writesArb, writesArb), attachTidy: fc.boolean() }),
  },
);

type E2eOp = typeof e2eOpArb extends fc.Arbitrary<infer T> ? T : never;
const startArb = fc.record({ two: fc.boolean(), sameClient: fc.boolean(), registerAll: fc.boolean() });

interface HandleModel {
  h: H;
  client: PersistClient;
  /** Shards this handle holds a commit writer for. */
  writers: Set<number>;
  /** The real pending tidy and the batches the model says it covers. */
  tidy: Tidy;
  tidyKeys: Set<Key>;
  /** The cache's start (its initTs) and the largest ts its applyLe reached. */
  openSince: number;
  maxApplied: number;
}

/**
 * `log.assertSnapshot(id, asOf)` for an `asOf` that may be below later writes: the
 * snapshot through a fresh single-shard cache and a `dataSubscribe$` read from `asOf` must
 * each match the log at `asOf`. (assertSnapshot compares the snapshot to the whole
 * subscribe output, which may already hold updates past `asOf`, so it only works at
 * the latest time.)
 */
async function snapshotAndSubscribeAt(log: CommitLog, id: ShardId, asOf: number): Promise<void> {
  log.assertEq(id, asOf, asOf + 1, await log.snapshotRows(id, asOf));
  await log.assertSubscribe(id, asOf, asOf + 1);
}

describe('txn: TxnsHandles under random histories (property, end to end)', function () {
  this.timeout(120_000);

  it('every cache validates after every step, and reads match what was committed', async () => {
    let steps = 0;
    let races = 0;
    const stats = { batches: 0, tidied: 0, sinceMoved: 0, failedTs: 0, secondClient: 0, restarts: 0 };
    await fc.assert(
      fc.asyncProperty(shardIdsArb(N_SHARDS), startArb, fc.array(e2eOpArb, { minLength: 1, maxLength: 30, size: 'max' }), async (ids, start, randomOps) => {
        // The start: maybe a second handle (on this client or another), maybe every shard registered through each handle.
        const all = [0, 1, 2];
        const ops: E2eOp[] = [
          ...(start.two ? [{ kind: 'open' as const, sameClient: start.sameClient }] : []),
          ...(start.registerAll ? [{ kind: 'register' as const, h: 0, shards: all, gap: 0 }] : []),
          ...(start.registerAll && start.two ? [{ kind: 'register' as const, h: 1, shards: all, gap: 0 }] : []),
          ...randomOps,
        ];
        const location = `mem://txn-prop-${newShardId()}`;
        const config = { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 10 } };
        const clients: PersistClient[] = [await PersistClient.open(location, { config })];
        const txnsId = newShardId();
        const handles: HandleModel[] = [];
        const addHandle = async (client: PersistClient) => {
          const h = await openTxns(client, txnsId);
          handles.push({ h, client, writers: new Set(), tidy: new Tidy(), tidyKeys: new Set(), openSince: h.readCache().initTs, maxApplied: -1 });
        };
        await addHandle(clients[0]!);
        const log = new CommitLog(clients[0]!, txnsId);

        // The model.
        let upper = 1;
        let since = 0;
        const registered = new Set<number>();
        const regTs: number[] = []; // ts of every register/forget row written
        const untidied = new Map<Key, number>(); // batch → its commit ts
        let keyNo = 0;
        const keyOf = (shard: number, ts: number): Key => `${shard}@${ts}`;

        const signal = () => AbortSignal.timeout(5_000);
        const pick = (i: number) => handles[i % handles.length]!;
        const applied = (m: HandleModel, ts: number) => {
          m.maxApplied = Math.max(m.maxApplied, ts);
          for (const [k, t] of untidied) if (t <= ts) m.tidyKeys.add(k);
        };
        const retract = (m: HandleModel) => {
          for (const k of m.tidyKeys) if (untidied.delete(k)) stats.tidied++;
          m.tidyKeys = new Set();
          m.tidy = new Tidy();
        };
        /** Runs `attempt(ts)`, expecting a taken ts to fail with the true upper, then retrying there. */
        const atTs = async <R extends { ok: boolean }>(gap: number, attempt: (ts: number) => Promise<R>): Promise<[R, number]> => {
          let ts = Math.max(0, upper + gap);
          let res = await attempt(ts);
          if (ts < upper) {
            stats.failedTs++;
            expect(res, `a taken ts ${ts} (upper ${upper})`).to.deep.equal({ ok: false, current: upper });
            ts = upper;
            res = await attempt(ts);
          }
          expect(res.ok, `at free ts ${ts}`).to.equal(true);
          upper = ts + 1;
          return [res, ts];
        };
        const commitTxn = async (m: HandleModel, writes: { shard: number; keys: number }[], attachTidy: boolean, ts0: number) => {
          const txn = m.h.begin();
          const logged: [number, string][] = [];
          for (const w of writes) {
            if (!registered.has(w.shard) || !m.writers.has(w.shard)) continue;
            for (let i = 0; i < w.keys; i++) {
              const key = `k${keyNo++}`;
              await txn.write(ids[w.shard]!, key, null, 1);
              logged.push([w.shard, key]);
            }
          }
          if (attachTidy) txn.tidy(m.tidy);
          let ts = ts0;
          const failures: number[] = [];
          for (;;) {
            const res = await txn.commitAt(m.h, ts);
            if (res.ok) return { ts, logged, isEmpty: res.apply.isEmpty(), failures };
            expect(res.current).to.be.greaterThan(ts);
            failures.push(res.current);
            ts = res.current;
          }
        };
        const recordCommit = (m: HandleModel, c: { ts: number; logged: [number, string][]; isEmpty: boolean }, attachTidy: boolean) => {
          expect(c.isEmpty).to.equal(c.logged.length === 0);
          if (attachTidy) retract(m);
          for (const [shard, key] of c.logged) {
            log.record([ids[shard]!, key, c.ts, 1]);
            if (!untidied.has(keyOf(shard, c.ts))) stats.batches++;
            untidied.set(keyOf(shard, c.ts), c.ts);
          }
        };
        const freshCacheCheck = async (client: PersistClient) => {
          const cache = await TxnsCache.open(client, txnsId);
          try {
            // I1: the since never passes an untidied batch; nor what compactTo was allowed.
            expect(cache.initTs, 'the txns since').to.equal(since);
            await cache.updateGe(upper, { signal: signal() });
            expect(cache.progressExclusive).to.equal(upper);
            expect(validateCache(cache.state), 'a fresh cache at the since').to.equal(undefined);
            for (let s = 0; s < N_SHARDS; s++) expect(cache.registeredAtProgress(ids[s]!, upper)).to.equal(registered.has(s));
            const batches = cache.state.unappliedBatchList().map((b) => keyOf(ids.indexOf(b.dataId), b.ts));
            expect(batches.sort()).to.deep.equal([...untidied.keys()].sort());
            // Nothing of this cache is marked applied: registers at or after its start are unapplied.
            expect(cache.minUnappliedTs()).to.equal(minOr([...untidied.values(), ...regTs.filter((t) => t >= since)], upper));
          } finally {
            await cache.expire();
          }
        };

        try {
          for (const op of ops) {
            switch (op.kind) {
              case 'register': {
                const m = pick(op.h);
                const [res, ts] = await atTs(op.gap, async (ts) =>
                  m.h.register(ts, await Promise.all(op.shards.map((s) => writer(m.client, ids[s]!)))),
                );
                if (op.shards.some((s) => !registered.has(s))) regTs.push(ts);
                for (const s of op.shards) {
                  registered.add(s);
                  m.writers.add(s);
                }
                applied(m, ts);
                if (res.ok) m.tidy.merge(res.tidy);
                break;
              }
              case 'forget': {
                const m = pick(op.h);
                const [res, ts] = await atTs(op.gap, (ts) => m.h.forget(ts, op.shards.map((s) => ids[s]!)));
                if (op.shards.some((s) => registered.has(s))) regTs.push(ts);
                for (const s of op.shards) {
                  registered.delete(s);
                  m.writers.delete(s);
                }
                applied(m, ts);
                if (res.ok) m.tidy.merge(res.tidy);
                break;
              }
              case 'forgetAll': {
                const m = pick(op.h);
                const expected = [...registered].map((s) => ids[s]!).sort();
                const [res, ts] = await atTs(op.gap, (ts) => m.h.forgetAll(ts));
                if (res.ok) expect(res.forgotten).to.deep.equal(expected);
                if (registered.size > 0) regTs.push(ts);
                for (const s of registered) m.writers.delete(s);
                registered.clear();
                applied(m, ts);
                if (res.ok) m.tidy.merge(res.tidy);
                break;
              }
              case 'commit': {
                const m = pick(op.h);
                const ts = Math.max(0, upper + op.gap);
                const c = await commitTxn(m, op.writes, op.attachTidy, ts);
                // A taken ts fails with the true upper and the same txn then commits there.
                expect(c.failures, 'commit failures').to.deep.equal(ts < upper ? [upper] : []);
                expect(c.ts).to.equal(Math.max(ts, upper));
                upper = c.ts + 1;
                recordCommit(m, c, op.attachTidy);
                if (op.apply) {
                  m.tidy.merge(await m.h.applyLe(c.ts));
                  applied(m, c.ts);
                }
                break;
              }
              case 'apply': {
                const m = pick(op.h);
                const ts = Math.max(0, upper - 1 - op.back);
                m.tidy.merge(await m.h.applyLe(ts));
                applied(m, ts);
                break;
              }
              case 'tidyAt': {
                const m = pick(op.h);
                await atTs(op.gap, (ts) => m.h.tidyAt(ts, m.tidy));
                retract(m);
                break;
              }
              case 'compact': {
                const m = pick(op.h);
                const x = Math.max(0, upper - 1 - op.back);
                // The since goes to min(x, min unapplied of this handle's cache), never back.
                const unmarked = regTs.filter((t) => t >= m.openSince && t > m.maxApplied);
                const target = minOr([x, ...untidied.values(), ...unmarked], upper);
                await m.h.compactTo(x);
                if (target > since) stats.sinceMoved++;
                since = Math.max(since, target);
                await freshCacheCheck(m.client);
                break;
              }
              case 'open': {
                if (handles.length >= 2) break;
                if (op.sameClient) await addHandle(clients[0]!);
                else {
                  clients.push(await PersistClient.open(location, { config }));
                  stats.secondClient++;
                  await addHandle(clients[1]!);
                }
                expect(handles[1]!.openSince).to.equal(since);
                break;
              }
              case 'restart': {
                // The second handle's process restarts: its pending tidy is dropped (which is safe).
                if (handles.length < 2) break;
                const old = handles.pop()!;
                await old.h.close();
                await addHandle(old.client);
                expect(handles[1]!.openSince).to.equal(since);
                stats.restarts++;
                break;
              }
              case 'reopenCache': {
                await freshCacheCheck(pick(op.h).client);
                break;
              }
              case 'race': {
                if (handles.length < 2) break;
                const [m0, m1] = [handles[0]!, handles[1]!];
                const ts = upper;
                const [c0, c1] = await Promise.all([
                  commitTxn(m0, op.writes[0], op.attachTidy, ts),
                  commitTxn(m1, op.writes[1], op.attachTidy, ts),
                ]);
                // Linearized by the txns shard: one got ts, the other the next free time.
                expect([c0.ts, c1.ts].sort((a, b) => a - b)).to.deep.equal([ts, ts + 1]);
                races++;
                const order: [HandleModel, typeof c0][] = c0.ts < c1.ts ? [[m0, c0], [m1, c1]] : [[m1, c1], [m0, c0]];
                for (const [m, c] of order) recordCommit(m, c, op.attachTidy);
                upper = ts + 2;
                break;
              }
            }
            steps++;
            // After every step: every handle's cache validates as it is, and once caught
            // up it agrees with the model.
            for (const m of handles) {
              const cache = m.h.readCache();
              expect(validateCache(cache.state), `after ${op.kind}`).to.equal(undefined);
              await cache.updateGe(upper, { signal: signal() });
              expect(cache.progressExclusive, `txns upper after ${op.kind}`).to.equal(upper);
              expect(validateCache(cache.state), `after ${op.kind}, caught up`).to.equal(undefined);
              for (let s = 0; s < N_SHARDS; s++) expect(cache.registeredAtProgress(ids[s]!, upper)).to.equal(registered.has(s));
              const batches = cache.state.unappliedBatchList().map((b) => keyOf(ids.indexOf(b.dataId), b.ts));
              expect(batches.sort(), 'untidied batches').to.deep.equal([...untidied.keys()].sort());
              expect(cache.minUnappliedTs()).to.be.at.most(minOr([...untidied.values()], upper));
            }
          }

          // Everything committed reads back.
          // (Reading a data shard lets its since advance, so the earlier read comes first.)
          await handles[0]!.h.applyLe(upper - 1);
          const mid = Math.max(since, Math.floor(upper / 2));
          for (const id of ids) await snapshotAndSubscribeAt(log, id, mid);
          for (const id of ids) await log.assertSnapshot(id, upper - 1);
        } finally {
          for (const m of handles) await m.h.close();
          for (const c of clients) await c.close();
        }
      }),
      { numRuns: 60 },
    );
    console.log(`      (${steps} steps, ${races} races, ${JSON.stringify(stats)})`);
    expect(steps).to.be.greaterThan(100);
    expect(races).to.be.greaterThan(0);
    expect(stats.batches).to.be.greaterThan(20);
    expect(stats.tidied).to.be.greaterThan(5);
    expect(stats.sinceMoved).to.be.greaterThan(3);
  });
});

// ---------------------------------------------------------------------------------
// A fixed src bug, as deterministic reproductions.
// ---------------------------------------------------------------------------------

describe('txn: TxnsCacheState compaction (regressions)', () => {
  // Spec §2.6 validate(): "If it has more than one write, the first write is >= min_unapplied_ts".
  // push_append compacted only the shard of the row just pushed, so when one push
  // tidied batches of two shards at the same ts and the shard that also had a later
  // write came first, its old write was never dropped.
  it('regression: validate() after one push tidies two shards committed at the same ts (bare state)', () => {
    const [d0, d1] = ['s00000000-0000-4000-8000-000000000000', 's00000000-0000-4000-8000-000000000001'];
    const s = new TxnsCacheState(newShardId(), 0, undefined);
    const [A, B, C] = [new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])];
    s.pushEntries(
      [
        { entry: registerEntry(d0, 1), t: 1, diff: 1 },
        { entry: registerEntry(d1, 1), t: 1, diff: 1 },
      ],
      2,
    );
    s.markRegisterApplied(1); // register(1) applies itself
    s.pushEntries(
      [
        { entry: appendEntry(d0, 2, A), t: 2, diff: 1 },
        { entry: appendEntry(d1, 2, B), t: 2, diff: 1 },
      ],
      3,
    );
    s.pushEntries([{ entry: appendEntry(d1, 3, C), t: 3, diff: 1 }], 4);
    expect(s.validate()).to.equal(undefined);
    // The tidy of the txn at 2, committed at 4; d1's row happens to come first.
    s.pushEntries(
      [
        { entry: appendEntry(d1, 2, B), t: 4, diff: -1 },
        { entry: appendEntry(d0, 2, A), t: 4, diff: -1 },
      ],
      5,
    );
    // Failed before the fix: "s…001: write 2 kept although below the min unapplied ts 3" (d1's writes are [2, 3]).
    expect(s.validate()).to.equal(undefined);
  });

  it('regression: validate() after tidying a two-shard txn through a real TxnsHandle', async () => {
    const client = await memClient();
    try {
      const txns = await openTxns(client);
      const [d0, d1] = [newShardId(), newShardId()];
      expect((await txns.register(1, [await writer(client, d0), await writer(client, d1)])).ok).to.equal(true);
      // d1 written first, so its retraction comes first in the tidy and in the txns part.
      let txn = txns.begin();
      await txn.write(d1, 'b', null, 1);
      await txn.write(d0, 'a', null, 1);
      let res = await txn.commitAt(txns, 2);
      if (!res.ok) throw new Error('commit at 2');
      const tidy = await res.apply.apply(txns);
      txn = txns.begin();
      await txn.write(d1, 'c', null, 1);
      res = await txn.commitAt(txns, 3);
      if (!res.ok) throw new Error('commit at 3');
      expect(await txns.tidyAt(4, tidy)).to.deep.equal({ ok: true });
      await txns.readCache().updateGt(4);
      // Failed before the fix: "<d1>: write 2 kept although below the min unapplied ts 3".
      expect(txns.readCache().validate()).to.equal(undefined);
      await txns.close();
    } finally {
      await client.close();
    }
  });
});
