/**
 * The txns shard's critical since, fenced by an opaque (spec §2.11 "Fencing").
 *
 * A TxnsHandle adopts the opaque it finds on the critical since when it opens and
 * downgrades the since only while that opaque is still there: another process that
 * installed a new opaque has taken over, and this handle is fenced out.
 *
 * Example: handle A opens (opaque u64:0) and `compactTo(5)` downgrades the since to
 * 5; process B installs opaque u64:1; A's `compactTo(9)` now throws Fenced.
 */
import type { Opaque } from '../persist/opaque.js';
import type { SinceHandle } from '../persist/since-handle.js';
import { Fenced } from './errors.js';

/**
 * Downgrades the txns critical since to `ts`, fenced by `token`, the opaque the
 * handle adopted when it opened. A mismatch means another process installed a new
 * opaque: this handle is fenced out.
 */
export async function cads<K, V>(since: SinceHandle<K, V>, ts: number, token: Opaque): Promise<void> {
  if (!(since.since() < ts)) return;
  const res = await since.compareAndDowngradeSince(token, [token, ts]);
  if (!res.ok) {
    throw new Fenced(
      `the txns shard's since is now owned by another process (opaque ${formatOpaque(res.opaque)}, ours ` +
        `${formatOpaque(token)}); this TxnsHandle was fenced out: stop using it`,
    );
  }
}

function formatOpaque(o: Opaque): string {
  return `${o.codec}:${Buffer.from(o.bytes).toString('hex')}`;
}
