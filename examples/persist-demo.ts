/**
 * A tour of the persist API on the embedded default location, `file:<dir>`
 * (SQLite consensus + file blob). Run it with `npm run demo:persist [-- <dir>]` (`--help` for usage); the
 * directory defaults to ./.txnwal-data. Run it again and it reopens the same shard
 * and continues from where the last run stopped.
 *
 * What it shows, one narrated line per step:
 *  1. create a shard of string keys (or reopen the one named in <dir>/persist-demo.json);
 *  2. append rounds of updates with compareAndAppend, each at `[upper, upper + 1)`;
 *  3. a writer with a stale idea of the upper gets a mismatch *value* and retries;
 *  4. misuse (an update outside the append interval) throws a typed error;
 *  5. read a consolidated snapshot;
 *  6. follow a listen while another writer appends, printing updates and progress.
 *
 * The shard is a multiset of fruit names: an update `['apple', null, t, +3]` adds
 * three apples at time t, `-1` takes one away; a snapshot sums them up.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  Codecs,
  InvalidUsage,
  PersistClient,
  isShardId,
  newShardId,
  type ListenEvent,
  type ShardId,
  type Update,
} from '../src/index.js';
import { DEFAULT_DATA_DIR, cliArgs } from './cli.js';

type Fruit = Update<string, null>;

const { positionals } = cliArgs(
  `
usage: npm run demo:persist [-- <dir>]

A narrated tour of the persist API (one shard: appends, a mismatch, a snapshot, a
listen) on the file: location <dir> (default ${DEFAULT_DATA_DIR}); a second run
reopens the same shard.
`,
  { allowPositionals: true },
);
if (positionals.length > 1) {
  console.error(`expected at most one directory, got ${positionals.length} arguments (see --help)`);
  process.exit(1);
}
const dir = path.resolve(positionals[0] ?? DEFAULT_DATA_DIR);
const stateFile = path.join(dir, 'persist-demo.json');
const codecs = { key: Codecs.string, val: Codecs.unit };

function say(line: string): void {
  console.log(line);
}

/** "+3 apple, -1 banana", or with times "+3 apple @t=4, -1 banana @t=4". */
function describe(updates: readonly Fruit[], withTimes = false): string {
  if (updates.length === 0) return '(none)';
  return updates.map(([k, , t, d]) => `${d > 0 ? '+' : ''}${d} ${k}${withTimes ? ` @t=${t}` : ''}`).join(', ');
}

async function loadOrCreateShard(): Promise<{ id: ShardId; reopened: boolean }> {
  if (existsSync(stateFile)) {
    const saved = JSON.parse(await readFile(stateFile, 'utf8')) as { shardId?: unknown };
    if (isShardId(saved.shardId)) return { id: saved.shardId, reopened: true };
    say(`${stateFile} does not name a shard; creating a new one`);
  }
  const id = newShardId();
  await writeFile(stateFile, JSON.stringify({ shardId: id }, null, 2) + '\n');
  return { id, reopened: false };
}

