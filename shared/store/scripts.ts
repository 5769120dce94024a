// Loads the Lua scripts once per connection with defineCommand (EVALSHA, falling back to
// EVAL after a Redis restart flushed the script cache). Each script gets the helpers of
// includes/queues.lua that it calls, directly or through another helper, and no others: Redis
// runs a script's whole text on every call, so every helper defined is a closure made per call
// (all thirty of them cost the enqueue script about a third of its time). Each script's first
// line is a Redis 7 shebang with its flags: the scripts that keep work moving (claim, settle,
// renew, recover) carry `allow-oom`, so workers go on draining a Redis at maxmemory, while the
// enqueue script is refused there (the gateway answers that Redis is full).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RedisClient } from './redis';

export type ScriptName =
  | 'enqueue'
  | 'claimJobs'
  | 'finishJobs'
  | 'failJob'
  | 'promoteDue'
  | 'requeueWorker'
  | 'requeueDead'
  | 'renewLease'
  | 'expiredWorkers'
  | 'queueGauges'
  | 'wakeWorkers'
  | 'lookupJob'
  | 'deleteJob'
  | 'pauseLevel'
  | 'purgeDead'
  | 'pruneDone';

function scriptsDir(): string {
  // From dist/shared/store the sources are three levels up; under ts-jest they are beside us.
  for (const dir of [path.join(__dirname, 'scripts'), path.join(__dirname, '..', '..', '..', 'shared', 'store', 'scripts')]) {
    if (existsSync(path.join(dir, 'includes'))) return dir;
  }
  throw new Error(`Lua scripts not found near ${__dirname}`);
}

let cache: Map<ScriptName, { lua: string; numberOfKeys: number }> | undefined;

interface Helper {
  name: string;
  text: string;
}

/** The include's helpers: each `local function` with the comment lines just above it. */
export function helpersOf(include: string): Helper[] {
  return include
    .split(/^(?=(?:--[^\n]*\n)*local function )/m)
    .map((text) => ({ name: /^local function (\w+)/m.exec(text)?.[1] ?? '', text }))
    .filter((h) => h.name !== '');
}

/** The helpers `body` needs, with the helpers they need in turn, in the include's order. */
export function helpersFor(body: string, helpers: readonly Helper[]): string {
  const calls = (text: string): Helper[] => helpers.filter((h) => new RegExp(`\\b${h.name}\\(`).test(text.replace(/^local function \w+/m, '')));
  const needed = new Set<Helper>();
  const visit = (text: string): void => {
    for (const h of calls(text)) {
      if (needed.has(h)) continue;
      needed.add(h);
      visit(h.text);
    }
  };
  visit(body);
  return helpers
    .filter((h) => needed.has(h))
    .map((h) => h.text.trimEnd())
    .join('\n\n');
}

function loadSources(): Map<ScriptName, { lua: string; numberOfKeys: number }> {
  if (cache) return cache;
  const dir = scriptsDir();
  const helpers = helpersOf(readFileSync(path.join(dir, 'includes', 'queues.lua'), 'utf8'));
  cache = new Map();
  for (const file of readdirSync(dir)) {
    const m = /^(\w+)-(\d+)\.lua$/.exec(file);
    if (!m) continue;
    const text = readFileSync(path.join(dir, file), 'utf8');
    // The first line declares what Redis may let the script do (`#!lua flags=…`): it must stay first.
    const firstLineEnd = text.indexOf('\n') + 1;
    const [shebang, body] = text.startsWith('#!') ? [text.slice(0, firstLineEnd), text.slice(firstLineEnd)] : ['', text];
    cache.set(m[1] as ScriptName, { lua: `${shebang}${helpersFor(body, helpers)}\n\n${body}`, numberOfKeys: Number(m[2]) });
  }
  return cache;
}

export function defineScripts(redis: RedisClient): void {
  for (const [name, { lua, numberOfKeys }] of loadSources()) redis.defineCommand(name, { lua, numberOfKeys });
}

export function runScript<T>(redis: RedisClient, name: ScriptName, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<T> {
  return (redis as unknown as Record<ScriptName, (...a: Array<string | number>) => Promise<T>>)[name](...keys, ...args);
}

/**
 * Runs a script, then Redis WAIT for `replicas` replicas, on the same connection (in a pipeline,
 * which on a Cluster goes to the node that owns the script's keys). Resolves to the script's
 * result and how many replicas acknowledged every write made so far on that connection.
 */
export async function runScriptAndWait<T>(
  redis: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: ReadonlyArray<string | number>,
  replicas: number,
  timeoutMs: number,
): Promise<{ result: T; acknowledged: number }> {
  const pipeline = redis.pipeline() as unknown as Record<string, (...a: Array<string | number>) => unknown> & {
    wait(n: number, ms: number): unknown;
    exec(): Promise<Array<[Error | null, unknown]> | null>;
  };
  pipeline[name](...keys, ...args);
  pipeline.wait(replicas, timeoutMs);
  const [[scriptErr, result], [waitErr, acknowledged]] = (await pipeline.exec())!;
  if (scriptErr) throw scriptErr;
  if (waitErr) throw waitErr;
  return { result: result as T, acknowledged: Number(acknowledged) };
}
