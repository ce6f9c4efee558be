/**
 * The messages between {@link MergeWorker} (main thread) and its worker thread.
 *
 * Per merge job `id`, the main thread sends `begin`, one `add` per input part in
 * merge order, then `finish` (or `abort` when it gave up reading its inputs); the
 * worker answers `finish` with one reply: every output part in order and the update
 * count, or the error the merge threw (its class name and message).
 *
 * Bytes cross in ArrayBuffers that only they occupy ({@link ownedBytes}), and are
 * transferred, not cloned: a view into a shared buffer (Node's Buffer pool, a decoded
 * state's bytes) would otherwise clone, or on transfer detach, everything around it.
 */
import { copyBytes } from '../location/bytes.js';
import type { MergeInputPart, MergedPart, PartMergerOptions } from './part-merger.js';

export type MergeRequest =
  | { op: 'begin'; id: number; opts: PartMergerOptions }
  | { op: 'add'; id: number; part: MergeInputPart }
  | { op: 'finish'; id: number }
  | { op: 'abort'; id: number };

export type MergeReply =
  | { id: number; ok: true; parts: MergedPart[]; updateCount: number }
  | { id: number; ok: false; name: string; message: string };

/** `bytes` if it alone occupies its ArrayBuffer (so it may be transferred), else a copy that does. */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return bytes;
  }
  return copyBytes(bytes);
}
