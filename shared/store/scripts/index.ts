// Loads the Lua scripts once per connection with defineCommand (EVALSHA, falling back to EVAL
// after a Redis restart flushed the script cache).
//
// Each script says what it uses, in its header, and the loader holds it to that:
//   -- KEYS: <name> …   the keys it is sent, in KEYS order, by name (keys.ts, keyNamed); the Lua
//                       refers to them as K.<name> or K['<name>'] and the loader writes KEYS[i]
//   -- USES: <helper> … the helpers of scripts/helpers/ it calls (one helper per file, each with
//                       its own USES line); they are put before the script's body, each after
//                       the helpers it calls, and no others: Redis runs a script's whole text on
//                       every call, so every helper defined is a closure made per call
//   CODE.<name>         a reply code of replies.ts, written in as its number
// A script that refers to a key it does not declare, declares one that nothing in it refers
// to, calls a helper it does not list or lists one it does not call, fails to load, with the
// reason (test/unit/scripts.test.ts loads them all). Keys are named statically: a key of a
// level chosen at run time is written K['L' .. level .. ':last'] and names both (expandLevelKeys).
// Each script's first line is a Redis 7 shebang with its flags: the scripts that keep work
// moving (claim, settle, renew, recover) carry `allow-oom`, so workers go on draining a Redis at
// maxmemory, while the enqueue script is refused there (the gateway answers that Redis is full).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fromSource } from '../../package-root';
import type { RedisClient } from '../redis';
import { REPLY_CODES } from '../replies';

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
  | 'deleteDead'
  | 'pruneDone'
  | 'pruneLimiters'
  | 'checkState'
  | 'setGroupLimits';

export interface LoadedScript {
  /** The text sent to Redis: shebang, helpers, body, with KEYS[i] and codes written in. */
  lua: string;
  /** The names of its keys, in KEYS order (its `-- KEYS:` line). */
  keys: readonly string[];
  /** The helpers it runs with, its own and theirs. */
  helpers: readonly string[];
}

export function scriptsDir(): string {
  return fromSource('shared', 'store', 'scripts');
}

/** The words of a header line `-- <LABEL>: a b c` (the first such line); null when there is none. */
function declared(text: string, label: 'KEYS' | 'USES'): string[] | null {
  const m = new RegExp(`^-- ${label}:(.*)$`, 'm').exec(text);
  return m ? m[1].split(/\s+/).filter((w) => w !== '') : null;
}

/** The text without its comments (a `--` inside a Lua string does not occur in our scripts). */
const code = (text: string): string => text.replace(/--.*$/gm, '');

/** The helpers a text calls, of those known, leaving out a helper's own definition. */
export function helpersCalled(text: string, known: readonly string[], own?: string): string[] {
  const body = code(own ? text.replace(new RegExp(`local function ${own}\\b`), '') : text);
  return known.filter((name) => name !== own && new RegExp(`\\b${name}\\(`).test(body));
}

