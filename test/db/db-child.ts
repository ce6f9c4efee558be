/**
 * Child process for the front-door tests. Usage:
 *
 *   race <url> <collection>
 *       prints {"event":"ready"} once loaded, waits for a line on stdin (so several
 *       children start together), then opens the database, creates or opens
 *       `collection` (string keys, unit values), writes the row [String(pid), null, 1],
 *       prints {"event":"done","txnsId":…,"shardId":…,"commitTs":…}, and closes.
 *   linger <url>
 *       opens the database, a collection, writes, leaves a live subscribe$ and a
 *       group of writes in flight, then closes the database and prints
 *       {"event":"closed","acked":n}. It never calls process.exit: the process must
 *       end on its own once close() resolved (nothing may keep it alive).
 *
 * Every line is written synchronously, so nothing is lost if the process dies.
 */
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Codecs } from '../../src/persist/index.js';
import { openDatabase } from '../../src/db/index.js';

const say = (obj: object): void => {
  writeSync(1, JSON.stringify(obj) + '\n');
};
const [mode, url, name] = process.argv.slice(2);
const codecs = { key: Codecs.string, val: Codecs.unit };

if (mode === 'race') {
  say({ event: 'ready' });
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
  const db = await openDatabase(url!);
  await db.collection(name!, codecs);
  const { commitTs } = await db.write({ [name!]: [[String(process.pid), null, 1]] });
  const coll = await db.collection(name!, codecs);
  say({ event: 'done', txnsId: db.txnsId, shardId: coll.shardId, commitTs });
  await db.close();
} else if (mode === 'linger') {
  const db = await openDatabase(url!);
  await db.collection('items', codecs);
  await db.write({ items: [['first', null, 1]] });
  // A live subscription and writes still in flight when close() is called.
  db.subscribe$('items').subscribe({ error: (err: unknown) => say({ event: 'subscription-error', message: String(err) }) });
  let acked = 0;
  const writes = Array.from({ length: 20 }, (_, i) => db.write({ items: [[`w${i}`, null, 1]] }).then(() => acked++));
  await db.close();
  await Promise.all(writes);
  say({ event: 'closed', acked });
} else {
  throw new Error(`db-child: unknown mode ${String(mode)}`);
}
