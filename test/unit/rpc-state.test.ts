// What a route finds in ctx.state.rpc: the documented fields and the signal (docs/protocol.md,
// section 4), nothing else: the run's abort is not the route's to call.
import Koa from 'koa';
import { toLoadedApp } from '../../shared/call/app';
import { dispatch } from '../../shared/call/dispatch';
import { parseParams } from '../../shared/call/params';
import { RunAbort } from '../../shared/call/run-abort';

const LIMITS = { maxParamsBytes: 1 << 20, maxBodyBytes: 1 << 20 };

test('ctx.state.rpc holds the documented fields and the signal; no `abort`, under any name a route can reach', async () => {
  const app = new Koa();
  app.use((ctx) => {
    const rpc = ctx.state.rpc as Record<string, unknown>;
    ctx.body = {
      keys: Object.keys(rpc).sort(),
      abort: 'abort' in rpc,
      own: Object.getOwnPropertyNames(rpc).sort(),
      signal: rpc.signal instanceof AbortSignal,
      json: JSON.parse(JSON.stringify(rpc)),
    };
  });
  const reply = await dispatch(await toLoadedApp(app), parseParams(JSON.stringify({ url: '/x', method: 'GET' }), LIMITS), {});
  const fields = ['attempt', 'fence', 'jobId', 'key', 'level', 'policy', 'reply'];
  expect(reply.data).toEqual({
    keys: fields,
    abort: false,
    own: fields,
    signal: true,
    json: { reply: true, level: null, policy: null, key: null, jobId: null, attempt: 1, fence: null },
  });
});

test('the signal still follows the run: aborted when the run is', async () => {
  const abort = new RunAbort();
  const app = new Koa();
  app.use(async (ctx) => {
    const { signal } = ctx.state.rpc as { signal: AbortSignal };
    abort.abort(new Error('deadline'));
    ctx.body = { aborted: signal.aborted, reason: (signal.reason as Error).message };
  });
  const reply = await dispatch(await toLoadedApp(app), parseParams(JSON.stringify({ url: '/x', method: 'GET' }), LIMITS), { abort });
  expect(reply.data).toEqual({ aborted: true, reason: 'deadline' });
});
