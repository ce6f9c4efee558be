/**
 * Codecs turn keys and values into bytes and back.
 *
 * A shard durably records the `name` of the key and value codecs it was created
 * with; opening it with differently named codecs fails with CodecMismatch. `schema`
 * (default: the name) is what the shard's schema registry records for a writer; two
 * codecs with one name but different schemas may share a shard (a schema change),
 * two codecs with different names may not.
 *
 * `decode(encode(x))` must equal `x`, and equal values must encode to equal bytes:
 * consolidation compares encoded bytes.
 *
 * Example:
 * ```ts
 * const w = await client.openWriter(id, { key: Codecs.string, val: Codecs.unit });
 * await w.compareAndAppend([['apple', null, 0, 1]], 0, 1);
 * ```
 */
export interface Codec<T> {
  /** Recorded durably with the shard; opening it with codecs of another name throws CodecMismatch. */
  readonly name: string;
  /**
   * What the shard's schema registry records for a writer (default: `name`); a new schema under the
   * same name is a schema change.
   */
  readonly schema?: string;
  /** The bytes of `value`; equal values must encode to equal bytes (consolidation compares bytes). */
  encode(value: T): Uint8Array;
  /** The value back from its bytes: `decode(encode(x))` equals `x`. */
  decode(bytes: Uint8Array): T;
  /**
   * Optional: the value whose bytes are `data[start, end)`, as `decode(data.subarray(start, end))`
   * but without making the view. Readers decode a stored part's columns with it when it is
   * there (one object fewer per key and per value); the built-in codecs have it.
   */
  decodeFrom?(data: Uint8Array, start: number, end: number): T;
}

/**
 * The key and value codecs of a shard: what every handle on it is opened with.
 *
 * Example:
 * ```ts
 * const codecs: ShardCodecs<string, null> = { key: Codecs.string, val: Codecs.unit };
 * const w = await client.openWriter(newShardId(), codecs);
 * ```
 */
export interface ShardCodecs<K, V> {
  /** Encodes the keys. */
  readonly key: Codec<K>;
  /** Encodes the values. */
  readonly val: Codec<V>;
}

import { describeValue } from './describe-value.js';
import { InvalidArgument } from './errors.js';

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });
const EMPTY = new Uint8Array(0);
// Native, and works on any Uint8Array: a string of one char per byte, no view needed.
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;

const fromCharCode = String.fromCharCode;

/**
 * A short ASCII string from its `n` bytes at `data[s]`, one function per length up
 * to 16: a call to String.fromCharCode with the bytes as arguments makes one flat
 * string in JavaScript, about 40 ns for an 8- or 13-byte key against about 90 for a
 * call into `latin1Slice`, and most keys are short.
 */
