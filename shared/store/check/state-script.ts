// Calls of checkState.lua: a batch of probes read in one atomic step (to confirm what the
// plain reads suggested), or one repair that re-checks its condition before it writes.
import { keyNamed } from '../keys';
import { keyNamesOf } from '../scripts';
import type { Store } from '../store';
import { bytesOf, type Bytes } from './payload';

/** A probe: its name in the script, then its arguments (byte strings). */
export type Probe = [name: string, ...args: Bytes[]];

/** A probe's answer: a byte string, a number, null, or a list of those. */
export type Answer = Bytes | number | null | Answer[];

type ScriptCall = (...args: Array<string | Buffer>) => Promise<unknown>;

function decode(reply: unknown): Answer {
  if (Buffer.isBuffer(reply)) return bytesOf(reply);
  if (Array.isArray(reply)) return reply.map(decode);
  if (typeof reply === 'number') return reply;
  return null;
}

function call(store: Store, workers: readonly Bytes[], words: Bytes[]): Promise<unknown> {
  const k = store.keys;
  // The loader (scripts/index.ts) defines every script of the folder, this one included; the Buffer
  // variant answers bytes as they are.
  const redis = store.redis as unknown as Record<'checkStateBuffer', ScriptCall>;
  const keys = keyNamesOf('checkState').map((name) => keyNamed(k, name));
  return redis.checkStateBuffer(...keys, ...[k.tag, workers.join('\n'), ...words].map((w) => Buffer.from(w, 'latin1')));
}

/** Runs the probes in one atomic read; one answer per probe. */
export async function probe(store: Store, workers: readonly Bytes[], probes: readonly Probe[]): Promise<Answer[]> {
  if (probes.length === 0) return [];
  return decode(await call(store, workers, ['probe', ...probes.flat()])) as Answer[];
}

/** Runs one repair; true when its condition still held and it wrote. */
export async function repair(store: Store, workers: readonly Bytes[], action: string, args: readonly Bytes[]): Promise<boolean> {
  return Number(await call(store, workers, ['repair', action, ...args])) === 1;
}
