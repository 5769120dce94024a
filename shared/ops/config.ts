// Every flag of every command, its default and its SWITCHYARD_* variable, in one table.
// Parsed and validated once at start, then frozen; a bad value stops the process with one line.

export type CommandName = 'gateway' | 'worker' | 'dev' | 'stats' | 'dead';

type Kind = 'string' | 'int' | 'duration' | 'bool' | 'weights' | 'size' | 'url';

interface FlagSpec {
  kind: Kind;
  help: string;
  commands: readonly CommandName[];
  /** Printed in --help; `undefined` means "none" or derived (see derivedDefault). */
  default?: string;
  min?: number;
  max?: number;
}

const RUNTIME: readonly CommandName[] = ['gateway', 'worker', 'dev'];
const GATEWAY: readonly CommandName[] = ['gateway', 'dev'];
const WORKER: readonly CommandName[] = ['worker', 'dev'];
const ALL: readonly CommandName[] = ['gateway', 'worker', 'dev', 'stats', 'dead'];
const QUEUES: readonly CommandName[] = ['gateway', 'worker', 'dev', 'stats', 'dead'];

export const FLAGS = {
  app: { kind: 'string', commands: RUNTIME, help: 'module exporting a Koa app, a @koa/router Router, or a factory returning one' },
  redis: { kind: 'url', commands: ALL, default: 'redis://127.0.0.1:6379', help: 'Redis URL (redis:// or rediss://, password allowed)' },
  prefix: { kind: 'string', commands: QUEUES, default: 'sy', help: 'key prefix: keys are {prefix}:...' },
  host: { kind: 'string', commands: GATEWAY, default: '0.0.0.0', help: 'address the gRPC port binds to' },
  port: { kind: 'int', commands: GATEWAY, default: '50051', min: 0, max: 65535, help: 'gRPC port of the gateway' },
  'admin-port': { kind: 'int', commands: RUNTIME, min: 0, max: 65535, help: '/healthz, /readyz, /metrics (gateway and dev 9464, worker 9465; 0 = any free port)' },
  timeout: { kind: 'duration', commands: GATEWAY, default: '5s', min: 1, help: 'default sync deadline' },
  capacity: { kind: 'int', commands: QUEUES, default: '1000', min: 1, help: 'level-2 backlog capacity (inactive above 80%, active again under 60%)' },
  'discard-threshold': { kind: 'int', commands: QUEUES, min: 0, help: 'backlog at which discard messages are dropped (default 60% of capacity)' },
  weights: { kind: 'weights', commands: WORKER, default: '3:1', help: 'level 1 : level 2 share of work while both wait' },
  strict: { kind: 'bool', commands: WORKER, default: 'false', help: 'level 1 always first' },
  concurrency: { kind: 'int', commands: WORKER, default: '50', min: 1, max: 10000, help: 'jobs one worker runs at once' },
  reserve: { kind: 'int', commands: WORKER, min: 0, help: 'worker slots only level 1 may use (default 10% of concurrency, rounded down)' },
  lease: { kind: 'duration', commands: WORKER, default: '30s', min: 100, help: 'lease of claimed jobs, renewed while they run' },
  attempts: { kind: 'int', commands: [...WORKER, 'dead'], default: '5', min: 1, max: 1000, help: 'runs of a job before it is dead' },
  backoff: { kind: 'duration', commands: WORKER, default: '1s', min: 1, help: 'first retry delay, doubled each time, with jitter' },
  grace: { kind: 'duration', commands: RUNTIME, default: '10s', min: 0, help: 'how long shutdown waits for running jobs and calls' },
  'dead-max': { kind: 'int', commands: WORKER, default: '10000', min: 1, help: 'dead-letter list cap (oldest trimmed and counted)' },
  'max-params': { kind: 'size', commands: GATEWAY, default: '4mb', min: 64, help: 'largest Input.params accepted' },
  'max-body': { kind: 'size', commands: GATEWAY, default: '1mb', min: 2, help: 'largest request content accepted (JSON bytes)' },
  token: { kind: 'string', commands: GATEWAY, help: 'bearer token every call must carry (authorization metadata)' },
  'tls-cert': { kind: 'string', commands: GATEWAY, help: 'PEM certificate chain: serve gRPC over TLS' },
  'tls-key': { kind: 'string', commands: GATEWAY, help: 'PEM private key for --tls-cert' },
  'tls-ca': { kind: 'string', commands: GATEWAY, help: 'PEM CA bundle: require client certificates (mTLS)' },
  debug: { kind: 'bool', commands: RUNTIME, default: 'false', help: 'include stack traces in 500 answers' },
  json: { kind: 'bool', commands: ['stats', 'dead'], default: 'false', help: 'print JSON' },
  watch: { kind: 'duration', commands: ['stats'], help: 'refresh every interval (bare --watch: 1s)' },
  limit: { kind: 'int', commands: ['dead'], default: '20', min: 1, help: 'dead jobs listed' },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;

export interface Config {
  command: CommandName;
  /** Positional words after the command (e.g. `dead requeue <id>`). */
  args: string[];
  app?: string;
  redis: string;
  prefix: string;
  host: string;
  port: number;
  adminPort: number;
  timeoutMs: number;
  capacity: number;
  discardThreshold: number;
  weights: readonly [number, number];
  strict: boolean;
  concurrency: number;
  reserve: number;
  leaseMs: number;
  attempts: number;
  backoffMs: number;
  graceMs: number;
  deadMax: number;
  maxParamsBytes: number;
  maxBodyBytes: number;
  token?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  debug: boolean;
  json: boolean;
  watchMs?: number;
  limit: number;
}

export class ConfigError extends Error {}

export function envName(flag: string): string {
  return 'SWITCHYARD_' + flag.toUpperCase().replace(/-/g, '_');
}

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new Error('a duration like 500ms, 3s or 2m');
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(unit === 'ms' ? n : unit === 's' ? n * 1000 : n * 60_000);
}

