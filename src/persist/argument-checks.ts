/**
 * Argument checks shared by the public entry points.
 *
 * Every check throws {@link InvalidArgument} (an InvalidUsage) before anything is
 * written or consumed, with a message of the form
 * `<what> must be <allowed>, got <describeValue(value)>`, so a caller can tell which
 * argument was wrong, what it was, and what to pass instead.
 */
import type { Codec, ShardCodecs } from './codec.js';
import { describeValue } from './describe-value.js';
import { InvalidArgument } from './errors.js';
import type { Opaque } from './opaque.js';

export function invalidArgument(what: string, allowed: string, got: unknown): InvalidArgument {
  return new InvalidArgument(`${what} must be ${allowed}, got ${describeValue(got)}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An options argument: `undefined` (no options) or an object. */
export function optionsObject<T extends object>(v: T | undefined, what: string): Partial<T> {
  if (v === undefined) return {};
  if (!isObject(v)) throw invalidArgument(what, 'an options object (or omitted)', v);
  return v;
}

export function optionalBoolean(v: unknown, what: string): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v;
  throw invalidArgument(what, 'true or false (or omitted)', v);
}

export function checkBoolean(v: unknown, what: string): boolean {
  if (typeof v === 'boolean') return v;
  throw invalidArgument(what, 'true or false', v);
}

export function optionalString(v: unknown, what: string): string | undefined {
  if (v === undefined || typeof v === 'string') return v;
  throw invalidArgument(what, 'a string (or omitted)', v);
}

export function checkFunction(v: unknown, what: string): void {
  if (typeof v !== 'function') throw invalidArgument(what, 'a function', v);
}

export interface NumberRange {
  /** Whether fractions are allowed (default: integers only). */
  fractional?: boolean;
  min?: number;
  max?: number;
  /** Whether `min` itself is excluded (default false). */
  minExclusive?: boolean;
}

function describeRange(r: NumberRange): string {
  const kind = r.fractional ? 'a finite number' : 'a safe integer';
  const bounds: string[] = [];
  if (r.min !== undefined) bounds.push(`${r.minExclusive ? '>' : '>='} ${r.min}`);
  if (r.max !== undefined) bounds.push(`<= ${r.max}`);
  return bounds.length > 0 ? `${kind} ${bounds.join(' and ')}` : kind;
}

/** A finite number (an integer unless `fractional`) within the range. */
export function checkNumber(v: unknown, what: string, range: NumberRange = {}): number {
  const ok =
    typeof v === 'number' &&
    (range.fractional ? Number.isFinite(v) : Number.isSafeInteger(v)) &&
    (range.min === undefined || (range.minExclusive ? v > range.min : v >= range.min)) &&
    (range.max === undefined || v <= range.max);
  if (!ok) throw invalidArgument(what, describeRange(range), v);
  return v as number;
}

export function optionalNumber(v: unknown, what: string, range: NumberRange = {}): number | undefined {
  if (v === undefined) return undefined;
  return checkNumber(v, `${what} (optional)`, range);
}

function checkCodec(v: unknown, what: string): void {
  if (!isObject(v)) throw invalidArgument(what, 'a codec ({ name, encode, decode }, e.g. Codecs.string)', v);
  const c = v as Partial<Codec<unknown>>;
  if (typeof c.name !== 'string' || c.name === '') throw invalidArgument(`${what}.name`, 'a non-empty string', c.name);
  if (c.schema !== undefined && typeof c.schema !== 'string') {
    throw invalidArgument(`${what}.schema`, 'a string (or omitted)', c.schema);
  }
  checkFunction(c.encode, `${what}.encode`);
  checkFunction(c.decode, `${what}.decode`);
}

/** `{ key, val }` codecs, each `{ name, encode, decode, schema? }`. */
export function checkCodecs(v: unknown, what = 'codecs'): asserts v is ShardCodecs<unknown, unknown> {
  if (!isObject(v)) {
    throw invalidArgument(what, 'an object { key, val } of codecs (e.g. { key: Codecs.string, val: Codecs.unit })', v);
  }
  checkCodec(v.key, `${what}.key`);
  checkCodec(v.val, `${what}.val`);
}

/** An iterable (array, Set, generator…), turned into an array. */
export function arrayOf<T>(v: Iterable<T>, what: string): T[] {
  if (Array.isArray(v)) return v as T[];
  if (v !== null && v !== undefined && typeof (v as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function' && typeof v !== 'string') {
    return [...v];
  }
  throw invalidArgument(what, 'an array (or another iterable)', v);
}

/** A fencing token `{ codec, bytes }` (e.g. `Opaque.u64(0)`). */
export function checkOpaque(v: unknown, what: string): Opaque {
  const o = v as Partial<Opaque> | null;
  if (typeof o !== 'object' || o === null || typeof o.codec !== 'string' || !(o.bytes instanceof Uint8Array)) {
    throw invalidArgument(what, 'an Opaque (e.g. Opaque.u64(0))', v);
  }
  return o as Opaque;
}
