/**
 * MemBlob: an in-memory {@link Blob} backed by a Map, for tests and `mem://` locations.
 *
 * Invariants:
 * - Values are copied on `set` and on `get`, so no caller can mutate stored bytes.
 * - Without tombstones a delete forgets the entry; `restore` then throws.
 * - With `{ tombstone: true }` a delete only marks the entry dead: it is invisible to
 *   `get`, `delete` and listing, and `restore` brings it back with the same bytes. A
 *   later `set` replaces the tombstone with a live value.
 *
 * Example (tombstone mode):
 * ```ts
 * const b = new MemBlob({ tombstone: true });
 * await b.set('k', new Uint8Array([7]));
 * await b.delete('k');   // 1
 * await b.get('k');      // undefined
 * await b.restore('k');
 * await b.get('k');      // Uint8Array [7]
 * ```
 */
import type { Blob } from './blob.js';
import { copyBytes } from './bytes.js';
import { DeterminateError, LocationUsageError } from './errors.js';

/**
 * Options of {@link MemBlob}.
 *
 * Example:
 * ```ts
 * const blob = new MemBlob({ tombstone: true });
 * ```
 */
export interface MemBlobOptions {
  /** Deletes only mark entries dead so `restore` can undelete them. Default false. */
  tombstone?: boolean;
}

interface Entry {
  value: Uint8Array;
  live: boolean;
}

/**
 * An in-memory Blob over a Map, for tests and `mem://` locations; values are copied in and out.
 *
 * Example:
 * ```ts
 * const b = new MemBlob();
 * await b.set('k', Uint8Array.of(7));
 * await b.get('k');   // Uint8Array [7]
 * ```
 */
export class MemBlob implements Blob {
  private readonly entries = new Map<string, Entry>();
  private readonly tombstone: boolean;
  private closed = false;

  /**
   * An empty store.
   *
   * @param options `tombstone: true` keeps deleted values so `restore` can bring them back.
   */
  constructor(options: MemBlobOptions = {}) {
    this.tombstone = options.tombstone ?? false;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.checkOpen();
    const entry = this.entries.get(key);
    return entry?.live ? copyBytes(entry.value) : undefined;
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    this.checkOpen();
    this.entries.set(key, { value: copyBytes(value), live: true });
  }

  async delete(key: string): Promise<number | undefined> {
    this.checkOpen();
    const entry = this.entries.get(key);
    if (!entry?.live) return undefined;
    if (this.tombstone) entry.live = false;
    else this.entries.delete(key);
    return entry.value.byteLength;
  }

  async listKeysAndMetadata(prefix: string, fn: (key: string, sizeBytes: number) => void): Promise<void> {
    this.checkOpen();
    // Snapshot first: `fn` may call back into this blob, and a Map iterator would
    // then observe its own mutations.
    const live = [...this.entries].filter(([key, e]) => e.live && key.startsWith(prefix));
    for (const [key, entry] of live) fn(key, entry.value.byteLength);
  }

  async restore(key: string): Promise<void> {
    this.checkOpen();
    const entry = this.entries.get(key);
    if (entry === undefined) {
      throw new DeterminateError(`MemBlob: cannot restore ${JSON.stringify(key)}: it does not exist`);
    }
    // Only tombstone mode keeps dead entries, so a dead entry here is restorable.
    entry.live = true;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new LocationUsageError('MemBlob: used after close');
  }
}
