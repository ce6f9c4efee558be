/**
 * RxJS surface benchmark: `npm run bench:rx` (or `npx tsx bench/rx.ts --parts throughput,freshness --backends mem,file`).
 *
 * Two measurements, on `mem://` and on `file:<tmp>` (SQLite consensus + file blob),
 * each read as a ratio to a baseline measured in the same run (the machine may be
 * shared and noisy: compare ratios between runs, not absolute rates).
 *
 *  1. throughput, end to end: TXNWAL_BENCH_RX_TXNS transactions of
 *     TXNWAL_BENCH_RX_BATCH updates each (distinct string keys, unit values, diff +1,
 *     all to one registered data shard) are fed to `txnSink` (default options: each
 *     acknowledged after commit + apply, tidies carried forward). One `dataSubscribe$`
 *     subscriber, subscribed and caught up before the first commit, counts the updates
 *     it receives. updates/s = updates delivered ÷ time from handing the first
 *     transaction to the sink to the delivery of the last update. Rows per backend:
 *       - `Subject (baseline)`: the floor cost of carrying the same events: a producer
 *         builds each transaction's update array (the same B `[key, null, ts, 1]`
 *         tuples) and pushes `{kind:'updates'}` then `{kind:'progress'}` through a
 *         plain RxJS `Subject` to a subscriber that counts them, exactly as ours does.
 *         Synchronous and in memory, so it is repeated for
 *         TXNWAL_BENCH_RX_SUBJECT_SECONDS in all to give the clock something to
 *         measure. It does not depend on the backend, but is measured next to each
 *         backend's rows.
 *       - `commitAt+apply, no reader`: the same transactions committed by hand
 *         (begin / write / tidy / commitAt / apply, sequential), nobody reading;
 *       - `txnSink, no reader`: the same through `txnSink`, nobody reading (shows
 *         whether the sink adds anything over the hand-written loop);
 *       - `txnSink → dataSubscribe$`: the measured pipeline.
 *     Each pipeline runs on a fresh txns shard and data shard, TXNWAL_BENCH_RX_ROUNDS
 *     times with TXNS/ROUNDS transactions, in alternating order (A B C D, D C B A, …)
 *     so drift in the machine's load hits every row alike; rows are the sums.
 *     Columns: `÷ Subject` = updates/s ÷ the Subject baseline's (how far a durable,
 *     transactional round trip is from an in-memory hand-off: expect a small
 *     number); `÷ sink alone` = updates/s ÷ `txnSink, no reader` (the cost of the
 *     reader, which shares the one JS thread with the writer: 1.00 means reading is
 *     free, 0.50 means it doubles the work).
 *  2. freshness: single-update transactions through `txnSink` while one
 *     `dataSubscribe$` subscriber records when it sees each one. Per transaction:
 *       - `commit` = the sink's time for it: ack time − max(the time it was handed to
 *         the sink, the previous ack), i.e. its commit + apply without queueing;
 *       - `ack→data` = the time the subscriber received the update at `commitTs` −
 *         the ack time (negative when the subscriber had it first: with the default
 *         ack after apply, the apply wakes the reader before the ack has made its
 *         way out of the sink);
 *       - `ack→progress` = the time the subscriber received progress `> commitTs`
 *         (where a consumer knows `commitTs` is complete) − the ack time;
 *       - `handed→progress` = from handing the transaction to the sink to that
 *         progress: the writer-to-reader latency end to end.
 *     Loads: `closed loop` (TXNWAL_BENCH_RX_FRESH_TXNS transactions, each handed to
 *     the sink only after the previous one's ack, data and progress were all seen);
 *     `steady N/s` (offered on a timer at TXNWAL_BENCH_RX_RATE per second, default
 *     half the closed loop's rate on that backend, for TXNWAL_BENCH_RX_RATE_SECONDS,
 *     without waiting for anything); and the same with `txnSink(…, { ack: 'commit' })`,
 *     which acknowledges before the apply (the apply follows at once), so a reader
 *     sees the transaction shortly after its ack.
 *     The first TXNWAL_BENCH_RX_FRESH_WARMUP transactions of each loop, and the last
 *     of a steady one (applied by completion), are not counted.
 *     Ratios: `data/commit` and `progress/commit` = the p50 of ack→data (ack→progress)
 *     ÷ the p50 of commit, from the same loop: how much later than the writer's own
 *     acknowledgement a reader in the same process learns about the write, in units
 *     of one commit (≤ 0: no later than the writer; 1: one more commit's worth).
 *
 * A warm-up pipeline (mem://, not measured) runs first so the first backend does not
 * pay for JIT compilation. Everything is unsubscribed and closed at the end, so the
 * process exits by itself. Defaults take about 70 s on 2 busy cores.
 *
 * Settings (env): TXNWAL_BENCH_RX_TXNS (1000), TXNWAL_BENCH_RX_BATCH (100),
 * TXNWAL_BENCH_RX_ROUNDS (2), TXNWAL_BENCH_RX_SUBJECT_SECONDS (0.5),
 * TXNWAL_BENCH_RX_FRESH_TXNS (300), TXNWAL_BENCH_RX_FRESH_WARMUP (20),
 * TXNWAL_BENCH_RX_RATE (txn/s; default half the closed-loop rate),
 * TXNWAL_BENCH_RX_RATE_SECONDS (3).
 * Arguments: --parts throughput,freshness (default both), --backends mem,file (default both).
 */
