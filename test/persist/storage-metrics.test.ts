/**
 * Storage and persist metrics under real workloads: what a PersistClient's calls to
 * Blob and Consensus, its state writes and its maintenance add to its registry,
 * checked against what the stores themselves hold (and, under faults, against what
 * the fault injector did).
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { withFaultInjection } from '../../src/location/fault-injection.js';
import { openLocation, type Location } from '../../src/location/location.js';
import { PersistClient } from '../../src/persist/client.js';
import { Metrics } from '../../src/persist/metrics.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { STORAGE_CALLS } from '../../src/persist/storage-metrics.js';
import { conventionProblems, sample, scrape, type Family } from '../support/metrics.js';
import { rows, STRING_UNIT } from '../support/persist.js';

const CAS = 'txnwal_consensus_compare_and_sets_total';
const STATE_CAS = 'txnwal_persist_state_compare_and_sets_total';

/** Every blob the store holds under `prefix`: count and total bytes. */
async function stored(location: Location, prefix = ''): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  await location.blob.listKeysAndMetadata(prefix, (_k, size) => {
    count++;
    bytes += size;
  });
  return { count, bytes };
}

function sumOver(fams: Map<string, Family>, name: string): number {
  return (fams.get(name)?.samples ?? []).filter((s) => s.name === name).reduce((n, s) => n + s.value, 0);
}

