/**
 * MemConsensus: an in-memory {@link Consensus}, for tests and `mem://` locations.
 *
 * Invariants:
 * - Each key maps to its versions in ascending seqno order; the last one is the head.
 *   A key with no versions is absent from the map (truncate never removes the head,
 *   so a key that ever had data keeps at least one version).
 * - Every operation first yields a macrotask (`yieldMacrotask`) and then runs to
 *   completion synchronously. The yield lets concurrent callers interleave in
 *   varied orders, as they would against a real store, while the synchronous body
 *   keeps each operation atomic, so the register stays linearizable.
 * - Data is copied in and out; callers cannot alias stored bytes.
 *
 * Example:
 * ```ts
 * const c = new MemConsensus();
 * await c.compareAndSet('s', undefined, { seqno: 5, data });  // 'committed'
 * await c.compareAndSet('s', 5, { seqno: 10, data });         // 'committed'
 * await c.scan('s', 6, 10);                                   // [v10]
 * ```
 */
import { copyBytes } from './bytes.js';
import {
  checkCompareAndSetArgs,
  checkScanArgs,
  checkSeqNo,
  checkTruncateTarget,
  type CaSResult,
  type Consensus,
  type SeqNo,
  type VersionedData,
} from './consensus.js';
import { LocationUsageError } from './errors.js';
import { yieldMacrotask } from './macrotask.js';

function copyVersion(v: VersionedData): VersionedData {
  return { seqno: v.seqno, data: copyBytes(v.data) };
}

/**
 * An in-memory Consensus for tests and `mem://` locations: linearizable, with each call yielding a
 * macrotask first so racing callers interleave.
 *
 * Example:
 * ```ts
 * const c = new MemConsensus();
 * await c.compareAndSet('s', undefined, { seqno: 1, data: Uint8Array.of(1) });   // 'committed'
 * await c.compareAndSet('s', undefined, { seqno: 1, data: Uint8Array.of(2) });   // 'mismatch'
 * ```
 */
export class MemConsensus implements Consensus {
  private readonly versions = new Map<string, VersionedData[]>();
  private closed = false;

  async head(key: string): Promise<VersionedData | undefined> {
    await this.enter();
    const head = this.versions.get(key)?.at(-1);
    return head && copyVersion(head);
  }

  async compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult> {
    checkCompareAndSetArgs(expected, next);
    // Copy before yielding: the bytes are the caller's at the moment of the call.
    const stored = copyVersion(next);
    await this.enter();
    const versions = this.versions.get(key);
    const current = versions?.at(-1)?.seqno;
    if (current !== expected) return 'mismatch';
    if (versions) versions.push(stored);
    else this.versions.set(key, [stored]);
    return 'committed';
  }

  async scan(key: string, from: SeqNo, limit: number): Promise<VersionedData[]> {
    checkScanArgs(from, limit);
    await this.enter();
    const versions = this.versions.get(key) ?? [];
    const out: VersionedData[] = [];
    for (const v of versions) {
      if (out.length >= limit) break;
      if (v.seqno >= from) out.push(copyVersion(v));
    }
    return out;
  }

  async truncate(key: string, seqno: SeqNo): Promise<number> {
    checkSeqNo(seqno);
    await this.enter();
    const versions = this.versions.get(key) ?? [];
    checkTruncateTarget(key, seqno, versions.at(-1)?.seqno);
    // Versions are sorted, so the ones to delete form a prefix.
    const keepFrom = versions.findIndex((v) => v.seqno >= seqno);
    versions.splice(0, keepFrom);
    return keepFrom;
  }

  async listKeys(): Promise<string[]> {
    await this.enter();
    return [...this.versions.keys()].sort();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async enter(): Promise<void> {
    if (this.closed) throw new LocationUsageError('MemConsensus: used after close');
    await yieldMacrotask();
    // Re-check: close() may have run while this call was waiting.
    if (this.closed) throw new LocationUsageError('MemConsensus: used after close');
  }
}