import { performance } from 'node:perf_hooks';
import { Observable, Subject, type Subscription } from 'rxjs';
import {
  Codecs,
  PersistClient,
  Tidy,
  TxnsHandle,
  dataSubscribe$,
  newShardId,
  txnSink,
  type ShardEvent,
  type ShardId,
  type SinkTxn,
  type Update,
} from '../src/index.js';
import {
  argChoices,
  envNumber,
  fmtInt,
  fmtLatency,
  fmtMs,
  fmtRate,
  fmtRatio,
  log,
  machineSummary,
  quantile,
  removeTempDirs,
  renderTable,
  runBench,
  tempDir,
} from './support.js';


const PARTS = ['throughput', 'freshness'] as const;

const BACKENDS = ['mem', 'file'] as const;
type Backend = (typeof BACKENDS)[number];

const TXNS = Math.round(envNumber('TXNWAL_BENCH_RX_TXNS', 1000));
const BATCH = Math.round(envNumber('TXNWAL_BENCH_RX_BATCH', 100));
const SUBJECT_SECONDS = envNumber('TXNWAL_BENCH_RX_SUBJECT_SECONDS', 0.5);
const ROUNDS = Math.round(envNumber('TXNWAL_BENCH_RX_ROUNDS', 2));
/** Transactions per pipeline per round of part 1. */
const ROUND_TXNS = Math.ceil(TXNS / ROUNDS);
const FRESH_TXNS = Math.round(envNumber('TXNWAL_BENCH_RX_FRESH_TXNS', 300));
const FRESH_WARMUP = Math.round(envNumber('TXNWAL_BENCH_RX_FRESH_WARMUP', 20));
const RATE = process.env.TXNWAL_BENCH_RX_RATE ? envNumber('TXNWAL_BENCH_RX_RATE', 1) : undefined;
const RATE_SECONDS = envNumber('TXNWAL_BENCH_RX_RATE_SECONDS', 3);

const CODECS = { key: Codecs.string, val: Codecs.unit };
type Ev = ShardEvent<string, null>;

// ---------- set-up ----------

interface BackendClient {
  backend: Backend;
  location: string;
  client: PersistClient;
}

async function openBackend(backend: Backend): Promise<BackendClient> {
  const url = backend === 'mem' ? 'mem://' : `file:${await tempDir('txnwal-bench-rx-')}`;
  const location = backend === 'mem' ? 'mem://' : 'file:<tmp> (SQLite + files)';
  return { backend, location, client: await PersistClient.open(url) };
}

/** A fresh txns shard with one fresh data shard registered at 1 (txns upper 2). */
async function freshTxns(client: PersistClient): Promise<{ txns: TxnsHandle<string, null>; dataId: ShardId; firstTs: number }> {
  const txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs: CODECS });
  const dataId = newShardId();
  const reg = await txns.register(1, [await client.openWriter(dataId, CODECS, { purpose: 'bench data' })]);
  if (!reg.ok) throw new Error(`register at 1: taken, current ${reg.current}`);
  return { txns, dataId, firstTs: 2 };
}

/** Transaction `i` of part 1: BATCH distinct keys, diff +1. */
function batchTxn(dataId: ShardId, i: number): SinkTxn<string, null> {
  const txn = new Array<readonly [ShardId, string, null, number]>(BATCH);
  for (let j = 0; j < BATCH; j++) txn[j] = [dataId, `k${i}-${j}`, null, 1];
  return txn;
}

