/**
 * The multi-machine trial (test/trial/multi-machine.ts) as part of `npm test`, small:
 * three writer processes and a follower on Postgres + S3 only, a writer SIGKILLed and
 * restarted three times; every acknowledged transaction must be read back exactly once
 * and none may be partly visible. The long version: `npm run trial:multi`.
 */
import { expect } from 'chai';
import { runMultiMachineTrial } from './multi-machine.js';

describe('trial: three writer machines on Postgres + S3, one SIGKILLed and restarted', function () {
  this.timeout(240_000);

  it('every acknowledged transaction is read back once by a follower machine, none partly visible', async () => {
    // Three kills: one mid-commit, one between commit and apply, one after the apply.
    const r = await runMultiMachineTrial({ seed: 1, writers: 3, dataShards: 3, kills: 3, maxAcksBeforeKill: 2, finalAcks: 1 });
    expect(r.anomalies, r.anomalies.join('\n')).to.deep.equal([]);
    expect(r.kills).to.equal(3);
    // Every incarnation before a kill acked at least once, and every writer after the last.
    expect(r.acked).to.be.at.least(3 + 3);
    expect(r.seen).to.be.at.least(r.acked);
  });
});
