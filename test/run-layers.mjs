// `npm test`: the suite's three layers one after the other — unit (pure logic, no Redis),
// integration (the store on a real Redis), e2e (real processes over loopback) — then one table
// with the count and the time of each, and one closing line for all of them. Under CI a skipped
// test fails the run: a test that cannot run there (a tool missing) must not pass in silence.
// Extra arguments go to every jest run (e.g. `npm test -- -t lease`).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

const LAYERS = ['unit', 'integration', 'e2e'];
const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const jest = createRequire(import.meta.url).resolve('jest/bin/jest');
const scratch = mkdtempSync(path.join(tmpdir(), 'sy-test-layers-'));
const inCi = process.env.CI === 'true';
const rows = [];

for (const layer of LAYERS) {
  const report = path.join(scratch, `${layer}.json`);
  const started = Date.now();
  const run = spawnSync(process.execPath, [jest, `test/${layer}/`, '--json', `--outputFile=${report}`, ...process.argv.slice(2)], {
    cwd: root,
    stdio: 'inherit',
  });
  const seconds = (Date.now() - started) / 1000;
  const result = existsSync(report) ? JSON.parse(readFileSync(report, 'utf8')) : null;
  const skipped = (result?.testResults ?? []).flatMap((file) =>
    file.assertionResults.filter((t) => t.status === 'pending' || t.status === 'skipped').map((t) => `${path.relative(root, file.name)}: ${t.fullName}`),
  );
  rows.push({
    layer,
    seconds,
    passed: result?.numPassedTests ?? 0,
    // A file that could not run at all (it did not compile, a hook threw) fails without failing a test: count it.
    failed: (result?.numFailedTests ?? 0) + (result?.numRuntimeErrorTestSuites ?? 0) + (run.status !== 0 && !result ? 1 : 0),
    skipped,
    ok: run.status === 0,
  });
}
rmSync(scratch, { recursive: true, force: true });

const pad = (value, width) => String(value).padStart(width);
process.stdout.write(`\nlayer          passed  failed  skipped      time\n`);
for (const r of rows) {
  process.stdout.write(`${r.layer.padEnd(13)}${pad(r.passed, 7)}${pad(r.failed, 8)}${pad(r.skipped.length, 9)}${pad(r.seconds.toFixed(1), 9)} s\n`);
}
const total = (field) => rows.reduce((n, r) => n + (Array.isArray(r[field]) ? r[field].length : r[field]), 0);
const seconds = rows.reduce((n, r) => n + r.seconds, 0);
process.stdout.write(`${'all'.padEnd(13)}${pad(total('passed'), 7)}${pad(total('failed'), 8)}${pad(total('skipped'), 9)}${pad(seconds.toFixed(1), 9)} s\n`);
const skipped = rows.flatMap((r) => r.skipped);
if (skipped.length > 0) process.stdout.write(`skipped:\n${skipped.map((s) => `  ${s}`).join('\n')}\n`);
process.stdout.write(`all: ${total('passed')} passed, ${total('failed')} failed, ${total('skipped')} skipped\n`);

if (inCi && skipped.length > 0) {
  process.stderr.write('a test was skipped under CI: something it needs is missing on this machine (see the list above)\n');
  process.exit(1);
}
process.exit(rows.every((r) => r.ok) ? 0 : 1);
