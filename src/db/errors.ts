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

/** A collection name that is not open in this Database (or not in the catalog). */
export class CollectionNotFound extends InvalidUsage {
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

/** Work asked of a Database after `close()`. */
export class DatabaseClosed extends InvalidUsage {
  constructor(op: string) {
    super(`cannot ${op}: the database was closed; open it again with openDatabase(url)`);
  }
}

/** A collection name outside the allowed alphabet or length. */
export class InvalidCollectionName extends InvalidArgument {
  constructor(got: unknown) {
    super(
      `invalid collection name ${typeof got === 'string' ? JSON.stringify(got) : `(a ${typeof got})`}: a name is 1 to 128 ` +
        'characters, letters A-Z a-z, digits 0-9, "_", "-" and ".", starting with a letter or "_" (e.g. "accounts", "audit_log.v2")',
    );
  }
}

/** A collection opened with codecs other than the ones it was created with. */
export class CollectionCodecMismatch extends CodecMismatch {
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

/** A read of a collection at a time below its since: that time may have been compacted. */
export class CollectionReadBelowSince extends ReadBelowSince {
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
