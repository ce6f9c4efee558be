/**
 * BatchedReadTs: concurrent readers share queries (N callers, ≤ 2 queries), yet each
 * caller's answer comes from a query that started after its call, so it reflects every
 * write applied before it asked.
 *
 * The query is a fake whose every call is recorded and finished by hand, with the
 * "database value" it reads at the moment it starts (as a real SELECT reads its
 * snapshot when it runs).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { BatchedReadTs } from '../../src/coord/batched-read-ts.js';
import { flush } from '../support/async.js';

interface FakeQuery {
  /** The value the query read, at the moment it started. */
  readValue: number;
  resolve(): void;
  reject(err: Error): void;
}

/** A hand-driven read_ts query over a mutable `value`. */
function fakeDatabase() {
  const db = {
    value: 0,
    queries: [] as FakeQuery[],
    running: 0,
    maxRunning: 0,
    query: (): Promise<number> => {
      const readValue = db.value;
      db.running++;
      db.maxRunning = Math.max(db.maxRunning, db.running);
      return new Promise<number>((resolve, reject) => {
        db.queries.push({
          readValue,
          resolve: () => {
            db.running--;
            resolve(readValue);
          },
          reject: (err) => {
            db.running--;
            reject(err);
          },
        });
      });
    },
  };
  return db;
}

/** Lets promise callbacks run (a finished query hands over to the queued one through them). */
const settle = () => flush(10);

describe('BatchedReadTs', function () {
  it('a lone caller costs one query and gets its answer', async function () {
    const db = fakeDatabase();
    db.value = 7;
    const batched = new BatchedReadTs(db.query);
    const read = batched.read();
    expect(db.queries).to.have.length(1);
    db.queries[0]?.resolve();
    expect(await read).to.equal(7);
    expect([batched.calls, batched.queries]).to.deep.equal([1, 1]);
  });

  it('100 concurrent callers cost 2 queries: the first runs, the other 99 share the next', async function () {
    const db = fakeDatabase();
    const batched = new BatchedReadTs(db.query);
    db.value = 1;
    const first = batched.read();
    const rest = Array.from({ length: 99 }, () => batched.read());
    // While the first query runs, the others wait without querying.
    expect(db.queries).to.have.length(1);
    db.value = 2;
    db.queries[0]?.resolve();
    await settle();
    expect(db.queries).to.have.length(2);
    db.queries[1]?.resolve();
    expect(await first).to.equal(1);
    expect(new Set(await Promise.all(rest))).to.deep.equal(new Set([2]));
    expect([batched.calls, batched.queries]).to.deep.equal([100, 2]);
    expect(db.maxRunning).to.equal(1);
  });

  it('never answers a caller with a query that was already running when it called', async function () {
    const db = fakeDatabase();
    const batched = new BatchedReadTs(db.query);
    db.value = 5;
    const early = batched.read();        // query A reads 5
    db.value = 6;                        // an applyWrite(6) finishes…
    const late = batched.read();         // …before this caller asks: it must see 6
    db.queries[0]?.resolve();
    await settle();
    db.queries[1]?.resolve();
    expect(await early).to.equal(5);
    expect(await late).to.equal(6);
  });

  it('a caller arriving after its group query started waits for the next one', async function () {
    const db = fakeDatabase();
    const batched = new BatchedReadTs(db.query);
    const a = batched.read();
    const b = batched.read();
    db.queries[0]?.resolve();
    await settle();
    // b's query is running now; c must not join it.
    db.value = 9;
    const c = batched.read();
    expect(db.queries).to.have.length(2);
    db.queries[1]?.resolve();
    await settle();
    expect(db.queries).to.have.length(3);
    db.queries[2]?.resolve();
    expect(await Promise.all([a, b, c])).to.deep.equal([0, 0, 9]);
  });

  it('a failed query rejects only its own callers; the queued query still runs', async function () {
    const db = fakeDatabase();
    const batched = new BatchedReadTs(db.query);
    const first = batched.read().catch((err: Error) => err.message);
    const queued = [batched.read(), batched.read()];
    db.value = 3;
    db.queries[0]?.reject(new Error('connection reset'));
    await settle();
    expect(db.queries).to.have.length(2);
    db.queries[1]?.resolve();
    expect(await first).to.equal('connection reset');
    expect(await Promise.all(queued)).to.deep.equal([3, 3]);
  });

  it('a query that throws synchronously rejects its callers instead of throwing from read()', async function () {
    let calls = 0;
    const batched = new BatchedReadTs(() => {
      calls++;
      throw new Error('closed');
    });
    const p = batched.read();
    expect(p).to.be.instanceOf(Promise);
    let message = '';
    await p.catch((err: Error) => (message = err.message));
    expect(message).to.equal('closed');
    expect(calls).to.equal(1);
  });

  it('after everything settles, the next caller starts a new query (no cached answer)', async function () {
    const db = fakeDatabase();
    const batched = new BatchedReadTs(db.query);
    const a = batched.read();
    db.queries[0]?.resolve();
    expect(await a).to.equal(0);
    await settle();
    db.value = 4;
    const b = batched.read();
    expect(db.queries).to.have.length(2);
    db.queries[1]?.resolve();
    expect(await b).to.equal(4);
  });

  it('property: any mix of calls, writes and query completions keeps every answer fresh and ≤ 1 query running', async function () {
    type Step = { kind: 'call' } | { kind: 'write' } | { kind: 'finish' };
    const step = fc.oneof(
      fc.constant<Step>({ kind: 'call' }),
      fc.constant<Step>({ kind: 'write' }),
      fc.constant<Step>({ kind: 'finish' }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 60 }), async (steps) => {
        const db = fakeDatabase();
        const batched = new BatchedReadTs(db.query);
        let finished = 0;
        const answers: Promise<{ asked: number; got: number }>[] = [];
        for (const s of steps) {
          if (s.kind === 'call') {
            // The value every applyWrite before this call left behind.
            const asked = db.value;
            answers.push(batched.read().then((got) => ({ asked, got })));
          } else if (s.kind === 'write') {
            db.value++;
          } else if (finished < db.queries.length) {
            db.queries[finished++]?.resolve();
          }
          await settle();
        }
        // Drain: finish every query, including ones queued by the drain itself.
        while (finished < db.queries.length) {
          db.queries[finished++]?.resolve();
          await settle();
        }
        const results = await Promise.all(answers);
        for (const { asked, got } of results) expect(got).to.be.at.least(asked);
        expect(db.maxRunning).to.be.at.most(1);
        expect(batched.queries).to.be.at.most(batched.calls);
        expect(batched.calls).to.equal(results.length);
      }),
      { numRuns: 200 },
    );
  });
});
