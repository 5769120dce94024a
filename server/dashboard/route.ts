// The dashboard on an admin port: the page and its assets (shipped in the package, nothing from
// the internet), and the JSON API it polls. Who may see what is access.ts: a foreign Host
// is refused (DNS rebinding), job details are redacted except with the admin token or to
// loopback, and every action that changes state needs the token (without one configured the
// dashboard is read-only). No secret of the process, and no text of Redis's, is part of an answer.
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import type { Level } from '../../shared/levels';
import { fromSource } from '../../shared/package-root';
import { LEVEL2_OFF_ABOVE, LEVEL2_ON_BELOW } from '../../shared/policy';
import { readDeadEntry } from '../../shared/store/format/dead-entry';
import type { Queues } from '../../shared/store/queues';
import { accessOf } from './access';
import type { Route } from '../../shared/ops/admin';
import { redactJob, redactWorkers } from './redaction';
import { log } from '../../shared/log';
import {
  checkGroupName,
  parseConcurrencyChange,
  parseRateChange,
  readDeploymentGroups,
  setGroupLimits,
  summarizeGroups,
  type GroupsSummary,
  type LimitsChange,
} from '../../shared/ops/groups';

export interface DashboardOptions {
  queues: Queues;
  /** Deployment-wide --capacity, for the level-2 switch's marks. */
  capacity: number;
  adminToken?: string;
}

/** `/api/dead?limit=N`: how many of the newest dead entries (docs/protocol.md). */
export const DEAD_LIMIT = { min: 1, max: 200, default: 20 } as const;

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

