/**
 * redactUrl: passwords out, everything else as given, also for URLs that do not parse.
 */
import { expect } from 'chai';
import { redactUrl } from '../../src/location/redact-url.js';

describe('redactUrl', function () {
  it('replaces the password of user:password@ and leaves the rest as given', function () {
    expect(redactUrl('postgres://u:hunter2@db:5432/x?blob=file:./data')).to.equal(
      'postgres://u:***@db:5432/x?blob=file:./data',
    );
    expect(redactUrl('postgresql://:hunter2@db/x')).to.equal('postgresql://:***@db/x');
  });

  it('leaves URLs without a password unchanged, character for character', function () {
    for (const url of ['mem://', 'mem://demo', 'file:./data', 'file:///var/lib/txnwal', 'postgres://u@db/x?blob=mem://a']) {
      expect(redactUrl(url)).to.equal(url);
    }
  });

  it('redacts URLs that do not parse: a mistyped scheme, a broken host', function () {
    expect(redactUrl('postgress://u:hunter2@db/x')).to.equal('postgress://u:***@db/x');
    expect(redactUrl('postgres://u:hunter2@[broken/x')).to.equal('postgres://u:***@[broken/x');
    expect(() => new URL('postgres://u:hunter2@[broken/x')).to.throw();
  });

  it('hides a password holding an unescaped @ or / whole', function () {
    expect(redactUrl('postgres://u:hun@ter/2@db/x')).to.equal('postgres://u:***@db/x');
  });

  it('redacts password= and sslpassword= parameters, in a URL or a key/value string', function () {
    expect(redactUrl('postgres://u@db/x?password=hunter2&sslmode=require')).to.equal(
      'postgres://u@db/x?password=***&sslmode=require',
    );
    expect(redactUrl('postgres://u@db/x?sslpassword=hunter2')).to.equal('postgres://u@db/x?sslpassword=***');
    expect(redactUrl('host=db PASSWORD=hunter2 user=u')).to.equal('host=db PASSWORD=*** user=u');
  });

  it('redacts a URL nested in a query parameter', function () {
    expect(redactUrl('postgres://u:a@db/x?blob=s3://key:hunter2@bucket')).to.not.include('hunter2');
    expect(redactUrl('postgres://u@db/x?blob=s3://key:hunter2@bucket')).to.equal(
      'postgres://u@db/x?blob=s3://key:***@bucket',
    );
  });
});
