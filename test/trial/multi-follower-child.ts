/**
 * The follower "machine" of the multi-machine trial (multi-machine.ts): its own process
 * and client on the shared Postgres + S3 location, following every data shard with
 * `dataSubscribe$` from `asOf`. Usage:
 *
 *   multi-follower-child.ts <location> <txnsId> <dataIds,comma,separated> <asOf>
 *
 * Events, one JSON line each (synchronous writes, in the order the streams emitted):
 *   {"event":"ready"}                                   every subscription is open
 *   {"event":"updates","shard":…,"rows":[[key,ts,diff],…]}
 *   {"event":"progress","shard":…,"upper":…}
 *   {"event":"error","shard":…,"error":…}
 * It unsubscribes, closes its client and exits 0 when its stdin closes.
 */
import { writeSync } from 'node:fs';
import type { Subscription } from 'rxjs';
import { dataSubscribe$ } from '../../src/operators/data-subscribe.js';
import { PersistClient } from '../../src/persist/client.js';
import type { ShardId } from '../../src/persist/shard-id.js';
import { STRING_UNIT } from '../support/persist.js';
import { MULTI_TRIAL_CONFIG } from './multi-machine-config.js';

function emit(event: Record<string, unknown>): void {
  writeSync(1, JSON.stringify(event) + '\n');
}

const [location, txnsId, dataArg, asOfArg] = process.argv.slice(2);
const client = await PersistClient.open(location!, { config: MULTI_TRIAL_CONFIG });
const subscriptions: Subscription[] = [];
for (const shard of dataArg!.split(',') as ShardId[]) {
  subscriptions.push(
    dataSubscribe$(client, txnsId as ShardId, shard, { codecs: STRING_UNIT, asOf: Number(asOfArg) }).subscribe({
      next: (ev) => {
        if (ev.kind === 'updates') emit({ event: 'updates', shard, rows: ev.updates.map(([k, , t, d]) => [k, t, d]) });
        else emit({ event: 'progress', shard, upper: ev.upper });
      },
      error: (err: unknown) => emit({ event: 'error', shard, error: String(err) }),
    }),
  );
}
emit({ event: 'ready' });
process.stdin.on('end', () => {
  for (const s of subscriptions) s.unsubscribe();
  void client.close().finally(() => process.exit(0));
});
process.stdin.resume();
