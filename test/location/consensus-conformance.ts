/**
 * The Consensus conformance suite: the contract of `src/location/consensus.ts`, run
 * against every backend.
 *
 * `describeConsensusConformance(name, factory)` defines a mocha `describe` block.
 * `factory()` returns a Consensus per test (closed after it). Stores may be shared
 * between tests (one Postgres database per file, say): every test works under its own
 * random key prefix and only looks at its own keys.
 *
 * The running example of the spec checklist: `None → v5`, then `5 → v10`.
 *
 * Example:
 * ```ts
 * describeConsensusConformance('MemConsensus', async () => new MemConsensus());
 * ```
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import type { Consensus, VersionedData } from '../../src/location/consensus.js';
import { LocationUsageError } from '../../src/location/errors.js';
import { expectBytes, patternBytes, utf8 } from '../support/bytes.js';

export type ConsensusFactory = () => Promise<Consensus>;

export interface ConsensusConformanceOptions {
  /** fast-check runs of the model test; slower backends may ask for fewer. Default 30. */
  modelRuns?: number;
  /**
   * Whether racing CaS calls from one head to DIFFERENT new seqnos are linearizable
   * (exactly one commits). Default true; Postgres opts out, see postgres-consensus.ts.
   */
  racingJumps?: boolean;
}

function v(seqno: number, text = `v${seqno}`): VersionedData {
  return { seqno, data: utf8(text) };
}

function expectVersions(actual: VersionedData[], expected: VersionedData[]): void {
  expect(actual.map((x) => x.seqno)).to.deep.equal(expected.map((x) => x.seqno));
  actual.forEach((x, i) => expectBytes(x.data, (expected[i] as VersionedData).data));
}

async function expectUsageError(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(LocationUsageError);
    return;
  }
  expect.fail('expected a LocationUsageError');
}

