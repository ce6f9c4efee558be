/**
 * The RxJS surface in one short program (`npm run example:rx`), on `mem://`:
 *  1. two registered data shards; a `txnSink` commits a stream of transactions;
 *  2. `dataSubscribe$` reads a shard with logical progress; `collectUntil` takes
 *     everything below a time, `materialize` the contents per frontier;
 *  3. `mergeFrontiers` reads both shards at one frontier; `consolidate` tidies each
 *     window; `toAsyncIterable` pulls a stream with `for await`;
 *  4. `shardSubscribe$` shows the physical shard: it lags the logical view.
 */
import { firstValueFrom, filter, from, lastValueFrom, toArray } from 'rxjs';
import {
  Codecs,
  PersistClient,
  TxnsHandle,
  collectUntil,
  consolidate,
  dataSubscribe$,
  materialize,
  mergeFrontiers,
  newShardId,
  shardSubscribe$,
  toAsyncIterable,
  txnSink,
  type SinkTxn,
} from '../src/index.js';
import { cliArgs } from './cli.js';

cliArgs(
  `
usage: npm run example:rx

The RxJS surface of the layers below the front door in one short program on mem://:
txnSink, dataSubscribe$, collectUntil, materialize, mergeFrontiers, consolidate,
toAsyncIterable and shardSubscribe$. It takes no options.
`,
  {},
);

const codecs = { key: Codecs.string, val: Codecs.unit };
const client = await PersistClient.open('mem://');
const txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs });
const [fruit, veg] = [newShardId(), newShardId()];
await txns.register(1, [await client.openWriter(fruit, codecs), await client.openWriter(veg, codecs)]);

// 1. A stream of transactions, each committed atomically, acked in order.
const input: SinkTxn<string, null>[] = [
  [[fruit, 'apple', null, 3], [veg, 'leek', null, 1]],
  [[fruit, 'apple', null, -1], [fruit, 'pear', null, 2]],
  [[veg, 'leek', null, 2]],
];
const acks = await lastValueFrom(from(input).pipe(txnSink(txns), toArray()));
const last = acks.at(-1)!.commitTs;
console.log('acks', acks.map((a) => a.commitTs).join(' '));

// 2. Logical reads of one shard.
const below = await firstValueFrom(dataSubscribe$(client, txns.txnsId, fruit, { codecs, asOf: 1 }).pipe(collectUntil(last + 1)));
console.log('fruit updates', JSON.stringify(below));
const view = await firstValueFrom(
  dataSubscribe$(client, txns.txnsId, fruit, { codecs, asOf: last }).pipe(materialize(), filter((v) => v.upper > last)),
);
console.log('fruit now', JSON.stringify(view.toArray()));

// 3. Both shards at one frontier, one consolidated window at a time, pulled.
const both = mergeFrontiers([fruit, veg].map((id) => dataSubscribe$(client, txns.txnsId, id, { codecs, asOf: last }))).pipe(consolidate());
for await (const ev of toAsyncIterable(both)) {
  console.log('both', JSON.stringify(ev));
  if (ev.kind === 'progress') break; // leaving the loop releases every reader
}

// 4. The physical veg shard: its upper moves only when veg is written (or a read
// fills it), so it lags the logical progress above. (Each reader let the shard
// compact what it read, so this one starts at `last`, not at 1.)
const physical = await firstValueFrom(shardSubscribe$(client, veg, codecs, { asOf: last }).pipe(filter((e) => e.kind === 'progress')));
console.log('veg physical progress', JSON.stringify(physical));

await txns.close();
await client.close();
