/**
 * A test-only Location wrapper that fails chosen Blob and Consensus calls on demand.
 *
 * `arm(method, { mode, count, when })` makes the next `count` calls of `method` that
 * match `when` fail:
 * - `'before'`: throw a DeterminateError without calling the store (it did not happen);
 * - `'after'`: do the call, then throw an IndeterminateError (it happened, but the
 *   reply was lost).
 * Calls that are not armed go straight to the wrapped store. `onFault` runs when a
 * fault fires, so a test can arm the next fault exactly after the first one (e.g. "the
 * CaS lands, then every re-read fails").
 *
 * (The public, seeded fault-injection harness lives elsewhere; this one only needs to
 * be precise about which call fails.)
 *
 * Example:
 * ```ts
 * const flaky = await FlakyLocation.mem();
 * flaky.arm('compareAndSet', { mode: 'after', when: (key) => key === shardId });
 * const client = await PersistClient.open(flaky);
 * ```
 */
import type { Blob } from '../../src/location/blob.js';
import type { CaSResult, Consensus, SeqNo, VersionedData } from '../../src/location/consensus.js';
import { DeterminateError, IndeterminateError } from '../../src/location/errors.js';
import { openLocation, type Location } from '../../src/location/location.js';
import { PersistClient } from '../../src/persist/client.js';
import type { PersistConfig } from '../../src/persist/config.js';

type BlobMethod = 'get' | 'set' | 'delete' | 'listKeysAndMetadata' | 'restore';
type ConsensusMethod = 'head' | 'compareAndSet' | 'scan' | 'truncate' | 'listKeys';
export type FlakyMethod = BlobMethod | ConsensusMethod;

export interface FaultSpec {
  mode: 'before' | 'after';
  /** How many matching calls fail (default 1). */
  count?: number;
  /** Only calls whose arguments match fail (default: every call). */
  when?: (...args: never[]) => boolean;
  /** Runs each time this fault fires, before the error is thrown. */
  onFault?: () => void;
}

interface Armed extends FaultSpec {
  left: number;
}

export class FlakyLocation implements Location {
  readonly blob: Blob;
  readonly consensus: Consensus;
  private readonly armed = new Map<FlakyMethod, Armed[]>();
  /** How many faults fired, per method. */
  readonly fired = new Map<FlakyMethod, number>();

  constructor(private readonly inner: Location) {
    const b = inner.blob;
    const c = inner.consensus;
    this.blob = {
      get: (key: string) => this.call('get', [key], () => b.get(key)),
      set: (key: string, value: Uint8Array) => this.call('set', [key, value], () => b.set(key, value)),
      delete: (key: string) => this.call('delete', [key], () => b.delete(key)),
      listKeysAndMetadata: (prefix: string, fn: (key: string, sizeBytes: number) => void) =>
        this.call('listKeysAndMetadata', [prefix], () => b.listKeysAndMetadata(prefix, fn)),
      restore: (key: string) => this.call('restore', [key], () => b.restore(key)),
      close: () => b.close(),
    };
    this.consensus = {
      head: (key: string) => this.call('head', [key], () => c.head(key)),
      compareAndSet: (key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult> =>
        this.call('compareAndSet', [key, expected, next], () => c.compareAndSet(key, expected, next)),
      scan: (key: string, from: SeqNo, limit: number) => this.call('scan', [key, from, limit], () => c.scan(key, from, limit)),
      truncate: (key: string, seqno: SeqNo) => this.call('truncate', [key, seqno], () => c.truncate(key, seqno)),
      listKeys: () => this.call('listKeys', [], () => c.listKeys()),
      close: () => c.close(),
    };
  }

  /** A flaky wrapper around a fresh private in-memory location. */
  static async mem(): Promise<FlakyLocation> {
    return new FlakyLocation(await openLocation('mem://'));
  }

  get url(): string {
    return this.inner.url;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Makes the next matching calls of `method` fail; see the module comment. */
  arm(method: FlakyMethod, spec: FaultSpec): void {
    const list = this.armed.get(method) ?? [];
    list.push({ ...spec, left: spec.count ?? 1 });
    this.armed.set(method, list);
  }

  /** Removes every armed fault. */
  disarm(): void {
    this.armed.clear();
  }

  private async call<T>(method: FlakyMethod, args: unknown[], op: () => Promise<T>): Promise<T> {
    const list = this.armed.get(method);
    const fault = list?.find((a) => a.left > 0 && (!a.when || (a.when as (...a: unknown[]) => boolean)(...args)));
    if (!fault) return op();
    fault.left--;
    this.fired.set(method, (this.fired.get(method) ?? 0) + 1);
    fault.onFault?.();
    if (fault.mode === 'before') throw new DeterminateError(`injected: ${method} refused before doing anything`);
    await op();
    throw new IndeterminateError(`injected: ${method} happened, but its reply was lost`);
  }
}

/**
 * A client on a fresh in-memory FlakyLocation, and `close()` for a test's afterEach:
 * it disarms the faults first, so that closing is never faulted itself.
 */
export async function flakyClient(config: Partial<PersistConfig>): Promise<{ flaky: FlakyLocation; client: PersistClient; close(): Promise<void> }> {
  const flaky = await FlakyLocation.mem();
  const client = await PersistClient.open(flaky, { config });
  return {
    flaky,
    client,
    async close() {
      flaky.disarm();
      await client.close();
      await flaky.close();
    },
  };
}
