/** toAsyncIterable: pull-based consumption of a stream, with early exit releasing it. */
import { expect } from 'chai';
import { Observable, Subject } from 'rxjs';
import { toAsyncIterable } from '../../src/operators/to-async-iterable.js';
import { dataSubscribe$ } from '../../src/operators/data-subscribe.js';
import { STRING_UNIT, memClient } from '../support/persist.js';
import { expectRegister, openTxns } from '../support/txn.js';

describe('operators/toAsyncIterable', () => {
  it('yields every value in order, queueing what arrives faster than it is pulled', async () => {
    const source = new Subject<number>();
    const it = toAsyncIterable(source)[Symbol.asyncIterator]();
    const first = it.next();
    source.next(1);
    source.next(2);
    source.next(3);
    source.complete();
    const got = [(await first).value];
    for (let r = await it.next(); !r.done; r = await it.next()) got.push(r.value);
    expect(got).to.deep.equal([1, 2, 3]);
  });

  it('breaking out of for-await unsubscribes the source', async () => {
    let tornDown = false;
    const source = new Observable<number>((s) => {
      let i = 0;
      const timer = setInterval(() => s.next(i++), 1);
      return () => {
        clearInterval(timer);
        tornDown = true;
      };
    });
    const got: number[] = [];
    for await (const n of toAsyncIterable(source)) {
      got.push(n);
      if (got.length === 3) break;
    }
    expect(got).to.deep.equal([0, 1, 2]);
    expect(tornDown).to.equal(true);
  });

  it('a source error is thrown from the loop', async () => {
    const source = new Observable<number>((s) => {
      s.next(1);
      s.error(new Error('boom'));
    });
    const got: number[] = [];
    let err: unknown;
    try {
      for await (const n of toAsyncIterable(source)) got.push(n);
    } catch (e) {
      err = e;
    }
    expect(got).to.deep.equal([1]);
    expect((err as Error).message).to.equal('boom');
  });

  it('pulls a dataSubscribe$ pipeline and releases its readers on break', async () => {
    const client = await memClient();
    try {
      const txns = await openTxns(client);
      const d0 = await expectRegister(txns, 1);
      const txn = txns.begin();
      await txn.write(d0, 'k', null, 1);
      const res = await txn.commitAt(txns, 2);
      if (res.ok) await res.apply.apply(txns);
      const seen: string[] = [];
      for await (const ev of toAsyncIterable(dataSubscribe$(client, txns.txnsId, d0, { codecs: STRING_UNIT, asOf: 2 }))) {
        seen.push(ev.kind === 'updates' ? `updates ${ev.updates.map((u) => u[0])}` : `progress ${ev.upper}`);
        if (ev.kind === 'progress') break;
      }
      expect(seen).to.deep.equal(['updates k', 'progress 3']);
      const m = client.shardMachine(d0);
      for (let i = 0; i < 200 && m.state.leasedReaders.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(m.state.leasedReaders.size).to.equal(0);
    } finally {
      await client.close();
    }
  });
});