export function parseSize(text: string): number {
  const m = /^(\d+)(b|kb|mb)?$/i.exec(text.trim());
  if (!m) throw new Error('a size like 65536, 64kb or 4mb');
  const unit = (m[2] ?? 'b').toLowerCase();
  return Number(m[1]) * (unit === 'mb' ? 1024 * 1024 : unit === 'kb' ? 1024 : 1);
}

function parseValue(flag: FlagName, raw: string): unknown {
  const spec: FlagSpec = FLAGS[flag];
  const check = (n: number): number => {
    if (spec.min !== undefined && n < spec.min) throw new Error(`at least ${spec.min}`);
    if (spec.max !== undefined && n > spec.max) throw new Error(`at most ${spec.max}`);
    return n;
  };
  switch (spec.kind) {
    case 'string':
      if (raw === '') throw new Error('a non-empty value');
      return raw;
    case 'url':
      if (!/^rediss?:\/\/[^\s]+$/.test(raw)) throw new Error('a redis:// or rediss:// URL');
      return raw;
    case 'int':
      if (!/^\d+$/.test(raw)) throw new Error('a whole number');
      return check(Number(raw));
    case 'duration':
      return check(parseDuration(raw));
    case 'size':
      return check(parseSize(raw));
    case 'bool':
      if (['', 'true', '1', 'yes', 'on'].includes(raw)) return true;
      if (['false', '0', 'no', 'off'].includes(raw)) return false;
      throw new Error('true or false');
    case 'weights': {
      const m = /^(\d+):(\d+)$/.exec(raw);
      if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new Error('two positive whole numbers like 3:1');
      return [Number(m[1]), Number(m[2])] as const;
    }
  }
}

function isFlag(name: string): name is FlagName {
  return Object.prototype.hasOwnProperty.call(FLAGS, name);
}

