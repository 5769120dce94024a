// The demo service `npm start` serves: an ordinary Koa app with @koa/router, nothing
// Switchyard-specific except reading ctx.state.rpc in /jobs/last to show what a worker sees.
import Router from '@koa/router';
import Koa from 'koa';

// Switchyard sets ctx.request.body before the middleware runs (as a body parser would).
declare module 'koa' {
  interface Request {
    body?: unknown;
  }
}

interface User {
  id: number;
  name: string;
  email: string;
}

interface Note {
  id: number;
  userId: number;
  text: string;
}

export function createDemoApp(): Koa {
  const users = new Map<number, User>();
  const notes = new Map<number, Note>();
  let nextUserId = 1;
  let nextNoteId = 1;
  const recentJobs: unknown[] = [];

  const router = new Router();

  router.get('/users', (ctx) => {
    const limit = Math.min(Number(ctx.query.limit ?? 50) || 50, 500);
    ctx.body = [...users.values()].slice(0, limit);
  });

  router.post('/users', (ctx) => {
    const body = (ctx.request.body ?? {}) as Partial<User>;
    if (typeof body.name !== 'string' || typeof body.email !== 'string') {
      ctx.status = 422;
      ctx.body = { error: 'name and email are required strings' };
      return;
    }
    const user: User = { id: nextUserId++, name: body.name, email: body.email };
    users.set(user.id, user);
    ctx.status = 201;
    ctx.body = user;
  });

  router.get('/users/:id', (ctx) => {
    const user = users.get(Number(ctx.params.id));
    if (!user) ctx.throw(404, `user ${ctx.params.id} not found`);
    ctx.body = user;
  });

  router.put('/users/:id', (ctx) => {
    const id = Number(ctx.params.id);
    const existing = users.get(id);
    if (!existing) return ctx.throw(404, `user ${ctx.params.id} not found`);
    const body = (ctx.request.body ?? {}) as Partial<User>;
    const user: User = {
      ...existing,
      ...(typeof body.name === 'string' ? { name: body.name } : {}),
      ...(typeof body.email === 'string' ? { email: body.email } : {}),
    };
    users.set(id, user);
    ctx.body = user;
  });

  router.delete('/users/:id', (ctx) => {
    if (!users.delete(Number(ctx.params.id))) ctx.throw(404, `user ${ctx.params.id} not found`);
    ctx.status = 204;
  });

  router.get('/users/:id/notes', (ctx) => {
    ctx.body = [...notes.values()].filter((n) => n.userId === Number(ctx.params.id));
  });

  router.post('/users/:id/notes', (ctx) => {
    const userId = Number(ctx.params.id);
    if (!users.has(userId)) ctx.throw(404, `user ${ctx.params.id} not found`);
    const text = (ctx.request.body as { text?: unknown } | null)?.text;
    if (typeof text !== 'string') return ctx.throw(422, 'text is required');
    const note: Note = { id: nextNoteId++, userId, text };
    notes.set(note.id, note);
    ctx.status = 201;
    ctx.body = note;
  });

  // Targets for async calls: records what the worker saw, so `GET /jobs` shows it ran.
  router.post('/jobs', (ctx) => {
    recentJobs.unshift({ at: new Date().toISOString(), rpc: ctx.state.rpc, body: ctx.request.body });
    recentJobs.length = Math.min(recentJobs.length, 100);
    ctx.status = 202;
    ctx.body = { accepted: true };
  });
  router.get('/jobs', (ctx) => {
    ctx.body = recentJobs;
  });

  // No-op route used by the benchmarks.
  router.all('/noop', (ctx) => {
    ctx.body = { ok: true };
  });

  const app = new Koa();
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

export default createDemoApp();
