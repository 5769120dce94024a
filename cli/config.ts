// Every flag of every command, its default and its SWITCHYARD_* variable, in one table.
// Parsed and validated once at start, then frozen; a bad value stops the process with one line.
// The only defaults not written in the table are the derived ones, computed in derive().
import { parseRate } from '../shared/groups';
import { DISCARD_SHARE, RESERVE_SHARE } from '../shared/policy';
import { parseRedisUrl } from '../shared/store/redis';
import type { Level, Policy } from '../shared/levels';
import { LOG_LEVELS, redactUrl, type LogLevel } from '../shared/log';

export type CommandName = 'gateway' | 'worker' | 'dev' | 'stats' | 'dead' | 'job' | 'queue' | 'pause' | 'resume' | 'delete' | 'dashboard';

type Kind = 'string' | 'int' | 'duration' | 'bool' | 'weights' | 'size' | 'url' | 'level' | 'levels' | 'policy' | 'rate';

interface FlagSpec {
  kind: Kind;
  /** The Config field it sets. */
  field: keyof Config;
  help: string;
  commands: readonly CommandName[];
  /** The default, per command where it differs; absent: none, or derived (see derive). */
  default?: string | Partial<Record<CommandName, string>>;
  /** For --help: what a derived default is. */
  derived?: string;
  min?: number;
  max?: number;
}

const RUNTIME: readonly CommandName[] = ['gateway', 'worker', 'dev'];
const GATEWAY: readonly CommandName[] = ['gateway', 'dev'];
const WORKER: readonly CommandName[] = ['worker', 'dev'];
const ALL: readonly CommandName[] = ['gateway', 'worker', 'dev', 'stats', 'dead', 'job', 'queue', 'pause', 'resume', 'delete', 'dashboard'];
/** Processes that serve an admin port with the dashboard. */
const DASHBOARD: readonly CommandName[] = ['gateway', 'dev', 'dashboard'];