/** The transactions of part 1, built lazily as the sink takes them. */
function batchTxns$(dataId: ShardId, n: number): Observable<SinkTxn<string, null>> {
  return new Observable((s) => {
    for (let i = 0; i < n && !s.closed; i++) s.next(batchTxn(dataId, i));
    s.complete();
  });
}

/** Resolves `until(p)` once `p()` holds; `notify()` re-checks (call it on every event). */
class Waiter {
  private readonly waiting = new Set<{ ready: () => boolean; resolve: () => void; reject: (err: unknown) => void }>();
  private failure: { err: unknown } | undefined;

  until(ready: () => boolean): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.err);
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiting.add({ ready, resolve, reject }));
  }

  notify(): void {
    for (const w of this.waiting) {
      if (w.ready()) {
        this.waiting.delete(w);
        w.resolve();
      }
    }
  }

  fail(err: unknown): void {
    this.failure ??= { err };
    for (const w of this.waiting) w.reject(err);
    this.waiting.clear();
  }
}

/**
 * A `dataSubscribe$` subscriber from asOf 1; `onEvent` sees each event with its
 * arrival time. Resolves once the subscription is live (progress past 1).
 */
async function subscribeData(
  client: PersistClient,
  txns: TxnsHandle<string, null>,
  dataId: ShardId,
  waiter: Waiter,
  onEvent: (ev: Ev, now: number) => void,
): Promise<{ sub: Subscription; progress: () => number }> {
  let progress = 1;
  const sub = dataSubscribe$(client, txns.txnsId, dataId, { codecs: CODECS, asOf: 1 }).subscribe({
    next: (ev) => {
      const now = performance.now();
      if (ev.kind === 'progress') progress = ev.upper;
      onEvent(ev, now);
      waiter.notify();
    },
    error: (err: unknown) => waiter.fail(err),
    complete: () => waiter.fail(new Error('dataSubscribe$ completed unexpectedly')),
  });
  await waiter.until(() => progress > 1);
  return { sub, progress: () => progress };
}

/** Subscribes `obs` with `onNext`; resolves when it completes, rejects when it errors. */
function runToEnd<T>(obs: Observable<T>, onNext: (v: T) => void): Promise<void> {
  return new Promise((resolve, reject) => obs.subscribe({ next: onNext, error: reject, complete: resolve }));
}

// ---------- part 1: throughput ----------

type Pipeline = 'subject' | 'direct' | 'sink' | 'sink+reader';
const PIPELINE_LABEL: Record<Pipeline, string> = {
  subject: 'Subject (baseline)',
  direct: 'commitAt+apply, no reader',
  sink: 'txnSink, no reader',
  'sink+reader': 'txnSink → dataSubscribe$',
};

interface ThroughputRow {
  backend: Backend;
  location: string;
  pipeline: Pipeline;
  txns: number;
  updates: number;
  ms: number;
  perSecond: number;
}

/**
 * The baseline: the same update arrays (`n` transactions' worth, rebuilt each time)
 * and event shapes through a plain Subject to a counting subscriber, repeated for `seconds`.
 */
function subjectBaseline(n: number, seconds: number): { txns: number; updates: number; ms: number } {
  const subject = new Subject<Ev>();
  let counted = 0;
  let progress = 0;
  const sub = subject.subscribe((ev) => {
    if (ev.kind === 'updates') counted += ev.updates.length;
    else progress = ev.upper;
  });
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let repeats = 0;
  let now = start;
  do {
    for (let i = 0; i < n; i++) {
      const ts = 2 + i;
      const updates = new Array<Update<string, null>>(BATCH);
      for (let j = 0; j < BATCH; j++) updates[j] = [`k${i}-${j}`, null, ts, 1];
      subject.next({ kind: 'updates', updates });
      subject.next({ kind: 'progress', upper: ts + 1 });
    }
    repeats++;
    now = performance.now();
  } while (now < deadline);
  sub.unsubscribe();
  if (counted !== repeats * n * BATCH || progress !== n + 2) throw new Error(`Subject baseline counted ${counted} updates`);
  return { txns: repeats * n, updates: counted, ms: now - start };
}

