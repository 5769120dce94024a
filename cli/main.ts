// The `switchyard` executable: one command word, then flags.
import { loadApp } from '../shared/call/app';
import { ConfigError, configSummary, helpText, parseConfig, type CommandName, type Config } from './config';
import { log, redactUrl, setLogLevel } from '../shared/log';
import { CHECK_SUMMARY, runCheck } from './check';
import { MOVE_SLOT_SUMMARY, runMoveSlot } from './move-slot';
import { runDead } from './dead';
import { GROUP_SUMMARY, GROUPS_SUMMARY, runGroup } from './group';
import { runDashboard, runDelete, runJob, runPause, runQueue } from './operations';
import { startGateway } from './start-gateway';
import { startAdmin } from './ports';
import { redisAnswers, startPrivateRedis } from './private-redis';
import { onShutdownSignal } from './signals';
import { runStats } from './stats';
import type { RunningPart } from './running-part';
import { startWorker } from './start-worker';
import { startTracing } from './otel';

// `check`, `move-slot` and `group` read their own few flags (cli/check.ts, cli/move-slot.ts, cli/group.ts), so they are not config.ts's commands.
const COMMANDS: Record<CommandName | 'check' | 'move-slot' | 'group' | 'groups', string> = {
  gateway: 'the gRPC front end: sync calls in-process, async calls into Redis',
  worker: 'runs async jobs from Redis through your app',
  dev: 'gateway and worker in one process (starts a private redis-server if none answers)',
  stats: 'queue depths, level-2 state, in flight, dead, counters',
  dead: 'dead-letter jobs: list | requeue <id>|all | delete <id> | purge',
  job: 'job <id>: where a job is (waiting, running, retry, dead, done) and what it carries',
  queue: 'queue <level>: the next messages waiting in a level (--policy, --limit)',
  pause: 'pause <level>: accept calls for a level but let no worker take them',
  resume: 'resume <level>: let workers take a paused level again',
  delete: 'delete <id>: remove a waiting or retrying job',
  dashboard: 'the dashboard on its own port, for a deployment without a gateway at hand',
  group: GROUP_SUMMARY,
  groups: GROUPS_SUMMARY,
  check: CHECK_SUMMARY,
  'move-slot': MOVE_SLOT_SUMMARY,
};

function usage(): string {
  return [
    'usage: switchyard <command> [flags]',
    '',
    ...Object.entries(COMMANDS).map(([name, what]) => `  ${name.padEnd(8)} ${what}`),
    '',
    'switchyard <command> --help lists every flag with its default.',
  ].join('\n');
}

/** For `dev` on a laptop: a private redis-server when none was asked for and none answers. */
async function devRedis(config: Config): Promise<Config> {
  if (config.given.has('redis') || (await redisAnswers(config.redis))) return config;
  const privateRedis = await startPrivateRedis();
  if (!privateRedis) {
    log.warn({ event: 'redis_unavailable' }, `nothing answers at ${config.redis} and no redis-server is on PATH; async calls answer 503 until Redis is up`);
    return config;
  }
  const url = privateRedis.url;
  log.info(
    { event: 'private_redis', redis: url },
    `nothing answers at ${config.redis}; started a private redis-server at ${url} (data is not kept). ` +
      `Point other commands at it: switchyard stats --redis ${url} (or export SWITCHYARD_REDIS=${url}); redis-cli -p ${new URL(url).port}`,
  );
  return Object.freeze({ ...config, redis: url });
}

async function runServer(config: Config): Promise<void> {
  log.info({ event: 'start', command: config.command, config: configSummary(config) }, `switchyard ${config.command} starting`);
  // Before the app loads, so that whatever the app traces finds the SDK registered.
  const tracing = await startTracing(config);
  const app = await loadApp(config.app!);
  // Ports first: a process that cannot listen stops before it registers anywhere.
  const admin = await startAdmin(config);
  if (config.command === 'dev') config = await devRedis(config);
  const parts: RunningPart[] = [];
  try {
    if (config.command !== 'worker') {
      const gateway = await startGateway(config, app, admin);
      parts.push(gateway);
      log.info(
        { event: 'ready', part: 'gateway', port: gateway.port, admin: admin.port, app: config.app, redis: redactUrl(config.redis) },
        `switchyard gateway ready port=${gateway.port} admin=${admin.port}`,
      );
    }
    if (config.command !== 'gateway') {
      const worker = await startWorker(config, app, admin);
      parts.push(worker);
      log.info(
        {
          event: 'ready',
          part: 'worker',
          id: worker.worker.id,
          admin: admin.port,
          concurrency: config.concurrency,
          reserve: config.reserve,
          weights: config.weights.join(':'),
          strict: config.strict,
        },
        `switchyard worker ready id=${worker.worker.id} admin=${admin.port}`,
      );
    }
  } catch (err) {
    await admin.server.stop();
    await tracing?.stop();
    throw err;
  }
  // Gateway first (stop taking calls), then the worker (finish or hand back jobs).
  onShutdownSignal(config.command, async () => {
    for (const part of parts) await part.stop();
    await admin.server.stop();
    await tracing?.stop();
  });
}

export async function main(argv: string[]): Promise<void> {
  // `switchyard stats --watch | head`: the reader went away, which is how such output ends.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage() + '\n');
    return;
  }
  if (!(command in COMMANDS)) {
    process.stderr.write(`switchyard: unknown command "${command}"\n${usage()}\n`);
    process.exitCode = 2;
    return;
  }
  if (command === 'check') return runCheck(rest);
  if (command === 'move-slot') return runMoveSlot(rest);
  if (command === 'group' || command === 'groups') return runGroup(rest, command === 'groups');
  const name = command as CommandName;
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${COMMANDS[name]}\n\n${helpText(name)}\n`);
    return;
  }
  try {
    const config = parseConfig(name, rest);
    if (name === 'stats') await runStats(config);
    else if (name === 'dead') await runDead(config);
    else if (name === 'job') await runJob(config);
    else if (name === 'queue') await runQueue(config);
    else if (name === 'pause' || name === 'resume') await runPause(config, name === 'pause');
    else if (name === 'delete') await runDelete(config);
    else if (name === 'dashboard') {
      setLogLevel(config.logLevel);
      await runDashboard(config);
    } else {
      setLogLevel(config.logLevel);
      await runServer(config);
    }
  } catch (err) {
    // Bad configuration (or an app that cannot load, or a port taken) stops the process with one clear line.
    const message = err instanceof ConfigError ? err.message : (err as Error).message.split('\n')[0];
    if (['gateway', 'worker', 'dev', 'dashboard'].includes(name)) log.fatal({ event: 'start_failed', command: name, error: message }, message);
    process.stderr.write(`switchyard ${name}: ${message}\n`);
    process.exit(2);
  }
}
