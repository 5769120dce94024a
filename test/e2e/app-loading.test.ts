// An app that cannot load says which file and which phase: a bare "Unexpected token '{'" or
// "config missing: DATABASE_URL" read like Switchyard's own errors. Each case starts the real
// `switchyard gateway` with the file as --app (Node loads it, as it would for a user) and
// reads the one line the command prints before it exits.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const BIN = path.join(__dirname, '..', '..', 'bin', 'switchyard.js');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sy-app-loading-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts a gateway on the app; returns its exit status and its last line on stderr. */
function start(name: string, text: string): { status: number | null; line: string; file: string } {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  // Redis is never reached: the app is loaded first.
  const run = spawnSync(process.execPath, [BIN, 'gateway', '--app', file, '--port', '0', '--admin-port', '0', '--redis', 'redis://127.0.0.1:1'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  const lines = run.stderr.trim().split('\n');
  return { status: run.status, line: lines[lines.length - 1], file };
}

test('TypeScript given as --app: the file, the phase, and what to do', () => {
  const { status, line, file } = start('app.ts', "import Koa from 'koa';\nconst app: Koa = new Koa();\nexport default app;\n");
  expect(status).not.toBe(0);
  expect(line.startsWith(`switchyard gateway: loading --app ${file}: `)).toBe(true);
  expect(line).toContain('compile the app first');
});

test('a syntax error in JavaScript names its line', () => {
  const { status, line, file } = start('broken.js', 'module.exports = {\n  a: 1,\n  b: ,\n};\n');
  expect(status).not.toBe(0);
  expect(line).toBe(`switchyard gateway: loading --app ${file}: Unexpected token ',' (at ${file}:3)`);
});

test("an app that throws while loading: its own message, said as the app's", () => {
  const { status, line, file } = start('config.js', "throw new Error('config missing: DATABASE_URL');\n");
  expect(status).not.toBe(0);
  expect(line).toBe(`switchyard gateway: loading --app ${file}: config missing: DATABASE_URL`);
});

test('a factory that throws: said as the start of the app, and called once', () => {
  const { status, line, file } = start(
    'factory.js',
    "let calls = 0;\nmodule.exports = async () => { calls++; throw new Error('no database (call ' + calls + ')'); };\n",
  );
  expect(status).not.toBe(0);
  expect(line).toBe(`switchyard gateway: starting --app ${file}: no database (call 1)`);
});