/** `n` transactions committed by hand: begin / write / tidy / commitAt / apply, sequential. */
async function directCommits(client: PersistClient, n: number): Promise<{ ms: number; updates: number }> {
  const { txns, dataId, firstTs } = await freshTxns(client);
  try {
    let tidy = new Tidy();
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const txn = txns.begin();
      for (const [id, k, v, d] of batchTxn(dataId, i)) await txn.write(id, k, v, d);
      txn.tidy(tidy);
      const ts = firstTs + i;
      const res = await txn.commitAt(txns, ts);
      if (!res.ok) throw new Error(`commit at ${ts}: taken, current ${res.current}`);
      tidy = await res.apply.apply(txns);
    }
    return { ms: performance.now() - start, updates: n * BATCH };
  } finally {
    await txns.close();
  }
}

/**
 * `n` transactions through txnSink, optionally with a dataSubscribe$ reader counting.
 * Ends at the last ack (no reader) or at the last update delivered (reader).
 */
async function sinkPipeline(client: PersistClient, n: number, withReader: boolean): Promise<{ ms: number; updates: number }> {
  const { txns, dataId, firstTs } = await freshTxns(client);
  const total = n * BATCH;
  const waiter = new Waiter();
  let delivered = 0;
  let lastDelivery = 0;
  let reader: { sub: Subscription; progress: () => number } | undefined;
  try {
    if (withReader) {
      reader = await subscribeData(client, txns, dataId, waiter, (ev, now) => {
        if (ev.kind === 'updates') {
          delivered += ev.updates.length;
          if (delivered >= total) lastDelivery = now;
        }
      });
    }
    let acks = 0;
    let lastAck = 0;
    let lastTs = 0;
    const start = performance.now();
    const sinkDone = runToEnd(batchTxns$(dataId, n).pipe(txnSink(txns, { firstTs })), (ack) => {
      acks++;
      lastAck = performance.now();
      lastTs = ack.commitTs;
    });
    sinkDone.catch((err: unknown) => waiter.fail(err));
    if (withReader) await waiter.until(() => delivered >= total);
    await sinkDone;
    if (acks !== n) throw new Error(`txnSink acknowledged ${acks} of ${n} transactions`);
    if (!withReader) return { ms: lastAck - start, updates: total };
    // Nothing more (a duplicate) may arrive before progress passes the last commit.
    await waiter.until(() => reader!.progress() > lastTs);
    if (delivered !== total) throw new Error(`the reader received ${delivered} updates, expected ${total}`);
    return { ms: lastDelivery - start, updates: delivered };
  } finally {
    reader?.sub.unsubscribe();
    await txns.close();
  }
}

/** Runs the four pipelines ROUNDS times, in alternating order (drift hits all alike), and sums them. */
async function benchThroughput(b: BackendClient): Promise<ThroughputRow[]> {
  const order: Pipeline[] = ['subject', 'direct', 'sink', 'sink+reader'];
  const sums = new Map<Pipeline, { txns: number; updates: number; ms: number }>(order.map((p) => [p, { txns: 0, updates: 0, ms: 0 }]));
  const runOne = async (p: Pipeline): Promise<{ txns: number; updates: number; ms: number }> => {
    switch (p) {
      case 'subject':
        return subjectBaseline(ROUND_TXNS, SUBJECT_SECONDS / ROUNDS);
      case 'direct':
        return { txns: ROUND_TXNS, ...(await directCommits(b.client, ROUND_TXNS)) };
      case 'sink':
        return { txns: ROUND_TXNS, ...(await sinkPipeline(b.client, ROUND_TXNS, false)) };
      case 'sink+reader':
        return { txns: ROUND_TXNS, ...(await sinkPipeline(b.client, ROUND_TXNS, true)) };
    }
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of round % 2 === 0 ? order : [...order].reverse()) {
      const r = await runOne(p);
      const sum = sums.get(p)!;
      sum.txns += r.txns;
      sum.updates += r.updates;
      sum.ms += r.ms;
      log(
        `  [${b.backend}] round ${round + 1}/${ROUNDS} ${PIPELINE_LABEL[p]}: ${fmtInt(r.updates)} updates in ${fmtInt(r.txns)} txns, ` +
          `${fmtMs(r.ms)} = ${fmtRate(r.updates / (r.ms / 1000))} updates/s`,
      );
    }
  }
  return order.map((pipeline) => {
    const { txns, updates, ms } = sums.get(pipeline)!;
    return { backend: b.backend, location: b.location, pipeline, txns, updates, ms, perSecond: updates / (ms / 1000) };
  });
}

