// The README and the reference (docs/protocol.md) are kept in step with the code: every flag
// of the flag table and every Redis key of keys.ts is documented in both, and nothing in the
// repository points at files a user of the package does not have.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FLAGS } from '../../cli/config';
import { deploymentKeys, keysFor } from '../../shared/store/keys';

const ROOT = path.join(__dirname, '..', '..');
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const reference = readFileSync(path.join(ROOT, 'docs', 'protocol.md'), 'utf8');

test('every flag is documented in the README and the reference', () => {
  for (const flag of Object.keys(FLAGS)) {
    expect([flag, readme.includes(`\`--${flag}\``)]).toEqual([flag, true]);
    expect([flag, reference.includes(`\`--${flag}\``)]).toEqual([flag, true]);
  }
});

/**
 * Every key name keys.ts can make, read from the code itself: each string of the key sets, and
 * each function called with every level (and policy), or with `<id>` for a worker's keys.
 */
function everyKey(): string[] {
  const names = new Set<string>();
  const sets: Array<Record<string, unknown>> = [
    keysFor('sy') as unknown as Record<string, unknown>,
    deploymentKeys('sy') as unknown as Record<string, unknown>,
  ];
  for (const set of sets) {
    for (const [field, value] of Object.entries(set)) {
      if (field === 'tag') continue;
      if (typeof value === 'string') names.add(value);
      if (typeof value !== 'function') continue;
      const make = value as (...args: unknown[]) => string;
      // A named group's keys are documented with <g> standing for the group.
      if (field.startsWith('group') && make.length === 3)
        for (const level of [1, 2]) for (const policy of ['execute', 'last', 'discard']) names.add(make(level, '<g>', policy));
      else if (field.startsWith('group') && make.length === 2) for (const level of [1, 2]) names.add(make(level, '<g>'));
      else if (make.length === 2) for (const level of [1, 2]) for (const policy of ['execute', 'last', 'discard']) names.add(make(level, policy));
      else if (make(1).includes(':L1')) for (const level of [1, 2]) names.add(make(level));
      else names.add(make('<id>'));
    }
  }
  return [...names];
}

test('every Redis key is documented in the README and the reference', () => {
  const keys = everyKey();
  expect(keys.length).toBeGreaterThan(25);
  for (const key of keys) {
    expect([key, readme.includes(`\`${key}\``)]).toEqual([key, true]);
    expect([key, reference.includes(`\`${key}\``)]).toEqual([key, true]);
  }
});

test('no file of the repository links outside it', () => {
  const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
    .trim()
    .split('\n')
    .filter((file) => existsSync(path.join(ROOT, file)));
  const outside = tracked.filter(
    (file) =>
      !file.startsWith('test/') &&
      /\.(md|ts|js|lua|json)$/.test(file) &&
      /\.\.\/shared\/(SPEC|STYLE|seed|hooks)/.test(readFileSync(path.join(ROOT, file), 'utf8')),
  );
  expect(outside).toEqual([]);
});

/** Every log event name the product's code writes: each `event: '<name>'` of its source files. */
function everyLogEvent(): string[] {
  const files = execFileSync('git', ['ls-files', 'shared', 'server', 'worker', 'cli'], { cwd: ROOT, encoding: 'utf8' })
    .trim()
    .split('\n')
    .filter((file) => file.endsWith('.ts') && existsSync(path.join(ROOT, file)));
  const names = new Set<string>();
  for (const file of files) for (const m of readFileSync(path.join(ROOT, file), 'utf8').matchAll(/\bevent: '([a-z_]+)'/g)) names.add(m[1]);
  return [...names].sort();
}

test('every log event the code writes is in the reference table of log events', () => {
  const events = everyLogEvent();
  expect(events.length).toBeGreaterThan(30);
  const section = reference.slice(reference.indexOf('## 9. Logs'), reference.indexOf('\n## ', reference.indexOf('## 9. Logs') + 1));
  const documented = new Set([...section.matchAll(/^\| ([^|]+) \|/gm)].flatMap((m) => [...m[1].matchAll(/`([a-z_]+)`/g)].map((n) => n[1])));
  expect(events.filter((event) => !documented.has(event))).toEqual([]);
});
