/**
 * consolidateTxnsRows, the keyed sum TxnsCacheState.pushEntries runs first: equal to a
 * naive sum per (entry, persist time), the same for rows consolidated whole or in
 * pieces, and in first-appearance order.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { newShardId } from '../../src/persist/shard-id.js';
import { consolidateTxnsRows, type TxnsRow } from '../../src/txn/txns-cache-state.js';
import { appendEntry, registerEntry } from '../../src/txn/txns-codec.js';

const IDS = [newShardId(), newShardId()] as const;
// 0x7c is '|', the key's separator; [1, 2] / [1] + [2] would collide if fields ran together.
const BATCHES = [Uint8Array.of(1, 2), Uint8Array.of(1), Uint8Array.of(0x7c), Uint8Array.of(2, 0x7c, 1)];

const rowArb: fc.Arbitrary<TxnsRow> = fc
  .record({
    register: fc.boolean(),
    id: fc.constantFrom(...IDS),
    ts: fc.nat(3),
    t: fc.nat(3),
    batch: fc.constantFrom(...BATCHES),
    diff: fc.integer({ min: -2, max: 2 }),
  })
  .map(({ register, id, ts, t, batch, diff }) => ({
    // A fresh copy each time: equal rows must be found by value, not by reference.
    entry: register ? registerEntry(id, ts) : appendEntry(id, ts, Uint8Array.from(batch)),
    t,
    diff,
  }));

function identity(r: TxnsRow): string {
  const e = r.entry;
  return JSON.stringify([e.kind, e.dataId, r.t, [...e.ts], e.kind === 'append' ? [...e.batch] : null]);
}

function naiveSums(rows: TxnsRow[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows) m.set(identity(r), (m.get(identity(r)) ?? 0) + r.diff);
  return new Map([...m].filter(([, d]) => d !== 0));
}

function asSums(rows: TxnsRow[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows) {
    expect(m.has(identity(r)), 'each row appears once').to.equal(false);
    expect(r.diff, 'no zero rows').to.not.equal(0);
    m.set(identity(r), r.diff);
  }
  return m;
}

describe('txn: consolidateTxnsRows', () => {
  it('a batch pointer and its tidy at one persist time cancel; a register does not cancel its forget', () => {
    const [d0] = IDS;
    const rows: TxnsRow[] = [
      { entry: appendEntry(d0, 3, Uint8Array.of(7)), t: 5, diff: 1 },
      { entry: registerEntry(d0, 1), t: 5, diff: 1 },
      { entry: appendEntry(d0, 3, Uint8Array.of(7)), t: 5, diff: -1 },
      { entry: registerEntry(d0, 2), t: 5, diff: -1 },
    ];
    expect(consolidateTxnsRows(rows)).to.deep.equal([rows[1], rows[3]]);
  });

  it('property: equals a naive sum, keeps first-appearance order, and is the same whole or split', () => {
    fc.assert(
      fc.property(fc.array(rowArb, { maxLength: 40 }), fc.nat(40), (rows, cut) => {
        const whole = consolidateTxnsRows(rows);
        expect(asSums(whole)).to.deep.equal(naiveSums(rows));

        const firstSeen = [...new Set(rows.map(identity))];
        const order = whole.map(identity);
        expect(order).to.deep.equal(firstSeen.filter((id) => order.includes(id)));

        const split = consolidateTxnsRows([
          ...consolidateTxnsRows(rows.slice(0, cut)),
          ...consolidateTxnsRows(rows.slice(cut)),
        ]);
        expect(asSums(split)).to.deep.equal(asSums(whole));
      }),
      { numRuns: 300 },
    );
  });
});
