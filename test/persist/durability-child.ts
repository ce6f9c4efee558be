/**
 * Child process for the durability tests. Usage:
 *   write <location> <shardId> <from> <count>   append keys k<from>..k<from+count-1>, one per time, then exit
 *   read  <location> <shardId> <asOf>           print the snapshot at asOf as JSON
 * It exits without closing its client on purpose: durability may not depend on a
 * clean shutdown.
 */
import { PersistClient, Codecs } from '../../src/persist/index.js';

const [cmd, location, shardId, a, b] = process.argv.slice(2);
const codecs = { key: Codecs.string, val: Codecs.unit };
const client = await PersistClient.open(location!);
if (cmd === 'write') {
  const from = Number(a);
  const count = Number(b);
  const w = await client.openWriter(shardId!, codecs);
  for (let i = from; i < from + count; i++) {
    const res = await w.compareAndAppend([[`k${i}`, null, i, 1]], i, i + 1);
    if (!res.ok) throw new Error(`unexpected mismatch at ${i}: ${res.current}`);
  }
  process.stdout.write(JSON.stringify({ upper: w.upper() }) + '\n');
  process.exit(0);
} else if (cmd === 'read') {
  const r = await client.openLeasedReader(shardId!, codecs);
  const snap = await r.snapshotAndFetch(Number(a));
  process.stdout.write(JSON.stringify(snap.map(([k, , t, d]) => [k, t, d])) + '\n');
  process.exit(0);
} else {
  throw new Error(`unknown command ${cmd}`);
}
