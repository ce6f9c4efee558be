import { expect } from 'chai';
import { describeValue } from '../../src/persist/describe-value.js';

describe('persist: describeValue', () => {
  it('tells every kind of value apart', () => {
    class Foo {}
    const cases: [unknown, string][] = [
      [undefined, 'undefined'],
      [null, 'null'],
      [NaN, 'NaN'],
      [-Infinity, '-Infinity'],
      [1.5, '1.5'],
      [-0, '-0'],
      ['5', 'a string "5"'],
      [5n, 'a bigint 5n'],
      [true, 'the boolean true'],
      [Symbol('x'), 'a symbol Symbol(x)'],
      [function named() {}, 'a function named'],
      [[1, 2], 'an array of length 2'],
      [{ a: 1 }, 'an object'],
      [Object.create(null), 'an object'],
      [new Foo(), 'an object of class Foo'],
      ['x'.repeat(100), `a string "${'x'.repeat(60)}…"`],
    ];
    for (const [v, want] of cases) expect(describeValue(v)).to.equal(want);
  });

  it('never throws, even for a proxy whose traps throw', () => {
    const hostile = new Proxy({}, { getPrototypeOf: () => { throw new Error('no'); } });
    expect(describeValue(hostile)).to.equal('an object');
  });
});
