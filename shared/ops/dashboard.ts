// The dashboard on an admin port: the page and its assets (shipped in the package, nothing from
// the internet), and the JSON API it polls. Reading needs nothing; every action that changes
// state needs the admin token (compared in constant time), and without one configured the
// dashboard is read-only. No secret of the process is ever part of an answer.
import { timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Level } from '../call/params';
import { LEVEL2_OFF_ABOVE, LEVEL2_ON_BELOW } from '../policy';
import { readDeadEntry } from '../store/lookup';
import type { Queues } from '../store/queues';
import { log } from './log';

export interface DashboardOptions {
  queues: Queues;
  /** Deployment-wide --capacity, for the level-2 switch's marks. */
  capacity: number;
  adminToken?: string;
}

/** Handles a request if it is the dashboard's; false otherwise. */
export type Route = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

function assetsDir(): string {
  // From dist/shared/ops the sources are three levels up; under ts-jest they are beside us.
  for (const dir of [path.join(__dirname, 'dashboard'), path.join(__dirname, '..', '..', '..', 'shared', 'ops', 'dashboard')]) {
    if (existsSync(path.join(dir, 'index.html'))) return dir;
  }
  throw new Error(`dashboard assets not found near ${__dirname}`);
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

function assets(): Map<string, { body: Buffer; type: string }> {
  const dir = assetsDir();
  const files: Array<[string, string]> = [
    ['/', path.join(dir, 'index.html')],
    ['/assets/dashboard.js', path.join(dir, 'dashboard.js')],
    ['/assets/dashboard.css', path.join(dir, 'dashboard.css')],
    ['/assets/uPlot.iife.min.js', require.resolve('uplot/dist/uPlot.iife.min.js')],
    ['/assets/uPlot.min.css', require.resolve('uplot/dist/uPlot.min.css')],
  ];
  return new Map(files.map(([route, file]) => [route, { body: readFileSync(file), type: TYPES[path.extname(file)] }]));
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** The view the page polls: depths, the switch, counters, workers; nothing secret. */
async function overview(o: DashboardOptions): Promise<Record<string, unknown>> {
  const { queues } = o;
  const [{ total, partitions }, gauges, paused, workers] = await Promise.all([queues.stats(), queues.gauges(), queues.pausedLevels(), queues.workers()]);
  return {
    deployment: { prefix: queues.prefix, partitions: queues.partitions },
    actions: o.adminToken ? 'token-required' : 'read-only',
    time: Date.now(),
    queues: total.queues,
    backlog: total.backlog,
    oldestAgeSeconds: gauges.oldestAgeSeconds,
    level2: { active: total.level2Active, backlog: total.backlog.L2, capacity: o.capacity, offAbove: LEVEL2_OFF_ABOVE, onBelow: LEVEL2_ON_BELOW },
    paused,
    counters: total.counters,
    inFlight: total.inFlight,
    retriesWaiting: total.delayed,
    dead: total.dead,
    workers,
    partitions: partitions.length > 1 ? partitions.map((p, i) => ({ partition: i, backlog: p.backlog, level2Active: p.level2Active })) : undefined,
  };
}

async function deadList(o: DashboardOptions, limit: number): Promise<Record<string, unknown>> {
  const entries = await o.queues.listDead(limit);
  const { total } = await o.queues.stats();
  const items = entries.map(
    (text) => readDeadEntry(text) ?? { id: '?', level: 0, method: '?', url: '?', attempts: 0, status: null, error: text.slice(0, 200), failedAt: 0 },
  );
  return { total: total.dead, items };
}

export function dashboardRoute(o: DashboardOptions): Route {
  const files = assets();
  const expected = o.adminToken ? Buffer.from(`Bearer ${o.adminToken}`) : null;
  const allowed = (req: IncomingMessage): boolean => {
    if (!expected) return false;
    const given = Buffer.from(String(req.headers.authorization ?? ''));
    return given.length === expected.length && timingSafeEqual(given, expected);
  };

  const actions: Array<[RegExp, (m: RegExpExecArray) => Promise<unknown>]> = [
    [/^\/api\/dead\/requeue-all$/, async () => ({ requeued: await o.queues.requeueAllDead() })],
    [/^\/api\/dead\/purge$/, async () => ({ purged: await o.queues.purgeDead() })],
    [/^\/api\/dead\/([^/]+)\/requeue$/, async (m) => ({ outcome: await o.queues.requeueDead(decodeURIComponent(m[1])) })],
    [/^\/api\/levels\/([12])\/(pause|resume)$/, async (m) => ({ changed: await o.queues.setPaused(Number(m[1]) as Level, m[2] === 'pause') })],
  ];

  return (req, res, urlPath) => {
    const file = files.get(urlPath);
    if (file && req.method === 'GET') {
      res.writeHead(200, { 'content-type': file.type });
      res.end(file.body);
      return true;
    }
    if (!urlPath.startsWith('/api/')) return false;
    const answer = (work: Promise<unknown>): void => {
      work.then(
        (body) => json(res, 200, body),
        (err: Error) => json(res, 503, { error: `Redis did not answer: ${err.message}` }),
      );
    };
    if (req.method === 'GET') {
      const query = new URL(req.url ?? '/', 'http://dashboard').searchParams;
      if (urlPath === '/api/overview') answer(overview(o));
      else if (urlPath === '/api/dead') answer(deadList(o, Math.min(200, Number(query.get('limit')) || 20)));
      else if (urlPath.startsWith('/api/jobs/')) answer(o.queues.lookup(decodeURIComponent(urlPath.slice('/api/jobs/'.length))));
      else json(res, 404, { error: 'no such dashboard API' });
      return true;
    }
    if (req.method !== 'POST') {
      json(res, 405, { error: 'GET or POST' });
      return true;
    }
    for (const [pattern, act] of actions) {
      const m = pattern.exec(urlPath);
      if (!m) continue;
      if (!expected) json(res, 403, { error: 'read-only: this dashboard was started without --admin-token' });
      else if (!allowed(req)) json(res, 401, { error: 'the admin token is missing or wrong' });
      else {
        log.info({ event: 'dashboard_action', action: urlPath }, `dashboard: ${urlPath}`);
        answer(act(m));
      }
      return true;
    }
    json(res, 404, { error: 'no such dashboard action' });
    return true;
  };
}