export function describeConsensusConformance(
  name: string,
  factory: ConsensusFactory,
  options: ConsensusConformanceOptions = {},
): void {
  describe(`${name} consensus conformance`, function () {
    let c: Consensus;
    /** This test's key prefix, so tests never see each other's keys. */
    let p: string;

    beforeEach(async function () {
      c = await factory();
      p = `t${randomBytes(6).toString('hex')}/`;
    });

    afterEach(async function () {
      await c.close();
    });

    /** Key `k` with v5 and v10 written through the checklist's CaS steps. */
    async function fiveAndTen(k: string): Promise<void> {
      expect(await c.compareAndSet(k, undefined, v(5))).to.equal('committed');
      expect(await c.compareAndSet(k, 5, v(10))).to.equal('committed');
    }

    it('an empty key has no head, scans empty', async function () {
      expect(await c.head(p + 'k')).to.equal(undefined);
      expect(await c.scan(p + 'k', 0, 10)).to.deep.equal([]);
    });

    it('None → v5 commits and becomes the head', async function () {
      expect(await c.compareAndSet(p + 'k', undefined, v(5))).to.equal('committed');
      const head = await c.head(p + 'k');
      expect(head?.seqno).to.equal(5);
      expectBytes(head?.data, utf8('v5'));
    });

    it('Some(0) against an empty key is a mismatch', async function () {
      expect(await c.compareAndSet(p + 'k', 0, v(1))).to.equal('mismatch');
      expect(await c.head(p + 'k')).to.equal(undefined);
    });

    it('Some(5) with a new seqno of 5 or 3 throws', async function () {
      await c.compareAndSet(p + 'k', undefined, v(5));
      await expectUsageError(c.compareAndSet(p + 'k', 5, v(5)));
      await expectUsageError(c.compareAndSet(p + 'k', 5, v(3)));
      expect((await c.head(p + 'k'))?.seqno).to.equal(5);
    });

    it('Some(7), Some(3) and None while the head is 5 are mismatches', async function () {
      await c.compareAndSet(p + 'k', undefined, v(5));
      expect(await c.compareAndSet(p + 'k', 7, v(8))).to.equal('mismatch');
      expect(await c.compareAndSet(p + 'k', 3, v(8))).to.equal('mismatch');
      expect(await c.compareAndSet(p + 'k', undefined, v(8))).to.equal('mismatch');
      expect(await c.compareAndSet(p + 'k', undefined, v(5, 'again'))).to.equal('mismatch');
      const head = await c.head(p + 'k');
      expect(head?.seqno).to.equal(5);
      expectBytes(head?.data, utf8('v5'));
    });

    it('5 → v10 commits (jumps are allowed)', async function () {
      await fiveAndTen(p + 'k');
      expect((await c.head(p + 'k'))?.seqno).to.equal(10);
    });

    it('rejects seqnos that are not non-negative safe integers, such as 2^63', async function () {
      for (const bad of [2 ** 63, 2 ** 64, 2 ** 53, -1, 1.5, NaN, Infinity]) {
        await expectUsageError(c.compareAndSet(p + 'k', undefined, v(bad)));
        await expectUsageError(c.scan(p + 'k', bad, 10));
        await expectUsageError(c.truncate(p + 'k', bad));
      }
      await c.compareAndSet(p + 'k', undefined, v(5));
      await expectUsageError(c.compareAndSet(p + 'k', 2 ** 63, v(2 ** 63 + 4096)));
      await expectUsageError(c.compareAndSet(p + 'k', 5, v(2 ** 63)));
      expect(await c.scan(p + 'k', 0, 10)).to.have.length(1);
      // The largest legal seqno works.
      const max = Number.MAX_SAFE_INTEGER;
      expect(await c.compareAndSet(p + 'k', 5, v(max))).to.equal('committed');
      expect((await c.head(p + 'k'))?.seqno).to.equal(max);
    });

    it('scan returns versions from a seqno on, ascending, within the limit', async function () {
      const k = p + 'k';
      await fiveAndTen(k);
      expectVersions(await c.scan(k, 5, 10), [v(5), v(10)]);
      expectVersions(await c.scan(k, 0, 10), [v(5), v(10)]);
      expectVersions(await c.scan(k, 6, 10), [v(10)]);
      expectVersions(await c.scan(k, 10, 10), [v(10)]);
      expect(await c.scan(k, 11, 10)).to.deep.equal([]);
      expectVersions(await c.scan(k, 0, 1), [v(5)]);
      expectVersions(await c.scan(k, 6, 1), [v(10)]);
      expect(await c.scan(k, 0, 0)).to.deep.equal([]);
      expectVersions(await c.scan(k, 0, Infinity), [v(5), v(10)]);
      await expectUsageError(c.scan(k, 0, -1));
      await expectUsageError(c.scan(k, 0, 1.5));
    });

    it('scan limits apply to long chains', async function () {
      const k = p + 'k';
      let expected: number | undefined;
      for (let s = 1; s <= 12; s++) {
        expect(await c.compareAndSet(k, expected, v(s))).to.equal('committed');
        expected = s;
      }
      expect((await c.scan(k, 0, 5)).map((x) => x.seqno)).to.deep.equal([1, 2, 3, 4, 5]);
      expect((await c.scan(k, 7, 3)).map((x) => x.seqno)).to.deep.equal([7, 8, 9]);
      expect((await c.scan(k, 10, 100)).map((x) => x.seqno)).to.deep.equal([10, 11, 12]);
    });

    it('truncate(6) leaves [v10], returns the count, and is idempotent', async function () {
      const k = p + 'k';
      await fiveAndTen(k);
      expect(await c.truncate(k, 6)).to.equal(1);
      expectVersions(await c.scan(k, 0, 10), [v(10)]);
      expect(await c.truncate(k, 6)).to.equal(0);
      expect(await c.truncate(k, 10)).to.equal(0);
      expect(await c.truncate(k, 0)).to.equal(0);
      expectVersions(await c.scan(k, 0, 10), [v(10)]);
      expect((await c.head(k))?.seqno).to.equal(10);
    });

    it('truncate up to the head keeps the head', async function () {
      const k = p + 'k';
      await fiveAndTen(k);
      expect(await c.truncate(k, 10)).to.equal(1);
      expectVersions(await c.scan(k, 0, 10), [v(10)]);
    });

    it('truncate beyond the head throws and deletes nothing', async function () {
      const k = p + 'k';
      await fiveAndTen(k);
      await expectUsageError(c.truncate(k, 11));
      expectVersions(await c.scan(k, 0, 10), [v(5), v(10)]);
    });

    it('truncating an empty key throws', async function () {
      await expectUsageError(c.truncate(p + 'empty', 0));
      await expectUsageError(c.truncate(p + 'empty', 1));
    });

    it('CaS continues normally after a truncate', async function () {
      const k = p + 'k';
      await fiveAndTen(k);
      await c.truncate(k, 10);
      expect(await c.compareAndSet(k, 5, v(11))).to.equal('mismatch');
      expect(await c.compareAndSet(k, 10, v(11))).to.equal('committed');
      expectVersions(await c.scan(k, 0, 10), [v(10), v(11)]);
    });

    it('keys are independent', async function () {
      await fiveAndTen(p + 'a');
      expect(await c.head(p + 'b')).to.equal(undefined);
      expect(await c.compareAndSet(p + 'b', 5, v(6))).to.equal('mismatch');
      expect(await c.compareAndSet(p + 'b', undefined, v(1, 'b1'))).to.equal('committed');
      await c.truncate(p + 'a', 10);
      expectVersions(await c.scan(p + 'b', 0, 10), [v(1, 'b1')]);
      expectVersions(await c.scan(p + 'a', 0, 10), [v(10)]);
      // Prefix-related keys are different keys too.
      expect(await c.head(p)).to.equal(undefined);
      expect(await c.head(p + 'a/')).to.equal(undefined);
    });

    it('listKeys lists every key with data', async function () {
      const keys = [p + 'x', p + 'a/b', p + 'ü∕🙂'];
      for (const k of keys) await c.compareAndSet(k, undefined, v(1));
      await c.compareAndSet(p + 'x', 1, v(2));
      await c.truncate(p + 'x', 2);
      const listed = (await c.listKeys()).filter((k) => k.startsWith(p));
      expect(listed.sort()).to.deep.equal([...keys].sort());
    });

    it('a ~10 KiB value round-trips byte-exact', async function () {
      const data = patternBytes(10 * 1024 + 3, 11);
      await c.compareAndSet(p + 'k', undefined, { seqno: 1, data });
      expectBytes((await c.head(p + 'k'))?.data, data);
      expectBytes((await c.scan(p + 'k', 0, 1))[0]?.data, data);
    });

    it('all 256 byte values and empty data round-trip', async function () {
      const all = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
      await c.compareAndSet(p + 'k', undefined, { seqno: 1, data: all });
      await c.compareAndSet(p + 'k', 1, { seqno: 2, data: new Uint8Array(0) });
      const [first, second] = await c.scan(p + 'k', 0, 10);
      expectBytes(first?.data, all);
      expectBytes(second?.data, new Uint8Array(0));
      // A view into a larger array stores just the view.
      const backing = patternBytes(100, 5);
      await c.compareAndSet(p + 'k', 2, { seqno: 3, data: backing.subarray(40, 50) });
      expectBytes((await c.head(p + 'k'))?.data, backing.slice(40, 50));
    });

    it('returns plain Uint8Arrays that do not alias the caller', async function () {
      const data = utf8('abc');
      await c.compareAndSet(p + 'k', undefined, { seqno: 1, data });
      data[0] = 0;
      const head = await c.head(p + 'k');
      expect(Object.getPrototypeOf(head?.data)).to.equal(Uint8Array.prototype);
      expectBytes(head?.data, utf8('abc'));
      (head?.data as Uint8Array)[1] = 0;
      expectBytes((await c.head(p + 'k'))?.data, utf8('abc'));
    });

    it('20 concurrent CaS from the same expected seqno: exactly one commits', async function () {
      const k = p + 'k';
      await c.compareAndSet(k, undefined, v(5));
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => c.compareAndSet(k, 5, v(6, `writer ${i}`))),
      );
      expect(results.filter((r) => r === 'committed')).to.have.length(1);
      const winner = results.indexOf('committed');
      expectVersions(await c.scan(k, 0, 10), [v(5), v(6, `writer ${winner}`)]);
    });

    it('20 concurrent CaS from an empty key: exactly one commits', async function () {
      const k = p + 'k';
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => c.compareAndSet(k, undefined, v(1, `writer ${i}`))),
      );
      expect(results.filter((r) => r === 'committed')).to.have.length(1);
      const winner = results.indexOf('committed');
      expectVersions(await c.scan(k, 0, 10), [v(1, `writer ${winner}`)]);
    });

    if (options.racingJumps ?? true) {
      it('20 concurrent CaS from one head to different seqnos: exactly one commits', async function () {
        const k = p + 'k';
        await c.compareAndSet(k, undefined, v(5));
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => c.compareAndSet(k, 5, v(6 + i))));
        expect(results.filter((r) => r === 'committed')).to.have.length(1);
        const fromNothing = await Promise.all(
          Array.from({ length: 20 }, (_, i) => c.compareAndSet(p + 'n', undefined, v(1 + i))),
        );
        expect(fromNothing.filter((r) => r === 'committed')).to.have.length(1);
      });
    }

    it('racing read-modify-write loops commit every seqno exactly once', async function () {
      const k = p + 'k';
      const target = 40;
      const committedBy = new Map<number, number>();
      async function writer(id: number): Promise<void> {
        for (;;) {
          const head = await c.head(k);
          const next = (head?.seqno ?? 0) + 1;
          if (next > target) return;
          const r = await c.compareAndSet(k, head?.seqno, v(next, `w${id}`));
          if (r === 'committed') {
            expect(committedBy.has(next), `seqno ${next} committed twice`).to.equal(false);
            committedBy.set(next, id);
          }
        }
      }
      await Promise.all([0, 1, 2, 3, 4].map(writer));
      const all = await c.scan(k, 0, Infinity);
      expect(all.map((x) => x.seqno)).to.deep.equal(Array.from({ length: target }, (_, i) => i + 1));
      for (const x of all) expectBytes(x.data, utf8(`w${committedBy.get(x.seqno)}`));
    });

    it('agrees with a simple model on random operation sequences', async function () {
      type Op =
        | { kind: 'cas'; key: number; expectedDelta: number | null; jump: number }
        | { kind: 'truncate'; key: number; delta: number }
        | { kind: 'scan'; key: number; from: number; limit: number };
      const op: fc.Arbitrary<Op> = fc.oneof(
        fc.record({
          kind: fc.constant('cas' as const),
          key: fc.nat(1),
          // null: expect "no data"; otherwise head + delta (0 most of the time).
          expectedDelta: fc.oneof(fc.constant(0), fc.constant(0), fc.constant(null), fc.integer({ min: -2, max: 2 })),
          jump: fc.integer({ min: 1, max: 3 }),
        }),
        fc.record({ kind: fc.constant('truncate' as const), key: fc.nat(1), delta: fc.integer({ min: -3, max: 1 }) }),
        fc.record({
          kind: fc.constant('scan' as const),
          key: fc.nat(1),
          from: fc.nat(12),
          limit: fc.integer({ min: 0, max: 4 }),
        }),
      );
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
          run++;
          const model = new Map<string, VersionedData[]>();
          const keyOf = (i: number) => `${p}m${run}/${i}`;
          for (const o of ops) {
            const key = keyOf(o.key);
            const versions = model.get(key) ?? [];
            const head = versions.at(-1)?.seqno;
            if (o.kind === 'cas') {
              const expected = o.expectedDelta === null ? undefined : (head ?? 0) + o.expectedDelta;
              if (expected !== undefined && expected < 0) continue;
              const next = v((expected ?? head ?? 0) + o.jump, `${key}@${o.jump}`);
              const want = expected === head ? 'committed' : 'mismatch';
              expect(await c.compareAndSet(key, expected, next)).to.equal(want);
              if (want === 'committed') model.set(key, [...versions, next]);
            } else if (o.kind === 'truncate') {
              const seqno = Math.max(0, (head ?? 0) + o.delta);
              if (head === undefined || seqno > head) {
                await expectUsageError(c.truncate(key, seqno));
              } else {
                const kept = versions.filter((x) => x.seqno >= seqno);
                expect(await c.truncate(key, seqno)).to.equal(versions.length - kept.length);
                model.set(key, kept);
              }
            } else {
              const want = versions.filter((x) => x.seqno >= o.from).slice(0, o.limit);
              expectVersions(await c.scan(key, o.from, o.limit), want);
            }
          }
        }),
        { numRuns: options.modelRuns ?? 30 },
      );
    });
  });
}
