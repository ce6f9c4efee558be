/**
 * Blob: a linearizable key → bytes store (spec §1.7).
 *
 * Contract, shared by every backend and checked by the conformance suite
 * (`test/location/conformance.ts`):
 * - `get(key)` returns the bytes last set, or `undefined`.
 * - `set(key, value)` is atomic: a concurrent or later `get` sees either the old
 *   value or the whole new one, never a torn write. It may overwrite.
 * - `delete(key)` returns the deleted value's size (`0` for an empty value) when the
 *   key existed and `undefined` when it did not; a repeated delete returns `undefined`.
 * - `listKeysAndMetadata(prefix, fn)` calls `fn` once per live key starting with
 *   `prefix`, with its size in bytes.
 * - `restore(key)` succeeds iff the key exists afterwards (it already existed, or a
 *   backend in tombstone mode undeleted it); otherwise it throws a DeterminateError.
 *
 * Faults throw {@link DeterminateError} (it did not happen) or {@link IndeterminateError}
 * (it may have happened).
 *
 * Example:
 * ```ts
 * await blob.set('s1/p1', bytes);
 * await blob.get('s1/p1');          // bytes
 * await blob.delete('s1/p1');       // bytes.length
 * await blob.delete('s1/p1');       // undefined
 * ```
 */
export interface Blob {
  /** The bytes last set under `key`, or `undefined` when it has none (or was deleted). */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * Stores `value` under `key` atomically (readers see the old value or the whole new one); may
   * overwrite.
   */
  set(key: string, value: Uint8Array): Promise<void>;
  /**
   * Removes `key`: resolves with the size of the deleted value, or `undefined` when there was none
   * (so a repeat is safe).
   */
  delete(key: string): Promise<number | undefined>;
  /**
   * Calls `fn(key, sizeBytes)` once per live key that starts with `prefix` (GC uses it to find
   * unreferenced blobs).
   */
  listKeysAndMetadata(prefix: string, fn: (key: string, sizeBytes: number) => void): Promise<void>;
  /**
   * Makes sure `key` exists afterwards (undeleting a tombstone where the backend keeps them);
   * throws a DeterminateError when it cannot.
   */
  restore(key: string): Promise<void>;
  /** Releases handles (files, connections). Further calls are misuse. */
  close(): Promise<void>;
}