export const FLAGS = {
  app: { kind: 'string', field: 'app', commands: RUNTIME, help: 'module exporting a Koa app, a @koa/router Router, or a factory returning one' },
  redis: {
    kind: 'url',
    field: 'redis',
    commands: ALL,
    default: 'redis://127.0.0.1:6379',
    help: 'Redis URL: redis[s]://[user:pass@]host:port, redis[s]+sentinel://host:port[,host:port…]/<master-name> or redis[s]+cluster://host:port[,host:port…]',
  },
  prefix: { kind: 'string', field: 'prefix', commands: ALL, default: 'sy', help: 'key prefix: keys are {prefix}:...' },
  partitions: {
    kind: 'int',
    field: 'partitions',
    commands: ALL,
    default: '1',
    min: 1,
    max: 1024,
    help: 'queue partitions, under the hash tags {prefix:0}…{prefix:N-1} (1: the plain {prefix} layout); every process must agree (stats and dead read it from Redis)',
  },
  'replicas-ack': {
    kind: 'int',
    field: 'replicasAck',
    commands: GATEWAY,
    default: '0',
    min: 0,
    max: 100,
    help: 'answer 201 only once Redis WAIT confirms this many replicas hold the job',
  },
  'replicas-timeout': {
    kind: 'duration',
    field: 'replicasTimeoutMs',
    commands: GATEWAY,
    default: '100ms',
    min: 1,
    help: 'how long to wait for --replicas-ack before answering 503',
  },
  host: {
    kind: 'string',
    field: 'host',
    commands: [...RUNTIME, 'dashboard'],
    default: '0.0.0.0',
    help: 'address the gRPC port and the admin port (the dashboard command: its port) bind to',
  },
  port: {
    kind: 'int',
    field: 'port',
    commands: [...GATEWAY, 'dashboard'],
    default: { gateway: '50051', dev: '50051', dashboard: '9470' },
    min: 0,
    max: 65535,
    help: 'gRPC port of the gateway; for the dashboard command, its HTTP port (0 = any free port)',
  },
  'admin-port': {
    kind: 'int',
    field: 'adminPort',
    commands: RUNTIME,
    default: { gateway: '9464', dev: '9464', worker: '9465' },
    min: 0,
    max: 65535,
    help: '/healthz, /readyz, /metrics (0 = any free port)',
  },
  timeout: { kind: 'duration', field: 'timeoutMs', commands: GATEWAY, default: '5s', min: 1, help: 'default sync deadline' },
  capacity: {
    kind: 'int',
    field: 'capacity',
    commands: [...RUNTIME, 'dashboard'],
    default: '1000',
    min: 1,
    help: 'level-2 backlog capacity (inactive above 80%, active again under 60%)',
  },
  'discard-threshold': {
    kind: 'int',
    field: 'discardThreshold',
    commands: GATEWAY,
    derived: '60% of --capacity',
    min: 0,
    help: 'backlog at which discard messages are dropped',
  },
  weights: { kind: 'weights', field: 'weights', commands: WORKER, default: '3:1', help: 'level 1 : level 2 share of work while both wait' },
  strict: { kind: 'bool', field: 'strict', commands: WORKER, default: 'false', help: 'level 1 always first' },
  'group-concurrency': {
    kind: 'int',
    field: 'groupConcurrency',
    commands: WORKER,
    default: '0',
    min: 0,
    help: "runs of one group (queue_detail.group) at once, across all workers (0: no cap; `switchyard group` sets one group's)",
  },
  'group-rate': {
    kind: 'rate',
    field: 'groupRate',
    commands: WORKER,
    default: 'off',
    help: "runs of one group started per second, like 100/s or 30/m (off: no limit; `switchyard group` sets one group's)",
  },
  concurrency: { kind: 'int', field: 'concurrency', commands: WORKER, default: '50', min: 1, max: 10000, help: 'jobs one worker runs at once' },
  reserve: {
    kind: 'int',
    field: 'reserve',
    commands: WORKER,
    derived: '10% of --concurrency, rounded down',
    min: 0,
    help: 'worker slots only level 1 may use',
  },
  lease: { kind: 'duration', field: 'leaseMs', commands: WORKER, default: '30s', min: 100, help: 'lease of claimed jobs, renewed while they run' },
  levels: {
    kind: 'levels',
    field: 'levels',
    commands: WORKER,
    default: '1,2',
    help: 'the levels this worker takes: 1, 2 or 1,2 (a dedicated worker takes one)',
  },
  'keep-done': {
    kind: 'duration',
    field: 'keepDoneMs',
    commands: WORKER,
    default: '0',
    min: 0,
    help: 'how long finished jobs stay visible to `switchyard job` (0: not kept; at most 10,000 kept)',
  },
  'admin-token': {
    kind: 'string',
    field: 'adminToken',
    commands: DASHBOARD,
    help: "bearer token the dashboard's actions (requeue, purge, pause, resume) need; without it the dashboard is read-only, and job details (error text, query strings, keys) are shown only on the machine itself",
  },
  'job-timeout': {
    kind: 'duration',
    field: 'jobTimeoutMs',
    commands: WORKER,
    default: '5m',
    min: 1,
    help: 'deadline of an async run whose call set no timeout (past it: 504, retried)',
  },
  attempts: { kind: 'int', field: 'attempts', commands: WORKER, default: '5', min: 1, max: 1000, help: 'runs of a job before it is dead' },
  backoff: { kind: 'duration', field: 'backoffMs', commands: WORKER, default: '1s', min: 1, help: 'first retry delay, doubled each time, with jitter' },
  grace: { kind: 'duration', field: 'graceMs', commands: RUNTIME, default: '10s', min: 0, help: 'how long shutdown waits for running jobs and calls' },
  'dead-max': { kind: 'int', field: 'deadMax', commands: WORKER, default: '10000', min: 1, help: 'dead-letter list cap (oldest trimmed and counted)' },
  'max-params': { kind: 'size', field: 'maxParamsBytes', commands: GATEWAY, default: '4mb', min: 64, help: 'largest Input.params accepted' },
  'max-body': { kind: 'size', field: 'maxBodyBytes', commands: GATEWAY, default: '1mb', min: 2, help: 'largest request content accepted (JSON bytes)' },
  token: { kind: 'string', field: 'token', commands: GATEWAY, help: 'bearer token every call must carry (authorization metadata)' },
  'tls-cert': { kind: 'string', field: 'tlsCert', commands: GATEWAY, help: 'PEM certificate chain: serve gRPC over TLS' },
  'tls-key': { kind: 'string', field: 'tlsKey', commands: GATEWAY, help: 'PEM private key for --tls-cert' },
  'tls-ca': { kind: 'string', field: 'tlsCa', commands: GATEWAY, help: 'PEM CA bundle: require client certificates (mTLS)' },
  debug: { kind: 'bool', field: 'debug', commands: RUNTIME, default: 'false', help: 'answer 5xx with the message and stack (else the status text)' },
  'log-level': {
    kind: 'level',
    field: 'logLevel',
    commands: [...RUNTIME, 'dashboard'],
    default: 'info',
    help: `log lines of this level and above, one JSON line per event on stdout (${LOG_LEVELS.join(', ')})`,
  },
  otel: {
    kind: 'bool',
    field: 'otel',
    commands: RUNTIME,
    default: 'false',
    help: 'start the OpenTelemetry SDK and export traces, configured by the OTEL_* variables (OTLP to localhost:4318 by default; also on when OTEL_TRACES_EXPORTER is set)',
  },
  'otel-parent': {
    kind: 'bool',
    field: 'otelParent',
    commands: WORKER,
    default: 'false',
    help: "a job's process span is a child of the call that queued it (default: a new trace, linked to it)",
  },
  json: { kind: 'bool', field: 'json', commands: ['stats', 'dead', 'job', 'queue'], default: 'false', help: 'print JSON' },
  policy: { kind: 'policy', field: 'policy', commands: ['queue'], help: 'only this policy: execute, last or discard (default: all three)' },
  watch: { kind: 'duration', field: 'watchMs', commands: ['stats'], help: 'refresh every interval (bare --watch: 1s)' },
  limit: { kind: 'int', field: 'limit', commands: ['dead', 'queue'], default: '20', min: 1, help: 'entries listed' },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;

export interface Config {
  command: CommandName;
  /** Positional words after the command (e.g. `dead requeue <id>`). */
  args: string[];
  /** Flags given by the user (on the command line or in the environment), as opposed to defaults. */
  given: ReadonlySet<FlagName>;
  app?: string;
  redis: string;
  prefix: string;
  partitions: number;
  replicasAck: number;
  replicasTimeoutMs: number;
  host: string;
  port: number;
  adminPort: number;
  timeoutMs: number;
  capacity: number;
  discardThreshold: number;
  weights: readonly [number, number];
  strict: boolean;
  groupConcurrency: number;
  /** Runs per second (0: no limit). */
  groupRate: number;
  concurrency: number;
  reserve: number;
  leaseMs: number;
  jobTimeoutMs: number;
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
  logLevel: LogLevel;
  otel: boolean;
  otelParent: boolean;
  levels: readonly Level[];
  keepDoneMs: number;
  adminToken?: string;
  policy?: Policy;
  json: boolean;
  watchMs?: number;
  limit: number;
}

export class ConfigError extends Error {}

export function envName(flag: string): string {
  return 'SWITCHYARD_' + flag.toUpperCase().replace(/-/g, '_');
}

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error('a duration like 500ms, 3s, 2m or 1h');
  const unit = m[2] ?? 's';
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!);
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
      parseRedisUrl(raw);
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
    case 'level':
      if (!(LOG_LEVELS as readonly string[]).includes(raw)) throw new Error(`one of ${LOG_LEVELS.join(', ')}`);
      return raw;
    case 'levels':
      if (!/^(1|2|1,2|2,1)$/.test(raw)) throw new Error('1, 2 or 1,2');
      return raw.split(',').map(Number).sort() as Level[];
    case 'policy':
      if (!['execute', 'last', 'discard'].includes(raw)) throw new Error('execute, last or discard');
      return raw;
    case 'rate':
      return parseRate(raw);
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

