// For `switchyard dev` on a laptop: when no Redis answers and none was asked for, start a
// private redis-server child on a free port (if the binary is on PATH).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort } from './free-port';
import { connectQuietly, createRedis } from '../shared/store/redis';

export async function redisAnswers(url: string): Promise<boolean> {
  const probe = createRedis(url, 'cli');
  const up = await connectQuietly(probe, 1000);
  probe.disconnect();
  return up;
}

export async function startPrivateRedis(): Promise<{ url: string; child: ChildProcess } | null> {
  if (spawnSync('redis-server', ['--version']).status !== 0) return null;
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  process.on('exit', () => child.kill('SIGTERM'));
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers(url)) return { url, child };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  return null;
}
