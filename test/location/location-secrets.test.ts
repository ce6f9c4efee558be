/**
 * A Postgres location keeps its password secret: it appears in no error message,
 * `String(err)`, stack, `location.url`, `util.inspect` of the location, its consensus
 * or a PersistClient on it, and no log line, whether the URL is bad (unsupported blob,
 * mistyped scheme, unparseable), the server unreachable, or everything fine.
 */
import net from 'node:net';
import util from 'node:util';
import { expect } from 'chai';
import pg from 'pg';
import pino from 'pino';
import { openLocation } from '../../src/location/location.js';
import { PersistClient } from '../../src/persist/client.js';
import { Codecs } from '../../src/persist/codec.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { observe, rejection } from '../support/async.js';
import { freshTestDatabaseUrl, terminateBackends, waitUntilBlocked } from '../support/postgres.js';

const SECRET = 'hunter2';

/** Every way an error can be shown: none may hold `secret`. */
function expectErrorHides(err: Error, secret: string): void {
  for (const shown of [err.message, String(err), err.stack ?? '', util.inspect(err, { depth: Infinity })]) {
    expect(shown).to.not.include(secret);
  }
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

describe('openLocation keeps the Postgres password secret', function () {
  it('in the errors for a bad URL: unsupported blob, mistyped scheme, unparseable, password= parameter', async function () {
    const cases: [string, string][] = [
      [`postgres://u:${SECRET}@127.0.0.1:1/db?blob=gs://bucket`, 'unsupported blob'],
      [`postgress://u:${SECRET}@127.0.0.1:1/db?blob=mem://`, 'Unsupported location URL'],
      [`postgres://u:${SECRET}@[broken/db?blob=mem://`, 'not a valid Postgres URL'],
      [`postgres://u@127.0.0.1:1/db?password=${SECRET}&blob=gs://bucket`, 'unsupported blob'],
    ];
    for (const [url, fragment] of cases) {
      const err = await rejection(openLocation(url));
      expect(err.message, url).to.include(fragment);
      expectErrorHides(err, SECRET);
    }
    // The redacted URL is still there to tell the user which URL was wrong.
    const err = await rejection(openLocation(`postgress://u:${SECRET}@127.0.0.1:1/db`));
    expect(err.message).to.include('postgress://u:***@127.0.0.1:1/db');
  });

  it('in the error for an unreachable server', async function () {
    const url = `postgres://u:${SECRET}@127.0.0.1:${await closedPort()}/db?blob=mem://`;
    const err = await rejection(openLocation(url));
    expect(err.message).to.include('u:***@127.0.0.1');
    expectErrorHides(err, SECRET);
  });

  describe('on a live server', function () {
    let url: string;
    let password: string;

    before(async function () {
      this.timeout(60_000);
      const db = new URL(await freshTestDatabaseUrl());
      password = db.password;
      expect(password).to.not.equal('');
      db.searchParams.set('blob', 'mem://');
      url = db.toString();
    });

    it('in location.url and util.inspect of the location and its consensus', async function () {
      const loc = await openLocation(url);
      try {
        expect(loc.url).to.equal(url.replace(`:${password}@`, ':***@'));
        for (const shown of [
          loc.url,
          util.inspect(loc, { depth: Infinity, showHidden: true }),
          util.inspect(loc.consensus, { depth: Infinity, showHidden: true }),
          String(loc.consensus),
        ]) {
          expect(shown).to.not.include(password);
        }
        expect(String(loc.consensus)).to.match(/^PostgresConsensus\(postgres:\/\/postgres:\*\*\*@/);
      } finally {
        await loc.close();
      }
    });

    it('in util.inspect of a PersistClient and in its log lines, also about a failed storage call', async function () {
      const lines: string[] = [];
      const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
      const client = await PersistClient.open(url, { config: { logger } });
      const admin = new pg.Client({ connectionString: url.replace(/\?.*$/, '') });
      await admin.connect();
      try {
        // Make one storage call fail and be retried, so that a log line carries its error.
        await admin.query('BEGIN');
        await admin.query('LOCK TABLE consensus IN ACCESS EXCLUSIVE MODE');
        const writer = observe(client.openWriter(newShardId(), { key: Codecs.string, val: Codecs.unit }));
        await waitUntilBlocked(admin, '%FROM consensus%');
        expect(await terminateBackends(admin, "wait_event_type = 'Lock'")).to.equal(1);
        await admin.query('ROLLBACK');
        await (await writer.promise).expire();
        expect(lines.some((l) => l.includes('storage call failed'))).to.equal(true);
        for (const shown of [...lines, util.inspect(client, { depth: Infinity, showHidden: true }), String(client)]) {
          expect(shown).to.not.include(password);
        }
      } finally {
        await admin.end();
        await client.close();
      }
    });
  });
});
