// Flags, SWITCHYARD_* variables, derived defaults, and one-line errors (docs/protocol.md, section 7).
import { ConfigError, FLAGS, helpText, parseConfig, parseDuration, parseSize } from '../../cli/config';
import { parseRedisUrl } from '../../shared/store/redis';

const APP = ['--app', 'x.js'];

test('durations take ms, s or m; a bare number is seconds', () => {
  expect(parseDuration('500ms')).toBe(500);
  expect(parseDuration('3s')).toBe(3000);
  expect(parseDuration('2m')).toBe(120_000);
  expect(parseDuration('1h')).toBe(3_600_000);
  expect(parseDuration('1.5')).toBe(1500);
  expect(() => parseDuration('soon')).toThrow();
  expect(parseSize('64kb')).toBe(65536);
  expect(parseSize('4mb')).toBe(4 << 20);
});

test('defaults, including the derived ones', () => {
  const gateway = parseConfig('gateway', APP, {});
  expect(gateway).toMatchObject({
    redis: 'redis://127.0.0.1:6379',
    prefix: 'sy',
    port: 50051,
    adminPort: 9464,
    timeoutMs: 5000,
    capacity: 1000,
    discardThreshold: 600,
  });
  const worker = parseConfig('worker', [...APP, '--concurrency', '25', '--capacity', '50'], {});
  expect(worker).toMatchObject({
    adminPort: 9465,
    concurrency: 25,
    reserve: 2,
    capacity: 50,
    weights: [3, 1],
    strict: false,
    leaseMs: 30_000,
    jobTimeoutMs: 300_000,
    attempts: 5,
    backoffMs: 1000,
    graceMs: 10_000,
    logLevel: 'info',
  });
  expect(parseConfig('dev', APP, {})).toMatchObject({ adminPort: 9464 });
  expect(parseConfig('gateway', [...APP, '--capacity', '50'], {}).discardThreshold).toBe(30);
  expect(parseConfig('worker', [...APP, '--job-timeout', '1s', '--log-level', 'warn'], {})).toMatchObject({ jobTimeoutMs: 1000, logLevel: 'warn' });
  expect(() => parseConfig('worker', [...APP, '--log-level', 'loud'], {})).toThrow(/--log-level must be one of fatal, error, warn, info, debug, trace, silent/);
  expect(Object.isFrozen(worker)).toBe(true);
});

test('SWITCHYARD_* variables are read, and the flag wins', () => {
  const env = { SWITCHYARD_APP: 'from-env.js', SWITCHYARD_ADMIN_PORT: '7000', SWITCHYARD_WEIGHTS: '5:2', SWITCHYARD_STRICT: 'true' };
  expect(parseConfig('worker', [], env)).toMatchObject({ app: 'from-env.js', adminPort: 7000, weights: [5, 2], strict: true });
  expect(parseConfig('worker', ['--admin-port=7001', '--weights', '1:1'], env)).toMatchObject({ adminPort: 7001, weights: [1, 1] });
});

test.each([
  [['--port', 'abc'], /--port must be a whole number \(got "abc"\)/],
  [['--port', '70000'], /--port must be at most 65535/],
  [['--timeout', 'soon'], /--timeout must be a duration like 500ms, 3s, 2m or 1h/],
  [['--redis', 'http://x'], /--redis must be a Redis URL: redis:\/\/, rediss:\/\/, redis\+sentinel:\/\/.* \(got "http:\/\/x"\)/],
  [['--redis', 'redis+sentinel://10.0.0.1:26379'], /--redis must be a Sentinel URL ending in \/<master-name>/],
  [['--redis', 'redis+cluster://10.0.0.1'], /--redis must be host:port pairs separated by commas \(got "10.0.0.1"\)/],
  [['--partitions', '0'], /--partitions must be at least 1/],
  [['--nope', '1'], /unknown flag --nope/],
  [['--concurrency', '4'], /does not apply to switchyard gateway/],
  [['--port'], /--port needs a value/],
])('gateway %j stops with one clear line', (argv, message) => {
  expect(() => parseConfig('gateway', [...APP, ...(argv as string[])], {})).toThrow(message);
  try {
    parseConfig('gateway', [...APP, ...(argv as string[])], {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
  }
});

test('worker --weights 3-1 stops with one clear line', () => {
  expect(() => parseConfig('worker', [...APP, '--weights', '3-1'], {})).toThrow(/--weights must be two positive whole numbers like 3:1/);
  expect(() => parseConfig('worker', [...APP], { SWITCHYARD_WEIGHTS: '0:1' })).toThrow(/SWITCHYARD_WEIGHTS|--weights/);
});

test('cross-flag rules', () => {
  expect(() => parseConfig('worker', [...APP, '--concurrency', '4', '--reserve', '4'], {})).toThrow(/--reserve \(4\) must be less than --concurrency \(4\)/);
  expect(() => parseConfig('gateway', [], {})).toThrow(/--app is required/);
  expect(() => parseConfig('gateway', [...APP, '--tls-cert', 'c.pem'], {})).toThrow(/--tls-cert and --tls-key go together/);
  expect(() => parseConfig('gateway', [...APP, '--capacity', '10', '--discard-threshold', '11'], {})).toThrow(/must not exceed --capacity/);
  expect(() => parseConfig('stats', ['--prefix', 'a b'], {})).toThrow(/--prefix may hold only/);
});

test('--help lists every flag of the command with its default and variable', () => {
  for (const command of ['gateway', 'worker', 'dev', 'stats', 'dead'] as const) {
    const text = helpText(command);
    for (const [name, spec] of Object.entries(FLAGS)) {
      if ((spec.commands as readonly string[]).includes(command)) {
        expect(text).toMatch(new RegExp(`--${name}\\b.*\\[default: [^\\]]+\\] \\(SWITCHYARD_${name.toUpperCase().replace(/-/g, '_')}\\)`));
      } else {
        expect(text).not.toMatch(new RegExp(`--${name}\\s`));
      }
    }
  }
  expect(helpText('worker')).toMatch(/--concurrency +jobs one worker runs at once \[default: 50\]/);
});

test('Sentinel and Cluster URLs', () => {
  expect(parseRedisUrl('redis://:pw@10.0.0.1:6379/2')).toEqual({ kind: 'single', url: 'redis://:pw@10.0.0.1:6379/2' });
  expect(parseRedisUrl('redis+sentinel://app:s%40cret@10.0.0.1:26379,10.0.0.2:26380/mymaster')).toEqual({
    kind: 'sentinel',
    sentinels: [
      { host: '10.0.0.1', port: 26379 },
      { host: '10.0.0.2', port: 26380 },
    ],
    name: 'mymaster',
    username: 'app',
    password: 's@cret',
    tls: false,
  });
  expect(parseRedisUrl('rediss+cluster://:pw@a.example:7000,b.example:7001')).toEqual({
    kind: 'cluster',
    nodes: [
      { host: 'a.example', port: 7000 },
      { host: 'b.example', port: 7001 },
    ],
    username: undefined,
    password: 'pw',
    tls: true,
  });
  expect(parseConfig('stats', ['--redis', 'redis+cluster://127.0.0.1:7000'], {}).redis).toBe('redis+cluster://127.0.0.1:7000');
});
