import { expect } from 'chai';
import { InvariantViolation, LeaseExpired } from '../../src/persist/errors.js';
import type { ListenReader } from '../../src/persist/listen-reader.js';
import { Listen } from '../../src/persist/listen.js';
import type { HollowPart } from '../../src/persist/part.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { initialState, type ShardState, type SpineBatch } from '../../src/persist/state.js';
import type { Update } from '../../src/persist/update.js';
import { expectReject } from '../support/persist.js';

/**
 * A Listen driven by a hand-written ListenReader: the listen needs nothing of its
 * reader but that interface, and asks it for exactly what the contract names.
 */

function part(key: string): HollowPart {
  return { key, encodedSizeBytes: 0, updateCount: 0 };
}
function batch(id: number, lower: number, upper: number, since = 0): SpineBatch {
  return { id, batch: { lower, upper, since, parts: [part(`p${id}`)], updateCount: 0 } };
}
function stateWith(seqno: number, spine: SpineBatch[]): ShardState {
  return { ...initialState(newShardId(), 'string', 'unit', 'h'), seqno, spine };
}

class FakeReader implements ListenReader<string, null> {
  readonly readerId = 'r-fake';
  readonly shardId = 's-fake';
  isLeaseLost = false;
  readonly calls: string[] = [];
  /** The rows of each part, as `[key, ts]`. */
  readonly parts = new Map<string, Array<[string, number]>>();
  readonly later: ShardState[] = [];

  constructor(private state: ShardState) {}

  checkLive(op: string): void {
    this.calls.push(`checkLive ${op}`);
  }
  async currentState(): Promise<ShardState> {
    return this.state;
  }
  async waitForNewerThan(seqno: number): Promise<ShardState> {
    this.calls.push(`wait ${seqno}`);
    const next = this.later.shift();
    if (!next) throw new Error('no newer state in this test');
    return (this.state = next);
  }
  async fetchListenUpdates(state: ShardState, parts: readonly HollowPart[], asOf: number, frontier: number): Promise<Update<string, null>[]> {
    this.calls.push(`fetch @${state.seqno} ${parts.map((p) => p.key).join(',')} asOf ${asOf} frontier ${frontier}`);
    const out: Update<string, null>[] = [];
    for (const p of parts) {
      for (const [k, t] of this.parts.get(p.key!) ?? []) if (t > asOf && t >= frontier) out.push([k, null, t, 1]);
    }
    return out;
  }
  downgradeSinceLazily(since: number): void {
    this.calls.push(`downgrade ${since}`);
  }
  async expire(): Promise<void> {
    this.calls.push('expire');
  }
}

describe('persist: Listen over its ListenReader', () => {
  it('fetches the batch at its frontier pinned, delivers t > asOf, asks the since to follow, then waits', async () => {
    const reader = new FakeReader(stateWith(3, [batch(1, 0, 3)]));
    reader.parts.set('p1', [['a', 0], ['b', 1], ['c', 2]]);
    reader.parts.set('p2', [['d', 3], ['e', 5]]);
    reader.later.push(stateWith(4, [batch(1, 0, 3), batch(2, 3, 7)]));
    const listen = new Listen(reader, 1);
    expect(await listen.next()).to.deep.equal([
      { kind: 'updates', updates: [['c', null, 2, 1]] },
      { kind: 'progress', upper: 3 },
    ]);
    expect(await listen.next()).to.deep.equal([
      { kind: 'updates', updates: [['d', null, 3, 1], ['e', null, 5, 1]] },
      { kind: 'progress', upper: 7 },
    ]);
    expect(reader.calls).to.deep.equal([
      'checkLive listen',
      'fetch @3 p1 asOf 1 frontier 1',
      'downgrade 2',
      'checkLive listen',
      'wait 3',
      'checkLive listen',
      'fetch @4 p2 asOf 1 frontier 3',
      'downgrade 6',
    ]);
  });

  it('calls a batch compacted past its frontier a lost lease when the reader lost it, else a broken invariant', async () => {
    const reader = new FakeReader(stateWith(3, [batch(1, 0, 3, 2)]));
    await expectReject(new Listen(reader, 1).next(), InvariantViolation, /since hold was not respected/);
    reader.isLeaseLost = true;
    await expectReject(new Listen(reader, 1).next(), LeaseExpired, /since hold was not respected/);
  });

  it('iterated to the closed frontier, expires its reader once and asks no downgrade for the closing batch', async () => {
    const reader = new FakeReader(stateWith(3, [batch(1, 0, Infinity)]));
    reader.parts.set('p1', [['a', 4]]);
    const seen: unknown[] = [];
    for await (const events of new Listen(reader, 0)) seen.push(events);
    expect(seen).to.deep.equal([[{ kind: 'updates', updates: [['a', null, 4, 1]] }, { kind: 'progress', upper: Infinity }]]);
    expect(reader.calls.filter((c) => c === 'expire' || c.startsWith('downgrade'))).to.deep.equal(['expire']);
  });
});
