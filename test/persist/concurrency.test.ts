import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PersistClient, newShardId } from '../../src/persist/index.js';
import { STRING_UNIT } from '../support/persist.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';

/**
 * Many writers, each with its own client (its own cached state, as separate
 * processes would have), race compare-and-append on one shard. Each upper must be
 * won by exactly one of them, and every write that reported success must be there
 * exactly once.
 */
async function race(location: string, writers: number, writesEach: number) {
  const id = newShardId();
  const clients = await Promise.all(
    Array.from({ length: writers }, () =>
      PersistClient.open(location, { config: { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 10 } } }),
    ),
  );
  try {
    let mismatches = 0;
    const won: string[] = [];
    await Promise.all(
      clients.map(async (c, wi) => {
        const w = await c.openWriter(id, STRING_UNIT);
        for (let n = 0; n < writesEach; n++) {
          const key = `w${wi}-${n}`;
          let expected = w.upper();
          for (;;) {
            // Jitter so the interleavings differ between writers.
            if (Math.random() < 0.3) await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 3)));
            const res = await w.compareAndAppend([[key, null, expected, 1]], expected, expected + 1);
            if (res.ok) {
              won.push(`${expected}:${key}`);
              break;
            }
            mismatches++;
            expect(res.current).to.be.greaterThan(expected);
            expected = res.current;
          }
        }
      }),
    );
    const total = writers * writesEach;
    const r = await clients[0]!.openLeasedReader(id, STRING_UNIT);
    const upper = await (await clients[0]!.openWriter(id, STRING_UNIT)).fetchRecentUpper();
    expect(upper).to.equal(total);
    // Read the whole history with a listen: one update per time, each key once.
    const l = await r.listen(0);
    const seen = new Map<number, string[]>();
    const snapshotAt0 = await (await clients[1 % writers]!.openLeasedReader(id, STRING_UNIT)).snapshotAndFetch(0);
    for (const [k] of snapshotAt0) seen.set(0, [...(seen.get(0) ?? []), k]);
    while (l.frontier < total) {
      for (const e of await l.next()) {
        if (e.kind !== 'updates') continue;
        for (const [k, , t, d] of e.updates) {
          expect(d).to.equal(1);
          seen.set(t, [...(seen.get(t) ?? []), k]);
        }
      }
    }
    expect(seen.size).to.equal(total);
    for (const [t, keys] of seen) expect(keys, `updates at time ${t}`).to.have.length(1);
    const keys = [...seen.values()].flat().sort();
    expect(new Set(keys).size).to.equal(total);
    expect(keys).to.deep.equal(won.map((x) => x.split(':')[1]!).sort());
    return { mismatches };
  } finally {
    for (const c of clients) await c.close();
  }
}

describe('persist: concurrent writers', () => {
  it('25 writers on an in-memory location: one winner per upper, nothing lost or duplicated', async () => {
    const { mismatches } = await race(`mem://race-${newShardId()}`, 25, 8);
    expect(mismatches, 'the writers should actually have raced').to.be.greaterThan(0);
  });

  it('8 writers on a file: location (SQLite consensus): one winner per upper', async function () {
    this.timeout(120_000);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-race-'));
    try {
      const { mismatches } = await race(`file:${dir}`, 8, 6);
      expect(mismatches).to.be.greaterThan(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('8 writers on a postgres:// location: one winner per upper', async function () {
    this.timeout(120_000);
    const url = await freshTestDatabaseUrl();
    const sep = url.includes('?') ? '&' : '?';
    const { mismatches } = await race(`${url}${sep}blob=mem://pg-race-${newShardId()}`, 8, 6);
    expect(mismatches).to.be.greaterThan(0);
  });
});
