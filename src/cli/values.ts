/**
 * How the `txnwal` command shows a collection's keys and values.
 *
 * A collection's data shard holds bytes encoded by the collection's codecs, whose
 * names the catalog records. The built-in codecs (`string`, `unit`, `json`, `bytes`)
 * decode here; a codec this program does not know (an application's own) shows its
 * raw bytes. In JSON output a decoded value is itself (a string, `null`, any JSON
 * value); bytes, and values of unknown codecs, are hex strings (`"0a1b…"`). In text
 * output every key and value is printed as JSON, so a space or a quote inside a
 * key never splits a column.
 *
 * Example:
 * ```ts
 * const decode = valueDecoder('string');
 * decode(new TextEncoder().encode('alice'));   // 'alice'
 * valueDecoder('my-protobuf')(bytes);          // '0a05616c696365'
 * ```
 */
import { builtInCodec } from '../db/collection.js';

/** A decoder from a collection's stored bytes to a JSON-ready value. */
export type ValueDecoder = (bytes: Uint8Array) => unknown;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** The decoder for values stored with the codec named `codecName` (see the module doc). */
export function valueDecoder(codecName: string): ValueDecoder {
  const codec = codecName === 'bytes' ? undefined : builtInCodec(codecName);
  if (!codec) return hex;
  return (bytes) => codec.decode(bytes);
}

/** A value as one token of a text line: its JSON form. */
export function showValue(value: unknown): string {
  return JSON.stringify(value) ?? 'undefined';
}
