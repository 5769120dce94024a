// Loads the Lua scripts once per connection with defineCommand (EVALSHA, falling back to
// EVAL after a Redis restart flushed the script cache). includes/queues.lua is prepended.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type Redis from 'ioredis';

export type ScriptName =
  'enqueue' | 'claimJobs' | 'finishJobs' | 'failJob' | 'promoteDue' | 'requeueWorker' | 'requeueDead' | 'renewLease' | 'expiredWorkers' | 'queueGauges';

function scriptsDir(): string {
  // From dist/shared/store the sources are three levels up; under ts-jest they are beside us.
  for (const dir of [path.join(__dirname, 'scripts'), path.join(__dirname, '..', '..', '..', 'shared', 'store', 'scripts')]) {
    if (existsSync(path.join(dir, 'includes'))) return dir;
  }
  throw new Error(`Lua scripts not found near ${__dirname}`);
}

let cache: Map<ScriptName, { lua: string; numberOfKeys: number }> | undefined;

function loadSources(): Map<ScriptName, { lua: string; numberOfKeys: number }> {
  if (cache) return cache;
  const dir = scriptsDir();
  const include = readFileSync(path.join(dir, 'includes', 'queues.lua'), 'utf8');
  cache = new Map();
  for (const file of readdirSync(dir)) {
    const m = /^(\w+)-(\d+)\.lua$/.exec(file);
    if (!m) continue;
    cache.set(m[1] as ScriptName, { lua: `${include}\n${readFileSync(path.join(dir, file), 'utf8')}`, numberOfKeys: Number(m[2]) });
  }
  return cache;
}

export function defineScripts(redis: Redis): void {
  for (const [name, { lua, numberOfKeys }] of loadSources()) redis.defineCommand(name, { lua, numberOfKeys });
}

export function runScript<T>(redis: Redis, name: ScriptName, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<T> {
  return (redis as unknown as Record<ScriptName, (...a: Array<string | number>) => Promise<T>>)[name](...keys, ...args);
}