function appliesTo(flag: FlagName, command: CommandName): boolean {
  return (FLAGS[flag].commands as readonly string[]).includes(command);
}

function tableDefault(flag: FlagName, command: CommandName): string | undefined {
  const d = (FLAGS[flag] as FlagSpec).default;
  return typeof d === 'object' ? d[command] : d;
}

/** The defaults that depend on other values. */
function derive(c: Config): void {
  if (!c.given.has('discard-threshold')) c.discardThreshold = Math.floor(c.capacity * DISCARD_SHARE);
  // A worker dedicated to level 2 keeps no slots for level 1.
  if (!c.given.has('reserve')) c.reserve = c.levels?.includes(1) === false ? 0 : Math.floor(c.concurrency * RESERVE_SHARE);
}

/** Reads argv (after the command word) and the environment; the flag wins over the variable. */
export function parseConfig(command: CommandName, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const values = new Map<FlagName, unknown>();
  const given = new Set<FlagName>();
  const args: string[] = [];
  const set = (flag: FlagName, raw: string, source: string): void => {
    try {
      values.set(flag, parseValue(flag, raw));
      given.add(flag);
    } catch (err) {
      throw new ConfigError(`${source} must be ${(err as Error).message} (got ${JSON.stringify(raw)})`);
    }
  };

  for (const flag of Object.keys(FLAGS) as FlagName[]) {
    const value = env[envName(flag)];
    if (value !== undefined && value !== '' && appliesTo(flag, command)) set(flag, value, envName(flag));
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
    if (!appliesTo(name, command)) throw new ConfigError(`--${name} does not apply to switchyard ${command}`);
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

  const fields: Record<string, unknown> = { command, args, given };
  for (const flag of Object.keys(FLAGS) as FlagName[]) {
    const d = tableDefault(flag, command) ?? tableDefault(flag, 'gateway') ?? tableDefault(flag, 'worker');
    fields[FLAGS[flag].field] = values.has(flag) ? values.get(flag) : d === undefined ? undefined : parseValue(flag, d);
  }
  const config = fields as unknown as Config;
  derive(config);
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

/** What the process runs with, for the start-up log line: every value, secrets replaced. */
export function configSummary(c: Config): Record<string, unknown> {
  const summary: Record<string, unknown> = {};
  for (const [flag, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    if (!appliesTo(flag, c.command) || c[spec.field] === undefined) continue;
    summary[flag] = flag === 'token' || flag === 'admin-token' ? '***' : flag === 'redis' ? redactUrl(c.redis) : c[spec.field];
  }
  return summary;
}

export function helpText(command: CommandName): string {
  const lines = [`usage: switchyard ${command} [flags]`, '', 'flags (each also read from SWITCHYARD_<FLAG>; the flag wins):'];
  for (const [name, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    if (!appliesTo(name, command)) continue;
    const dflt = tableDefault(name, command) ?? spec.derived ?? (name === 'app' ? 'required' : 'none');
    lines.push(`  --${name.padEnd(18)} ${spec.help} [default: ${dflt}] (${envName(name)})`);
  }
  return lines.join('\n');
}