const SHORT_ASCII: readonly ((d: Uint8Array, s: number) => string)[] = [
  () => '',
  (d, s) => fromCharCode(d[s]!),
  (d, s) => fromCharCode(d[s]!, d[s + 1]!),
  (d, s) => fromCharCode(d[s]!, d[s + 1]!, d[s + 2]!),
  (d, s) => fromCharCode(d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!),
  (d, s) => fromCharCode(d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!),
  (d, s) => fromCharCode(d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!, d[s + 5]!),
  (d, s) => fromCharCode(d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!, d[s + 5]!, d[s + 6]!),
  (d, s) => fromCharCode(d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!, d[s + 5]!, d[s + 6]!, d[s + 7]!),
  (d, s) =>
    fromCharCode(
      d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!, d[s + 5]!, d[s + 6]!, d[s + 7]!,
      d[s + 8]!,
    ),
  (d, s) =>
    fromCharCode(
      d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!, d[s + 5]!, d[s + 6]!, d[s + 7]!,
      d[s + 8]!, d[s + 9]!,
    ),
  (d, s) =>
    fromCharCode(
      d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!, d[s + 5]!, d[s + 6]!, d[s + 7]!,
      d[s + 8]!, d[s + 9]!, d[s + 10]!,
    ),
  (d, s) =>
    fromCharCode(
      d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!, d[s + 5]!, d[s + 6]!, d[s + 7]!,
      d[s + 8]!, d[s + 9]!, d[s + 10]!, d[s + 11]!,
    ),
  (d, s) =>
    fromCharCode(
      d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!, d[s + 5]!, d[s + 6]!, d[s + 7]!,
      d[s + 8]!, d[s + 9]!, d[s + 10]!, d[s + 11]!, d[s + 12]!,
    ),
  (d, s) =>
    fromCharCode(
      d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!, d[s + 5]!, d[s + 6]!, d[s + 7]!,
      d[s + 8]!, d[s + 9]!, d[s + 10]!, d[s + 11]!, d[s + 12]!, d[s + 13]!,
    ),
  (d, s) =>
    fromCharCode(
      d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!, d[s + 5]!, d[s + 6]!, d[s + 7]!,
      d[s + 8]!, d[s + 9]!, d[s + 10]!, d[s + 11]!, d[s + 12]!, d[s + 13]!, d[s + 14]!,
    ),
  (d, s) =>
    fromCharCode(
      d[s]!, d[s + 1]!, d[s + 2]!, d[s + 3]!, d[s + 4]!, d[s + 5]!, d[s + 6]!, d[s + 7]!,
      d[s + 8]!, d[s + 9]!, d[s + 10]!, d[s + 11]!, d[s + 12]!, d[s + 13]!, d[s + 14]!, d[s + 15]!,
    ),
];

/** UTF-8 `data[start, end)` as a string: ASCII (the common case) without a view; anything else validated. */
function utf8From(data: Uint8Array, start: number, end: number): string {
  let seen = 0;
  for (let i = start; i < end; i++) seen |= data[i]!;
  if (seen >= 0x80) return textDecoder.decode(data.subarray(start, end));
  const n = end - start;
  return n < SHORT_ASCII.length ? SHORT_ASCII[n]!(data, start) : latin1Slice.call(data, start, end);
}

/**
 * Strings up to this many code units are tried as ASCII in JavaScript first; longer
 * ones go to encodeInto, which is faster per byte.
 */
const SHORT_STRING = 64;

/**
 * Writes `value`'s UTF-8 bytes (exactly what `Codecs.string.encode` returns) into
 * `dst` at `at` and returns how many it wrote. `dst` must have room for the worst
 * case, `value.length * 3` bytes from `at` ({@link utf8Capacity}).
 *
 * A short ASCII string is its own UTF-8: copying its code units costs less than the
 * call into encodeInto and the view and result object that call needs. The first code
 * unit past ASCII hands the whole string to encodeInto, which overwrites what the loop
 * wrote.
 */
export function writeUtf8(value: string, dst: Uint8Array, at: number): number {
  const n = value.length;
  if (n <= SHORT_STRING) {
    let i = 0;
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) break;
      dst[at + i] = c;
    }
    if (i === n) return n;
  }
  return textEncoder.encodeInto(value, dst.subarray(at)).written;
}

/** The room {@link writeUtf8} needs for `value`: UTF-8 takes at most 3 bytes per UTF-16 code unit. */
export function utf8Capacity(value: string): number {
  return value.length * 3;
}

const stringCodec: Codec<string> = {
  name: 'string',
  encode(value) {
    if (typeof value !== 'string') throw new InvalidArgument(`Codecs.string: a value must be a string, got ${describeValue(value)}`);
    return textEncoder.encode(value);
  },
  decode: (bytes) => textDecoder.decode(bytes),
  decodeFrom: utf8From,
};

const bytesCodec: Codec<Uint8Array> = {
  name: 'bytes',
  encode(value) {
    if (!(value instanceof Uint8Array)) {
      throw new InvalidArgument(`Codecs.bytes: a value must be a Uint8Array, got ${describeValue(value)}`);
    }
    return value;
  },
  decode: (bytes) => bytes,
  decodeFrom: (data, start, end) => data.subarray(start, end),
};

