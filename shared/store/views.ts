// The operator's views of one partition: plain reads, pipelined where they can be, no script
// (stats, the dashboard's workers list, `peek`, `dead`, the claim loop's probe). `workers()`
// costs one round trip per live worker. Queues reads every partition through these (queues.ts).
import type { Level } from '../levels';
import { readCall } from './format/job';
import { readIndexEntry } from './format/index-entry';
import type { Keys } from './keys';
import type { RedisClient } from './redis';

export interface QueueStats {
  queues: Record<string, number>;
  /** Messages waiting per level, the named groups' (`grouped`) included. */
  backlog: { L1: number; L2: number };
  /** Of those, the messages waiting in named groups' queues ({p}:stats L<n>:grouped). */
  grouped: { L1: number; L2: number };
  level2Active: boolean;
  /** Levels paused by an operator (accepting calls, not claimed). */
  paused: Record<Level, boolean>;
  inFlight: number;
  workers: number;
  /** Workers blocked for work right now (fresh idle registrations): new jobs go straight to them. */
  idle: number;
  delayed: number;
  dead: number;
  counters: Record<string, number>;
}

export interface WorkerView {
  id: string;
  leaseLeftMs: number;
  running: Array<{ id: string; url: string; method: string; level: Level; attempt: number; runningSeconds: number }>;
}

/** One partition's views: its Redis client and its keys (keys.ts). */
export class PartitionViews {
  constructor(
    readonly redis: RedisClient,
    readonly keys: Keys,
  ) {}

  async stats(): Promise<QueueStats> {
    const k = this.keys;
    const names = ['L1:execute', 'L1:last', 'L1:discard', 'L2:execute', 'L2:last', 'L2:discard'] as const;
    const pipeline = this.redis.pipeline();
    for (const name of names) {
      const [level, policy] = name.split(':') as [string, 'execute' | 'last' | 'discard'];
      const key = k.queue(Number(level.slice(1)) as Level, policy);
      if (policy === 'last') pipeline.hlen(key);
      else pipeline.llen(key);
    }
    pipeline.get(k.l2Active).llen(k.dead).hgetall(k.stats).zrange(k.workers, 0, -1, 'WITHSCORES').zcard(k.delayed).time().hmget(k.paused, 'L1', 'L2');
    const results = (await pipeline.exec())!.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
    const queues: Record<string, number> = {};
    names.forEach((name, i) => (queues[name] = Number(results[i])));
    // Leases and idle registrations are scored in Redis time, so count against Redis's clock, not ours.
    const [seconds, micros] = results[11] as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const scored = results[9] as string[];
    const workers: string[] = [];
    for (let i = 0; i < scored.length; i += 2) if (Number(scored[i + 1]) >= now) workers.push(scored[i]);
    const p = this.redis.pipeline().zcount(k.idle(1), now, '+inf');
    for (const w of workers) p.hlen(k.workerJobs(w));
    const [[idleErr, idle], ...held] = (await p.exec())!;
    if (idleErr) throw idleErr;
    let inFlight = 0;
    for (const [err, value] of held) if (!err) inFlight += Number(value);
    const counters: Record<string, number> = {};
    for (const [field, value] of Object.entries(results[8] as Record<string, string>)) counters[field] = Number(value);
    // Messages of named groups wait in the groups' own queues, counted by the scripts in L<n>:grouped.
    const grouped = (level: Level): number => counters[`L${level}:grouped`] || 0;
    return {
      queues,
      backlog: {
        L1: queues['L1:execute'] + queues['L1:last'] + queues['L1:discard'] + grouped(1),
        L2: queues['L2:execute'] + queues['L2:last'] + queues['L2:discard'] + grouped(2),
      },
      grouped: { L1: grouped(1), L2: grouped(2) },
      level2Active: results[6] !== '0',
      paused: { 1: (results[12] as Array<string | null>)[0] === '1', 2: (results[12] as Array<string | null>)[1] === '1' },
      inFlight,
      workers: workers.length,
      idle: Number(idle),
      delayed: Number(results[10]),
      dead: Number(results[7]),
      counters,
    };
  }

  listDead(limit: number): Promise<string[]> {
    return this.redis.lrange(this.keys.dead, 0, limit - 1);
  }

  /** Live workers, their lease and what each runs now (for the dashboard). */
  async workers(): Promise<WorkerView[]> {
    const k = this.keys;
    // One pipeline, so TIME is read on this partition's own node: alone, a keyless command goes to
    // any node of a Cluster, a stopped one included, and the partition would seem not to answer.
    const [[scoredErr, scoredReply], [timeErr, timeReply]] = (await this.redis.pipeline().zrange(k.workers, 0, -1, 'WITHSCORES').time().exec())!;
    if (scoredErr || timeErr) throw scoredErr ?? timeErr;
    const scored = scoredReply as string[];
    const [seconds, micros] = timeReply as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const views: WorkerView[] = [];
    for (let i = 0; i < scored.length; i += 2) {
      const id = scored[i];
      const leaseLeftMs = Number(scored[i + 1]) - now;
      if (leaseLeftMs < 0) continue;
      const held = await this.redis.hgetall(k.workerJobs(id));
      // A payload that cannot be read (kept for the dead list by the next settle) shows as '?'.
      const calls = Object.values(held).map(readCall);
      const where = calls.length > 0 ? await this.redis.hmget(k.jobs, ...calls.map((c) => c.id ?? '')) : [];
      const running = calls.map((c, j) => {
        const entry = readIndexEntry(where[j] ?? '');
        const since = entry?.kind === 'running' ? entry.since : now;
        return { id: c.id ?? '?', url: c.url ?? '?', method: c.method ?? '?', level: c.level ?? 1, attempt: c.attempt, runningSeconds: (now - since) / 1000 };
      });
      views.push({ id, leaseLeftMs, running });
    }
    return views;
  }

  async pausedLevels(): Promise<Record<Level, boolean>> {
    const [l1, l2] = await this.redis.hmget(this.keys.paused, 'L1', 'L2');
    return { 1: l1 === '1', 2: l2 === '1' };
  }

  /** The next `limit` messages of a queue, next first (for `last`: the keys in line, with their payloads). */
  async peek(level: Level, policy: 'execute' | 'last' | 'discard', limit: number): Promise<string[]> {
    const k = this.keys;
    if (policy !== 'last') return (await this.redis.lrange(k.queue(level, policy), -limit, -1)).reverse();
    const keys = (await this.redis.lrange(k.order(level), -limit, -1)).reverse();
    if (keys.length === 0) return [];
    return (await this.redis.hmget(k.queue(level, 'last'), ...keys)).filter((p): p is string => p !== null);
  }
}
