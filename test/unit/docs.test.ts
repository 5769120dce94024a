// The README and the reference (docs/protocol.md) are kept in step with the code: every flag
// of the flag table and every Redis key of keys.ts is documented in both, and nothing in the
// repository points at files a user of the package does not have.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FLAGS } from '../../shared/ops/config';
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

test('every Redis key is documented in the README and the reference', () => {
  const k = keysFor('sy');
  const keys = [
    ...([1, 2] as const).flatMap((l) => [k.queue(l, 'execute'), k.queue(l, 'discard'), k.queue(l, 'last'), k.order(l), k.newest(l), k.idle(l), k.wake(l)]),
    k.l2Active,
    k.dead,
    k.stats,
    k.running,
    k.runs,
    k.sched,
    k.workers,
    k.delayed,
    k.workerJobs('<id>'),
    k.inbox('<id>'),
    deploymentKeys('sy').partitions,
  ];
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
