/**
 * Errors of the front door (`openDatabase`, `Database`).
 *
 * Each is a subclass of the lower layer's class a caller already catches: a bad
 * name is an {@link InvalidArgument}, other codecs a {@link CodecMismatch}, a read
 * below the since a {@link ReadBelowSince}; only {@link CollectionNotFound} and
 * {@link DatabaseClosed} are new kinds (both {@link InvalidUsage}). Every message
 * names the problem and what to do.
 *
 * Example:
 * ```ts
 * try {
 *   await db.write({ acounts: [['alice', null, 1]] });
 * } catch (err) {
 *   if (err instanceof CollectionNotFound) console.log(err.message); // names the collections this database has open
 * }
 * ```
 */
import { CodecMismatch, InvalidArgument, InvalidUsage, ReadBelowSince } from '../persist/errors.js';
import type { Timestamp } from '../persist/time.js';

/**
 * A collection name that is not open in this Database (or not in the catalog).
 *
 * Example:
 * ```ts
 * await db.write({ acounts: [['alice', null, 1]] });   // throws CollectionNotFound, listing the open collections
 * ```
 */
export class CollectionNotFound extends InvalidUsage {
  /**
   * Builds the message with the name, the open collections and what to do.
   *
   * @param collection The name that was not found.
   * @param known The collections open in this database.
   * @param hint What to do about it.
   */
  constructor(
    readonly collection: string,
    known: readonly string[],
    hint = `open it first with db.collection(${JSON.stringify(collection)}, { key, val })`,
  ) {
    super(
      `no collection named ${JSON.stringify(collection)} is open in this database; ${hint} ` +
        `(open: ${known.length === 0 ? 'none' : known.map((n) => JSON.stringify(n)).join(', ')})`,
    );
  }
}

/**
 * Work asked of a Database after `close()`.
 *
 * Example:
 * ```ts
 * await db.close();
 * await db.write({ accounts: [['alice', null, 1]] });   // throws DatabaseClosed
 * ```
 */
export class DatabaseClosed extends InvalidUsage {
  /**
   * Builds the message naming the refused call.
   *
   * @param op What was asked after close.
   */
  constructor(op: string) {
    super(`cannot ${op}: the database was closed; open it again with openDatabase(url)`);
  }
}

/**
 * A collection name outside the allowed alphabet or length.
 *
 * Example:
 * ```ts
 * await db.collection('9 lives');   // throws InvalidCollectionName: names start with a letter or "_"
 * ```
 */
export class InvalidCollectionName extends InvalidArgument {
  /**
   * Builds the message with the rules for names.
   *
   * @param got The name that was refused.
   */
  constructor(got: unknown) {
    super(
      `invalid collection name ${typeof got === 'string' ? JSON.stringify(got) : `(a ${typeof got})`}: a name is 1 to 128 ` +
        'characters, letters A-Z a-z, digits 0-9, "_", "-" and ".", starting with a letter or "_" (e.g. "accounts", "audit_log.v2")',
    );
  }
}

/**
 * A collection opened with codecs other than the ones it was created with.
 *
 * Example:
 * ```ts
 * await db.collection('accounts', { key: Codecs.string, val: Codecs.unit });
 * await db.collection('accounts', { key: Codecs.json(), val: Codecs.unit });   // throws CollectionCodecMismatch
 * ```
 */
export class CollectionCodecMismatch extends CodecMismatch {
  /**
   * Builds the message with both codec pairs.
   *
   * @param collection The collection's name.
   * @param stored The codec names it was created with.
   * @param given The codec names it was opened with.
   */
  constructor(
    readonly collection: string,
    readonly stored: { key: string; val: string },
    readonly given: { key: string; val: string },
  ) {
    super(
      `collection ${JSON.stringify(collection)} was created with codecs { key: ${JSON.stringify(stored.key)}, val: ${JSON.stringify(stored.val)} } ` +
        `but is being opened with { key: ${JSON.stringify(given.key)}, val: ${JSON.stringify(given.val)} }; ` +
        'open it with the codecs it was created with (codecs of those names), or use another name',
    );
  }
}

/**
 * A read of a collection at a time below its since: that time may have been compacted.
 *
 * Example:
 * ```ts
 * db.subscribe$('accounts', { asOf: 0 });   // errors with CollectionReadBelowSince once 0 was compacted away
 * ```
 */
export class CollectionReadBelowSince extends ReadBelowSince {
  /**
   * Builds the message with the collection and the first readable time.
   *
   * @param collection The collection's name.
   * @param asOf The time asked for.
   * @param since The first time it is readable at.
   */
  constructor(
    readonly collection: string,
    asOf: Timestamp,
    since: Timestamp,
  ) {
    super(asOf, since);
    this.message =
      `cannot read collection ${JSON.stringify(collection)} as of ${asOf}: it is readable as of ${since} and later ` +
      '(earlier times may have been compacted); pass an asOf of at least that, or leave asOf out to read as of now';
  }
}
