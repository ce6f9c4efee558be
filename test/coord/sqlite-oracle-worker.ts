/**
 * Child-process half of the SQLite multi-process oracle test (run by
 * sqlite-oracle.test.ts as `node --import tsx sqlite-oracle-worker.ts <db> <timeline> <count>`).
 *
 * Prints `ready` once the oracle is open (so the parent starts its own writers only
 * then), then takes `<count>` write timestamps, applying each, with a random pause
 * between calls so the processes interleave, and finally prints the timestamps it got
 * as a JSON array. The parent checks they are strictly increasing, distinct from every
 * other writer's, and that its own readTs sees the child's applied writes.
 */
import { SqliteTimestampOracle } from '../../src/coord/sqlite-oracle.js';

const [dbPath, timeline, countArg] = process.argv.slice(2);
if (!dbPath || !timeline || !countArg) throw new Error('usage: sqlite-oracle-worker <db> <timeline> <count>');

// A frozen clock: timestamps are counters, so interleaving shows up as gaps.
const oracle = await SqliteTimestampOracle.open(dbPath, { timeline, now: () => 0 });
process.stdout.write('ready\n');
const got: number[] = [];
for (let i = 0; i < Number(countArg); i++) {
  const { timestamp } = await oracle.writeTs();
  got.push(timestamp);
  await oracle.applyWrite(timestamp);
  if (Math.random() < 0.5) await new Promise((r) => setImmediate(r));
  else await new Promise((r) => setTimeout(r, Math.random() < 0.5 ? 0 : 1));
}
await oracle.close();
process.stdout.write(JSON.stringify(got));