function assets(): Map<string, { body: Buffer; type: string }> {
  const dir = fromSource('server', 'dashboard', 'assets');
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

/** A path segment decoded, or null when it is not valid percent-encoded UTF-8 (`%ZZ`, a lone surrogate). */
function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** The job id of `/api/jobs/<id>`, `/api/dead/<id>/requeue` or `/api/dead/<id>/delete`, or why it is not one. */
function jobIdOf(segment: string): { id: string } | { error: string } {
  const id = decodeSegment(segment);
  if (id === null) return { error: 'the job id in the path is not valid percent-encoding (UTF-8 bytes as %XX)' };
  if (id === '') return { error: 'no job id: /api/jobs/<id>' };
  return { id };
}

/** `limit` of `/api/dead`: absent is the default; anything but one whole number in range is refused. */
function deadLimitOf(query: URLSearchParams): number | { error: string } {
  const given = query.getAll('limit');
  if (given.length === 0) return DEAD_LIMIT.default;
  const n = given.length === 1 && /^[0-9]{1,3}$/.test(given[0]) ? Number(given[0]) : NaN;
  if (n >= DEAD_LIMIT.min && n <= DEAD_LIMIT.max) return n;
  return { error: `limit must be a whole number in ${DEAD_LIMIT.min}..${DEAD_LIMIT.max}, given once (default ${DEAD_LIMIT.default})` };
}

/** The view the page polls: depths, the switch, counters, workers and what they run. */
async function overview(o: DashboardOptions, full: boolean, tokenAccepted: boolean): Promise<Record<string, unknown>> {
  const { queues } = o;
  const [{ total, partitions }, gauges, paused, workers, groups] = await Promise.all([
    queues.stats(),
    queues.gauges(),
    queues.pausedLevels(),
    queues.workers(),
    readDeploymentGroups(queues).then((read) => summarizeGroups(read)),
  ]);
  return {
    deployment: { prefix: queues.prefix, partitions: queues.partitions },
    actions: o.adminToken ? 'token-required' : 'read-only',
    // Whether this request's token is the admin token: the page enables its actions only then.
    tokenAccepted: o.adminToken !== undefined && tokenAccepted,
    details: full ? 'full' : 'redacted',
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
    workers: full ? workers : redactWorkers(workers),
    groups: full ? groups : redactGroups(groups),
    partitions: partitions.length > 1 ? partitions.map((p, i) => ({ partition: i, backlog: p.backlog, level2Active: p.level2Active })) : undefined,
  };
}

/** A group's name is a tenant's (an address, a customer id): shown only with full details, else by its rank. */
function redactGroups(groups: GroupsSummary): GroupsSummary {
  return { ...groups, top: groups.top.map((g, i) => ({ ...g, name: `#${i + 1}` })) };
}

async function deadList(o: DashboardOptions, limit: number, full: boolean): Promise<Record<string, unknown>> {
  const entries = await o.queues.listDead(limit);
  const { total } = await o.queues.stats();
  const items = entries.map(
    (text) => readDeadEntry(text) ?? { id: '?', level: 0, method: '?', url: '?', attempts: 0, status: null, error: text.slice(0, 200), failedAt: 0 },
  );
  return { total: total.dead, items: full ? items : items.map((item) => redactJob(item)) };
}

/**
 * `POST /api/groups/<name>/limits?concurrency=…&rate=…`: what `switchyard group <name>
 * --concurrency … --rate …` sets, or why the request is refused.
 */
function limitsChangeOf(segment: string, query: URLSearchParams): { name: string; change: LimitsChange } | { error: string } {
  const name = decodeSegment(segment);
  if (name === null) return { error: 'the group name in the path is not valid percent-encoding' };
  const change: LimitsChange = {};
  try {
    checkGroupName(name);
    for (const [field, parse] of [
      ['concurrency', parseConcurrencyChange],
      ['rate', parseRateChange],
    ] as const) {
      const given = query.getAll(field);
      if (given.length > 1) return { error: `${field} given more than once` };
      if (given.length === 1) change[field] = parse(given[0]);
    }
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (change.concurrency === undefined && change.rate === undefined)
    return { error: 'nothing to change: give concurrency=N|off|default and/or rate=R|off|default' };
  for (const field of query.keys()) if (field !== 'concurrency' && field !== 'rate') return { error: `unknown parameter ${field}` };
  return { name, change };
}

/** Errors of our own code (not of Redis): answered 500 by the admin port's guard. */
function isProgrammingError(err: unknown): boolean {
  return err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError;
}

const HOST_REFUSED =
  'the Host header does not name this admin port: use localhost, a loopback or IP address, or the name it is bound to (--host), ' +
  'or send the admin token (authorization: Bearer <--admin-token>)';

export function dashboardRoute(o: DashboardOptions): Route {
  const files = assets();

  const actions: Array<[RegExp, (m: RegExpExecArray, query: URLSearchParams) => Promise<unknown> | { error: string }]> = [
    [/^\/api\/dead\/requeue-all$/, async () => ({ requeued: await o.queues.requeueAllDead() })],
    [/^\/api\/dead\/purge$/, async () => ({ purged: await o.queues.purgeDead() })],
    [
      /^\/api\/dead\/([^/]+)\/requeue$/,
      (m) => {
        const job = jobIdOf(m[1]);
        return 'error' in job ? job : o.queues.requeueDead(job.id).then((outcome) => ({ outcome }));
      },
    ],
    [
      /^\/api\/dead\/([^/]+)\/delete$/,
      (m) => {
        const job = jobIdOf(m[1]);
        return 'error' in job ? job : o.queues.deleteDead(job.id).then((outcome) => ({ outcome }));
      },
    ],
    [/^\/api\/levels\/([12])\/(pause|resume)$/, async (m) => ({ changed: await o.queues.setPaused(Number(m[1]) as Level, m[2] === 'pause') })],
    [
      /^\/api\/groups\/([^/]+)\/limits$/,
      (m, query) => {
        const asked = limitsChangeOf(m[1], query);
        return 'error' in asked ? asked : setGroupLimits(o.queues, asked.name, asked.change).then((limits) => ({ group: asked.name, limits }));
      },
    ],
  ];

  return ({ req, res, path: urlPath, query, bindHost }) => {
    const file = files.get(urlPath);
    if (!file && !urlPath.startsWith('/api/')) return false;
    const access = accessOf(req, { adminToken: o.adminToken, bindHost });
    if (!access.hostAllowed) {
      json(res, 421, { error: HOST_REFUSED });
      return true;
    }
    if (file) {
      if (req.method === 'GET' || req.method === 'HEAD') {
        res.writeHead(200, { 'content-type': file.type });
        res.end(file.body);
      } else json(res, 405, { error: 'GET' });
      return true;
    }

    // Redis's own words (they may name hosts and keys) go to the log, not to the caller.
    const answer = (work: Promise<unknown>): Promise<void> =>
      work.then(
        (body) => json(res, 200, body),
        (err: Error) => {
          if (isProgrammingError(err)) throw err;
          log.warn(
            { event: 'dashboard_redis_failed', path: urlPath.slice(0, 200), error: String(err?.message ?? err) },
            `dashboard: Redis did not answer: ${err?.message}`,
          );
          json(res, 503, { error: 'Redis did not answer' });
        },
      );
    const refuse = (status: number, error: string): true => {
      json(res, status, { error });
      return true;
    };

    if (req.method === 'GET' || req.method === 'HEAD') {
      if (urlPath === '/api/overview') return answer(overview(o, access.fullDetails, access.tokenValid));
      if (urlPath === '/api/dead') {
        const limit = deadLimitOf(new URLSearchParams(query));
        return typeof limit === 'number' ? answer(deadList(o, limit, access.fullDetails)) : refuse(400, limit.error);
      }
      if (urlPath.startsWith('/api/jobs/')) {
        const job = jobIdOf(urlPath.slice('/api/jobs/'.length));
        if ('error' in job) return refuse(400, job.error);
        return answer(o.queues.lookup(job.id).then((view) => (access.fullDetails ? view : redactJob(view))));
      }
      return refuse(404, 'no such dashboard API');
    }
    if (req.method !== 'POST') return refuse(405, 'GET or POST');
    for (const [pattern, act] of actions) {
      const m = pattern.exec(urlPath);
      if (!m) continue;
      if (!o.adminToken) return refuse(403, 'read-only: this dashboard was started without --admin-token');
      if (!access.tokenValid) return refuse(401, 'the admin token is missing or wrong');
      const work = act(m, new URLSearchParams(query));
      if ('error' in work) return refuse(400, work.error);
      log.info({ event: 'dashboard_action', action: urlPath }, `dashboard: ${urlPath}`);
      return answer(work);
    }
    return refuse(404, 'no such dashboard action');
  };
}
