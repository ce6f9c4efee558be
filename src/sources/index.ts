export { shardListen$, shardSubscribe$, type ShardEvent, type ShardSourceOptions } from './shard-source.js';