/** Reads argv (after the command word) and the environment; the flag wins over the variable. */
export function parseConfig(command: CommandName, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const given = new Map<FlagName, unknown>();
  const args: string[] = [];
  const set = (flag: FlagName, raw: string, source: string): void => {
    try {
      given.set(flag, parseValue(flag, raw));
    } catch (err) {
      throw new ConfigError(`${source} must be ${(err as Error).message} (got ${JSON.stringify(raw)})`);
    }
  };

  for (const flag of Object.keys(FLAGS) as FlagName[]) {
    const value = env[envName(flag)];
    if (value !== undefined && value !== '' && (FLAGS[flag].commands as readonly string[]).includes(command)) {
      set(flag, value, envName(flag));
    }
  }

  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (!word.startsWith('--')) {
      args.push(word);
      continue;
    }
    const eq = word.indexOf('=');
    const name = eq === -1 ? word.slice(2) : word.slice(2, eq);
    if (!isFlag(name)) throw new ConfigError(`unknown flag --${name} (see switchyard ${command} --help)`);
    if (!(FLAGS[name].commands as readonly string[]).includes(command)) {
      throw new ConfigError(`--${name} does not apply to switchyard ${command}`);
    }
    let raw: string;
    if (eq !== -1) raw = word.slice(eq + 1);
    else if (FLAGS[name].kind === 'bool' || (name === 'watch' && (argv[i + 1] === undefined || argv[i + 1].startsWith('--')))) {
      raw = name === 'watch' ? '1s' : 'true';
    } else {
      if (i + 1 >= argv.length) throw new ConfigError(`--${name} needs a value`);
      raw = argv[++i];
    }
    set(name, raw, `--${name}`);
  }

  const get = <T>(flag: FlagName, fallback: T): T => (given.has(flag) ? (given.get(flag) as T) : fallback);
  const dflt = (flag: FlagName): unknown => {
    const d = (FLAGS[flag] as FlagSpec).default;
    return d === undefined ? undefined : parseValue(flag, d);
  };
  const capacity = get('capacity', dflt('capacity') as number);
  const concurrency = get('concurrency', dflt('concurrency') as number);
  const config: Config = {
    command,
    args,
    app: get<string | undefined>('app', undefined),
    redis: get('redis', dflt('redis') as string),
    prefix: get('prefix', dflt('prefix') as string),
    host: get('host', dflt('host') as string),
    port: get('port', dflt('port') as number),
    adminPort: get('admin-port', command === 'worker' ? 9465 : 9464),
    timeoutMs: get('timeout', dflt('timeout') as number),
    capacity,
    discardThreshold: get('discard-threshold', Math.floor(capacity * 0.6)),
    weights: get('weights', dflt('weights') as readonly [number, number]),
    strict: get('strict', false),
    concurrency,
    reserve: get('reserve', Math.floor(concurrency * 0.1)),
    leaseMs: get('lease', dflt('lease') as number),
    attempts: get('attempts', dflt('attempts') as number),
    backoffMs: get('backoff', dflt('backoff') as number),
    graceMs: get('grace', dflt('grace') as number),
    deadMax: get('dead-max', dflt('dead-max') as number),
    maxParamsBytes: get('max-params', dflt('max-params') as number),
    maxBodyBytes: get('max-body', dflt('max-body') as number),
    token: get<string | undefined>('token', undefined),
    tlsCert: get<string | undefined>('tls-cert', undefined),
    tlsKey: get<string | undefined>('tls-key', undefined),
    tlsCa: get<string | undefined>('tls-ca', undefined),
    debug: get('debug', false),
    json: get('json', false),
    watchMs: get<number | undefined>('watch', undefined),
    limit: get('limit', dflt('limit') as number),
  };
  validate(config);
  return Object.freeze(config);
}

function validate(c: Config): void {
  if ((c.command === 'gateway' || c.command === 'worker' || c.command === 'dev') && !c.app) {
    throw new ConfigError(`--app is required: the module with your Koa app (or set ${envName('app')})`);
  }
  if (!/^[A-Za-z0-9_.:-]+$/.test(c.prefix)) throw new ConfigError(`--prefix may hold only letters, digits and _ . : - (got ${JSON.stringify(c.prefix)})`);
  if (c.reserve >= c.concurrency) throw new ConfigError(`--reserve (${c.reserve}) must be less than --concurrency (${c.concurrency})`);
  if (c.discardThreshold > c.capacity) throw new ConfigError(`--discard-threshold (${c.discardThreshold}) must not exceed --capacity (${c.capacity})`);
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key go together');
  if (c.tlsCa !== undefined && c.tlsCert === undefined) throw new ConfigError('--tls-ca (mTLS) needs --tls-cert and --tls-key');
  if (c.maxBodyBytes > c.maxParamsBytes) throw new ConfigError(`--max-body must not exceed --max-params`);
}

export function helpText(command: CommandName): string {
  const lines = [`usage: switchyard ${command} [flags]`, '', 'flags (each also read from SWITCHYARD_<FLAG>; the flag wins):'];
  for (const [name, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    if (!spec.commands.includes(command)) continue;
    const dflt = name === 'admin-port' ? (command === 'worker' ? '9465' : '9464') : spec.default ?? (name === 'app' ? 'required' : 'none/derived');
    lines.push(`  --${name.padEnd(18)} ${spec.help} [default: ${dflt}] (${envName(name)})`);
  }
  return lines.join('\n');
}
