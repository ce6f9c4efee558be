/**
 * Child process for the lease test: opens a leased reader with a short lease on
 * `<location> <shardId>`, prints its id, and then idles until it is killed.
 */
import { PersistClient, Codecs } from '../../src/persist/index.js';

const [location, shardId] = process.argv.slice(2);
const client = await PersistClient.open(location!, { config: { readerLeaseDurationMs: 200 } });
const r = await client.openLeasedReader(shardId!, { key: Codecs.string, val: Codecs.unit });
process.stdout.write(r.readerId + '\n');
setInterval(() => undefined, 1000);
