// The layout tells the architecture: every file of the product belongs to one layer, and an
// import goes only down. Bottom to top:
//
//   base     shared/*.ts      the log, Level/Policy, the queueing numbers and rules, the package root
//   call     shared/call/     one call: params, app, dispatch, replies and errors, the wire codec
//   store    shared/store/    everything that talks to Redis
//   ops      shared/ops/      the admin port and metrics
//   server   server/          the gateway and its dashboard      } peers: neither imports the other
//   worker   worker/          the worker engine                  }
//   cli      cli/             the switchyard executable, which wires them
//
// Beside the stack: client/ (the typed client) imports only the wire contract,
// shared/call/wire.ts, which imports nothing of ours, so the package entry loads no server code;
// and only the entry, index.ts, imports client/ (the entry imports the rest for types only).
// A file in a folder not declared here fails the test: a new room is placed in the order first.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

interface Layer {
  name: string;
  rank: number;
  holds: RegExp;
}

const LAYERS: readonly Layer[] = [
  { name: 'base', rank: 0, holds: /^shared\/[^/]+\.ts$/ },
  { name: 'call', rank: 1, holds: /^shared\/call\// },
  { name: 'store', rank: 2, holds: /^shared\/store\// },
  { name: 'ops', rank: 3, holds: /^shared\/ops\// },
  { name: 'server', rank: 4, holds: /^server\// },
  { name: 'worker', rank: 4, holds: /^worker\// },
  { name: 'cli', rank: 5, holds: /^cli\// },
];
const FOLDERS = ['shared', 'server', 'worker', 'cli', 'client'];
const WIRE = 'shared/call/wire.ts';
const ENTRY = 'index.ts';

interface Import {
  from: string;
  to: string;
  typeOnly: boolean;
}

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir)).flatMap((name) => {
    const rel = `${dir}/${name}`;
    if (statSync(path.join(ROOT, rel)).isDirectory()) return tsFiles(rel);
    return name.endsWith('.ts') ? [rel] : [];
  });
}

/** The file a relative specifier names, as Node and TypeScript resolve it; null when there is none. */
function resolve(from: string, specifier: string): string | null {
  const base = path.posix.join(path.posix.dirname(from), specifier);
  for (const candidate of [`${base}.ts`, `${base}.d.ts`, `${base}/index.ts`, base]) {
    try {
      if (statSync(path.join(ROOT, candidate)).isFile()) return candidate;
    } catch {
      // not this one
    }
  }
  return null;
}

/** Every relative import of a file: import/export … from, a bare import, require() and import(). */
function importsOf(file: string): Import[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const found: Array<{ specifier: string; typeOnly: boolean }> = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^;'"]*?\bfrom\s+['"](\.[^'"]*)['"]/gm)) found.push({ specifier: m[2], typeOnly: !!m[1] });
  for (const m of text.matchAll(/^import\s+['"](\.[^'"]*)['"]/gm)) found.push({ specifier: m[1], typeOnly: false });
  for (const m of text.matchAll(/\b(?:require|import)\(\s*['"](\.[^'"]*)['"]\s*\)/g)) found.push({ specifier: m[1], typeOnly: false });
  return found.map(({ specifier, typeOnly }) => {
    const to = resolve(file, specifier);
    if (to === null) throw new Error(`${file}: import '${specifier}' names no file`);
    return { from: file, to, typeOnly };
  });
}

const layerOf = (file: string): Layer | undefined => LAYERS.find((l) => l.holds.test(file));

const files = [...FOLDERS.flatMap(tsFiles), ENTRY];
const imports = files.flatMap(importsOf);

test('every file of the product belongs to a declared layer', () => {
  expect(files.length).toBeGreaterThan(60);
  expect(files.filter((f) => f !== ENTRY && !f.startsWith('client/') && !layerOf(f))).toEqual([]);
});

test('the parser finds the imports (a sample of known ones)', () => {
  const has = (from: string, to: string): boolean => imports.some((i) => i.from === from && i.to === to);
  expect(has('cli/main.ts', 'cli/start-gateway.ts')).toBe(true);
  expect(has('shared/store/queues.ts', 'shared/log.ts')).toBe(true);
  expect(has('shared/store/check/jobs.ts', 'shared/levels.ts')).toBe(true);
  expect(has('client/index.ts', WIRE)).toBe(true);
  expect(imports.length).toBeGreaterThan(200);
});

test('no import goes to a higher layer, nor between peers', () => {
  const wrong = imports
    .filter(({ from }) => from !== ENTRY && !from.startsWith('client/'))
    .flatMap(({ from, to }) => {
      const a = layerOf(from)!;
      const b = layerOf(to);
      if (!b) return [`${from} -> ${to}: imports outside the layers`];
      if (a === b || b.rank < a.rank) return [];
      return [`${from} -> ${to}: ${a.name} may not import ${b.name}`];
    });
  expect(wrong).toEqual([]);
});

test('the client imports only the wire contract, which imports nothing of ours', () => {
  const fromClient = imports.filter(({ from }) => from.startsWith('client/')).map(({ to }) => to);
  expect(fromClient.filter((to) => to !== WIRE && !to.startsWith('client/'))).toEqual([]);
  expect(imports.filter(({ from }) => from === WIRE)).toEqual([]);
});

test('only the package entry imports the client, and the entry imports the rest for types only', () => {
  expect(imports.filter(({ from, to }) => to.startsWith('client/') && from !== ENTRY && !from.startsWith('client/'))).toEqual([]);
  const entry = imports.filter(({ from }) => from === ENTRY);
  expect(entry.filter(({ to, typeOnly }) => !to.startsWith('client/') && !typeOnly)).toEqual([]);
  expect(entry.filter(({ to }) => !to.startsWith('client/') && !['base', 'call'].includes(layerOf(to)?.name ?? ''))).toEqual([]);
});
