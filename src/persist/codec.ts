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
  readonly name: string;
  readonly schema?: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

export interface ShardCodecs<K, V> {
  readonly key: Codec<K>;
  readonly val: Codec<V>;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });
const EMPTY = new Uint8Array(0);

const stringCodec: Codec<string> = {
  name: 'string',
  encode(value) {
    if (typeof value !== 'string') throw new TypeError(`string codec: expected a string, got ${typeof value}`);
    return textEncoder.encode(value);
  },
  decode: (bytes) => textDecoder.decode(bytes),
};

const bytesCodec: Codec<Uint8Array> = {
  name: 'bytes',
  encode(value) {
    if (!(value instanceof Uint8Array)) throw new TypeError('bytes codec: expected a Uint8Array');
    return value;
  },
  decode: (bytes) => bytes,
};

/** The unit type: one value, `null`. Used for keys-only collections. */
const unitCodec: Codec<null> = {
  name: 'unit',
  encode(value) {
    if (value !== null && value !== undefined) throw new TypeError('unit codec: expected null');
    return EMPTY;
  },
  decode(bytes) {
    if (bytes.length !== 0) throw new TypeError(`unit codec: expected no bytes, got ${bytes.length}`);
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
    encode: (value) => textEncoder.encode(canonicalJson(value)),
    decode: (bytes) => JSON.parse(textDecoder.decode(bytes)) as T,
  };
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const key of Object.keys(v).sort()) sorted[key] = (v as Record<string, unknown>)[key];
      return sorted;
    }
    return v;
  });
}

export const Codecs = {
  string: stringCodec,
  bytes: bytesCodec,
  unit: unitCodec,
  json: jsonCodec,
} as const;

export function codecSchema(codec: Codec<unknown>): string {
  return codec.schema ?? codec.name;
}