/** The unit type: one value, `null`. Used for keys-only collections. */
const unitCodec: Codec<null> = {
  name: 'unit',
  encode(value) {
    if (value !== null && value !== undefined) {
      throw new InvalidArgument(`Codecs.unit: the value must be null, got ${describeValue(value)}`);
    }
    return EMPTY;
  },
  decode(bytes) {
    if (bytes.length !== 0) throw new TypeError(`unit codec: expected no bytes, got ${bytes.length}`);
    return null;
  },
  decodeFrom(_data, start, end) {
    if (end !== start) throw new TypeError(`unit codec: expected no bytes, got ${end - start}`);
    return null;
  },
};

/**
 * JSON with canonical (sorted) object keys, so equal values encode to equal bytes
 * whatever order their properties were created in.
 */
function jsonCodec<T = unknown>(name = 'json'): Codec<T> {
  return {
    name,
    encode: (value) => textEncoder.encode(canonicalJson(value, name)),
    decode: (bytes) => JSON.parse(textDecoder.decode(bytes)) as T,
    decodeFrom: (data, start, end) => JSON.parse(utf8From(data, start, end)) as T,
  };
}

/**
 * Values JSON cannot carry are refused rather than changed: a bigint (JSON.stringify
 * throws a TypeError), NaN and ±Infinity (they would come back as null), a cycle,
 * and a top-level undefined, function or symbol (no JSON at all). Object keys are
 * sorted, so equal values encode to equal bytes.
 */
function canonicalJson(value: unknown, name: string): string {
  const text = JSON.stringify(canonical(value, name, 'a value', new Set()));
  if (text === undefined) throw refuse(name, 'a value', value);
  return text;
}

function refuse(name: string, where: string, v: unknown, why = ''): InvalidArgument {
  return new InvalidArgument(
    `Codecs.json (${name}): cannot encode ${where} ${describeValue(v)}${why}; JSON holds null, booleans, finite ` +
      'numbers, strings, arrays and plain objects (encode a bigint as a string or a number first)',
  );
}

/** `v` as JSON.stringify would see it (after toJSON), with object keys sorted. */
function canonical(v: unknown, name: string, where: string, ancestors: Set<object>): unknown {
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    v = (v as { toJSON(): unknown }).toJSON();
  }
  if (typeof v === 'bigint') throw refuse(name, where, v);
  if (typeof v === 'number' && !Number.isFinite(v)) throw refuse(name, where, v);
  if (v === null || typeof v !== 'object') return v;
  if (ancestors.has(v)) throw refuse(name, where, v, ' that contains itself (a cycle)');
  ancestors.add(v);
  try {
    if (Array.isArray(v)) return v.map((item, i) => canonical(item, name, `item ${i}, which is`, ancestors));
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) {
      sorted[key] = canonical((v as Record<string, unknown>)[key], name, `field ${JSON.stringify(key)}, which is`, ancestors);
    }
    return sorted;
  } finally {
    ancestors.delete(v);
  }
}

/**
 * The built-in codecs: `string`, `bytes`, `unit` (`null`, for keys-only collections) and
 * `json(name?)` (canonical JSON).
 *
 * Example:
 * ```ts
 * await client.openWriter(id, { key: Codecs.json<{ id: number }>('order'), val: Codecs.unit });
 * ```
 */
export const Codecs = {
  /** UTF-8 strings (name `string`). */
  string: stringCodec,
  /** Raw bytes, passed through (name `bytes`). */
  bytes: bytesCodec,
  /** The one value `null`, as no bytes (name `unit`). */
  unit: unitCodec,
  /**
   * `json(name = 'json')`: JSON with sorted object keys, refusing what JSON cannot carry (bigint,
   * NaN, cycles); `name` tells apart shards of different JSON types.
   */
  json: jsonCodec,
} as const;

export function codecSchema(codec: Codec<unknown>): string {
  return codec.schema ?? codec.name;
}
