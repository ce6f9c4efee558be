/**
 * The storage layer: Blob and Consensus, their backends, and Location URLs that open a
 * matching pair. Everything above this layer (persist, txn-wal) talks to storage only
 * through these interfaces and the error classes in `errors.ts`.
 *
 * An explicit list: what the layers above and the two public entry points use.
 */
export type { Blob } from './blob.js';
export { bufferView, bytesKey, copyBytes, plainBytes } from './bytes.js';
export {
  SCAN_ALL,
  checkCompareAndSetArgs,
  checkScanArgs,
  checkSeqNo,
  checkTruncateTarget,
  type CaSResult,
  type Consensus,
  type SeqNo,
  type VersionedData,
} from './consensus.js';
export { DeterminateError, ExternalError, IndeterminateError, LocationUsageError, describeError, mayHaveHappened } from './errors.js';
export {
  FAULT_KINDS,
  FaultInjectingBlob,
  FaultInjectingConsensus,
  FaultInjector,
  READ_METHODS,
  seededRandom,
  withFaultInjection,
  type BlobMethod,
  type ConsensusMethod,
  type FaultCall,
  type FaultCounts,
  type FaultInjectingLocation,
  type FaultInjectionOptions,
  type FaultKind,
  type FaultRates,
  type StoreMethod,
} from './fault-injection.js';
export { DEFAULT_DIR_MODE, DEFAULT_FILE_MODE, FileBlob, type FileBlobOptions } from './file-blob.js';
export { fileUrlDir, openLocation, type Location, type LocationOptions } from './location.js';
export { MemBlob, type MemBlobOptions } from './mem-blob.js';
export { MemConsensus } from './mem-consensus.js';
export { PostgresConsensus, type PostgresConsensusOptions } from './postgres-consensus.js';
export { redactUrl } from './redact-url.js';
export { S3Blob, type S3BlobOptions } from './s3-blob.js';
export { parseS3Url } from './s3-url.js';
export { SqliteConsensus, type SqliteConsensusOptions } from './sqlite-consensus.js';
export { LocalStateChanges, Watchers, type StateChangeCallback, type StateChanges } from './state-changes.js';
export { SocketStateChanges, wakeSocketPath, type SocketStateChangesOptions } from './socket-state-changes.js';
export { PostgresStateChanges, STATE_CHANGES_CHANNEL, type PostgresStateChangesOptions } from './postgres-state-changes.js';
