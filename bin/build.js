#!/usr/bin/env node
'use strict';
// `npm run build`: compiles into a fresh folder beside dist/, then moves each file into dist/
// with a rename (atomic: a process that loads a file sees the old one or the new one, never
// half of one, and dist/ itself never disappears), and last removes what the new build no
// longer has (outputs of deleted sources). A gateway or a demo running from dist/ keeps
// working while it builds; a failed compile leaves dist/ as it was.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist');

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir, rel = '') {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((entry) => {
    const name = path.join(rel, entry.name);
    return entry.isDirectory() ? filesUnder(dir, name) : [name];
  });
}

/** Removes the folders under `dir` (not `dir` itself) that hold nothing any more, deepest first. */
function removeEmptyFolders(dir, rel = '') {
  for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const name = path.join(rel, entry.name);
    removeEmptyFolders(dir, name);
    if (fs.readdirSync(path.join(dir, name)).length === 0) fs.rmdirSync(path.join(dir, name));
  }
}

function build() {
  const next = path.join(ROOT, `dist.next-${process.pid}`);
  fs.rmSync(next, { recursive: true, force: true });
  const tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
  const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', next], { stdio: 'inherit' });
  if (compiled.status !== 0) {
    fs.rmSync(next, { recursive: true, force: true });
    return compiled.status ?? 1;
  }
  if (!fs.existsSync(DIST)) {
    fs.renameSync(next, DIST);
    return 0;
  }
  const built = filesUnder(next);
  for (const file of built) {
    fs.mkdirSync(path.dirname(path.join(DIST, file)), { recursive: true });
    fs.renameSync(path.join(next, file), path.join(DIST, file));
  }
  const keep = new Set(built);
  for (const file of filesUnder(DIST)) if (!keep.has(file)) fs.rmSync(path.join(DIST, file), { force: true });
  removeEmptyFolders(DIST);
  fs.rmSync(next, { recursive: true, force: true });
  return 0;
}

module.exports = { build };

if (require.main === module) process.exitCode = build();
