/**
 * What every handle on a shard shares within one client: the shard's machine, its
 * storage and the configuration.
 */
import type { Blob } from '../location/blob.js';
import { codecSchema, type ShardCodecs } from './codec.js';
import type { PersistConfig } from './config.js';
import type { Machine } from './machine.js';
import { registerSchema } from './state-commands.js';

export interface ShardContext<K, V> {
  readonly shardId: string;
  readonly machine: Machine;
  readonly blob: Blob;
  readonly cfg: PersistConfig;
  readonly codecs: ShardCodecs<K, V>;
}

/** Registers the codecs' key/value schemas in the shard's registry (idempotent) and returns the id. */
export async function registerCodecSchemas<K, V>(ctx: ShardContext<K, V>): Promise<number> {
  const keySchema = codecSchema(ctx.codecs.key);
  const valSchema = codecSchema(ctx.codecs.val);
  const { result } = await ctx.machine.apply('register_schema', (s) => registerSchema(s, keySchema, valSchema), {
    confirmNoop: false,
  });
  return result;
}
