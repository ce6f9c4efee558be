/**
 * Lock assignment for one group-commit round, on its own: the worked example of the
 * module docs, and a property test over random rounds checking the invariants (who
 * is granted, nothing taken twice or taken while busy, order kept, deferred writes
 * told what they missed).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { assignLocks, type LockClaim } from '../../src/coord/lock-assignment.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';

const IDS = Array.from({ length: 5 }, () => newShardId());
const [x, y, z] = IDS as [ShardId, ShardId, ShardId];

interface Write {
  name: string;
  claim: LockClaim;
}

const blind = (name: string, ...collections: ShardId[]): Write => ({ name, claim: { kind: 'take', collections } });
const brought = (name: string, ...collections: ShardId[]): Write => ({ name, claim: { kind: 'brought', collections } });
const system = (name: string): Write => ({ name, claim: { kind: 'none' } });

function assign(round: Write[], busy: Iterable<ShardId>) {
  const notFree = new Set(busy);
  const out = assignLocks(round, (w) => w.claim, (id) => !notFree.has(id));
  return {
    accepted: out.accepted.map((w) => w.name),
    take: out.take,
    deferred: out.deferred.map((d) => ({ name: d.write.name, missing: d.missing })),
  };
}

describe('coord: lock assignment for a group-commit round', () => {
  it('the worked example: brought locks are shared, blind writes take free ones whole or wait', () => {
    // x is held outside the round; z is held too, by the read-then-write r that brought it.
    const round = [blind('y', y), brought('r', z), blind('xy', x, y), blind('z', z), system('internal')];
    expect(assign(round, [x, z])).to.deep.equal({
      accepted: ['r', 'internal', 'y', 'z'],
      take: [y],
      deferred: [{ name: 'xy', missing: [x] }],
    });
  });

  it('a deferred write takes none of its free collections: a later write may take them', () => {
    expect(assign([blind('xy', x, y), blind('y', y)], [x])).to.deep.equal({
      accepted: ['y'],
      take: [y],
      deferred: [{ name: 'xy', missing: [x, y] }],
    });
  });

  it('holds its invariants on random rounds', () => {
    const id = fc.constantFrom(...IDS);
    const ids = fc.uniqueArray(id, { minLength: 0, maxLength: 3 });
    const claim: fc.Arbitrary<LockClaim> = fc.oneof(
      ids.map((collections): LockClaim => ({ kind: 'take', collections })),
      ids.map((collections): LockClaim => ({ kind: 'brought', collections })),
      fc.constant<LockClaim>({ kind: 'none' }),
    );
    fc.assert(
      fc.property(fc.array(claim, { maxLength: 8 }), fc.uniqueArray(id), (claims, outsideHolders) => {
        const round = claims.map((c, i): Write => ({ name: `w${i}`, claim: c }));
        const collectionsOf = (w: Write): ShardId[] => (w.claim.kind === 'none' ? [] : [...w.claim.collections]);
        const broughtIds = new Set(round.filter((w) => w.claim.kind === 'brought').flatMap(collectionsOf));
        // Brought locks are held (by their writes), so they are not free either.
        const busy = new Set([...outsideHolders, ...broughtIds]);
        const out = assignLocks(round, (w) => w.claim, (c) => !busy.has(c));

        // Granted iff every collection is the round's (brought) or free, whatever the order.
        const granted = (w: Write) => w.claim.kind !== 'take' || collectionsOf(w).every((c) => broughtIds.has(c) || !busy.has(c));
        expect(out.accepted).to.deep.equal([
          ...round.filter((w) => w.claim.kind !== 'take'),
          ...round.filter((w) => w.claim.kind === 'take' && granted(w)),
        ]);
        expect(out.deferred.map((d) => d.write)).to.deep.equal(round.filter((w) => !granted(w)));

        // Nothing taken twice, nothing taken that was busy, and exactly what the grants needed.
        expect(new Set(out.take).size).to.equal(out.take.length);
        for (const c of out.take) expect(busy.has(c), `took busy ${c}`).to.equal(false);
        const needed = new Set(out.accepted.filter((w) => w.claim.kind === 'take').flatMap(collectionsOf));
        for (const c of broughtIds) needed.delete(c);
        expect(new Set(out.take)).to.deep.equal(needed);

        // A deferred write is told every collection that blocked it, and only its own.
        for (const { write, missing } of out.deferred) {
          const mine = collectionsOf(write);
          for (const c of missing) expect(mine).to.include(c);
          for (const c of mine) if (busy.has(c) && !broughtIds.has(c)) expect(missing).to.include(c);
          for (const c of missing) expect(broughtIds.has(c)).to.equal(false);
        }
      }),
      { numRuns: 300 },
    );
  });
});
