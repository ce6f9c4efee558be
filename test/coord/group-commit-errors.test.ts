/** GroupCommitFailed says "safe to submit again" only when its cause proves nothing was written. */
import { expect } from 'chai';
import { GroupCommitFailed } from '../../src/coord/group-commit-errors.js';
import { DeterminateError, IndeterminateError } from '../../src/location/errors.js';
import { InvalidUsage, InvariantViolation, PersistStorageError } from '../../src/persist/errors.js';

describe('coord/GroupCommitFailed: the outcome flag', () => {
  const cases: [string, unknown, boolean][] = [
    ['misuse', new InvalidUsage('bad write'), false],
    ['a storage error that did not happen', new PersistStorageError('down', false), false],
    ['a determinate location error', new DeterminateError('refused'), false],
    ['a storage error that may have happened', new PersistStorageError('lost reply', true), true],
    ['an indeterminate location error', new IndeterminateError('timeout'), true],
    ['a broken invariant (nothing proves it did not land)', new InvariantViolation('impossible'), true],
    ['a bug (TypeError)', new TypeError('x is undefined'), true],
  ];
  for (const [what, cause, maybe] of cases) {
    it(`${what} → mayHaveHappened ${maybe}`, () => {
      const err = new GroupCommitFailed(7, 3, cause);
      expect(err.mayHaveHappened).to.equal(maybe);
      expect(err.message).to.include(maybe ? 'may have landed' : 'safe to submit again');
      expect(err.cause).to.equal(cause);
    });
  }
});
