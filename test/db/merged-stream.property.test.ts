/**
 * Property: a merged subscription over several collections never shows a partial
 * transaction and keeps each row's collection. Random transactions across three
 * collections (of different types) are written through db.write while a merged
 * subscribe$ runs; folding the stream per collection, the state at every progress
 * event equals a naive recomputation from the acknowledged transactions below it.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Codecs } from '../../src/index.js';
import { openDatabase } from '../../src/db/index.js';
import type { CollectionEvent } from '../../src/operators/index.js';
import { Recorder } from '../support/rx.js';

const NAMES = ['a', 'b', 'c'] as const;
type Name = (typeof NAMES)[number];
/** A write: collection, key (a small number, encoded per collection), diff. */
type Write = [Name, number, number];

const txnArb = fc.array(fc.tuple(fc.constantFrom(...NAMES), fc.nat(3), fc.integer({ min: -2, max: 2 }).filter((d) => d !== 0)), {
  minLength: 1,
  maxLength: 4,
});

/** The row key as each collection's codec sees it: strings, JSON objects, bytes. */
function keyOf(name: Name, k: number): unknown {
  if (name === 'a') return `k${k}`;
  if (name === 'b') return { k };
  return new Uint8Array([k]);
}

/** A printable identity of a row of collection `name`. */
function id(name: string, key: unknown): string {
  return `${name}:${key instanceof Uint8Array ? `bytes${key[0]}` : JSON.stringify(key)}`;
}

describe('db: merged subscriptions (property)', () => {
  it('at every progress event, the folded stream equals the acknowledged transactions below it, per collection', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(txnArb, { minLength: 1, maxLength: 8 }), fc.boolean(), async (txns, concurrent) => {
        const db = await openDatabase('mem://', { persist: { config: { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 20 } } } });
        try {
          await db.collection('a', { key: Codecs.string, val: Codecs.unit });
          await db.collection('b', { key: Codecs.json(), val: Codecs.unit });
          await db.collection('c', { key: Codecs.bytes, val: Codecs.string });
          const asOf = await db.oracle.readTs();
          const rec = new Recorder<CollectionEvent>(db.subscribe$(['a', 'b', 'c'], { asOf }));
          const submit = (t: Write[]) =>
            db.write(Object.fromEntries(NAMES.map((n) => [n, t.filter((w) => w[0] === n).map(([, k, d]) => [keyOf(n, k), n === 'c' ? 'v' : null, d])])));
          // Concurrent writes share group commits: a transaction must still never be split.
          const acks = concurrent ? await Promise.all(txns.map(submit)) : await txns.reduce(async (p, t) => [...(await p), await submit(t)], Promise.resolve([] as { commitTs: number }[]));
          const last = Math.max(...acks.map((a) => a.commitTs));
          await rec.until(() => rec.events.some((e) => e.kind === 'progress' && e.upper > last), 'progress passed the last commit');
          rec.unsubscribe();

          const folded = new Map<string, number>();
          let lower = asOf;
          for (const ev of rec.events) {
            if (ev.kind === 'updates') {
              expect(NAMES).to.include(ev.collection);
              for (const [key, , ts, diff] of ev.updates) {
                expect(ts, 'within its window').to.be.at.least(lower);
                const row = id(ev.collection, key);
                folded.set(row, (folded.get(row) ?? 0) + diff);
              }
              continue;
            }
            // Naive: every acknowledged transaction committed below this frontier.
            const naive = new Map<string, number>();
            txns.forEach((t, i) => {
              if (acks[i]!.commitTs >= ev.upper) return;
              for (const [n, k, d] of t) naive.set(id(n, keyOf(n, k)), (naive.get(id(n, keyOf(n, k))) ?? 0) + d);
            });
            const nonzero = (m: Map<string, number>) => [...m].filter(([, d]) => d !== 0).sort();
            expect(nonzero(folded), `state at ${ev.upper}`).to.deep.equal(nonzero(naive));
            lower = ev.upper;
          }
        } finally {
          await db.close();
        }
      }),
      { numRuns: 25 },
    );
  });
});
