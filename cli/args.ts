// The small commands that read their own flags (check, move-slot) read them the same way:
// `--name value` or `--name=value`, anything else a positional word.

/**
 * Calls `each` for every word of argv with its name and a reader of its value (the inline
 * `=value` or the next word); a flag given without a value throws `missing(name)`.
 */
export function eachArg(argv: readonly string[], missing: (name: string) => Error, each: (name: string, value: () => string) => void): void {
  for (let i = 0; i < argv.length; i++) {
    const eq = argv[i].startsWith('--') ? argv[i].indexOf('=') : -1;
    const [name, inline] = eq === -1 ? [argv[i], undefined] : [argv[i].slice(0, eq), argv[i].slice(eq + 1)];
    each(name, () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw missing(name);
      return v;
    });
  }
}
