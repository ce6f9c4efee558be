/**
 * Hints are only hints: a reader whose wake-up channel loses, duplicates, delays and
 * reorders them (test/support/hint-faults.ts) still delivers exactly what was
 * written, in order; only *when* it looks changes. The writer and the reader are two
 * clients on one `mem://<name>` location, so the reader hears of the writer's commits
 * only through the channel (or its fallback poll), as another process would.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { openLocation } from '../../src/location/location.js';
import { PersistClient, newShardId } from '../../src/persist/index.js';
import type { Listen } from '../../src/persist/listen.js';
import { withHintFaults, type HintFaultOptions } from '../support/hint-faults.js';
import { STRING_UNIT } from '../support/persist.js';

const TEN_MINUTES = { initialMs: 600_000, multiplier: 1, clampMs: 600_000 };
const FAST_FALLBACK = { initialMs: 5, multiplier: 2, clampMs: 30 };

/** Keys of every update the listen delivers until its frontier passes `upper`; checks progress is monotonic. */
async function readUntil(listen: Listen<string, null>, upper: number): Promise<string[]> {
  const keys: string[] = [];
  let frontier = 0;
  while (frontier < upper) {
    for (const ev of await listen.next()) {
      if (ev.kind === 'updates') {
        for (const [k, , t] of ev.updates) {
          expect(t).to.be.at.least(frontier);
          keys.push(k);
        }
      } else {
        expect(ev.upper).to.be.greaterThan(frontier);
        frontier = ev.upper;
      }
    }
  }
  return keys;
}

async function scenario(faults: HintFaultOptions, listenPoll: typeof TEN_MINUTES, writes: number) {
  const name = `mem://wake-hints-${randomBytes(4).toString('hex')}`;
  const faulty = withHintFaults(await openLocation(name), faults);
  const readerClient = await PersistClient.open(faulty, { config: { listenPoll } });
  const writerClient = await PersistClient.open(name);
  try {
    const id = newShardId();
    const writer = await writerClient.openWriter(id, STRING_UNIT);
    const listen = await (await readerClient.openLeasedReader(id, STRING_UNIT)).listen(0);
    const reading = readUntil(listen, writes);
    for (let t = 0; t < writes; t++) {
      const res = await writer.compareAndAppend([[`k${t}`, null, t, 1]], t, t + 1);
      expect(res.ok).to.equal(true);
      // Sparse writes now and then, so some hints land on an idle, waiting reader.
      if (t % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    const keys = await reading;
    // The listen reports updates at t > asOf = 0: exactly k1 … k<writes-1>, once each, in order.
    expect(keys).to.deep.equal(Array.from({ length: writes - 1 }, (_, i) => `k${i + 1}`));
    return faulty.hintFaults;
  } finally {
    await readerClient.close();
    await writerClient.close();
    await faulty.close();
  }
}

describe('wake-up hints that are lost, duplicated, delayed and reordered', function () {
  this.timeout(60_000);

  it('drops, duplicates and delays: the reader delivers every write exactly once, in order', async () => {
    const counts = await scenario({ seed: 11, dropRate: 0.3, duplicateRate: 0.3, maxDelayMs: 15 }, FAST_FALLBACK, 150);
    expect(counts.dropped, 'hints dropped').to.be.greaterThan(0);
    expect(counts.duplicated, 'hints duplicated').to.be.greaterThan(0);
  });

  it('every hint lost: the reader falls back to its poll and still sees everything', async () => {
    const counts = await scenario({ seed: 12, dropRate: 1 }, FAST_FALLBACK, 40);
    expect(counts.delivered).to.equal(0);
    expect(counts.dropped).to.be.greaterThan(0);
  });

  it('a channel that is down: the reader polls from listenPoll.initialMs instead of waiting for clampMs', async () => {
    // Every hint lost and the slow poll at ten minutes: only the fast poll of a down channel can pass.
    const fastThenNever = { initialMs: 5, multiplier: 1, clampMs: 600_000 };
    const counts = await scenario({ seed: 14, dropRate: 1, down: true }, fastThenNever, 30);
    expect(counts.delivered).to.equal(0);
  });

  it('duplicated and reordered hints with the fallback poll at ten minutes: hints alone bring every write', async () => {
    const counts = await scenario({ seed: 13, duplicateRate: 0.5, maxDelayMs: 10 }, TEN_MINUTES, 100);
    expect(counts.duplicated).to.be.greaterThan(0);
  });
});
