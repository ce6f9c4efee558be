/**
 * Output of the `txnwal` command: data on stdout, progress on stderr only when
 * stderr is a terminal (pipes and files stay quiet), aligned tables for people and
 * JSON for programs.
 *
 * Invariants:
 * - stdout carries only the command's result (a table, lines, one JSON document or
 *   JSON lines), so `txnwal snapshot … --json | jq` always parses.
 * - Progress is one line, redrawn in place (`\r`), erased when the work is done.
 *
 * Example:
 * ```ts
 * formatTable(['key', 'diff'], [['"alice"', '10'], ['"bob"', '-3']]);
 * // key      diff
 * // "alice"    10
 * // "bob"      -3
 * const progress = terminalProgress('reading parts');   // undefined unless stderr is a TTY
 * ```
 */

/** Aligned columns: numbers (and numeric columns' headers) right-aligned, the rest left-aligned. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => /^-?[\d.]+$|^-$/.test(r[i] ?? '')));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** Writes one line to stdout. */
export function printLine(text: string): void {
  process.stdout.write(text + '\n');
}

/** Writes `value` as one line of JSON to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/** A progress callback (`done` of `total`) that draws on stderr, or undefined when stderr is not a terminal. */
export function terminalProgress(label: string): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    // Redraw at most 10 times a second, and always at the end.
    if (done < total && now - last < 100) return;
    last = now;
    process.stderr.write(`\r${label}: ${done}/${total} parts`);
    if (done >= total) process.stderr.write('\r\x1b[K');
  };
}

/** A byte count for people: 1.2 KiB, 3.4 MiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}
