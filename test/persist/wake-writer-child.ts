/**
 * Child process for the cross-process wake-up tests: opens a PersistClient on
 * `<location url> <shardId>`, prints `ready serving=<bool>` (whether this process
 * serves the file: channel's socket), then obeys lines on stdin:
 * - `append <ts>`: appends `k<ts>` at `ts` (upper ts → ts + 1) and prints `acked <ts>`;
 * - `exit`: closes the client and exits.
 * It stays alive until told to exit or killed (stdin open keeps it running).
 */
import readline from 'node:readline';
import { SocketStateChanges } from '../../src/location/socket-state-changes.js';
import { Codecs, PersistClient } from '../../src/persist/index.js';

const [url, shardId] = process.argv.slice(2);
const client = await PersistClient.open(url!);
const writer = await client.openWriter(shardId!, { key: Codecs.string, val: Codecs.unit });
const changes = client.location.stateChanges;
const serving = changes instanceof SocketStateChanges && changes.serving;
process.stdout.write(`ready serving=${serving}\n`);

for await (const line of readline.createInterface({ input: process.stdin })) {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'append') {
    const ts = Number(arg);
    const res = await writer.compareAndAppend([[`k${ts}`, null, ts, 1]], ts, ts + 1);
    if (!res.ok) throw new Error(`append at ${ts} failed: upper is ${res.current}`);
    process.stdout.write(`acked ${ts}\n`);
  } else if (cmd === 'exit') {
    break;
  }
}
await client.close();
