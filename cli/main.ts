// The `switchyard` executable: one command word, then flags (SPEC section 5).
import { loadApp } from '../shared/call/app';
import { ConfigError, helpText, parseConfig, type CommandName, type Config } from '../shared/ops/config';
import { runDead } from './dead';
import { redactUrl, startGateway, type RunningPart } from './gateway';
import { redisAnswers, startPrivateRedis } from './private-redis';
import { onShutdownSignal } from './signals';
import { runStats } from './stats';
import { startWorker } from './worker';

const COMMANDS: Record<CommandName, string> = {
  gateway: 'the gRPC front end: sync calls in-process, async calls into Redis',
  worker: 'runs async jobs from Redis through your app',
  dev: 'gateway and worker in one process (starts a private redis-server if none answers)',
  stats: 'queue depths, level-2 state, in flight, dead, counters',
  dead: 'dead-letter jobs: list | requeue <id>|all | purge',
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

async function runServer(config: Config): Promise<void> {
  const app = await loadApp(config.app!);
  const parts: RunningPart[] = [];
  if (config.command === 'dev' && !process.argv.some((a) => a.startsWith('--redis')) && !process.env.SWITCHYARD_REDIS && !(await redisAnswers(config.redis))) {
    const privateRedis = await startPrivateRedis();
    if (privateRedis) {
      process.stderr.write(`switchyard dev: nothing answers at ${config.redis}; started a private redis-server at ${privateRedis.url} (data is not kept)\n`);
      config = Object.freeze({ ...config, redis: privateRedis.url });
    } else {
      process.stderr.write(`switchyard dev: nothing answers at ${config.redis} and no redis-server is on PATH; async calls answer 503 until Redis is up\n`);
    }
  }
  if (config.command !== 'worker') {
    const gateway = await startGateway(config, app);
    parts.push(gateway);
    process.stdout.write(`switchyard gateway ready port=${gateway.port} admin=${gateway.adminPort} app=${config.app} redis=${redactUrl(config.redis)}\n`);
  }
  if (config.command !== 'gateway') {
    const workerConfig = config.command === 'dev' ? Object.freeze({ ...config, adminPort: config.adminPort === 0 ? 0 : config.adminPort + 1 }) : config;
    const worker = await startWorker(workerConfig, app, config.host);
    parts.push(worker);
    process.stdout.write(`switchyard worker ready id=${worker.worker.id} admin=${worker.adminPort} concurrency=${config.concurrency} reserve=${config.reserve} weights=${config.weights.join(':')}${config.strict ? ' strict' : ''}\n`);
  }
  // Gateway first (stop taking calls), then the worker (finish or hand back jobs).
  onShutdownSignal(config.command, async () => {
    for (const part of parts) await part.stop();
  });
}

export async function main(argv: string[]): Promise<void> {
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
  const name = command as CommandName;
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${COMMANDS[name]}\n\n${helpText(name)}\n`);
    return;
  }
  try {
    const config = parseConfig(name, rest);
    if (name === 'stats') await runStats(config);
    else if (name === 'dead') await runDead(config);
    else await runServer(config);
  } catch (err) {
    // Bad configuration (or an app that cannot load) stops the process with one clear line.
    const message = err instanceof ConfigError ? err.message : (err as Error).message.split('\n')[0];
    process.stderr.write(`switchyard ${name}: ${message}\n`);
    process.exit(2);
  }
}