describe('persist: storage and persist metrics', function () {
  this.timeout(60_000);

  it('counts every compare-and-set by outcome and every blob byte, matching what the stores hold', async () => {
    const name = `mem://metrics-${newShardId()}`;
    const location = await openLocation(name);
    const metrics = Metrics.forRegistry(new Registry());
    // Every batch goes to Blob (nothing inline), and nothing is compacted or collected.
    const config = { inlineWritesSingleMaxBytes: 0, compaction: false };
    const a = await PersistClient.open(location, { config, metrics });
    expect(a.metrics).to.equal(metrics);
    expect(a.location, 'the client keeps the location it was given').to.equal(location);
    const id = newShardId();
    const w = await a.openWriter(id, STRING_UNIT);
    for (let t = 0; t < 3; t++) expect((await w.compareAndAppend(rows(t, `k${t}`), t, t + 1)).ok).to.equal(true);

    let fams = await scrape(metrics);
    const head = (await location.consensus.head(id))!.seqno;
    // One committed compare-and-set per state version; nothing else wrote consensus.
    expect(sample(fams, CAS, { outcome: 'committed' })).to.equal(head);
    expect(sample(fams, CAS, { outcome: 'mismatch' })).to.equal(0);
    expect(sample(fams, STATE_CAS, { command: 'compare_and_append', outcome: 'committed' })).to.equal(3);
    // Every blob set stored one object: the initial rollup and the three batch parts.
    const all = await stored(location);
    expect(sample(fams, 'txnwal_blob_sets_total')).to.equal(all.count);
    expect(sample(fams, 'txnwal_blob_written_bytes_total')).to.equal(all.bytes);
    expect(all.count).to.equal(4);

    // A snapshot fetches each part once: exactly the parts' bytes are read.
    const parts = await stored(location, `${id}/w`);
    expect(parts.count).to.equal(3);
    const r = await a.openLeasedReader(id, STRING_UNIT);
    expect(await r.snapshotAndFetch(2)).to.have.length(3);
    fams = await scrape(metrics);
    expect(sample(fams, 'txnwal_blob_gets_total')).to.equal(3);
    expect(sample(fams, 'txnwal_blob_read_bytes_total')).to.equal(parts.bytes);
    expect(sample(fams, 'txnwal_storage_call_duration_seconds_count', { call: 'blob_get' })).to.equal(3);

    // Another client (other registry) writes; A's next append works on stale state: one mismatch, then it re-reads.
    const b = await PersistClient.open(name, { config, metrics: Metrics.forRegistry(new Registry()) });
    const wb = await b.openWriter(id, STRING_UNIT);
    expect((await wb.compareAndAppend(rows(3, 'from-b'), 3, 4)).ok).to.equal(true);
    const before = sample(fams, CAS, { outcome: 'committed' });
    const res = await w.compareAndAppend(rows(3, 'from-a'), 3, 4);
    expect(res).to.deep.equal({ ok: false, current: 4 });
    fams = await scrape(metrics);
    expect(sample(fams, CAS, { outcome: 'mismatch' })).to.equal(1);
    expect(sample(fams, STATE_CAS, { command: 'compare_and_append', outcome: 'mismatch' })).to.equal(1);
    expect(sample(fams, CAS, { outcome: 'committed' }), "B's write is not counted in A's registry").to.equal(before);
    expect(sample(fams, 'txnwal_consensus_reads_total', { call: 'scan' }), 'the re-read').to.be.greaterThan(0);
    expect(conventionProblems(fams)).to.deep.equal([]);
    await r.expire();
    await b.close();
    await a.close();
    await location.close();
  });

  it('counts compaction, rollups and GC as maintenance runs', async () => {
    const metrics = Metrics.forRegistry(new Registry());
    const config = { inlineWritesSingleMaxBytes: 0, awaitMaintenance: true, rollupThreshold: 4, gcMinVersions: 4 };
    const client = await PersistClient.open('mem://', { config, metrics });
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    for (let t = 0; t < 24; t++) expect((await w.compareAndAppend(rows(t, `k${t}`), t, t + 1)).ok).to.equal(true);
    await client.flushMaintenance();
    const fams = await scrape(metrics);
    const applied = sample(fams, 'txnwal_persist_compactions_total', { outcome: 'applied' });
    const superseded = sample(fams, 'txnwal_persist_compactions_total', { outcome: 'superseded' });
    expect(applied).to.be.greaterThan(0);
    // Each applied merge reads at least two parts and writes at least one.
    expect(sample(fams, 'txnwal_persist_compaction_input_parts_total')).to.be.at.least(2 * applied);
    expect(sample(fams, 'txnwal_persist_compaction_output_parts_total')).to.be.at.least(applied);
    // One merged part carries less framing than the parts it replaces: the output is never bigger.
    const [inBytes, outBytes] = [sample(fams, 'txnwal_persist_compaction_input_bytes_total'), sample(fams, 'txnwal_persist_compaction_output_bytes_total')];
    expect(outBytes).to.be.greaterThan(0);
    expect(outBytes).to.be.at.most(inBytes);
    expect(sample(fams, 'txnwal_persist_compaction_duration_seconds_count')).to.equal(applied + superseded);
    expect(sample(fams, 'txnwal_persist_rollups_written_total')).to.be.greaterThan(0);
    const gcRuns = sample(fams, 'txnwal_persist_gc_runs_total');
    expect(gcRuns).to.be.greaterThan(0);
    expect(sample(fams, 'txnwal_persist_gc_duration_seconds_count')).to.equal(gcRuns);
    // GC deleted the parts compaction replaced; every delete went through the metered Blob.
    const deleted = sample(fams, 'txnwal_persist_gc_deleted_blobs_total');
    expect(deleted).to.be.greaterThan(0);
    expect(sample(fams, 'txnwal_blob_deletes_total')).to.be.at.least(deleted);
    expect(sample(fams, 'txnwal_consensus_truncates_total')).to.be.greaterThan(0);
    // Merge results and rollup records rode along with appends or wrote alone: every state write is under a fixed command name.
    const commands = new Set((fams.get(STATE_CAS)?.samples ?? []).map((s) => s.labels.command));
    for (const c of commands) expect(c, 'a command label').to.match(/^[a-z_]+$/);
    expect(conventionProblems(fams)).to.deep.equal([]);
    await client.close();
  });

  it('under storage faults: every injected fault is one call error, and persist retries them', async () => {
    const metrics = Metrics.forRegistry(new Registry());
    const inner = await openLocation('mem://');
    const location = withFaultInjection(inner, { seed: 11, faultRate: 0.2 });
    const config = { storageRetry: { attempts: 10, initialMs: 0, multiplier: 1, clampMs: 0 } };
    const client = await PersistClient.open(location, { config, metrics });
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    for (let t = 0; t < 30; t++) expect((await w.compareAndAppend(rows(t, `k${t}`), t, t + 1)).ok).to.equal(true);
    location.faults.enabled = false;
    const fams = await scrape(metrics);
    const { determinate, indeterminate } = location.faults.totals();
    expect(determinate + indeterminate).to.be.greaterThan(0);
    expect(sumOver(fams, 'txnwal_storage_call_errors_total')).to.equal(determinate + indeterminate);
    const casFaults = (location.faults.counts.determinate['consensus.compareAndSet'] ?? 0) + (location.faults.counts.indeterminate['consensus.compareAndSet'] ?? 0);
    expect(sample(fams, CAS, { outcome: 'error' })).to.equal(casFaults);
    const retries = sample(fams, 'txnwal_storage_retries_total');
    expect(retries).to.be.greaterThan(0);
    expect(retries).to.be.at.most(determinate + indeterminate);
    // Every call kind is a series from the start (0 when unused): dashboards need not guess.
    for (const call of STORAGE_CALLS) {
      expect(fams.get('txnwal_storage_call_errors_total')!.samples.some((s) => s.labels.call === call), call).to.equal(true);
    }
    await client.close();
  });
});
