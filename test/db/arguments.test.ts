/**
 * Every entry of the front door, fed garbage: each call throws or rejects with an
 * InvalidUsage whose message names the argument, never a TypeError, and nothing
 * was written (the catalog and the txns shard are as before).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Codecs, InvalidUsage } from '../../src/index.js';
import { openDatabase, type Database } from '../../src/db/index.js';

const GARBAGE: unknown[] = [undefined, null, NaN, Infinity, -1, 1.5, 2 ** 53, true, '', 'x', [], [1, 2], {}, { a: 1 }, Symbol('s'), () => 1, new Date(0), new Map([[1, 2]]), 5n];

async function expectInvalid(call: () => unknown, what: string): Promise<void> {
  let err: unknown;
  try {
    await call();
  } catch (e) {
    err = e;
  }
  expect(err, `${what} should fail`).to.be.instanceOf(Error);
  expect(err, `${what}: ${String((err as Error).stack)}`).to.be.instanceOf(InvalidUsage);
}

describe('db: arguments', () => {
  let db: Database;
  before(async () => {
    db = await openDatabase('mem://db-arguments');
    await db.collection('items', { key: Codecs.string, val: Codecs.unit });
  });
  after(() => db.close());

  it('garbage in any argument or option is an InvalidUsage, and writes nothing', async () => {
    const before = await db.collections();
    const upper = await db.oracle.readTs();
    const optional = (g: unknown) => g === undefined;
    const goodName = (g: unknown) => typeof g === 'string' && /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/.test(g);
    const plainObject = (g: unknown) => g === undefined || (typeof g === 'object' && g !== null && !Array.isArray(g));
    // [what, call, which garbage is in fact valid there]
    const cases: [string, (g: unknown) => unknown, ((g: unknown) => boolean)?][] = [
      ['openDatabase url', (g) => openDatabase(g as string)],
      ['openDatabase options', (g) => openDatabase('mem://', g as object), plainObject],
      ['openDatabase ack', (g) => openDatabase('mem://', { ack: g as 'durable' }), optional],
      ['openDatabase oracle', (g) => openDatabase('mem://', { oracle: g as never }), optional],
      ['collection name', (g) => db.collection(g as string, { key: Codecs.string, val: Codecs.unit }), goodName],
      ['collection codecs', (g) => db.collection('items', g as never), optional],
      ['drop name', (g) => db.drop(g as string), goodName],
      ['write writes', (g) => db.write(g as never), (g) => typeof g === 'object' && g !== null && Object.getPrototypeOf(g) === Object.prototype && Object.keys(g).length === 0],
      ['write rows', (g) => db.write({ items: g as never }), (g) => Array.isArray(g) && g.length === 0],
      ['write row', (g) => db.write({ items: [g as never] })],
      ['write diff', (g) => db.write({ items: [['k', null, g as number]] }), (g) => g === -1],
      ['write key', (g) => db.write({ items: [[g, null, 1]] }), (g) => typeof g === 'string'],
      ['subscribe$ target', (g) => db.subscribe$(g as string)],
      ['subscribe$ asOf', (g) => db.subscribe$('items', { asOf: g as number }), optional],
      ['subscribe$ options', (g) => db.subscribe$('items', g as object), plainObject],
      ['snapshot target', (g) => db.snapshot(g as string)],
      ['snapshot asOf', (g) => db.snapshot('items', g as number), optional],
    ];
    for (const [what, call, valid] of cases) {
      for (const g of GARBAGE) {
        if (valid?.(g)) continue;
        await expectInvalid(() => call(g), `${what} = ${typeof g === 'symbol' ? 'a symbol' : String(g)}`);
      }
    }
    await fc.assert(
      fc.asyncProperty(fc.anything(), async (g) => {
        if (goodName(g)) return;
        await expectInvalid(() => db.collection(g as string, { key: Codecs.string, val: Codecs.unit }), 'collection name');
      }),
      { numRuns: 100 },
    );
    expect(await db.collections(), 'the catalog is unchanged').to.deep.equal(before);
    expect(await db.oracle.readTs(), 'nothing was committed').to.equal(upper);
  });
});