// ---------- part 2: freshness ----------

type Load = { kind: 'closed' } | { kind: 'steady'; rate: number; ack: 'apply' | 'commit' };

function loadLabel(load: Load): string {
  if (load.kind === 'closed') return 'closed loop';
  return `steady ${fmtInt(load.rate)}/s` + (load.ack === 'commit' ? ", ack:'commit'" : '');
}

interface FreshRow {
  backend: Backend;
  load: Load;
  /** Measured transactions (warm-up and, when steady, the last one excluded). */
  txns: number;
  /** Transactions per second offered/handed over during the loop (warm-up included). */
  achieved: number;
  /** Sorted ms, per measured transaction: see the module comment. */
  commit: number[];
  /** Handed to the sink → ack (queueing included). */
  queued: number[];
  data: number[];
  progress: number[];
  /** Handed to the sink → progress past its commit. */
  e2e: number[];
}

/**
 * Single-update transactions through txnSink with a dataSubscribe$ reader recording
 * arrival times. Closed loop: FRESH_WARMUP + FRESH_TXNS, each after the previous was
 * fully seen. Steady: offered on a timer at `rate`/s for RATE_SECONDS.
 */
async function freshnessLoop(b: BackendClient, load: Load): Promise<FreshRow> {
  const { client } = b;
  const { txns, dataId, firstTs } = await freshTxns(client);
  const waiter = new Waiter();
  /** Arrival time of the first update at each ts. */
  const dataAt = new Map<number, number>();
  /** Progress events, in order. */
  const progressAt: { upper: number; at: number }[] = [];
  const reader = await subscribeData(client, txns, dataId, waiter, (ev, now) => {
    if (ev.kind === 'updates') {
      for (const u of ev.updates) if (!dataAt.has(u[2])) dataAt.set(u[2], now);
    } else {
      progressAt.push({ upper: ev.upper, at: now });
    }
  });
  const input = new Subject<SinkTxn<string, null>>();
  const submitted: number[] = [];
  const acks: { ts: number; at: number }[] = [];
  const ack = load.kind === 'steady' ? load.ack : 'apply';
  const sinkDone = runToEnd(input.pipe(txnSink(txns, { firstTs, ack })), (a) => {
    acks.push({ ts: a.commitTs, at: performance.now() });
    waiter.notify();
  });
  sinkDone.catch((err: unknown) => waiter.fail(err));
  const submit = (i: number) => {
    submitted.push(performance.now());
    input.next([[dataId, `f${i}`, null, 1]]);
  };
  const seen = (i: number) => () => {
    const a = acks[i];
    return a !== undefined && dataAt.has(a.ts) && reader.progress() > a.ts;
  };
  try {
    const start = performance.now();
    let n = 0;
    let elapsed: number;
    if (load.kind === 'closed') {
      for (; n < FRESH_WARMUP + FRESH_TXNS; n++) {
        submit(n);
        await waiter.until(seen(n));
      }
      elapsed = (performance.now() - start) / 1000;
      input.complete();
    } else {
      const periodMs = 1000 / load.rate;
      const end = start + RATE_SECONDS * 1000;
      for (;;) {
        const due = start + n * periodMs;
        if (due >= end) break;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        submit(n++);
      }
      elapsed = (performance.now() - start) / 1000;
      // Completing lets the sink apply the last one (with ack:'commit' only a later
      // transaction or completion does); that last one is not counted.
      input.complete();
      await waiter.until(seen(n - 1));
    }
    await sinkDone;

    const counted = load.kind === 'closed' ? n : n - 1;
    const out = { commit: [] as number[], queued: [] as number[], data: [] as number[], progress: [] as number[], e2e: [] as number[] };
    let p = 0;
    for (let i = 0; i < counted; i++) {
      const a = acks[i]!;
      // The first progress event past the commit.
      while (progressAt[p]!.upper <= a.ts) p++;
      if (i < FRESH_WARMUP) continue;
      out.commit.push(a.at - Math.max(submitted[i]!, i > 0 ? acks[i - 1]!.at : -Infinity));
      out.queued.push(a.at - submitted[i]!);
      out.data.push(dataAt.get(a.ts)! - a.at);
      out.progress.push(progressAt[p]!.at - a.at);
      out.e2e.push(progressAt[p]!.at - submitted[i]!);
    }
    for (const xs of Object.values(out)) xs.sort((x, y) => x - y);
    return { backend: b.backend, load, txns: out.commit.length, achieved: n / elapsed, ...out };
  } finally {
    input.complete();
    reader.sub.unsubscribe();
    await sinkDone.catch(() => undefined);
    await txns.close();
  }
}

