/**
 * The front door: `openDatabase(url)` → a {@link Database} of named collections in a
 * durable catalog, with atomic `write`s across them, `subscribe$` and `snapshot`.
 * Built on every layer below (persist, txn, coord, sources, operators).
 */
export {
  openDatabase,
  Database,
  type OpenDatabaseOptions,
  type CollectionRow,
  type CollectionWrites,
  type CollectionRef,
  type DatabaseReadOptions,
  type DatabaseSnapshot,
  type CollectionInfo,
} from './database.js';
export { Collection } from './collection.js';
export {
  CollectionNotFound,
  DatabaseClosed,
  InvalidCollectionName,
  CollectionCodecMismatch,
  CollectionReadBelowSince,
} from './errors.js';
