export { txnSink, type SinkTxn, type SinkWrite, type TxnAck, type TxnSinkOptions } from './txn-sink.js';
