// A deployment's queues as a whole: one partition (the layout under `{prefix}`), or N
// partitions under `{prefix:0}` … `{prefix:N-1}` (or the tags stored for them, chosen on a
// Cluster so that each lands on a master of its own: placement.ts), each a Store of its own. Every rule that has to hold for the whole
// deployment is kept per partition with that partition's share of it (docs/design.md,
// "Partitions"): the level-2 capacity and the discard threshold are divided by N, each
// partition has its own round robin, leases, retries and dead list.
//
// The only way in for the gateway, the worker and the operator's commands: the methods that
// take a partition number are one partition's script calls (store.ts), the others cover the
// deployment, reading each partition's views (views.ts) or running its scripts.
import { createHash } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import type { CallRequest } from '../call/params';
import type { Level } from '../levels';
import { log } from '../log';
import { carrierOf, context, trace, tracingOn } from '../trace';
import { endProducerSpan, startProducerSpan } from '../call/tracing';
import { deploymentKeys, keyNamed, keysFor, type DeploymentKeys } from './keys';
import { chooseTags, defaultTags, formatStored, mastersBySlot, parseStored, tagsOf, type SlotRanges, type StoredPartitions } from './placement';
import type { RedisClient } from './redis';
import { defineScripts, keyNamesOf, runScript } from './scripts';
import { viewOf, type JobView } from './lookup';
import {
  Store,
  type Ack,
  type AdmissionLimits,
  type Claimed,
  type ClaimSettles,
  type DeleteOutcome,
  type DeliveredRun,
  type EnqueueOutcome,
  type FailOutcome,
  type FailurePlan,
  type QueueGauges,
  type SelectionOptions,
} from './store';
import type { Keys } from './keys';
import { PartitionViews, type QueueStats, type WorkerView } from './views';

export class PartitionMismatch extends Error {}

export class Queues {
  #stores: readonly Store[] = [];
  #views: readonly PartitionViews[] = [];
  /** The partitions' tags are the ones this deployment uses (given, or read from Redis). */
  #located: boolean;
  #locating: Promise<void> | undefined;
  readonly deployment: DeploymentKeys;
  private readonly wakeKeys: readonly string[];
  private turn = 0;

  /**
   * `tags`: the partitions' hash tags as stored for the deployment. Without them (and with
   * several partitions) they are read from Redis before the first use of a partition's keys.
   */
  constructor(
    readonly redis: RedisClient,
    readonly prefix: string,
    readonly partitions = 1,
    tags?: readonly string[],
  ) {
    this.#adopt(tags ?? defaultTags(prefix, partitions));
    this.#located = partitions === 1 || tags !== undefined;
    this.deployment = deploymentKeys(prefix);
    // The deployment's wake keys sit under its plain tag {prefix}, named as a partition's are.
    const plain = keysFor(prefix);
    this.wakeKeys = keyNamesOf('wakeWorkers').map((name) => keyNamed(plain, name));
    defineScripts(redis);
  }

  /**
   * For the operator's commands: the deployment as Redis records it (one partition when no
   * process has started yet). A count given on the command line must agree with it.
   */
  static async open(redis: RedisClient, prefix: string, given?: number): Promise<Queues> {
    const key = deploymentKeys(prefix).partitions;
    const text = await redis.get(key);
    const stored = text === null ? null : parseStored(text, prefix, key);
    const partitions = given ?? stored?.partitions ?? 1;
    const queues = new Queues(redis, prefix, partitions, stored?.partitions === partitions ? tagsOf(stored, prefix) : undefined);
    if (given !== undefined && stored !== null) await queues.agreeOnPartitions();
    return queues;
  }

  /** The hash tag of each partition. */
  get tags(): string[] {
    return this.#stores.map((s) => s.keys.tag);
  }

