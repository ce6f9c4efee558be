export { collectUntil, IncompleteCollection } from './collect-until.js';
export { consolidate } from './consolidate.js';
export { consolidateUpdates } from './consolidate-updates.js';
export { dataSubscribe, dataSubscribe$, type DataSubscribeOptions } from './data-subscribe.js';
export { materialize, MaterializedView } from './materialize.js';
export { rowIdentity, valueIdentity } from './row-identity.js';
export { toAsyncIterable } from './to-async-iterable.js';
export { mergeFrontiers } from './merge-frontiers.js';