function describeFresh(r: FreshRow): string {
  const q = (xs: number[]) => `p50 ${fmtLatency(quantile(xs, 0.5))} p99 ${fmtLatency(quantile(xs, 0.99))}`;
  return (
    `${fmtInt(r.txns)} txns, ${fmtRate(r.achieved)}/s handed over: commit ${q(r.commit)}; ack→data ${q(r.data)}; ` +
    `ack→progress ${q(r.progress)}; handed→ack ${q(r.queued)}; handed→progress ${q(r.e2e)}`
  );
}

async function benchFreshness(b: BackendClient): Promise<FreshRow[]> {
  const rows: FreshRow[] = [];
  const run = async (load: Load) => {
    const r = await freshnessLoop(b, load);
    log(`  [${b.backend}] ${loadLabel(load)}: ${describeFresh(r)}`);
    rows.push(r);
    return r;
  };
  const closed = await run({ kind: 'closed' });
  const rate = RATE ?? Math.max(1, Math.round(closed.achieved / 2));
  await run({ kind: 'steady', rate, ack: 'apply' });
  await run({ kind: 'steady', rate, ack: 'commit' });
  return rows;
}

// ---------- warm-up ----------

/** One small pipeline of each kind on mem://, so the first backend does not pay for JIT warm-up. */
async function warmUp(): Promise<void> {
  const b = await openBackend('mem');
  try {
    const start = performance.now();
    await sinkPipeline(b.client, ROUND_TXNS, true);
    await directCommits(b.client, ROUND_TXNS);
    log(`  warm-up: ${fmtInt(2 * ROUND_TXNS)} txns on mem:// in ${fmtMs(performance.now() - start)} (not measured)`);
  } finally {
    await b.client.close();
  }
}

