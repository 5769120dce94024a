// The smallest Koa app: one middleware, no router. Run through the gateway next to the demo
// app, it separates what the gateway costs from what the app's own routing costs.
import Koa from 'koa';

const app = new Koa();
app.use((ctx) => {
  ctx.body = { ok: true };
});
export default app;
