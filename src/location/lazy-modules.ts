/**
 * The Postgres driver and the AWS SDK, loaded on first use: a process that stays on
 * `mem://` or `file:` never pays for them (about 15 MiB of memory and a noticeable
 * start-up time). They are CommonJS packages, required synchronously the first time a
 * Postgres or S3 store is opened; the classes that use them are imported as usual, so
 * there is one copy of each txnwal class however the package is loaded (an ESM
 * `import()` of our own modules, under some loaders, made a second copy and broke
 * `instanceof`).
 *
 * Example:
 * ```ts
 * const pool = new (pgModule().Pool)({ connectionString: url });
 * ```
 */
import { createRequire } from 'node:module';
import type PgModule from 'pg';
import type * as S3Module from '@aws-sdk/client-s3';

const requireHere = createRequire(import.meta.url);
let pg: typeof PgModule | undefined;
let s3: typeof S3Module | undefined;

/** The `pg` package. */
export function pgModule(): typeof PgModule {
  return (pg ??= requireHere('pg') as typeof PgModule);
}

/** The `@aws-sdk/client-s3` package. */
export function s3Module(): typeof S3Module {
  return (s3 ??= requireHere('@aws-sdk/client-s3') as typeof S3Module);
}
