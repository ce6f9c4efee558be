/**
 * Child-process half of the SQLite multi-process test (run by sqlite-consensus.test.ts
 * as `node --import tsx sqlite-cas-worker.ts <db> <key> <target> <id>`).
 *
 * Loops read-head-then-CaS(head → head + 1) on `<key>` until the head reaches
 * `<target>`, writing `<id>` as data. It prints `ready` once the database is open,
 * so the parent can start its own writers only then (tsx start-up takes longer than
 * the whole race otherwise), and finally the seqnos it committed as a JSON array. The parent checks that every seqno was committed exactly once
 * across all writers and that the stored data names the writer that claimed it.
 */
import { SqliteConsensus } from '../../src/location/sqlite-consensus.js';

const [dbPath, key, targetArg, id] = process.argv.slice(2);
if (!dbPath || !key || !targetArg || !id) throw new Error('usage: sqlite-cas-worker <db> <key> <target> <id>');
const target = Number(targetArg);

const c = await SqliteConsensus.open(dbPath);
process.stdout.write('ready\n');
const committed: number[] = [];
for (;;) {
  const head = await c.head(key);
  const next = (head?.seqno ?? 0) + 1;
  if (next > target) break;
  // The same random pause as the parent's writers, so no writer is systematically faster.
  if (Math.random() < 0.5) await new Promise((r) => setImmediate(r));
  else await new Promise((r) => setTimeout(r, Math.random() < 0.5 ? 0 : 1));
  const result = await c.compareAndSet(key, head?.seqno, { seqno: next, data: new TextEncoder().encode(id) });
  if (result === 'committed') committed.push(next);
}
await c.close();
process.stdout.write(JSON.stringify(committed));
