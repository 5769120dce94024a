// Fuzzing the command line (issue 14): whatever words and SWITCHYARD_* variables a person
// types, parsing either gives a frozen configuration or stops with one ConfigError line that
// names the flag or variable; nothing else is thrown.
import fc from 'fast-check';
import { ConfigError, FLAGS, parseConfig, type CommandName } from '../../cli/config';

const COMMANDS: CommandName[] = ['gateway', 'worker', 'dev', 'stats', 'dead', 'job', 'queue', 'pause', 'resume', 'delete', 'dashboard'];
const NAMES = Object.keys(FLAGS);

/** Values people (and scripts) pass: numbers of every form, durations, sizes, odd text. */
const value = fc.oneof(
  fc.constantFrom('', '0', '-1', '1', '2', '1,2', '3:1', '0:0', '1e309', 'NaN', 'Infinity', '-0', '0x10', '1.5', '10s', '500ms', '2m', '1h', '64kb', '4mb'),
  fc.constantFrom('true', 'false', 'yes', 'debug', 'execute', 'last', 'x.js', 'redis://127.0.0.1:1', 'redis+cluster://a:1,b:2', 'rediss+sentinel://h:1/m'),
  fc.integer({ min: -1e12, max: 1e12 }).map(String),
  fc.double({ noNaN: false }).map(String),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
);
const word = fc.oneof(
  fc.constantFrom(...NAMES).map((n) => `--${n}`),
  fc.tuple(fc.constantFrom(...NAMES), value).map(([n, v]) => `--${n}=${v}`),
  fc.string({ maxLength: 12 }).map((s) => `--${s}`),
  value,
);
const env = fc.dictionary(
  fc.constantFrom(...NAMES).map((n) => `SWITCHYARD_${n.toUpperCase().replace(/-/g, '_')}`),
  value,
  { maxKeys: 4 },
);

test('any argv and environment: a frozen config or one ConfigError line, for every command (5,000 inputs)', () => {
  let configs = 0;
  let refusals = 0;
  fc.assert(
    fc.property(fc.constantFrom(...COMMANDS), fc.array(word, { maxLength: 8 }), env, (command, argv, vars) => {
      try {
        const config = parseConfig(command, argv, vars);
        expect(Object.isFrozen(config)).toBe(true);
        for (const n of ['concurrency', 'capacity', 'leaseMs', 'attempts', 'timeoutMs', 'partitions'] as const) {
          const v = (config as unknown as Record<string, unknown>)[n];
          if (v !== undefined) expect(Number.isFinite(v)).toBe(true);
        }
        configs++;
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        const message = (err as Error).message;
        expect(message.length).toBeGreaterThan(0);
        expect(message).not.toMatch(/\n/);
        refusals++;
      }
    }),
    { numRuns: 5000 },
  );
  expect(configs + refusals).toBe(5000);
  expect(configs).toBeGreaterThan(0);
});
