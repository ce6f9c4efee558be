/**
 * The fenced TypeScript blocks of a markdown text, with the `readme-test` markers
 * that say how test/readme/readme-blocks.test.ts treats each one.
 *
 * Rules:
 * - A block is a fence of three or more backticks whose info string is `ts` or
 *   `typescript`; it ends at the next line of at least as many backticks and nothing
 *   else. Fences of other languages are skipped whole, so a ```ts line inside a
 *   ```sh block is not a block.
 * - A marker is an HTML comment alone on the line directly above a ts fence:
 *   `<!-- readme-test: postgres -->` or `<!-- readme-test: not runnable: <reason> -->`.
 *   Anything else after `readme-test:`, or a marker that is not directly above a ts
 *   fence, throws with the README line, so a typo cannot quietly change what runs.
 * - Each block records its 1-based index, the line of its opening fence and the
 *   nearest heading above it, for test names and error messages.
 *
 * Example:
 * ```ts
 * extractTsBlocks('## Part\n<!-- readme-test: postgres -->\n```ts\nconst a = 1;\n```');
 * // [{ index: 1, line: 3, section: 'Part', code: 'const a = 1;\n', marker: { kind: 'postgres' } }]
 * ```
 */

export type Marker = { kind: 'run' } | { kind: 'postgres' } | { kind: 'not-runnable'; reason: string };

export interface Block {
  /** 1-based, in README order. */
  readonly index: number;
  /** The README line of the opening fence. */
  readonly line: number;
  /** The nearest heading above the block. */
  readonly section: string;
  readonly code: string;
  readonly marker: Marker;
}

const MARKER = /^<!--\s*readme-test:\s*(.*?)\s*-->\s*$/;

function parseMarker(text: string, line: number): Marker {
  if (text === 'postgres') return { kind: 'postgres' };
  const notRunnable = /^not runnable:\s*(\S.*)$/.exec(text);
  if (notRunnable) return { kind: 'not-runnable', reason: notRunnable[1]! };
  throw new Error(
    `README.md:${line}: unknown marker "readme-test: ${text}"; the README-blocks test knows "postgres" and "not runnable: <reason>"`,
  );
}

/** The ```ts blocks of `markdown`, with their markers; throws on a marker that is misspelt or not directly above a ts block. */
export function extractTsBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  let section = '(top)';
  let pending: { marker: Marker; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    const heading = /^#{1,6}\s+(.*)$/.exec(text);
    if (heading) section = heading[1]!.trim();
    const marker = MARKER.exec(text.trim());
    if (marker) {
      pending = { marker: parseMarker(marker[1]!, i + 1), line: i + 1 };
      continue;
    }
    const fence = /^(`{3,})\s*(\S*)/.exec(text);
    if (!fence) {
      if (pending && text.trim() !== '') throw new Error(`README.md:${pending.line}: a readme-test marker must be directly above a \`\`\`ts fence`);
      continue;
    }
    // Any fenced block: find its end, so fences inside it are not taken for blocks.
    const open = i;
    let close = open + 1;
    const closing = new RegExp(`^\`{${fence[1]!.length},}\\s*$`);
    while (close < lines.length && !closing.test(lines[close]!)) close++;
    const lang = fence[2]!.toLowerCase();
    if (lang === 'ts' || lang === 'typescript') {
      blocks.push({
        index: blocks.length + 1,
        line: open + 1,
        section,
        code: lines.slice(open + 1, close).join('\n') + '\n',
        marker: pending?.marker ?? { kind: 'run' },
      });
    } else if (pending) {
      throw new Error(`README.md:${pending.line}: a readme-test marker must be directly above a \`\`\`ts fence, not \`\`\`${lang}`);
    }
    pending = undefined;
    i = close;
  }
  return blocks;
}
