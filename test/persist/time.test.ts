import { expect } from 'chai';
import { InvalidTimestamp } from '../../src/persist/errors.js';
import { CLOSED, isClosed, stepForward } from '../../src/persist/time.js';

describe('persist: time helpers', () => {
  it('stepForward is the least time after t, and refuses to leave the safe integers', () => {
    expect(stepForward(0)).to.equal(1);
    expect(stepForward(41)).to.equal(42);
    expect(stepForward(Number.MAX_SAFE_INTEGER - 1)).to.equal(Number.MAX_SAFE_INTEGER);
    expect(() => stepForward(Number.MAX_SAFE_INTEGER)).to.throw(InvalidTimestamp, /cannot step past/);
  });

  it('isClosed holds for the closed frontier only', () => {
    expect(isClosed(CLOSED)).to.equal(true);
    expect(isClosed(Infinity)).to.equal(true);
    expect(isClosed(0)).to.equal(false);
    expect(isClosed(Number.MAX_SAFE_INTEGER)).to.equal(false);
  });
});
