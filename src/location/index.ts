/**
 * The storage layer: Blob and Consensus, their backends, and Location URLs that open a
 * matching pair. Everything above this layer (persist, txn-wal) talks to storage only
 * through these interfaces and the error classes in `errors.ts`.
 */
export * from './blob.js';
export * from './bytes.js';
export * from './consensus.js';
export * from './errors.js';
export * from './file-blob.js';
export * from './location.js';
export * from './mem-blob.js';
export * from './mem-consensus.js';
export * from './postgres-consensus.js';
export * from './redact-url.js';
export * from './sqlite-consensus.js';
