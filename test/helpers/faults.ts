// Redis faults for end-to-end tests, injected through a connection of the test's own into a
// redis-server that the test started (never a shared one): drop the connections of one role
// mid-call (CLIENT KILL), stall the clients (CLIENT PAUSE), stall the server itself (DEBUG
// SLEEP), fill the memory (maxmemory, noeviction). Each injection returns the window during
// which Redis was really unavailable to the roles it hit, so a test can tell a 503 that Redis
// caused from one it did not.
import type Redis from 'ioredis';
import type { ConnectionRole } from '../../shared/store/redis';
import { startDebugRedis } from './debug-redis';

/** A redis-server a test may stall and fill: DEBUG is enabled, memory is never evicted. */
export interface FaultableRedis {
  url: string;
  port: number;
  /** The injector's own connection (no switchyard-<role> name, so no role's kill matches it). */
  admin: Redis;
  close(): Promise<void>;
}

export type FaultKind = 'kill' | 'pause-write' | 'pause-all' | 'sleep' | 'full';

/** One injected fault: what, on which role (kill only), and when Redis was unavailable because of it. */
export interface Fault {
  kind: FaultKind;
  role?: ConnectionRole;
  /** A kill made while the role's commands surely waited for their answers. */
  midCall?: boolean;
  /** What the test did meanwhile, when it timed the fault to meet one call (e.g. a worker's shutdown). */
  during?: string;
  /** Date.now() before the command was sent. */
  from: number;
  /** Date.now() when Redis was available again (for a kill: when the role may have reconnected). */
  to: number;
  /** Connections dropped (kill), or the used and maximum memory (full). */
  detail?: string;
}

/** ioredis reconnects 50 ms after a drop (shared/store/redis.ts); this covers it on a loaded machine. */
const RECONNECT_MS = 500;

/** A redis-server with DEBUG (test/helpers/debug-redis.ts) that never evicts: a full Redis refuses writes. */
export async function startFaultableRedis(): Promise<FaultableRedis> {
  const redis = await startDebugRedis(['--maxmemory-policy', 'noeviction']);
  process.stderr.write(`[faults] redis-server with DEBUG on 127.0.0.1:${redis.port}\n`);
  return { url: redis.url, port: redis.port, admin: redis.admin, close: () => redis.close() };
}

/** The client ids of the connections a role opened (ioredis names them switchyard-<role>). */
export async function connectionsOf(admin: Redis, role: ConnectionRole): Promise<string[]> {
  const list = (await admin.client('LIST')) as string;
  const ids: string[] = [];
  for (const line of list.split('\n')) {
    const m = /^id=(\d+) .*\bname=(\S*)/.exec(line);
    if (m && m[2] === `switchyard-${role}`) ids.push(m[1]);
  }
  return ids;
}

/** Drops every connection of `role`, whatever it is doing (a command in flight gets no answer). */
export async function killRole(admin: Redis, role: ConnectionRole): Promise<Fault> {
  const from = Date.now();
  const ids = await connectionsOf(admin, role);
  let killed = 0;
  for (const id of ids) killed += Number(await admin.client('KILL', 'ID', id).catch(() => 0));
  return { kind: 'kill', role, from, to: Date.now() + RECONNECT_MS, detail: `${killed} of ${ids.length}` };
}

/**
 * Drops the connections of `role` while a command of theirs surely waits for its answer: the
 * clients' writes are held for `holdMs` (every script, BLPOP and renewal is a write), and the
 * connections are cut halfway through. The held commands never run. `meanwhile` runs right
 * after the hold begins (to make a process send the call the kill should meet).
 */
export async function killRoleMidCall(admin: Redis, role: ConnectionRole, holdMs: number, meanwhile?: { what: string; run(): void }): Promise<Fault> {
  const from = Date.now();
  await admin.call('CLIENT', 'PAUSE', String(holdMs), 'WRITE');
  meanwhile?.run();
  await new Promise((resolve) => setTimeout(resolve, holdMs / 2));
  const killed = await killRole(admin, role);
  return { ...killed, midCall: true, during: meanwhile?.what, from, to: Math.max(killed.to, from + holdMs) };
}

/** Holds the clients' writes (WRITE) or every command (ALL) for `ms`. */
export async function pauseClients(admin: Redis, ms: number, mode: 'WRITE' | 'ALL'): Promise<Fault> {
  const from = Date.now();
  await admin.call('CLIENT', 'PAUSE', String(ms), mode);
  return { kind: mode === 'WRITE' ? 'pause-write' : 'pause-all', from, to: Date.now() + ms };
}

/** Stalls the server itself for `ms`: nothing is read or answered meanwhile. */
export async function sleepServer(admin: Redis, ms: number): Promise<Fault> {
  const from = Date.now();
  await admin.call('DEBUG', 'SLEEP', String(ms / 1000));
  return { kind: 'sleep', from, to: Date.now() };
}

/** The memory Redis reports using now. */
export async function usedMemory(admin: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
}

const FILLER_BYTES = 8192;
/** Enough to pass any limit set here (256 KB above use) many times over: more means Redis is not filling. */
const MAX_FILLERS = 2000;
/** Once full, the limit is set this far under the memory in use: jobs drained meanwhile do not make room. */
const HOLD_BELOW_BYTES = 256 * 1024;

/**
 * Sets maxmemory just above the memory in use and writes filler keys (outside every
 * deployment's prefix) until Redis refuses one; then holds it full by lowering the limit under
 * the memory in use (the workers' drained jobs would otherwise make room for new ones within
 * milliseconds). Every command that may grow memory is refused with OOM until `lift` removes
 * the limit and the fillers.
 */
export async function fillMemory(admin: Redis, fillerPrefix: string): Promise<{ detail: string; lift(): Promise<Fault> }> {
  const from = Date.now();
  const used = await usedMemory(admin);
  const limit = used + 256 * 1024;
  await admin.config('SET', 'maxmemory', String(limit));
  let fillers = 0;
  for (; fillers < MAX_FILLERS; fillers++) {
    const stored = await admin.set(`${fillerPrefix}:${fillers}`, 'x'.repeat(FILLER_BYTES)).then(
      () => true,
      () => false,
    );
    if (!stored) break;
  }
  if (fillers === MAX_FILLERS) throw new Error(`Redis took ${MAX_FILLERS} fillers of ${FILLER_BYTES} bytes under maxmemory ${limit}: it is not filling`);
  const full = await usedMemory(admin);
  await admin.config('SET', 'maxmemory', String(full - HOLD_BELOW_BYTES));
  const detail = `used ${used} bytes, maxmemory ${limit}, full after ${fillers} fillers at ${full}, held at ${full - HOLD_BELOW_BYTES}`;
  return {
    detail,
    async lift() {
      await admin.config('SET', 'maxmemory', '0');
      const to = Date.now();
      for (let i = 0; i < fillers; i += 500) {
        const names = Array.from({ length: Math.min(500, fillers - i) }, (_, j) => `${fillerPrefix}:${i + j}`);
        await admin.del(...names);
      }
      return { kind: 'full', from, to, detail };
    },
  };
}
