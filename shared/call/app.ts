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
export async function toLoadedApp(exported: unknown, source = 'the app module'): Promise<LoadedApp> {
  let value = exported;
  if (typeof value === 'function' && !isRouter(value)) value = await (value as () => unknown)();
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
      mod = await (new Function('u', 'return import(u)') as (u: string) => Promise<unknown>)(pathToFileURL(resolved).href);
    } else if (code === 'MODULE_NOT_FOUND' && (err as Error).message.startsWith(`Cannot find module '${resolved}'`)) {
      throw new Error(`--app: cannot find ${resolved}`, { cause: err });
    } else {
      throw err;
    }
  }
  const exported = mod && typeof mod === 'object' && 'default' in mod ? mod.default : mod;
  return toLoadedApp(exported, resolved);
}
