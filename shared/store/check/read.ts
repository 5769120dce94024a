// Plain reads of a live deployment, a thousand entries at a time (never KEYS, never a whole
// list in one reply), as byte strings. What they see may change between two chunks: the checker
// confirms every suspicion atomically (state-script.ts) before it reports it.
import { Cluster } from 'ioredis';
import type { RedisClient } from '../redis';
import { bytesOf, type Bytes } from './payload';

export const CHUNK = 1000;

/** Every key matching a SCAN pattern, on every master of a Cluster. */
export async function* scanKeys(redis: RedisClient, pattern: string): AsyncGenerator<Bytes> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scanBuffer(cursor, 'MATCH', pattern, 'COUNT', CHUNK);
      cursor = String(next);
      for (const key of keys) yield bytesOf(key);
    } while (cursor !== '0');
  }
}

/** A hash's fields and values, a chunk at a time. */
export async function* hashChunks(redis: RedisClient, key: Bytes): AsyncGenerator<Array<[Bytes, Bytes]>> {
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscanBuffer(Buffer.from(key, 'latin1'), cursor, 'COUNT', CHUNK);
    cursor = String(next);
    const pairs: Array<[Bytes, Bytes]> = [];
    for (let i = 0; i < flat.length; i += 2) pairs.push([bytesOf(flat[i]), bytesOf(flat[i + 1])]);
    if (pairs.length > 0) yield pairs;
  } while (cursor !== '0');
}

/** A list's elements from the head, a chunk at a time. */
export async function* listChunks(redis: RedisClient, key: Bytes): AsyncGenerator<Bytes[]> {
  for (let from = 0; ; from += CHUNK) {
    const chunk = await redis.lrangeBuffer(Buffer.from(key, 'latin1'), from, from + CHUNK - 1);
    if (chunk.length > 0) yield chunk.map(bytesOf);
    if (chunk.length < CHUNK) return;
  }
}

/** A sorted set's members and scores, a chunk at a time. */
export async function* zsetChunks(redis: RedisClient, key: Bytes): AsyncGenerator<Array<[Bytes, number]>> {
  let cursor = '0';
  do {
    const [next, flat] = await redis.zscanBuffer(Buffer.from(key, 'latin1'), cursor, 'COUNT', CHUNK);
    cursor = String(next);
    const pairs: Array<[Bytes, number]> = [];
    for (let i = 0; i < flat.length; i += 2) pairs.push([bytesOf(flat[i]), Number(bytesOf(flat[i + 1]))]);
    if (pairs.length > 0) yield pairs;
  } while (cursor !== '0');
}

/** A whole hash (for the small ones: held keys, newest marks), field -> value. */
export async function readHash(redis: RedisClient, key: Bytes): Promise<Map<Bytes, Bytes>> {
  const out = new Map<Bytes, Bytes>();
  for await (const chunk of hashChunks(redis, key)) for (const [field, value] of chunk) out.set(field, value);
  return out;
}

/** The index entries of these job ids, in one round trip (null: none). */
export async function entriesOf(redis: RedisClient, jobsKey: string, ids: readonly string[]): Promise<Array<Bytes | null>> {
  if (ids.length === 0) return [];
  const found = await redis.hmgetBuffer(jobsKey, ...ids);
  return found.map((value) => (value === null ? null : bytesOf(value)));
}
