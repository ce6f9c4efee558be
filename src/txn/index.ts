export { DataSnapshot } from './data-snapshot.js';
export { DataRemapSubscription, type DataRemapEntry } from './data-remap.js';
export { Fenced, NotRegistered, NotRegisteredWithHandle, RegisteredWithAnotherTxnsShard } from './errors.js';
export { parseIdBatch, wrapIdBatch } from './id-batch.js';
export { TxnMetrics, TxnOpMetrics, type TxnOpName } from './metrics.js';
export { Tidy, type Retraction } from './tidy.js';
export { decodeTs, encodeTs } from './timestamp-bytes.js';
export { Txn, TxnApply, type CommitOutcome } from './txn.js';
export { TxnsCache, type TxnsCacheOptions } from './txns-cache.js';
export { TxnsCacheState, type DataListenNext, type TxnsRow, type Unapplied } from './txns-cache-state.js';
export { TxnsCodecDefault, appendEntry, entryTs, registerEntry, type TxnsCodec, type TxnsEntry } from './txns-codec.js';
export {
  TxnsHandle,
  type ForgetAllOutcome,
  type RegisterOutcome,
  type TxnsHandleOptions,
} from './txns-handle.js';
export { TxnsRead } from './txns-read.js';
export { TxnsProgress } from './txns-progress.js';
