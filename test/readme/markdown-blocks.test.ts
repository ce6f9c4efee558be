/** The README's block extraction (markdown-blocks.ts): what counts as a block, where it is, and its marker. */
import { expect } from 'chai';
import { extractTsBlocks } from './markdown-blocks.js';

describe('readme/extractTsBlocks', () => {
  it('takes ```ts blocks with their line and section, skips other languages, and reads markers', () => {
    const md = [
      '# Title', // 1
      '```sh', // 2
      '```ts not a block: inside sh', // 3
      '```', // 4
      '## Part', // 5
      '<!-- readme-test: postgres -->', // 6
      '```ts', // 7
      'const a = 1;', // 8
      '```', // 9
      '<!-- readme-test: not runnable: needs an S3 bucket -->', // 10
      '```typescript', // 11
      'const b = 2;', // 12
      '```', // 13
      '```ts', // 14
      '```', // 15
    ].join('\n');
    const got = extractTsBlocks(md).map(({ index, line, section, code, marker }) => ({ index, line, section, code, marker }));
    expect(got).to.deep.equal([
      { index: 1, line: 7, section: 'Part', code: 'const a = 1;\n', marker: { kind: 'postgres' } },
      { index: 2, line: 11, section: 'Part', code: 'const b = 2;\n', marker: { kind: 'not-runnable', reason: 'needs an S3 bucket' } },
      { index: 3, line: 14, section: 'Part', code: '\n', marker: { kind: 'run' } },
    ]);
  });

  it('refuses a misspelt marker, a marker without a reason, and a marker that is not above a ts block', () => {
    expect(() => extractTsBlocks('<!-- readme-test: postgress -->\n```ts\n```')).to.throw(/README.md:1: unknown marker "readme-test: postgress"/);
    expect(() => extractTsBlocks('<!-- readme-test: not runnable: -->\n```ts\n```')).to.throw(/unknown marker/);
    expect(() => extractTsBlocks('<!-- readme-test: postgres -->\ntext\n```ts\n```')).to.throw(/directly above a ```ts fence/);
    expect(() => extractTsBlocks('<!-- readme-test: postgres -->\n```sh\n```')).to.throw(/not ```sh/);
  });
});