  #adopt(tags: readonly string[]): void {
    if (this.#stores.length > 0 && this.#stores.every((s, p) => s.keys.tag === tags[p])) return;
    this.#stores = partitionStores(this.redis, this.prefix, this.partitions, [...tags]);
    this.#views = this.#stores.map((store) => new PartitionViews(this.redis, store.keys));
  }

  /**
   * Every process must use the partition count the deployment was started with, and the same
   * tags: stored on first use (on a Cluster with several partitions, tags chosen so that each
   * partition has a master of its own; the first process to store wins, the others adopt what
   * it stored), compared after. Changing the count means draining the queues first (docs/design.md).
   */
  async agreeOnPartitions(): Promise<void> {
    const key = this.deployment.partitions;
    // Read first: a Redis at maxmemory (noeviction) refuses any SET, even one that would change
    // nothing, and a worker must start there (its claims are what frees the memory).
    let text = await this.redis.get(key);
    if (text === null) {
      await this.redis.set(key, formatStored(await this.#newDeployment()), 'NX');
      text = await this.redis.get(key);
      if (text === null) throw new Error(`${key} could not be stored`);
    }
    const stored = parseStored(text, this.prefix, key);
    if (stored.partitions !== this.partitions) {
      throw new PartitionMismatch(
        `--partitions ${this.partitions} does not match the ${stored.partitions} partition(s) this deployment uses (${key} in Redis): ` +
          `give every process --partitions ${stored.partitions}, or drain the queues and delete ${key} to change it`,
      );
    }
    this.#adopt(tagsOf(stored, this.prefix));
    this.#located = true;
  }

  /** What a new deployment stores: on a Cluster with several partitions, tags that spread them over the masters. */
  async #newDeployment(): Promise<StoredPartitions> {
    if (this.partitions === 1 || !(this.redis instanceof Cluster)) return { partitions: this.partitions };
    const ranges = (await this.redis.cluster('SLOTS')) as unknown as SlotRanges;
    return { partitions: this.partitions, tags: chooseTags(this.prefix, this.partitions, mastersBySlot(ranges)) };
  }

  /**
   * Makes sure the partitions' tags are the deployment's before their keys are used: reads them
   * from Redis once (and on a Cluster, when none are stored yet, agrees on them). A count that
   * disagrees with the stored one keeps `{prefix:p}` (agreeOnPartitions, at start, refuses it).
   * `readOnly` (the checker): stores nothing, also where nothing is stored yet.
   */
  async locate(readOnly = false): Promise<void> {
    if (this.#located) return;
    this.#locating ??= this.#locateOnce(readOnly).finally(() => (this.#locating = undefined));
    return this.#locating;
  }

  async #locateOnce(readOnly: boolean): Promise<void> {
    const text = await this.redis.get(this.deployment.partitions);
    if (text === null && this.redis instanceof Cluster && !readOnly) return this.agreeOnPartitions();
    const stored = text === null ? null : parseStored(text, this.prefix, this.deployment.partitions);
    if (stored?.partitions === this.partitions) this.#adopt(tagsOf(stored, this.prefix));
    this.#located = true;
  }

  /**
   * A grouped message by a hash of its group (one partition per group keeps its cap and rate
   * exact, and a `last` key's scope is its group); a `last` message by a hash of its key (one
   * partition per key keeps coalescing and one run at a time); a message with the caller's own id by a hash of the id (a retry of the call meets
   * the first one there); others in turn.
   */
  partitionFor(call: CallRequest): number {
    if (this.partitions === 1) return 0;
    const q = call.queue!;
    if (q.group !== undefined) return hashOf(`group:${q.group}`) % this.partitions;
    if (q.policy === 'last') return hashOf(`${q.level}:${q.key}`) % this.partitions;
    if (q.id !== undefined) return hashOf(`id:${q.id}`) % this.partitions;
    this.turn = (this.turn + 1) % this.partitions;
    return this.turn;
  }

  /** A partition's share of the deployment-wide limits. */
  share<T extends { capacity: number; discardThreshold?: number }>(limits: T): T {
    if (this.partitions === 1) return limits;
    const shared = { ...limits, capacity: limits.capacity / this.partitions };
    if (limits.discardThreshold !== undefined) shared.discardThreshold = limits.discardThreshold / this.partitions;
    return shared;
  }

  async enqueue(call: CallRequest, limits: AdmissionLimits): Promise<{ id: string; outcome: EnqueueOutcome; replicas?: number }> {
    if (!this.#located) await this.locate();
    const partition = this.partitionFor(call);
    // While tracing: a PRODUCER span around the step, its context stored with the job.
    const span = tracingOn() ? startProducerSpan(context.active(), call.queue!.level, call.queue!.policy, call.queue!.id, partition) : undefined;
    let enqueued;
    try {
      enqueued = await this.#stores[partition].enqueue(call, this.share(limits), span && carrierOf(trace.setSpan(context.active(), span)));
    } catch (err) {
      if (span) endProducerSpan(span, 'failed', undefined, err as Error);
      throw err;
    }
    const { id, outcome, wakeIdle, replicas } = enqueued;
    if (span) endProducerSpan(span, outcome, id);
    // The job is queued: a failed wake-up must not turn that into an error for the caller (a
    // worker's next claim, within its 1 s block, finds the job anyway).
    if (wakeIdle) {
      await this.wakeIdle(call.queue!.level).catch((err: Error) =>
        log.warn({ event: 'wake_failed', err: { message: err.message } }, `could not wake an idle worker (${err.message}); the next claim finds the job`),
      );
    }
    return { id, outcome, replicas };
  }

  /**
   * Enters a new worker id in one partition (a worker holds an id of its own in each: a
   * partition's outage costs that partition's lease only), or, without `partition`, in every
   * partition; false when the id is already known there.
   */
  async register(workerId: string, leaseMs: number, partition?: number): Promise<boolean> {
    if (!this.#located) await this.locate();
    if (partition !== undefined) return this.#stores[partition].register(workerId, leaseMs);
    return (await Promise.all(this.#stores.map((s) => s.register(workerId, leaseMs)))).every(Boolean);
  }

  /** Renews the lease of a worker id in its partition; false when it had run out there (that id is dead). */
  async renewLease(workerId: string, leaseMs: number, partition = 0): Promise<boolean> {
    if (!this.#located) await this.locate();
    return this.#stores[partition].renewLease(workerId, leaseMs);
  }

  /** The keys of a partition (keys.ts), for reading them directly. */
  keysOf(partition: number): Keys {
    return this.#stores[partition].keys;
  }

  /** A worker's claim in one partition (Store.claim): settles sent along, the jobs handed to it, then new runs; 'lost' when its lease there had run out. */
  async claim(
    partition: number,
    workerId: string,
    n: number,
    level2Room: number,
    selection: SelectionOptions,
    leaseMs: number,
    idleRegistrationMs?: number,
    takesLevel1?: boolean,
    settles?: ClaimSettles,
  ): Promise<Claimed | 'lost'> {
    if (!this.#located) await this.locate();
    return this.#stores[partition].claim(workerId, n, level2Room, selection, leaseMs, idleRegistrationMs, takesLevel1, settles);
  }

  /** Acknowledges finished runs of one partition (Store.finish). */
  async finish(partition: number, workerId: string, acks: readonly Ack[], keepMs?: number): Promise<number | 'lost'> {
    if (!this.#located) await this.locate();
    return this.#stores[partition].finish(workerId, acks, keepMs);
  }

  /** Settles a failed run of one partition (Store.fail). */
  async fail(partition: number, workerId: string, token: number, plan: FailurePlan, deadMax: number): Promise<FailOutcome> {
    if (!this.#located) await this.locate();
    return this.#stores[partition].fail(workerId, token, plan, deadMax);
  }

  /** Hands a worker's runs in one partition back to their queues (Store.requeueWorker: expired, shutdown or orphans). */
  async requeueWorker(
    partition: number,
    workerId: string,
    mode: 'expired' | 'shutdown' | 'orphans',
    attempts: number,
    deadMax: number,
    held?: readonly number[],
  ): Promise<number> {
    if (!this.#located) await this.locate();
    return this.#stores[partition].requeueWorker(workerId, mode, attempts, deadMax, held);
  }

  /** The workers whose lease ran out in one partition (Store.expiredWorkers). */
  async expiredWorkers(partition: number, max?: number): Promise<string[]> {
    if (!this.#located) await this.locate();
    return this.#stores[partition].expiredWorkers(max);
  }

  /** Moves one partition's due retries back into their queues (Store.promoteDue). */
  async promoteDue(partition: number, deadMax: number, max?: number): Promise<number> {
    if (!this.#located) await this.locate();
    return this.#stores[partition].promoteDue(deadMax, max);
  }

  /** Forgets one partition's idle group rate limiters (Store.pruneLimiters). */
  async pruneLimiters(partition: number, cursor: string, idleMs: number): Promise<string> {
    if (!this.#located) await this.locate();
    return this.#stores[partition].pruneLimiters(cursor, idleMs);
  }

  /** Forgets one partition's kept finished jobs that are due (Store.pruneDone). */
  async pruneDone(partition: number, keepMs: number, keepMax: number, batch?: number): Promise<number> {
    if (!this.#located) await this.locate();
    return this.#stores[partition].pruneDone(keepMs, keepMax, batch);
  }

  /**
   * An idle worker's wait. One partition: until a job is handed to it (returned: already its
   * run) or a wake marker of the given levels appears (null), or the timeout (Store.waitForWork).
   * Several: on the deployment's wake keys (waitForWake), always null.
   */
  async waitForWork(blocking: RedisClient, workerId: string, levels: readonly Level[], timeoutSeconds: number): Promise<DeliveredRun | null> {
    if (!this.#located) await this.locate();
    if (this.partitions > 1) {
      await this.waitForWake(blocking, levels, timeoutSeconds);
      return null;
    }
    return this.#stores[0].waitForWork(blocking, workerId, levels, timeoutSeconds);
  }

  /** Several partitions: wakes an idle worker (they block on the deployment's wake keys). */
  wakeIdle(level: Level): Promise<number> {
    return runScript<number>(this.redis, 'wakeWorkers', this.wakeKeys, [level]);
  }

  /** Several partitions: blocks until a wake marker of the given levels appears, or the timeout. */
  async waitForWake(blocking: RedisClient, levels: readonly Level[], timeoutSeconds: number): Promise<void> {
    await blocking.blpop(...levels.map((l) => this.deployment.wake(l)), timeoutSeconds);
  }

  /**
   * Per partition and in total. A partition that does not answer (its master lost) is left out
   * of the total and marked, with the error, in its entry; only when none answers does this fail.
   */
  async stats(): Promise<{ total: QueueStats & { unavailablePartitions?: number[] }; partitions: PartitionStats[] }> {
    if (!this.#located) await this.locate();
    const { answers, unavailable } = await fromAnswering(this.#views, (v) => v.stats());
    const partitions: PartitionStats[] = answers.map((a, p) => a ?? { ...emptyStats(), unavailable: unavailable.find((u) => u.partition === p)!.error });
    const total: QueueStats & { unavailablePartitions?: number[] } = { ...sumStats(answers.filter((a): a is QueueStats => a !== undefined)) };
    if (unavailable.length > 0) total.unavailablePartitions = unavailable.map((u) => u.partition);
    return { total, partitions };
  }

  /** The gauges of the partitions that answer, summed; those that do not are listed. */
  async gauges(): Promise<QueueGauges & { unavailablePartitions?: number[] }> {
    if (!this.#located) await this.locate();
    const { answers, unavailable } = await fromAnswering(this.#stores, (s) => s.gauges());
    const all = answers.filter((g): g is QueueGauges => g !== undefined);
    const total: QueueGauges & { unavailablePartitions?: number[] } = all[0];
    if (unavailable.length > 0) total.unavailablePartitions = unavailable.map((u) => u.partition);
    for (const g of all.slice(1)) {
      for (const level of [1, 2] as const) {
        for (const policy of ['execute', 'last', 'discard'] as const) total.backlog[level][policy] += g.backlog[level][policy];
        const ages = [total.oldestAgeSeconds[level], g.oldestAgeSeconds[level]].filter((a): a is number => a !== null);
        total.oldestAgeSeconds[level] = ages.length > 0 ? Math.max(...ages) : null;
      }
      total.level2Active &&= g.level2Active;
      total.dead += g.dead;
      total.retriesWaiting += g.retriesWaiting;
      // Every worker holds a lease in every partition it reaches: the count is about the same in each.
      total.liveWorkers = Math.max(total.liveWorkers, g.liveWorkers);
    }
    return total;
  }

  /** The newest dead jobs of the whole deployment. */
  async listDead(limit: number): Promise<string[]> {
    if (!this.#located) await this.locate();
    const lists = await Promise.all(this.#views.map((v) => v.listDead(limit)));
    if (lists.length === 1) return lists[0];
    const failedAt = (entry: string): number => Number(/^\{"failedAt":(\d+)/.exec(entry)?.[1] ?? 0);
    return lists
      .flat()
      .sort((a, b) => failedAt(b) - failedAt(a))
      .slice(0, limit);
  }

  async requeueAllDead(): Promise<number> {
    if (!this.#located) await this.locate();
    return (await Promise.all(this.#stores.map((s) => s.requeueAllDead()))).reduce((a, b) => a + b, 0);
  }

  async requeueDead(id: string): Promise<'requeued' | 'unknown' | 'superseded'> {
    if (!this.#located) await this.locate();
    for (const store of this.#stores) {
      const outcome = await store.requeueDead(id);
      if (outcome !== 'unknown') return outcome;
    }
    return 'unknown';
  }

  /** Removes one dead job from whichever partition holds it. */
  async deleteDead(id: string): Promise<'deleted' | 'unknown'> {
    if (!this.#located) await this.locate();
    for (const store of this.#stores) if ((await store.deleteDead(id)) === 'deleted') return 'deleted';
    return 'unknown';
  }

  async purgeDead(): Promise<number> {
    if (!this.#located) await this.locate();
    return (await Promise.all(this.#stores.map((s) => s.purgeDead()))).reduce((a, b) => a + b, 0);
  }

  /**
   * On a Cluster: the slot and the master of each partition, and the masters that hold none
   * while others hold several (the hash tags land where CRC16 puts them; a different --prefix,
   * or moving a slot, spreads them). Null elsewhere, or before the slot map is known.
   */
  placement(): { partitions: Array<{ partition: number; slot: number; master: string }>; idleMasters: string[] } | null {
    if (!(this.redis instanceof Cluster) || this.redis.slots.length === 0) return null;
    const cluster = this.redis;
    const partitions = this.#stores.map((store, partition) => {
      const slot = calculateSlot(store.keys.tag);
      return { partition, slot, master: cluster.slots[slot]?.[0] ?? '?' };
    });
    const used = new Set(partitions.map((p) => p.master));
    const masters = new Set(cluster.slots.map((nodes) => nodes[0]).filter(Boolean));
    const crowded = partitions.length - used.size > 0;
    return { partitions, idleMasters: crowded ? [...masters].filter((m) => !used.has(m)) : [] };
  }

  /** Where a job is, in whichever partition knows it. */
  async lookup(id: string): Promise<JobView> {
    if (!this.#located) await this.locate();
    const found = await Promise.all(this.#stores.map((s) => s.lookup(id)));
    // A partition that found the job wins over one that gave up reading its lists.
    let p = found.findIndex((raw) => raw !== null && raw.where !== '');
    if (p === -1) p = found.findIndex((raw) => raw !== null);
    return viewOf(id, p === -1 ? null : found[p], this.partitions > 1 && p !== -1 ? p : undefined);
  }

  async deleteJob(id: string): Promise<DeleteOutcome> {
    if (!this.#located) await this.locate();
    let answer: DeleteOutcome = 'unknown';
    for (const store of this.#stores) {
      const outcome = await store.deleteJob(id);
      if (outcome === 'notWithinScan') answer = outcome;
      else if (outcome !== 'unknown') return outcome;
    }
    return answer;
  }

  /**
   * Pauses or resumes a level in every partition; true when that changed its state. A partition
   * that does not answer does not keep the others from changing; the call then fails naming it
   * (run it again once it answers). With several partitions a resume also wakes an idle worker:
   * they block on the deployment's wake keys, which a partition's script cannot reach.
   */
  async setPaused(level: Level, paused: boolean): Promise<boolean> {
    if (!this.#located) await this.locate();
    const results = await Promise.allSettled(this.#stores.map((s) => s.setPaused(level, paused)));
    const changed = results.some((r) => r.status === 'fulfilled' && r.value);
    if (!paused && changed && this.partitions > 1) await this.wakeIdle(level);
    const failed = results.flatMap((r, p) => (r.status === 'rejected' ? [{ partition: p, error: (r.reason as Error).message }] : []));
    if (failed.length === results.length) throw (results[0] as PromiseRejectedResult).reason;
    if (failed.length > 0) {
      throw new Error(
        `level ${level} ${paused ? 'paused' : 'resumed'} in every partition but ${failed.map((f) => f.partition).join(', ')}, ` +
          `which did not answer (${failed[0].error}): run it again once they do`,
      );
    }
    return changed;
  }

  /**
   * A level counts as paused when any partition that answers has it paused. With `partition`:
   * that partition's own (a cheap read; it fails when the partition does not answer).
   */
  async pausedLevels(partition?: number): Promise<Record<Level, boolean>> {
    if (!this.#located) await this.locate();
    if (partition !== undefined) return this.#views[partition].pausedLevels();
    const { answers } = await fromAnswering(this.#views, (v) => v.pausedLevels());
    const paused = { 1: false, 2: false };
    for (const a of answers) if (a) paused[1] ||= a[1];
    for (const a of answers) if (a) paused[2] ||= a[2];
    return paused;
  }

  /** The next waiting messages of a level (of one policy, or all three), next first, up to `limit` from each partition. */
  async peek(
    level: Level,
    policies: ReadonlyArray<'execute' | 'last' | 'discard'>,
    limit: number,
  ): Promise<Array<{ policy: string; partition: number; payload: string }>> {
    if (!this.#located) await this.locate();
    const out: Array<{ policy: string; partition: number; payload: string }> = [];
    for (const [partition, views] of this.#views.entries()) {
      for (const policy of policies) for (const payload of await views.peek(level, policy, limit)) out.push({ policy, partition, payload });
    }
    return out;
  }

  /**
   * Live workers and what each runs, over the partitions that answer. A worker process holds an
   * id of its own in each partition (worker/lease-keeper.ts: "<process id>/p<partition>.<generation>"):
   * one entry per process, under its process id, with its shortest lease.
   */
  async workers(): Promise<WorkerView[]> {
    if (!this.#located) await this.locate();
    const byId = new Map<string, WorkerView>();
    const { answers } = await fromAnswering(this.#views, (v) => v.workers());
    for (const views of answers) {
      for (const view of views ?? []) {
        const id = this.partitions > 1 ? view.id.replace(/\/p\d+\.\d+$/, '') : view.id;
        const known = byId.get(id);
        if (known) {
          known.running.push(...view.running);
          known.leaseLeftMs = Math.min(known.leaseLeftMs, view.leaseLeftMs);
        } else byId.set(id, { ...view, id, running: [...view.running] });
      }
    }
    return [...byId.values()];
  }
}

/**
 * The Store of each partition of a deployment: `{prefix}` alone, or `{prefix:0}` …
 * `{prefix:N-1}` (or the tags given). Queues holds its own; the checker reads the partitions with these.
 */
export function partitionStores(redis: RedisClient, prefix: string, partitions: number, tags = defaultTags(prefix, partitions)): Store[] {
  return partitions === 1 ? [new Store(redis, prefix)] : tags.map((tag, p) => new Store(redis, prefix, p, tag));
}

function hashOf(text: string): number {
  return createHash('sha1').update(text).digest().readUInt32BE(0);
}

/** A partition's stats, or what is known when it does not answer: zeros, and why. */
export type PartitionStats = QueueStats & { unavailable?: string };

/** How long a read of one partition may take before the others are reported without it. */
const PARTITION_READ_MS = 2000;

/**
 * One read of every partition, each on its own: the answers (undefined where a partition erred
 * or did not answer within PARTITION_READ_MS) and the partitions left out. Fails only when none
 * answers; with one partition, as the read itself does.
 */
async function fromAnswering<P, T>(
  parts: readonly P[],
  read: (part: P) => Promise<T>,
): Promise<{ answers: Array<T | undefined>; unavailable: Array<{ partition: number; error: string }> }> {
  if (parts.length === 1) return { answers: [await read(parts[0])], unavailable: [] };
  const results = await Promise.allSettled(
    parts.map((part, p) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`partition ${p} did not answer within ${PARTITION_READ_MS} ms`)), PARTITION_READ_MS);
      });
      return Promise.race([read(part), late]).finally(() => clearTimeout(timer));
    }),
  );
  if (results.every((r) => r.status === 'rejected')) throw (results[0] as PromiseRejectedResult).reason;
  return {
    answers: results.map((r) => (r.status === 'fulfilled' ? r.value : undefined)),
    unavailable: results.flatMap((r, partition) => (r.status === 'rejected' ? [{ partition, error: (r.reason as Error).message }] : [])),
  };
}

function emptyStats(): QueueStats {
  const names = ['L1:execute', 'L1:last', 'L1:discard', 'L2:execute', 'L2:last', 'L2:discard'];
  return {
    queues: Object.fromEntries(names.map((n) => [n, 0])),
    backlog: { L1: 0, L2: 0 },
    grouped: { L1: 0, L2: 0 },
    level2Active: true,
    paused: { 1: false, 2: false },
    inFlight: 0,
    workers: 0,
    idle: 0,
    delayed: 0,
    dead: 0,
    counters: {},
  };
}

function sumStats(parts: QueueStats[]): QueueStats {
  if (parts.length === 1) return parts[0];
  const total: QueueStats = {
    ...parts[0],
    queues: { ...parts[0].queues },
    backlog: { ...parts[0].backlog },
    grouped: { ...parts[0].grouped },
    counters: { ...parts[0].counters },
  };
  for (const s of parts.slice(1)) {
    for (const [name, n] of Object.entries(s.queues)) total.queues[name] = (total.queues[name] ?? 0) + n;
    total.backlog.L1 += s.backlog.L1;
    total.backlog.L2 += s.backlog.L2;
    total.grouped.L1 += s.grouped.L1;
    total.grouped.L2 += s.grouped.L2;
    total.level2Active &&= s.level2Active;
    total.paused = { 1: total.paused[1] || s.paused[1], 2: total.paused[2] || s.paused[2] };
    total.inFlight += s.inFlight;
    total.workers = Math.max(total.workers, s.workers);
    total.idle = Math.max(total.idle, s.idle);
    total.delayed += s.delayed;
    total.dead += s.dead;
    for (const [name, n] of Object.entries(s.counters)) total.counters[name] = (total.counters[name] ?? 0) + n;
  }
  return total;
}