async function main(): Promise<void> {
  // 1. The location: opening it creates <dir>, <dir>/consensus.sqlite and <dir>/blob.
  const client = await PersistClient.open(`file:${dir}`);
  say(`opened file:${dir} (SQLite consensus + file blob)`);
  try {
    const { id, reopened } = await loadOrCreateShard();
    const writer = await client.openWriter(id, codecs, { purpose: 'demo writer' });
    let upper = await writer.fetchRecentUpper();
    say(
      reopened
        ? `reopened shard ${id} from ${path.basename(stateFile)}; its upper is ${upper}, so we continue from there`
        : `created shard ${id} (saved in ${path.basename(stateFile)}); its upper is ${upper}: nothing written yet`,
    );

    // A second writer that reads the upper now and then sits on it: it will go stale.
    const staleWriter = await client.openWriter(id, codecs, { purpose: 'stale writer' });
    const staleUpper = await staleWriter.fetchRecentUpper();

    // 2. Rounds of appends. Each round is one atomic write at time `upper`.
    const rounds: Fruit[][] = [
      [
        ['apple', null, 0, 3],
        ['banana', null, 0, 2],
      ],
      [
        ['apple', null, 0, -1],
        ['cherry', null, 0, 5],
      ],
    ];
    for (const round of rounds) {
      const updates = round.map(([k, v, , d]): Fruit => [k, v, upper, d]);
      const res = await writer.compareAndAppend(updates, upper, upper + 1);
      if (!res.ok) throw new Error(`unexpected mismatch: the shard is at ${res.current}`);
      say(`append at t=${upper} [${upper}, ${upper + 1}): ${describe(updates)} -> ok, upper is now ${upper + 1}`);
      upper += 1;
    }

    // 3. The stale writer still expects `staleUpper`. A mismatch is a value, not an exception.
    const late: Fruit[] = [['durian', null, staleUpper, 1]];
    const stale = await staleWriter.compareAndAppend(late, staleUpper, staleUpper + 1);
    if (stale.ok) throw new Error('the stale append should not have succeeded');
    say(`stale writer appends at [${staleUpper}, ${staleUpper + 1}) -> { ok: false, current: ${stale.current} }: nothing written`);
    const retry: Fruit[] = [['durian', null, stale.current, 1]];
    const retried = await staleWriter.compareAndAppend(retry, stale.current, stale.current + 1);
    say(`stale writer retries at [${stale.current}, ${stale.current + 1}) -> ${retried.ok ? 'ok' : 'mismatch again'}`);
    upper = await writer.fetchRecentUpper();

    // 4. Misuse throws a typed error whose message says how to fix the call.
    try {
      await writer.compareAndAppend([['elderberry', null, upper - 1, 1]], upper, upper + 1);
    } catch (err) {
      if (!(err instanceof InvalidUsage)) throw err;
      say(`an update below the append's lower throws ${err.name}: ${err.message}`);
    }

    // 5. A snapshot as of the last written time: consolidated, every update at asOf.
    const reader = await client.openLeasedReader(id, codecs, { purpose: 'demo snapshot' });
    const asOf = upper - 1;
    const snapshot = await reader.snapshotAndFetch(asOf);
    const contents = [...snapshot].sort(([a], [b]) => a.localeCompare(b)).map(([k, , , d]) => `${k} x${d}`);
    say(`snapshot as of t=${asOf}: ${contents.join(', ')}`);
    await reader.expire();

    // 6. A listen from asOf sees every later write, each batch followed by its progress.
    const listenReader = await client.openLeasedReader(id, codecs, { purpose: 'demo listen' });
    const listen = await listenReader.listen(asOf);
    const target = upper + 3;
    const appender = (async () => {
      const extra: [string, number][] = [
        ['banana', -1],
        ['fig', 4],
        ['apple', 1],
      ];
      for (const [fruit, diff] of extra) {
        await new Promise((r) => setTimeout(r, 150));
        const res = await writer.compareAndAppend([[fruit, null, upper, diff]], upper, upper + 1);
        if (!res.ok) throw new Error(`unexpected mismatch: the shard is at ${res.current}`);
        say(`  writer: appended ${describe([[fruit, null, upper, diff]])} at t=${upper}`);
        upper += 1;
      }
    })();
    say(`listening from t=${asOf} while a writer appends 3 more rounds:`);
    while (listen.frontier < target) {
      const events: ListenEvent<string, null>[] = await listen.next();
      for (const e of events) {
        if (e.kind === 'progress') say(`  listen: progress, upper=${e.upper} (every time below ${e.upper} is complete)`);
        else if (e.updates.length > 0) say(`  listen: updates ${describe(e.updates, true)}`);
      }
    }
    await appender;
    await listen.expire();

    await writer.expire();
    await staleWriter.expire();
    say(`done: the shard's upper is ${upper}; run the demo again to continue from there`);
  } finally {
    await client.close();
  }
}

await main();
