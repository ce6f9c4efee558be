/** collectUntil(ts): everything below ts, once progress reaches it. */
import { expect } from 'chai';
import { Subject, firstValueFrom, from } from 'rxjs';
import { InvalidUsage } from '../../src/persist/errors.js';
import { IncompleteCollection, collectUntil } from '../../src/operators/collect-until.js';
import type { ShardEvent } from '../../src/sources/shard-source.js';
import { describeOperatorLifecycle } from '../support/rx.js';

type Ev = ShardEvent<string, null>;

describe('operators/collectUntil', () => {
  it('emits the consolidated updates below ts once progress reaches it, then completes and unsubscribes', async () => {
    const source = new Subject<Ev>();
    const result = firstValueFrom(source.pipe(collectUntil(3)));
    source.next({ kind: 'updates', updates: [['a', null, 1, 1], ['b', null, 2, 1]] });
    source.next({ kind: 'progress', upper: 2 });
    source.next({ kind: 'updates', updates: [['a', null, 2, -1], ['late', null, 3, 1]] });
    expect(source.observed, 'still waiting at progress 2').to.equal(true);
    source.next({ kind: 'progress', upper: 5 });
    // Sorted by time; equal times keep the order they arrived in. 'late' is at 3: left out.
    expect(await result).to.deep.equal([
      ['a', null, 1, 1],
      ['b', null, 2, 1],
      ['a', null, 2, -1],
    ]);
    expect(source.observed, 'the source is unsubscribed once done').to.equal(false);
  });

  it('errors with IncompleteCollection if the source completes before progress reaches ts', async () => {
    const events: Ev[] = [{ kind: 'updates', updates: [['a', null, 1, 1]] }, { kind: 'progress', upper: 2 }];
    let err: unknown;
    await firstValueFrom(from(events).pipe(collectUntil(3))).catch((e) => (err = e));
    expect(err).to.be.instanceOf(IncompleteCollection);
    expect((err as Error).message).to.match(/completed at progress 2, before every update below 3/);
  });

  it('refuses a time it could never reach', () => {
    expect(() => collectUntil(Infinity)).to.throw(InvalidUsage, /finite/);
    expect(() => collectUntil(-1)).to.throw(InvalidUsage);
  });
});

describeOperatorLifecycle<Ev, unknown>('operators/collectUntil', () => collectUntil(10), {
  sample: [{ kind: 'updates', updates: [['a', null, 0, 1]] }, { kind: 'progress', upper: 1 }],
  // A symbol is not row data: consolidating it throws InvalidUsage.
  breaking: [{ kind: 'updates', updates: [[Symbol('not data') as unknown as string, null, 0, 1]] }, { kind: 'progress', upper: 11 }],
  onEarlyComplete: 'error',
});
