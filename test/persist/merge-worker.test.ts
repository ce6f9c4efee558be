/**
 * The merge worker: a merge computed in the worker thread gives the same bytes as on
 * the main thread, and both read as the naive recomputation of their inputs; a
 * corrupt input, a thread that dies, and a closed worker each fail the way the module
 * says; a client's compaction hands its bigger merges to the worker and reads back
 * the same contents.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { WORKER_MIN_INPUT_BYTES, WORKER_MIN_INPUT_UPDATES, compactShard } from '../../src/persist/compaction.js';
import { StoredFormatError } from '../../src/persist/errors.js';
import { MAX_THREAD_FAILURES, MergeWorker, SHARED_LINGER_MS, acquireSharedMergeWorker } from '../../src/persist/merge-worker.js';
import { decodePartColumns, encodeUpdateColumns, partTime } from '../../src/persist/part.js';
import { PartMerger, type MergeInputPart, type MergedPart, type PartMergerOptions } from '../../src/persist/part-merger.js';
import { PersistMetrics } from '../../src/persist/persist-metrics.js';
import { UpdateColumns } from '../../src/persist/update-columns.js';
import { PersistClient, newShardId, type Update } from '../../src/persist/index.js';
import { openLocation } from '../../src/location/index.js';
import { withFaultInjection } from '../../src/location/fault-injection.js';
import pino from 'pino';
import { STRING_UNIT, expectReject, memClient, sorted } from '../support/persist.js';

const SILENT = pino({ level: 'silent' });
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

interface Row {
  key: string;
  val: string;
  t: number;
  d: number;
}

function encodeRows(rows: readonly Row[]): Uint8Array {
  const cols = new UpdateColumns();
  for (const r of rows) cols.push(bytes(r.key), bytes(r.val), r.t, r.d);
  return encodeUpdateColumns(cols);
}

function decodeRows(parts: readonly MergedPart[]): Row[] {
  const out: Row[] = [];
  for (const p of parts) {
    const c = decodePartColumns(p.encoded, 'output');
    for (let i = 0; i < c.count; i++) {
      out.push({
        key: text(c.keyData.subarray(c.keyOffsets[i]!, c.keyOffsets[i + 1]!)),
        val: text(c.valData.subarray(c.valOffsets[i]!, c.valOffsets[i + 1]!)),
        t: c.times[i]!,
        d: c.diffs[i]!,
      });
    }
  }
  return out;
}

function runLocal(opts: PartMergerOptions, inputs: readonly MergeInputPart[]): { parts: MergedPart[]; updateCount: number } {
  const m = new PartMerger(opts);
  const parts = inputs.flatMap((p) => m.add(p));
  parts.push(...m.finish());
  return { parts, updateCount: m.updateCount };
}

async function runInWorker(worker: MergeWorker, opts: PartMergerOptions, inputs: readonly MergeInputPart[]) {
  expect(await worker.ready(), 'the thread starts').to.equal(true);
  const job = worker.begin(opts);
  for (const p of inputs) job.add(p);
  return job.finish();
}

/** What the inputs read as, by the rules PartMerger documents, computed row by row. */
function naive(opts: PartMergerOptions, inputs: readonly { rows: Row[]; meta: Pick<MergeInputPart, 'tsRewrite' | 'keep'> }[]): Row[] {
  const out: Row[] = [];
  for (const { rows, meta } of inputs) {
    for (const r of rows) {
      const t = partTime(meta, r.t);
      if (Number.isNaN(t)) continue;
      out.push({ ...r, t: opts.consolidate ? Math.max(t, opts.since) : t });
    }
  }
  return opts.consolidate ? consolidated(out) : out;
}

function consolidated(rows: readonly Row[]): Row[] {
  const sums = new Map<string, Row>();
  for (const r of rows) {
    const k = JSON.stringify([r.key, r.val, r.t]);
    const e = sums.get(k);
    if (e) e.d += r.d;
    else sums.set(k, { ...r });
  }
  return [...sums.values()].filter((r) => r.d !== 0).sort(byRow);
}

function byRow(a: Row, b: Row): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : a.val < b.val ? -1 : a.val > b.val ? 1 : a.t - b.t || a.d - b.d;
}

const rowArb = fc.record({
  key: fc.constantFrom('a', 'b', 'c', 'dd', 'eee', ''),
  val: fc.constantFrom('', 'x', 'yy'),
  t: fc.integer({ min: 0, max: 9 }),
  d: fc.integer({ min: -2, max: 2 }),
});
const inputArb = fc.record({
  rows: fc.array(rowArb, { maxLength: 30 }),
  tsRewrite: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }),
  keep: fc.option(
    fc
      .tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 10 }))
      .map(([a, b]) => ({ lower: Math.min(a, b), upper: Math.max(a, b) + 1 })),
    { nil: undefined },
  ),
});

