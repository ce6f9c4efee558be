/**
 * describeValue: a short, unambiguous description of any value for error messages,
 * so "got 5" cannot mean both the number and the string.
 *
 * Numbers are shown bare (`1.5`, `-1`, `NaN`), everything else with its kind.
 * Examples: `a string "5"`, `1.5`, `NaN`, `Infinity`, `null`,
 * `undefined`, `a bigint 5n`, `the boolean true`, `a symbol Symbol(x)`,
 * `a function f`, `an array of length 2`, `an object`, `an object of class Foo`.
 */
const MAX_STRING = 60;

export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'undefined':
      return 'undefined';
    case 'number':
      return Object.is(v, -0) ? '-0' : String(v);
    case 'string': {
      const shown = v.length > MAX_STRING ? `${v.slice(0, MAX_STRING)}…` : v;
      return `a string ${JSON.stringify(shown)}`;
    }
    case 'bigint':
      return `a bigint ${v}n`;
    case 'boolean':
      return `the boolean ${v}`;
    case 'symbol':
      return `a symbol ${v.toString()}`;
    case 'function':
      return v.name ? `a function ${v.name}` : 'a function';
    case 'object': {
      if (v === null) return 'null';
      if (Array.isArray(v)) return `an array of length ${v.length}`;
      try {
        const proto: unknown = Object.getPrototypeOf(v);
        if (proto === null || proto === Object.prototype) return 'an object';
        const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
        return typeof name === 'string' && name !== '' ? `an object of class ${name}` : 'an object';
      } catch {
        // A proxy whose traps throw: describing must never throw itself.
        return 'an object';
      }
    }
  }
}
