/**
 * txnwal: atomic transactions across many durable, timestamped shards.
 *
 * This barrel is the public surface. Layers (each imports only from those below):
 * location (Blob, Consensus) → persist (shards, handles) → txn (txn-wal) →
 * sources (shard Observables) → operators (dataSubscribe and frontier-aware helpers)
 * → sinks (txnSink).
 */
export * from './location/index.js';
export * from './persist/index.js';
export * from './txn/index.js';
export * from './coord/index.js';
export * from './sources/index.js';
export * from './operators/index.js';
export * from './sinks/index.js';
