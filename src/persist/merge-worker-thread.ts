/**
 * The merge worker's thread: runs {@link PartMerger}s for the main thread's
 * {@link MergeWorker} (merge-worker.ts, which documents the protocol). Pure CPU: it
 * reads no store and writes none; the main thread fetches the input parts and stores
 * the outputs.
 *
 * Jobs are independent and may interleave: messages name their job. A job that threw
 * keeps its error and drops its later parts; the error is the reply to its `finish`.
 */
import { parentPort } from 'node:worker_threads';
import { PartMerger, type MergedPart } from './part-merger.js';
import { ownedBytes, type MergeReply, type MergeRequest } from './merge-worker-protocol.js';

interface Job {
  merger: PartMerger;
  done: MergedPart[];
  error?: unknown;
}

const port = parentPort;
if (!port) throw new Error('merge-worker-thread.ts runs only as a worker thread (see merge-worker.ts)');

const jobs = new Map<number, Job>();

function reply(msg: MergeReply): void {
  const transfer = msg.ok ? msg.parts.map((p) => p.encoded.buffer as ArrayBuffer) : [];
  port!.postMessage(msg, transfer);
}

port.on('message', (m: MergeRequest) => {
  switch (m.op) {
    case 'begin':
      jobs.set(m.id, { merger: new PartMerger(m.opts), done: [] });
      return;
    case 'add': {
      const job = jobs.get(m.id);
      if (!job || job.error !== undefined) return;
      try {
        job.done.push(...job.merger.add(m.part));
      } catch (err) {
        job.error = err;
      }
      return;
    }
    case 'finish': {
      const job = jobs.get(m.id);
      jobs.delete(m.id);
      if (!job) return reply({ id: m.id, ok: false, name: 'Error', message: `merge job ${m.id} is unknown to the worker` });
      try {
        if (job.error !== undefined) throw job.error;
        const parts = [...job.done, ...job.merger.finish()].map((p) => ({ ...p, encoded: ownedBytes(p.encoded) }));
        reply({ id: m.id, ok: true, parts, updateCount: job.merger.updateCount });
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        reply({ id: m.id, ok: false, name: e.name, message: e.message });
      }
      return;
    }
    case 'abort':
      jobs.delete(m.id);
      return;
  }
});

// Loaded (under tsx, compiled too): the main thread may send jobs now.
port.postMessage({ op: 'ready' });
