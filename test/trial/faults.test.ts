/**
 * The seeded fault trial (test/trial/fault-trial.ts) as part of `npm test`: a few
 * fixed seeds at 10% storage faults must end with zero anomalies, and the same
 * workload without faults must too (so a finding is the code's, not the checker's).
 * More seeds: `npm run trial:faults -- --seeds 200`.
 */
import { expect } from 'chai';
import { runFaultTrial, formatAnomalies, type FaultTrialResult } from './fault-trial.js';

// 1 and 2 break on compaction/rollup deletes after a lost reply; 8, 13 and 21 also
// reached a writer's parts deleted after a wrongly flagged failure once those were fixed.
const SEEDS = [1, 2, 8, 13, 21];

function expectClean(r: FaultTrialResult): void {
  expect(r.anomalies.length, `seed ${r.seed}: ${r.anomalies.length} anomalies\n${formatAnomalies(r.anomalies)}\n`).to.equal(0);
}

describe('trial: seeded storage faults', function () {
  this.timeout(120_000);

  it('without faults the workload and the checker agree (every write acked and found once)', async () => {
    const r = await runFaultTrial({ seed: 1, faultRate: 0, ops: 30 });
    expectClean(r);
    expect(r.acked).to.equal(r.ops);
    expect(r.faults.determinate + r.faults.indeterminate).to.equal(0);
  });

  for (const seed of SEEDS) {
    it(`seed ${seed}: 10% of Blob and Consensus calls fail (half with the reply lost) and nothing is lost, doubled or broken`, async () => {
      // A 10 s deadline per operation: a hang still shows, and the file stays short while it does.
      const r = await runFaultTrial({ seed, faultRate: 0.1, ops: 40, deadlineMs: 10_000 });
      expect(r.faults.determinate + r.faults.indeterminate, 'faults were injected').to.be.greaterThan(0);
      expectClean(r);
    });
  }
});
