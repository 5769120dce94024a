// Where the package's own files are, whether this code runs built (dist/…/*.js) or from its
// TypeScript sources (ts-jest runs the .ts files in place). The one place that knows how an
// install is laid out: the root holds package.json, the shipped sources (the Lua scripts, the
// dashboard's page) at their repository paths, and the build under dist/.
import { existsSync } from 'node:fs';
import path from 'node:path';

/** True when this runs from the TypeScript sources (ts-jest), false when from the build in dist/. */
export const RUNS_FROM_SOURCE = path.extname(__filename) === '.ts';

/** The package's root: this file is shared/package-root.ts there, or dist/shared/package-root.js. */
export const PACKAGE_ROOT = path.resolve(__dirname, RUNS_FROM_SOURCE ? '..' : path.join('..', '..'));

/**
 * A file or folder the package ships as it is in the repository (never compiled, so never under
 * dist/), by its repository path. Throws when it is missing: a file left out of package.json "files".
 */
export function fromSource(...parts: string[]): string {
  const found = path.join(PACKAGE_ROOT, ...parts);
  if (!existsSync(found)) throw new Error(`${parts.join('/')} not found under ${PACKAGE_ROOT}`);
  return found;
}

/** A built file, under dist/ whether this runs from there or from the sources (ts-jest then needs a build). */
export function fromBuild(...parts: string[]): string {
  return path.join(PACKAGE_ROOT, 'dist', ...parts);
}