// ---------- main ----------

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    log('usage: npm run bench:rx [-- --parts throughput,freshness --backends mem,file]');
    log('env: TXNWAL_BENCH_RX_TXNS (1000), TXNWAL_BENCH_RX_BATCH (100), TXNWAL_BENCH_RX_ROUNDS (2),');
    log('     TXNWAL_BENCH_RX_SUBJECT_SECONDS (0.5),');
    log('     TXNWAL_BENCH_RX_FRESH_TXNS (300), TXNWAL_BENCH_RX_FRESH_WARMUP (20),');
    log('     TXNWAL_BENCH_RX_RATE (default: half the closed-loop rate), TXNWAL_BENCH_RX_RATE_SECONDS (3)');
    return 0;
  }
  const parts = argChoices('parts', PARTS);
  const backends = argChoices('backends', BACKENDS);
  log('txnwal RxJS surface benchmark');
  log(`  ${machineSummary()}`);
  log(
    `  TXNWAL_BENCH_RX_TXNS=${TXNS} TXNWAL_BENCH_RX_BATCH=${BATCH} TXNWAL_BENCH_RX_ROUNDS=${ROUNDS} ` +
      `TXNWAL_BENCH_RX_SUBJECT_SECONDS=${SUBJECT_SECONDS} ` +
      `TXNWAL_BENCH_RX_FRESH_TXNS=${FRESH_TXNS} TXNWAL_BENCH_RX_FRESH_WARMUP=${FRESH_WARMUP} ` +
      `TXNWAL_BENCH_RX_RATE=${RATE ?? '(half the closed loop)'} TXNWAL_BENCH_RX_RATE_SECONDS=${RATE_SECONDS} ` +
      `parts=${parts.join(',')} backends=${backends.join(',')}`,
  );

  const started = performance.now();
  const throughput: ThroughputRow[] = [];
  const freshness: FreshRow[] = [];
  let failed = false;
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      failed = true;
      log(`  [${what}] FAILED: ${(err as Error).stack ?? String(err)}`);
    }
  };
  try {
    await attempt('warm-up', warmUp);
    for (const backend of backends) {
      const b = await openBackend(backend);
      try {
        if (parts.includes('throughput')) {
          log(`\n1. throughput, ${fmtInt(TXNS)} txns × ${BATCH} updates (${b.location}):`);
          await attempt(`${backend} throughput`, async () => void throughput.push(...(await benchThroughput(b))));
        }
        if (parts.includes('freshness')) {
          log(`\n2. freshness, single-update txns (${b.location}):`);
          await attempt(`${backend} freshness`, async () => void freshness.push(...(await benchFreshness(b))));
        }
      } finally {
        await b.client.close();
      }
    }
  } finally {
    await removeTempDirs();
  }

  log(`\nResults (total ${fmtMs(performance.now() - started)})`);
  if (throughput.length > 0) {
    log(`\n1. updates/s end to end, ${fmtInt(TXNS)} transactions × ${BATCH} updates to one data shard, one process`);
    log(
      renderTable(
        ['backend', 'pipeline', 'txns', 'updates', 'time', 'updates/s', '÷ Subject', '÷ sink alone'],
        throughput.map((r) => {
          const subject = throughput.find((x) => x.backend === r.backend && x.pipeline === 'subject');
          const sink = throughput.find((x) => x.backend === r.backend && x.pipeline === 'sink');
          return [
            r.backend,
            PIPELINE_LABEL[r.pipeline],
            fmtInt(r.txns),
            fmtInt(r.updates),
            fmtMs(r.ms),
            fmtRate(r.perSecond),
            subject ? fmtRatio(r.perSecond / subject.perSecond) : '-',
            sink && r.pipeline !== 'subject' ? fmtRatio(r.perSecond / sink.perSecond) : '-',
          ];
        }),
      ),
    );
    log('   Subject (baseline): the same update arrays built and pushed as updates + progress events through a plain');
    log(`   RxJS Subject to a counting subscriber, repeated for ${SUBJECT_SECONDS} s in all (in memory, synchronous).`);
    log('   commitAt+apply / txnSink, no reader: commit + apply with nobody reading (time to the last ack).');
    log('   txnSink → dataSubscribe$: time from the first transaction handed to the sink to the last update delivered.');
    log(`   Each row sums ${ROUNDS} rounds of ${fmtInt(ROUND_TXNS)} txns on fresh shards, run in alternating order.`);
    log('   ÷ Subject = updates/s ÷ that backend\'s Subject row; ÷ sink alone = updates/s ÷ txnSink, no reader.');
  }
  if (freshness.length > 0) {
    log('\n2. freshness: commit acknowledgement → delivery to a dataSubscribe$ subscriber, single-update txns, one process');
    log(
      renderTable(
        ['backend', 'load', 'txns', 'commit p50', 'commit p99', 'ack→data p50', 'ack→data p99', 'ack→progress p50', 'ack→progress p99', 'handed→progress p50', 'data/commit', 'progress/commit'],
        freshness.map((r) => {
          const c50 = quantile(r.commit, 0.5);
          return [
            r.backend,
            loadLabel(r.load),
            fmtInt(r.txns),
            fmtLatency(c50),
            fmtLatency(quantile(r.commit, 0.99)),
            fmtLatency(quantile(r.data, 0.5)),
            fmtLatency(quantile(r.data, 0.99)),
            fmtLatency(quantile(r.progress, 0.5)),
            fmtLatency(quantile(r.progress, 0.99)),
            fmtLatency(quantile(r.e2e, 0.5)),
            fmtRatio(quantile(r.data, 0.5) / c50),
            fmtRatio(quantile(r.progress, 0.5) / c50),
          ];
        }),
      ),
    );
    log("   commit = the sink's time for that txn (ack − max(handed to the sink, previous ack)): commit + apply; with");
    log("   ack:'commit', the commit plus the previous txn's apply (which runs right after that txn's ack).");
    log('   ack→data = update at commitTs received − ack; ack→progress = progress > commitTs received − ack. Negative: the');
    log('   subscriber had it before the ack reached the sink\'s subscriber. handed→progress = txn handed to the sink → progress.');
    log('   closed loop: the next txn is handed over once ack, data and progress of the last were seen; steady: offered on a');
    log(`   timer for ${RATE_SECONDS} s at TXNWAL_BENCH_RX_RATE (default half the closed-loop rate), the last one not counted.`);
    log(`   First ${FRESH_WARMUP} txns of each loop not counted. data/commit, progress/commit = freshness p50 ÷ commit p50, same loop.`);
  }
  return failed ? 1 : 0;
}

await runBench(main);
