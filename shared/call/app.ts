// Loads the user's module and recognises what it exports by shape, never by instanceof:
// the module may bring its own copy of koa or @koa/router.
/* eslint-disable @typescript-eslint/no-explicit-any -- Koa contexts come from the user's own copy of koa, handled by shape */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Koa from 'koa';
import koaCompose from 'koa-compose';

/** The parts of a Koa application that in-process dispatch uses. */
export interface KoaLike {
  middleware: Array<(ctx: any, next: () => Promise<unknown>) => unknown>;
  createContext(req: unknown, res: unknown): any;
  use(fn: unknown): unknown;
  compose?: (middleware: KoaLike['middleware']) => (ctx: any) => Promise<unknown>;
  ctxStorage?: { run<T>(ctx: unknown, fn: () => T): T };
  emit(event: string, ...args: unknown[]): boolean;
  listenerCount(event: string): number;
  silent?: boolean;
}

/** The parts of a @koa/router Router used to answer 405 and to mount a bare router. */
export interface RouterLike {
  routes(): (ctx: any, next: () => Promise<unknown>) => unknown;
  allowedMethods(options?: object): (ctx: any, next: () => Promise<unknown>) => unknown;
  match(path: string, method: string): { path: Array<{ methods: string[] }>; route: boolean };
}

export interface LoadedApp {
  app: KoaLike;
  /** The composed middleware, built once. */
  run: (ctx: any) => Promise<unknown>;
  /** Routers mounted on the app, to tell 405 from 404. */
  routers: RouterLike[];
}

export function isKoaApp(value: unknown): value is KoaLike {
  const v = value as Partial<KoaLike> | null;
  return !!v && typeof v === 'object' && Array.isArray(v.middleware) && typeof v.createContext === 'function' && typeof v.use === 'function';
}

export function isRouter(value: unknown): value is RouterLike {
  const v = value as Partial<RouterLike> | null;
  return (
    !!v &&
    (typeof v === 'object' || typeof v === 'function') &&
    typeof v.routes === 'function' &&
    typeof v.allowedMethods === 'function' &&
    typeof v.match === 'function'
  );
}

/** Turns a Koa app, a Router, or a (possibly async) factory returning either into a LoadedApp. */
export async function toLoadedApp(exported: unknown, source = 'the app module', factoryCalled = false): Promise<LoadedApp> {
  let value = exported;
  if (!factoryCalled && typeof value === 'function' && !isRouter(value)) value = await (value as () => unknown)();
  if (isRouter(value)) {
    const app = new Koa();
    app.use(value.routes());
    app.use(value.allowedMethods());
    value = app;
  }
  if (!isKoaApp(value)) {
    throw new Error(`${source} must export a Koa application, a @koa/router Router, or a function returning one`);
  }
  const app = value;
  const compose = typeof app.compose === 'function' ? app.compose : koaCompose;
  const routers = app.middleware.map((fn) => (fn as { router?: unknown }).router).filter(isRouter);
  return { app, run: compose(app.middleware) as LoadedApp['run'], routers };
}

/**
 * An error of the user's module, said with the file and the phase it happened in (its loading,
 * or the call of the factory it exports), so a user can tell it from one of Switchyard's own.
 */
function inPhase(phase: 'loading' | 'starting', modulePath: string, err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  let hint = '';
  if (err instanceof SyntaxError && /\.[cm]?tsx?$/.test(modulePath)) {
    hint = ' (Node runs JavaScript: compile the app first, e.g. with tsc, and give --app the .js file it writes)';
  } else if (err instanceof SyntaxError) {
    // Node names the line of a syntax error only in the stack's first line ("/path/app.js:3").
    const at = /^(\/[^\n]*:\d+)\n/.exec(err.stack ?? '')?.[1];
    if (at) hint = ` (at ${at})`;
  }
  return new Error(`${phase} --app ${modulePath}: ${message}${hint}`, { cause: err });
}

/** Requires (or imports, for ES modules) the file at `modulePath` and loads what it exports. */
export async function loadApp(modulePath: string): Promise<LoadedApp> {
  const resolved = path.resolve(modulePath);
  let mod: any;
  try {
    // The user's module, found at run time: require() loads CommonJS, import() below the rest.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(resolved);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE') {
      try {
        mod = await (new Function('u', 'return import(u)') as (u: string) => Promise<unknown>)(pathToFileURL(resolved).href);
      } catch (importErr) {
        throw inPhase('loading', modulePath, importErr);
      }
    } else if (code === 'MODULE_NOT_FOUND' && (err as Error).message.startsWith(`Cannot find module '${resolved}'`)) {
      throw new Error(`--app: cannot find ${resolved}`, { cause: err });
    } else {
      throw inPhase('loading', modulePath, err);
    }
  }
  const exported = mod && typeof mod === 'object' && 'default' in mod ? mod.default : mod;
  if (typeof exported !== 'function' || isRouter(exported)) return toLoadedApp(exported, resolved);
  // A factory is called here, so what it throws is said as the app's start, not as our own error.
  let value: unknown;
  try {
    value = await (exported as () => unknown)();
  } catch (err) {
    throw inPhase('starting', modulePath, err);
  }
  return toLoadedApp(value, resolved, true);
}
