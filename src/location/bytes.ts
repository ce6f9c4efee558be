/**
 * Byte-array conversions shared by the storage backends, and {@link bytesKey}, the
 * one way every layer keys a Map or Set by bytes.
 *
 * Invariants:
 * - Every backend hands out plain `Uint8Array`s, never Node `Buffer`s, so callers see
 *   the same type (same `toString`, same `slice` semantics, same chai deep-equality)
 *   whichever backend is behind a Location. Drivers (fs, better-sqlite3, pg) return
 *   Buffers; {@link plainBytes} re-views them without copying.
 * - Drivers want Buffers on the way in; {@link bufferView} re-views without copying.
 * - The in-memory backends {@link copyBytes} on the way in and out, because a caller
 *   mutating its array after `set` must not change what is stored (a real store
 *   would have serialized the bytes already).
 * - `bytesKey(a) === bytesKey(b)` iff `a` and `b` hold the same bytes, and
 *   `bytesKey(a).length === a.byteLength` (see {@link bytesKey} for why).
 *
 * Example:
 * ```ts
 * const b = Buffer.from([1, 2, 3]);
 * plainBytes(b);                 // Uint8Array [1, 2, 3], same memory as b
 * bufferView(new Uint8Array(2)); // <Buffer 00 00>, same memory
 * bytesKey(Uint8Array.of(0x61, 0xff)) === 'a\u00ff'
 * ```
 */

/**
 * A plain Uint8Array over the same memory as `bytes` (a no-op for a plain Uint8Array).
 *
 * Example:
 * ```ts
 * const row = stmt.get(key) as { data: Buffer };
 * return plainBytes(row.data);   // a Uint8Array, not a Buffer, over the same memory
 * ```
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  if (Object.getPrototypeOf(bytes) === Uint8Array.prototype) return bytes;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A Buffer over the same memory as `bytes` (drivers only accept Buffers reliably).
 *
 * Example:
 * ```ts
 * await fs.writeFile(file, bufferView(value));   // no copy
 * ```
 */
export function bufferView(bytes: Uint8Array): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A fresh plain Uint8Array holding a copy of `bytes`.
 *
 * Example:
 * ```ts
 * this.entries.set(key, copyBytes(value));   // the caller may reuse `value` afterwards
 * ```
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/**
 * A string equal for byte-equal arrays, so bytes can key a Map or Set (which compare
 * Uint8Arrays by reference).
 *
 * Node's latin1 decoding maps byte `n` to the one UTF-16 code unit `n` (0x00–0xff,
 * including 0x80–0x9f, unlike the WHATWG "latin1" label, which is windows-1252). So
 * the string has exactly one code unit per byte and decoding it is a bijection: no
 * byte sequence is invalid, replaced or normalized, as it would be with UTF-8, and
 * distinct bytes never share a key. Because the length is the byte count, a key
 * built from several arrays is unambiguous when all but the last have a known or
 * prefixed length.
 *
 *
 * Example:
 * ```ts
 * const seen = new Set<string>();
 * seen.add(bytesKey(Uint8Array.of(1, 2)));
 * seen.has(bytesKey(Uint8Array.of(1, 2)));   // true
 * ```
 */
export function bytesKey(bytes: Uint8Array): string {
  return bufferView(bytes).toString('latin1');
}