describe('persist: the merge worker', () => {
  let worker: MergeWorker;
  beforeEach(() => {
    worker = new MergeWorker(SILENT);
  });
  afterEach(() => worker.close());

  it('computes the same output parts as the main thread, and both read as the naive recomputation of the inputs', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(inputArb, { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 1, max: 400 }),
        async (inputs, consolidate, since, targetBytes) => {
          const opts = { since, consolidate, targetBytes };
          const parts = inputs.map((inp, i) => ({
            bytes: encodeRows(inp.rows),
            what: `input ${i}`,
            tsRewrite: inp.tsRewrite,
            keep: inp.keep,
          }));
          const local = runLocal(opts, parts);
          const remote = await runInWorker(worker, opts, parts);
          expect(remote.updateCount).to.equal(local.updateCount);
          expect(remote.parts.map((p) => [Buffer.from(p.encoded).toString('hex'), p.updateCount, p.final])).to.deep.equal(
            local.parts.map((p) => [Buffer.from(p.encoded).toString('hex'), p.updateCount, p.final]),
          );
          const want = naive(opts, inputs.map((inp) => ({ rows: inp.rows, meta: inp })));
          const got = decodeRows(local.parts);
          expect(consolidate ? consolidated(got) : got).to.deep.equal(want);
          expect(local.parts.filter((p) => p.final).length, 'at most one final part, the last').to.be.at.most(1);
          if (local.parts.length > 0 && local.parts.some((p) => p.final)) expect(local.parts.at(-1)!.final).to.equal(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('leaves the input bytes it was given as they were (it merges copies)', async () => {
    const input = encodeRows([{ key: 'a', val: '', t: 1, d: 1 }]);
    const before = Buffer.from(input).toString('hex');
    await runInWorker(worker, { since: 0, consolidate: true, targetBytes: 1 << 20 }, [{ bytes: input, what: 'input' }]);
    expect(input.byteLength).to.be.greaterThan(0);
    expect(Buffer.from(input).toString('hex')).to.equal(before);
  });

  it('rejects a merge with a corrupt input as a StoredFormatError naming the part, and goes on merging', async () => {
    const good = encodeRows([{ key: 'a', val: '', t: 1, d: 1 }]);
    const bad = new Uint8Array(good);
    bad[3] = bad[3]! ^ 0xff;
    const opts = { since: 0, consolidate: true, targetBytes: 1 << 20 };
    const inputs = [{ bytes: good, what: 'part good' }, { bytes: bad, what: 'part p7' }];
    await expectReject(runInWorker(worker, opts, inputs), StoredFormatError, /part p7 is corrupt/);
    expect(() => runLocal(opts, [{ bytes: bad, what: 'part p7' }])).to.throw(StoredFormatError, /part p7 is corrupt/);
    const after = await runInWorker(worker, opts, [{ bytes: good, what: 'part good' }]);
    expect(after.updateCount).to.equal(1);
  });

  it('fails the jobs of a thread that died, starts a new thread for the next job, and gives up after repeated deaths', async () => {
    const input = { bytes: encodeRows([{ key: 'a', val: '', t: 1, d: 1 }]), what: 'input' };
    const opts = { since: 0, consolidate: true, targetBytes: 1 << 20 };
    await runInWorker(worker, opts, [input]); // the thread is up
    for (let death = 1; death <= MAX_THREAD_FAILURES; death++) {
      expect(worker.usable).to.equal(true);
      const job = worker.begin(opts);
      job.add(input);
      const thread = worker.threadForTests!;
      await thread.terminate();
      await expectReject(job.finish(), Error, /merge worker/);
      if (death < MAX_THREAD_FAILURES) {
        const next = await runInWorker(worker, opts, [input]);
        expect(next.updateCount, `a new thread merges after death ${death}`).to.equal(1);
      }
    }
    expect(worker.usable, 'merges stay on the main thread from now on').to.equal(false);
  });

  it('after close is unusable, and its thread is gone', async () => {
    await runInWorker(worker, { since: 0, consolidate: false, targetBytes: 100 }, [{ bytes: encodeRows([]), what: 'empty' }]);
    const thread = worker.threadForTests!;
    const exited = new Promise<number>((resolve) => thread.once('exit', resolve));
    await worker.close();
    await exited;
    expect(worker.usable).to.equal(false);
    expect(() => worker.begin({ since: 0, consolidate: false, targetBytes: 100 })).to.throw(/closed or unusable/);
  });
});

describe('persist: compaction through the merge worker', () => {
  it("hands a client's bigger merges to the worker and reads back what was written", async () => {
    const client = await memClient({ compaction: false });
    const worker = new MergeWorker(SILENT);
    try {
      const id = newShardId();
      const w = await client.openWriter(id, STRING_UNIT);
      const reader = await client.openLeasedReader(id, STRING_UNIT);
      const written: Update<string, null>[] = [];
      // Four batches of 6,000 keys each (over WORKER_MIN_INPUT_BYTES), every key of
      // batch 3 a retraction of one in batch 0, so consolidating must cancel them.
      for (let b = 0; b < 4; b++) {
        const rows: Update<string, null>[] = [];
        for (let i = 0; i < 6000; i++) {
          rows.push(b === 3 ? [`key-0-${i}-padding-padding`, null, b, -1] : [`key-${b}-${i}-padding-padding`, null, b, 1]);
        }
        expect(await w.compareAndAppend(rows, b, b + 1)).to.deep.equal({ ok: true });
        written.push(...rows);
      }
      await reader.downgradeSince(3);
      expect(await worker.ready()).to.equal(true);
      const machine = client.shardMachine(id);
      const inputBytes = machine.state.spine.reduce((n, b) => n + b.batch.parts.reduce((m, p) => m + p.encodedSizeBytes, 0), 0);
      expect(inputBytes).to.be.at.least(WORKER_MIN_INPUT_BYTES);
      const metrics = PersistMetrics.of(client.metrics);
      const before = metrics.compactionWorkerMerges.value;
      await compactShard(machine, worker);
      expect(metrics.compactionWorkerMerges.value - before).to.equal(1);
      expect(machine.state.spine.map((b) => [b.batch.lower, b.batch.upper, b.batch.updateCount])).to.deep.equal([[0, 4, 12000]]);
      const want = new Map<string, number>();
      for (const [k, , , d] of written) want.set(k, (want.get(k) ?? 0) + d);
      const expected = [...want].filter(([, d]) => d !== 0).map(([k, d]): Update<string, null> => [k, null, 3, d]);
      expect(sorted(await reader.snapshotAndFetch(3))).to.deep.equal(sorted(expected));
    } finally {
      await worker.close();
      await client.close();
    }
  });

  it('takes a merge of many small updates under the byte threshold, and leaves one of few updates and few bytes here', async () => {
    const client = await memClient({ compaction: false });
    const worker = new MergeWorker(SILENT);
    try {
      expect(await worker.ready()).to.equal(true);
      const metrics = PersistMetrics.of(client.metrics);
      // Four batches: compaction merges a level once it holds four.
      for (const [perBatch, toWorker] of [[WORKER_MIN_INPUT_UPDATES / 4, 1], [100, 0]] as const) {
        const id = newShardId();
        const w = await client.openWriter(id, STRING_UNIT);
        for (let b = 0; b < 4; b++) {
          const rows = Array.from({ length: perBatch }, (_, i): Update<string, null> => [`k${b}.${i}`, null, b, 1]);
          expect(await w.compareAndAppend(rows, b, b + 1)).to.deep.equal({ ok: true });
        }
        const machine = client.shardMachine(id);
        const inputBytes = machine.state.spine.reduce((n, b) => n + b.batch.parts.reduce((m, p) => m + p.encodedSizeBytes, 0), 0);
        expect(inputBytes, 'input bytes').to.be.below(WORKER_MIN_INPUT_BYTES);
        const before = metrics.compactionWorkerMerges.value;
        await compactShard(machine, worker);
        expect(metrics.compactionWorkerMerges.value - before, `${perBatch} updates per batch`).to.equal(toWorker);
        expect(machine.state.spine.map((b) => b.batch.updateCount)).to.deep.equal([4 * perBatch]);
      }
    } finally {
      await worker.close();
      await client.close();
    }
  });

  it('runs through the client by default once its thread is up (merging here until then), never with compactionWorker: false', async () => {
    for (const compactionWorker of [true, false]) {
      const client = await memClient({ compactionWorker });
      try {
        const id = newShardId();
        const w = await client.openWriter(id, STRING_UNIT);
        // The default registry is the process's: count from here.
        const before = PersistMetrics.of(client.metrics).compactionWorkerMerges.value;
        const inWorker = () => PersistMetrics.of(client.metrics).compactionWorkerMerges.value - before;
        // Rounds of four batches, each round one merge: the first starts the thread and
        // merges here; a later one, once the thread is up, goes to it.
        let t = 0;
        for (let round = 0; round < 30 && (round < 3 || (compactionWorker && inWorker() === 0)); round++) {
          for (let b = 0; b < 4; b++, t++) {
            const rows: Update<string, null>[] = [];
            for (let i = 0; i < 5000; i++) rows.push([`k-${t}-${i}-padding-padding`, null, t, 1]);
            expect(await w.compareAndAppend(rows, t, t + 1)).to.deep.equal({ ok: true });
          }
          await client.flushMaintenance();
          if (compactionWorker && inWorker() === 0) await new Promise((r) => setImmediate(r));
        }
        expect(inWorker() > 0, `worker merges with compactionWorker ${compactionWorker}: ${inWorker()}`).to.equal(compactionWorker);
        const reader = await client.openLeasedReader(id, STRING_UNIT);
        expect((await reader.snapshotAndFetch(t - 1)).length).to.equal(5000 * t);
      } finally {
        await client.close();
      }
    }
  });

  it('tryBegin answers undefined while the thread starts, and a job once it is up', async () => {
    const worker = new MergeWorker(SILENT);
    try {
      const opts = { since: 0, consolidate: false, targetBytes: 1 << 20 };
      expect(worker.tryBegin(opts), 'the thread has only just been started').to.equal(undefined);
      expect(await worker.ready()).to.equal(true);
      const job = worker.tryBegin(opts);
      expect(job).to.not.equal(undefined);
      job!.add({ bytes: encodeRows([{ key: 'a', val: '', t: 0, d: 1 }]), what: 'input' });
      expect((await job!.finish()).updateCount).to.equal(1);
    } finally {
      await worker.close();
    }
  });

  it("is one thread for the process's clients, outlives the last of them briefly for the next, then ends", async function () {
    this.timeout(SHARED_LINGER_MS + 60_000);
    const a = acquireSharedMergeWorker(SILENT);
    const b = acquireSharedMergeWorker(SILENT);
    expect(b.worker).to.equal(a.worker);
    expect(await a.worker.ready()).to.equal(true);
    await a.release();
    await a.release(); // twice is once
    await b.release();
    expect(a.worker.usable, 'lingering for the next client').to.equal(true);
    const c = acquireSharedMergeWorker(SILENT);
    expect(c.worker, 'a client opened meanwhile reuses it').to.equal(a.worker);
    const thread = c.worker.threadForTests!;
    const exited = new Promise<number>((resolve) => thread.once('exit', resolve));
    await c.release();
    await exited; // the linger ran out
    expect(c.worker.usable).to.equal(false);
    const d = acquireSharedMergeWorker(SILENT);
    expect(d.worker, 'the next client gets a new one').to.not.equal(c.worker);
    await d.release();
  });

  it('under storage faults: merges in the worker lose nothing, and every part the state names is readable', async () => {
    for (const seed of [3, 4]) {
      const location = withFaultInjection(await openLocation('mem://'), { seed, faultRate: 0.2, slowRate: 0.1, slowMaxMs: 5 });
      const config = { storageRetry: { attempts: 10, initialMs: 0, multiplier: 1, clampMs: 0 } };
      const client = await PersistClient.open(location, { config });
      try {
        const id = newShardId();
        const w = await client.openWriter(id, STRING_UNIT);
        const reader = await client.openLeasedReader(id, STRING_UNIT);
        const before = PersistMetrics.of(client.metrics).compactionWorkerMerges.value;
        const inWorker = () => PersistMetrics.of(client.metrics).compactionWorkerMerges.value - before;
        const want = new Map<string, number>();
        let t = 0;
        // Rounds of four batches (one merge each) until some merges ran in the worker,
        // with a retraction in every batch of what the batch before wrote, so merges
        // must consolidate once the since passes them.
        for (let round = 0; round < 40 && inWorker() < 3; round++) {
          for (let b = 0; b < 4; b++, t++) {
            const rows: Update<string, null>[] = [];
            for (let i = 0; i < 5000; i++) rows.push([`k-${t}-${i}-padding-padding`, null, t, 1]);
            if (t > 0) for (let i = 0; i < 100; i++) rows.push([`k-${t - 1}-${i}-padding-padding`, null, t, -1]);
            for (const [k, , , d] of rows) want.set(k, (want.get(k) ?? 0) + d);
            const res = await w.compareAndAppend(rows, t, t + 1).catch((err: unknown) => ({ err }));
            // Ten attempts make a failure for good vanishingly rare at this rate; if one
            // came, what the shard holds would be unknown here, so it fails loudly.
            if (!('ok' in res) || !res.ok) throw new Error(`append at ${t} failed under faults: ${JSON.stringify(res)}`);
          }
          await reader.downgradeSince(t - 1);
          await client.flushMaintenance();
        }
        expect(inWorker(), 'merges in the worker').to.be.at.least(1);
        const { determinate, indeterminate } = location.faults.totals();
        expect(determinate + indeterminate, 'faults injected').to.be.greaterThan(0);
        location.faults.enabled = false;
        await client.flushMaintenance();
        const got = new Map<string, number>();
        for (const [k, , , d] of await reader.snapshotAndFetch(t - 1)) got.set(k, (got.get(k) ?? 0) + d);
        const expected = new Map([...want].filter(([, d]) => d !== 0));
        expect(got.size).to.equal(expected.size);
        for (const [k, d] of expected) expect(got.get(k), k).to.equal(d);
      } finally {
        await client.close();
      }
    }
  });
});
