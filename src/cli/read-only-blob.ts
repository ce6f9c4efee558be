/**
 * ReadOnlyBlob: a {@link Blob} that passes reads through and refuses every write.
 *
 * The `txnwal` command promises not to change the store it inspects. Its own code
 * never writes, and wrapping the blob store makes that a property of construction,
 * not of care: a write reached by accident (a library path that would delete an
 * unreferenced blob, say) fails loudly instead of changing the store.
 *
 * Example:
 * ```ts
 * const blob = new ReadOnlyBlob(await FileBlob.open(dir));
 * await blob.get('s…/v1/…');      // bytes
 * await blob.set('k', bytes);     // throws LocationUsageError: read-only
 * ```
 */
import type { Blob } from '../location/blob.js';
import { LocationUsageError } from '../location/errors.js';

function refused(op: string, key: string): never {
  throw new LocationUsageError(`the txnwal command opened the blob store read-only: it refuses ${op} of ${JSON.stringify(key)}`);
}

/** Reads go to `inner`; `set`, `delete` and `restore` throw. */
export class ReadOnlyBlob implements Blob {
  constructor(private readonly inner: Blob) {}

  get(key: string): Promise<Uint8Array | undefined> {
    return this.inner.get(key);
  }
  listKeysAndMetadata(prefix: string, fn: (key: string, sizeBytes: number) => void): Promise<void> {
    return this.inner.listKeysAndMetadata(prefix, fn);
  }
  async set(key: string): Promise<void> {
    refused('set', key);
  }
  async delete(key: string): Promise<number | undefined> {
    refused('delete', key);
  }
  async restore(key: string): Promise<void> {
    refused('restore', key);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
