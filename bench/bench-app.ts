// The Koa app the async benchmark's Switchyard workers run: the demo's no-op route, and
// /wake, which records how long after the client's call the handler started.
import Router from '@koa/router';
import Redis from 'ioredis';
import Koa from 'koa';
import { machineClockMs } from './clock';

const record = process.env.BENCH_RECORD_URL ? new Redis(process.env.BENCH_RECORD_URL) : null;
const router = new Router();
router.post('/noop', (ctx) => {
  ctx.body = { ok: true };
});
router.post('/wake', (ctx) => {
  const startedAt = machineClockMs();
  const sentAt = (ctx.request as { body?: { sentAt: number } }).body!.sentAt;
  void record?.rpush('bench:wake', String(startedAt - sentAt));
  ctx.body = { ok: true };
});
const app = new Koa();
app.use(router.routes());
export default app;
