/**
 * What every handle on a shard shares within one client: the shard's machine, its
 * storage and the configuration.
 */
import type { Blob } from '../location/blob.js';
import type { ShardCodecs } from './codec.js';
import type { PersistConfig } from './config.js';
import type { Machine } from './machine.js';

export interface ShardContext<K, V> {
  readonly shardId: string;
  readonly machine: Machine;
  readonly blob: Blob;
  readonly cfg: PersistConfig;
  readonly codecs: ShardCodecs<K, V>;
}
