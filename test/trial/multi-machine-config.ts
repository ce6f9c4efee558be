/**
 * The persist settings every process of the multi-machine trial uses: batches always
 * in Blob (so every part lives in S3), maintenance on and frequent (rollups, GC and
 * compaction run under the writers and across kills), and quick listen polls (the
 * processes share no memory: a follower learns of new commits by polling consensus).
 */
import type { PersistConfig } from '../../src/persist/config.js';

export const MULTI_TRIAL_CONFIG: Partial<PersistConfig> = {
  inlineWritesSingleMaxBytes: 0,
  inlineWritesTotalMaxBytes: 0,
  rollupThreshold: 4,
  gcMinVersions: 4,
  compaction: true,
  listenPoll: { initialMs: 5, multiplier: 2, clampMs: 50 },
};
