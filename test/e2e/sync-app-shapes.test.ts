// The user's module, recognised by shape: a Koa app, a bare Router, a sync or async factory,
// an ES module, and an app that brings its own copy of koa and @koa/router.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Koa from 'koa';
import { call, closeClients } from '../../client';
import { createGateway } from '../../server/gateway';
import { loadApp, type LoadedApp } from '../../shared/call/app';
import { startSwitchyard } from '../helpers/processes';

const ROOT = path.resolve(__dirname, '..', '..');
let dir: string;

beforeAll(() => {
  // Inside the repository, so the copies' own dependencies resolve upwards to ours,
  // while `koa` and `@koa/router` resolve to the copies: different module instances.
  dir = mkdtempSync(path.join(ROOT, 'test', '.tmp-apps-'));
  for (const pkg of ['koa', '@koa/router']) cpSync(path.join(ROOT, 'node_modules', pkg), path.join(dir, 'node_modules', pkg), { recursive: true });
  const routes = `
    router.get('/items/:id', (ctx) => { ctx.body = { id: ctx.params.id, shape: SHAPE }; });
    router.post('/items', (ctx) => { ctx.status = 201; ctx.body = ctx.request.body; });`;
  const files: Record<string, string> = {
    'koa-app.js': `const Koa = require('koa'); const Router = require('@koa/router'); const SHAPE = 'app';
      const router = new Router(); ${routes}
      const app = new Koa(); app.use(router.routes()); app.use(router.allowedMethods()); module.exports = app;`,
    'router.js': `const Router = require('@koa/router'); const SHAPE = 'router';
      const router = new Router(); ${routes} module.exports = router;`,
    'factory.js': `const Koa = require('koa'); const Router = require('@koa/router'); const SHAPE = 'factory';
      module.exports = () => { const router = new Router(); ${routes} const app = new Koa(); app.use(router.routes()).use(router.allowedMethods()); return app; };`,
    'async-factory.js': `const Router = require('@koa/router'); const SHAPE = 'async factory';
      module.exports.default = async () => { await new Promise((r) => setTimeout(r, 10)); const router = new Router(); ${routes} return router; };`,
    'esm-app.mjs': `import Koa from 'koa'; import Router from '@koa/router'; const SHAPE = 'esm';
      const router = new Router(); ${routes}
      const app = new Koa(); app.use(router.routes()).use(router.allowedMethods()); export default app;`,
    'not-an-app.js': `module.exports = { hello: 'world' };`,
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
});

afterAll(() => {
  closeClients();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(loaded: LoadedApp, run: (address: string) => Promise<void>): Promise<void> {
  const gateway = createGateway({
    app: loaded,
    host: '127.0.0.1',
    port: 0,
    defaultTimeoutMs: 2000,
    maxParamsBytes: 1 << 20,
    maxBodyBytes: 1 << 19,
    debug: false,
  });
  const port = await gateway.start();
  try {
    await run(`127.0.0.1:${port}`);
  } finally {
    await gateway.stop(100);
  }
}

test.each([
  ['koa-app.js', 'app'],
  ['router.js', 'router'],
  ['factory.js', 'factory'],
  ['async-factory.js', 'async factory'],
])('%s is served with routes, bodies, 404 and 405', async (file, shape) => {
  const loaded = await loadApp(path.join(dir, file));
  // The app is built from the temp dir's own koa: instanceof against ours fails, shape detection works.
  expect(loaded.app instanceof Koa).toBe(shape === 'router' || shape === 'async factory');
  await serve(loaded, async (address) => {
    expect(await call('/items/3', { address })).toMatchObject({ status: 200, data: { id: '3', shape } });
    expect(await call('/items', { address, method: 'POST', content: { n: 1 } })).toMatchObject({ status: 201, data: { n: 1 } });
    expect((await call('/nothing', { address })).status).toBe(404);
    expect((await call('/items/3', { address, method: 'DELETE' })).status).toBe(405);
  });
});

test('an ES module app is served by the switchyard executable', async () => {
  const gateway = await startSwitchyard('gateway', [
    '--app',
    path.join(dir, 'esm-app.mjs'),
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--redis',
    'redis://127.0.0.1:1',
  ]);
  try {
    const address = `127.0.0.1:${gateway.ready.port}`;
    expect(await call('/items/5', { address })).toMatchObject({ status: 200, data: { id: '5', shape: 'esm' } });
    expect((await call('/items/5', { address, method: 'PUT' })).status).toBe(405);
  } finally {
    gateway.kill('SIGTERM');
    await gateway.exited;
  }
});

test('a module that exports something else is refused with a clear message', async () => {
  await expect(loadApp(path.join(dir, 'not-an-app.js'))).rejects.toThrow(/must export a Koa application, a @koa\/router Router, or a function returning one/);
  await expect(loadApp(path.join(dir, 'missing.js'))).rejects.toThrow(/cannot find/);
});