/** The key names a text refers to: K.name and K['name']. */
export function keysReferred(text: string): string[] {
  const names = new Set<string>();
  for (const m of code(text).matchAll(/\bK(?:\.(\w+)|\['([^']+)'\])/g)) names.add(m[1] ?? m[2]);
  return [...names];
}

/**
 * A key of a level chosen at run time is written as the Lua that would build its name,
 * K['L' .. level .. ':last'] or K['wake:L' .. level] (the level a name or tonumber(...)); it
 * becomes (level == 1 and K['L1:last'] or K['L2:last']): both keys are declared, no name is
 * built per call, and no helper function is made for it.
 */
export function expandLevelKeys(text: string): string {
  const level = String.raw`((?:tonumber\([^()]*\))|[\w.]+)`;
  return text
    .replace(
      new RegExp(String.raw`\bK\['L' \.\. ${level} \.\. '(:[\w:]+)'\]`, 'g'),
      (_, l: string, rest: string) => `(${l} == 1 and K['L1${rest}'] or K['L2${rest}'])`,
    )
    .replace(new RegExp(String.raw`\bK\['(\w+):L' \.\. ${level}\]`, 'g'), (_, kind: string, l: string) => `(${l} == 1 and K['${kind}:L1'] or K['${kind}:L2'])`);
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));
const listed = (words: readonly string[]): string => (words.length ? words.join(' ') : '(none)');

/** Builds one script from its file and the helpers, or throws saying which declaration is wrong. */
export function buildScript(name: string, text: string, helpers: ReadonlyMap<string, string>): LoadedScript {
  const fail = (why: string): never => {
    throw new Error(`script ${name}: ${why}`);
  };
  const known = [...helpers.keys()];
  const checkUses = (owner: string, ownText: string, own?: string): string[] => {
    const uses = declared(ownText, 'USES') ?? fail(`${owner} has no "-- USES:" line`);
    const calls = helpersCalled(ownText, known, own);
    if (!sameSet(uses, calls)) fail(`${owner} declares USES: ${listed(uses)} but calls ${listed(calls)}`);
    return uses;
  };
  // The helpers in an order where each comes after those it calls.
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (helper: string): void => {
    if (order.includes(helper)) return;
    if (visiting.has(helper)) fail(`helpers call each other in a circle through ${helper}`);
    visiting.add(helper);
    for (const dep of checkUses(`helper ${helper}`, helpers.get(helper)!, helper)) visit(dep);
    order.push(helper);
  };
  for (const helper of checkUses('its header', text)) visit(helper);

  const firstLineEnd = text.indexOf('\n') + 1;
  // The first line declares what Redis may let the script do (`#!lua flags=…`): it must stay first.
  const [shebang, body] = text.startsWith('#!') ? [text.slice(0, firstLineEnd), text.slice(firstLineEnd)] : ['', text];
  let lua = expandLevelKeys(`${shebang}${order.map((h) => helpers.get(h)!.trimEnd()).join('\n\n')}\n\n${body}`);

  const keys = declared(text, 'KEYS') ?? fail('has no "-- KEYS:" line');
  const referred = keysReferred(lua);
  if (!sameSet(keys, referred)) fail(`declares KEYS: ${listed(keys)} but refers to ${listed(referred)}`);
  // Anything but a plain literal left after the level forms were expanded (K[name], or a name
  // built some other way, such as K['L' .. f(x) .. ':last']) would reach Redis as nil.
  if (/\bK\[(?!'[^']*'\])/.test(code(lua))) fail("names a key by an expression (K[...]): name each key as K.name or K['name']");
  if (/\bKEYS\[/.test(code(lua))) fail('uses KEYS[...] directly: name the key in its KEYS line and refer to it as K.name');
  lua = lua.replace(/\bK(?:\.(\w+)|\['([^']+)'\])/g, (_, a: string | undefined, b: string | undefined) => `KEYS[${keys.indexOf((a ?? b)!) + 1}]`);

  const codes: Record<string, number> = (REPLY_CODES as Record<string, Record<string, number>>)[name] ?? {};
  const written = new Set<string>();
  lua = lua.replace(/\bCODE\.(\w+)/g, (_, code: string) => {
    if (!(code in codes)) fail(`returns CODE.${code}, which replies.ts does not define for it`);
    written.add(code);
    return String(codes[code]);
  });
  const unused = Object.keys(codes).filter((c) => !written.has(c));
  if (unused.length) fail(`never returns ${unused.map((c) => `CODE.${c}`).join(', ')} that replies.ts defines for it`);
  return { lua, keys, helpers: order };
}

/**
 * Every helper, by name: one per file, in folders by concern (format/: the stored forms of a job,
 * its dead entry and its index entry; lines/, last/, dead/, index/, runs/). Names are unique.
 */
export function loadHelpers(): ReadonlyMap<string, string> {
  const root = path.join(scriptsDir(), 'helpers');
  const helpers = new Map<string, string>();
  for (const file of readdirSync(root, { recursive: true }) as string[]) {
    const m = /(?:^|[/\\])(\w+)\.lua$/.exec(file);
    if (!m) continue;
    const text = readFileSync(path.join(root, file), 'utf8');
    if (!new RegExp(`^local function ${m[1]}\\(`, 'm').test(text)) throw new Error(`helpers/${file} does not define local function ${m[1]}`);
    if (helpers.has(m[1])) throw new Error(`two helpers are called ${m[1]} (helpers/${file})`);
    helpers.set(m[1], text);
  }
  return helpers;
}

let cache: Map<ScriptName, LoadedScript> | undefined;

/** Every script, built and checked (once per process). */
export function loadScripts(): ReadonlyMap<ScriptName, LoadedScript> {
  if (cache) return cache;
  const dir = scriptsDir();
  const helpers = loadHelpers();
  const built = new Map<ScriptName, LoadedScript>();
  for (const file of readdirSync(dir)) {
    const m = /^(\w+)\.lua$/.exec(file);
    if (m) built.set(m[1] as ScriptName, buildScript(m[1], readFileSync(path.join(dir, file), 'utf8'), helpers));
  }
  cache = built;
  return built;
}

/** The names of a script's keys, in the order it is sent them. */
export function keyNamesOf(name: ScriptName): readonly string[] {
  const script = loadScripts().get(name);
  if (!script) throw new Error(`no script named ${name}`);
  return script.keys;
}

export function defineScripts(redis: RedisClient): void {
  for (const [name, { lua, keys }] of loadScripts()) redis.defineCommand(name, { lua, numberOfKeys: keys.length });
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
