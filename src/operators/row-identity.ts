/**
 * Row identity: a string that is equal for equal decoded keys / values, so
 * operators can consolidate and materialize without knowing the codecs.
 *
 * Invariants: `valueIdentity(a) === valueIdentity(b)` iff `a` and `b` are equal as
 * data: same primitive type and value, byte-equal Uint8Arrays, or plain objects and
 * arrays with equal members (object key order does not matter). `rowIdentity(k, v)`
 * combines two identities unambiguously (length-prefixed).
 *
 * Example:
 * ```
 * valueIdentity('7')                 → 's7'
 * valueIdentity(7)                   → 'n7'
 * valueIdentity({ b: 1, a: [2] })    === valueIdentity({ a: [2], b: 1 })
 * rowIdentity('a', null)             → '2:sa' + 'z'
 * ```
 */
import { bytesKey } from '../location/bytes.js';
import { InvalidUsage } from '../persist/errors.js';

export function valueIdentity(x: unknown): string {
  switch (typeof x) {
    case 'string':
      return 's' + x;
    case 'number':
      return 'n' + (Object.is(x, -0) ? '0' : String(x));
    case 'boolean':
      return x ? 't' : 'f';
    case 'bigint':
      return 'i' + x.toString();
    case 'undefined':
      return 'u';
    case 'object':
      if (x === null) return 'z';
      if (x instanceof Uint8Array) return 'b' + bytesKey(x);
      return 'j' + JSON.stringify(x, sortedReplacer);
    default:
      throw new InvalidUsage(`cannot tell ${typeof x} values apart as row data; keys and values must be data (strings, numbers, bytes, plain objects)`);
  }
}

export function rowIdentity(key: unknown, val: unknown): string {
  const k = valueIdentity(key);
  return `${k.length}:${k}${valueIdentity(val)}`;
}

function sortedReplacer(this: unknown, _key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) sorted[k] = (value as Record<string, unknown>)[k];
    return sorted;
  }
  return value;
}
