// `switchyard dev` with no --redis and nothing answering at the default URL starts a private
// redis-server, says so, serves async calls through it and stops it on exit (docs/protocol.md, section 7).
// The default URL (127.0.0.1:6379) answers on this machine, so the check runs in a new network
// namespace (`unshare -n`, root), where loopback has nothing listening.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';

const SCRIPT = path.join(__dirname, '..', 'fixtures', 'dev-without-redis.js');
const canUnshare = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up']).status === 0;

(canUnshare ? test : test.skip)(
  `dev starts, announces and stops a private redis-server when none answers${canUnshare ? '' : ' — SKIPPED: `unshare -n` is not permitted here'}`,
  () => {
    const out = execFileSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" "${SCRIPT}"`], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const result = JSON.parse(out.trim().split('\n').pop()!);
    expect(result.announced).toContain('nothing answers at redis://127.0.0.1:6379; started a private redis-server at');
    // and says how to point the other commands at it
    expect(result.announced).toContain(`switchyard stats --redis ${result.redisUrl}`);
    expect(result.announced).toMatch(/redis-cli -p \d+/);
    expect(result.redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(result.async).toMatchObject({ status: 201, data: { state: 'queued' } });
    expect(result.ran).toMatchObject({ body: { hello: 'dev' }, rpc: { level: 1, policy: 'execute', attempt: 1 } });
    expect(result.exit).toEqual({ code: 0, signal: null });
    expect(result.redisAfterExit).toBe('gone');
  },
  40_000,
);
