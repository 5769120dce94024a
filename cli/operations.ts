// The operator's commands: `job <id>`, `queue <level>`, `pause <level>`, `resume <level>`,
// `delete <id>`, and `dashboard` (the dashboard on a port of its own, for a deployment without
// a gateway at hand).
import type { Level } from '../shared/levels';
import { dashboardRoute } from '../server/dashboard/route';
import { ConfigError, type Config } from './config';
import { log, redactUrl } from '../shared/log';
import type { JobView } from '../shared/store/lookup';
import { readCall } from '../shared/store/format/job';
import { Queues } from '../shared/store/queues';
import { SCAN_MAX } from '../shared/store/store';
import { connectQuietly, createRedis, type RedisClient } from '../shared/store/redis';
import { createAdminServer } from '../shared/ops/admin';
import { readDeploymentGroups, summarizeGroups } from '../shared/ops/groups';
import { formatGroups } from './group';
import { isAddressInUse, portTaken } from './ports';
import { onShutdownSignal } from './signals';

/** One line per field, for people. */
export function formatJob(view: JobView): string {
  const lines = [`job ${view.id}: ${view.state}`];
  const order: Array<keyof JobView> = [
    'queue',
    'key',
    'position',
    'worker',
    'since',
    'leaseUntil',
    'fence',
    'due',
    'status',
    'error',
    'failedAt',
    'finishedAt',
    'method',
    'url',
    'level',
    'attempt',
    'enqueuedAt',
    'partition',
  ];
  for (const field of order) if (view[field] !== undefined) lines.push(`  ${field.padEnd(11)} ${view[field]}`);
  if (view.searched !== undefined) {
    lines.push(`  not among the ${view.searched} waiting messages read from the front of the queues, which hold more: it may wait further back`);
  }
  return lines.join('\n');
}

async function open(config: Config, role: 'cli' | 'gateway' = 'cli'): Promise<{ redis: RedisClient; queues: Queues }> {
  const redis = createRedis(config.redis, role);
  if (!(await connectQuietly(redis))) throw new Error(`redis at ${redactUrl(config.redis)} is not answering`);
  return { redis, queues: await Queues.open(redis, config.prefix, config.given.has('partitions') ? config.partitions : undefined) };
}

function levelArgument(config: Config): Level {
  const [word] = config.args;
  if (word !== '1' && word !== '2') throw new ConfigError(`needs a level, 1 or 2 (got ${word === undefined ? 'nothing' : JSON.stringify(word)})`);
  return Number(word) as Level;
}

function idArgument(config: Config): string {
  const [id] = config.args;
  if (!id) throw new ConfigError('needs a job id (the "id" of its 201 answer)');
  return id;
}

async function withQueues(config: Config, work: (queues: Queues) => Promise<void>): Promise<void> {
  const { redis, queues } = await open(config);
  try {
    await work(queues);
  } finally {
    redis.disconnect();
  }
}

export function runJob(config: Config): Promise<void> {
  const id = idArgument(config);
  return withQueues(config, async (queues) => {
    const view = await queues.lookup(id);
    process.stdout.write((config.json ? JSON.stringify(view) : formatJob(view)) + '\n');
    if (view.state === 'unknown') process.exitCode = 1;
  });
}

export function runQueue(config: Config): Promise<void> {
  const level = levelArgument(config);
  return withQueues(config, async (queues) => {
    const policies = config.policy ? [config.policy] : (['execute', 'last', 'discard'] as const);
    const entries = await queues.peek(level, policies, config.limit);
    // The named groups with messages of this level: they wait in the groups' own queues, not in the level's.
    const groups = summarizeGroups(await readDeploymentGroups(queues), undefined, level);
    if (config.json) {
      process.stdout.write(`[${entries.map((e) => `{"policy":"${e.policy}","partition":${e.partition},"job":${e.payload}}`).join(',')}]\n`);
      return;
    }
    if (entries.length === 0) process.stdout.write(`nothing waits in level ${level}${config.policy ? ` ${config.policy}` : ''}\n`);
    for (const e of entries) {
      const job = readCall(e.payload);
      const where = queues.partitions > 1 ? `{${queues.prefix}:${e.partition}} ` : '';
      process.stdout.write(
        `${job.id ?? '?'}  ${where}L${level}:${e.policy.padEnd(7)} ${job.method ?? '?'} ${job.url ?? '?'}${job.key ? `  key=${job.key}` : ''}  attempt=${job.attempt}  since ${new Date(job.at ?? 0).toISOString()}\n`,
      );
    }
    if (groups.top.length > 0) process.stdout.write(['', ...formatGroups(groups, `level ${level} groups`)].join('\n') + '\n');
  });
}

export function runPause(config: Config, paused: boolean): Promise<void> {
  const level = levelArgument(config);
  return withQueues(config, async (queues) => {
    const changed = await queues.setPaused(level, paused);
    const state = paused ? 'paused: calls are still accepted, no worker takes its jobs' : 'running';
    process.stdout.write(`level ${level} ${changed ? 'is now' : 'was already'} ${state}\n`);
  });
}

export function runDelete(config: Config): Promise<void> {
  const id = idArgument(config);
  return withQueues(config, async (queues) => {
    const outcome = await queues.deleteJob(id);
    const said: Record<typeof outcome, string> = {
      deleted: `job ${id} deleted`,
      unknown: `no waiting or retrying job has id ${id}`,
      notWithinScan: `job ${id} is not among the waiting messages read from the front of the queues (${SCAN_MAX}), which hold more: it may wait further back; try again once they are shorter`,
      running: `job ${id} is running: it cannot be deleted`,
      dead: `job ${id} is in the dead list: switchyard dead delete ${id} removes it (dead requeue ${id} runs it again)`,
      finished: `job ${id} has finished`,
    };
    (outcome === 'deleted' ? process.stdout : process.stderr).write(said[outcome] + '\n');
    if (outcome !== 'deleted') process.exitCode = 1;
  });
}

/** `switchyard dashboard`: the gateway's dashboard on a port of its own. */
export async function runDashboard(config: Config): Promise<void> {
  const server = createAdminServer(config.port, config.host);
  let port: number;
  try {
    port = await server.start();
  } catch (err) {
    throw isAddressInUse(err) ? portTaken('--port', config.host, config.port) : err;
  }
  const { redis, queues } = await open(config, 'gateway').catch(async (err: Error) => {
    await server.stop();
    throw err;
  });
  server.addRoute(dashboardRoute({ queues, capacity: config.capacity, adminToken: config.adminToken }));
  server.addReadiness('dashboard', () => ({ ready: redis.status === 'ready', detail: { redis: redis.status } }));
  log.info({ event: 'ready', part: 'dashboard', port, actions: config.adminToken ? 'token-required' : 'read-only' }, `switchyard dashboard ready port=${port}`);
  onShutdownSignal('dashboard', async () => {
    await server.stop();
    redis.disconnect();
  });
}
