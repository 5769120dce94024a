// Beyond one Redis, measured on a local Redis Cluster (3 masters, 3 replicas) and a master with
// one replica:
//   (a) enqueue and drain with --partitions 1 (every key in one slot: one master works) and 3
//       (one partition per master), and where the Redis CPU goes: per master, per job, from
//       INFO commandstats (time inside commands) and INFO cpu (the whole process);
//   (b) --replicas-ack 1 against 0: async calls/s and latency through the gateway.
// Two cores here, so wall throughput cannot show shards adding up; the CPU per shard does.
import calculateSlot from 'cluster-key-slot';
import Redis from 'ioredis';
import { parseParams } from '../shared/call/params';
import { Queues } from '../shared/store/queues';
import { createRedis, type RedisClient } from '../shared/store/redis';
import { startCluster, startSentinelSet } from '../test/helpers/redis-topologies';
import { h2load, median, sleep, startGateway, startNode, type LoadResult } from './lib';

const PARAMS = JSON.stringify({
  url: '/noop',
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  content: { a: 1 },
  reply: false,
  queue_detail: { level: 1, limit_policy: 'execute' },
});

interface NodeUse {
  /** µs inside commands (INFO commandstats), and CPU of the whole process (INFO cpu), in µs. */
  commandUs: number;
  cpuUs: number;
}

export interface PartitionRun {
  partitions: number;
  deployments: number;
  enqueueRate: number;
  drainRate: number;
  /** Per master: µs per job, enqueue and drain together. */
  perMaster: Array<{ port: number; commandUsPerJob: number; cpuUsPerJob: number }>;
}

export interface ClusterResults {
  jobs: number;
  runs: PartitionRun[];
  replicasAck: Record<'0' | '1', LoadResult[]>;
}

async function nodeUse(redis: Redis): Promise<NodeUse> {
  // Commands a script runs are counted again under their own names: scripts' time covers them.
  const stats = await redis.info('commandstats');
  let commandUs = 0;
  for (const m of stats.matchAll(/cmdstat_(evalsha|eval|blpop):calls=\d+,usec=(\d+)/g)) commandUs += Number(m[2]);
  const cpu = await redis.info('cpu');
  const seconds = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(cpu)![1]);
  return { commandUs, cpuUs: (seconds('used_cpu_sys') + seconds('used_cpu_user')) * 1e6 };
}

async function waiting(queues: Queues): Promise<number> {
  const { total } = await queues.stats();
  return total.backlog.L1 + total.inFlight;
}

/** A prefix whose partition tags land on as many different masters as there are partitions (CRC16 decides). */
function spreadPrefix(base: string, partitions: number, masterOfSlot: (slot: number) => number): string {
  for (let i = 0; ; i++) {
    const prefix = `${base}-${i}`;
    const tags = partitions === 1 ? [`{${prefix}}`] : Array.from({ length: partitions }, (_, p) => `{${prefix}:${p}}`);
    if (new Set(tags.map((tag) => masterOfSlot(calculateSlot(tag)))).size === partitions) return prefix;
  }
}

/**
 * One run: `deployments` deployments of `partitions` partitions each (one deployment of three
 * partitions, or, as a control, three deployments of one partition side by side, each on its
 * own master: the same Redis processes busy at once, without partitioning), 3 worker processes.
 */
async function partitionRun(
  url: string,
  masters: Map<number, Redis>,
  masterOfSlot: (slot: number) => number,
  layout: { partitions: number; deployments: number },
  jobs: number,
  round: number,
): Promise<PartitionRun> {
  const client: RedisClient = createRedis(url, 'gateway');
  await client.connect();
  const used = new Set<number>();
  const deployments: Array<{ prefix: string; queues: Queues }> = [];
  for (let d = 0; d < layout.deployments; d++) {
    // The control's deployments each on a master of its own.
    let prefix = spreadPrefix(`bench-p${layout.partitions}x${layout.deployments}-${round}-${d}`, layout.partitions, masterOfSlot);
    for (let i = 0; layout.deployments > 1 && used.has(masterOfSlot(calculateSlot(`{${prefix}}`))); i++) prefix = `${prefix}${i}`;
    used.add(masterOfSlot(calculateSlot(`{${prefix}}`)));
    const queues = new Queues(client, prefix, layout.partitions);
    await queues.agreeOnPartitions();
    deployments.push({ prefix, queues });
  }
  const request = parseParams(PARAMS, { maxParamsBytes: 1 << 20, maxBodyBytes: 1 << 20 });
  const limits = { capacity: 1e9, discardThreshold: 1e9 };
  const before = new Map(await Promise.all([...masters].map(async ([port, r]) => [port, await nodeUse(r)] as const)));

  let t = performance.now();
  for (let i = 0; i < jobs; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, jobs - i) }, (_, j) => deployments[(i + j) % deployments.length].queues.enqueue(request, limits)));
  }
  const enqueueRate = jobs / ((performance.now() - t) / 1000);

  const workers = await Promise.all(
    [0, 1, 2].map((w) => {
      const { prefix } = deployments[w % deployments.length];
      const flags = [
        '--app',
        'dist/bench/bench-app.js',
        '--redis',
        url,
        '--prefix',
        prefix,
        '--partitions',
        String(layout.partitions),
        '--admin-port',
        '0',
        '--concurrency',
        '50',
      ];
      return startNode(['bin/switchyard.js', 'worker', ...flags], 'worker ready');
    }),
  );
  t = performance.now();
  for (;;) {
    const left = await Promise.all(deployments.map((d) => waiting(d.queues)));
    if (left.every((n) => n === 0)) break;
    await sleep(20);
  }
  const drainRate = jobs / ((performance.now() - t) / 1000);
  await Promise.all(workers.map((w) => w.stop()));

  const perMaster: PartitionRun['perMaster'] = [];
  for (const [port, r] of masters) {
    const after = await nodeUse(r);
    perMaster.push({
      port,
      commandUsPerJob: (after.commandUs - before.get(port)!.commandUs) / jobs,
      cpuUsPerJob: (after.cpuUs - before.get(port)!.cpuUs) / jobs,
    });
  }
  client.disconnect();
  return { partitions: layout.partitions, deployments: layout.deployments, enqueueRate, drainRate, perMaster };
}

export async function benchCluster(options: { jobs: number; rounds: number }): Promise<ClusterResults> {
  const runs: PartitionRun[] = [];
  const cluster = await startCluster();
  try {
    const probe = new Redis(cluster.ports[0], '127.0.0.1');
    const nodes = ((await probe.cluster('NODES')) as string).trim().split('\n');
    probe.disconnect();
    const ranges = nodes
      .filter((line) => line.includes('master'))
      .map((line) => {
        const [from, to] = line.trim().split(' ').pop()!.split('-').map(Number);
        return { port: Number(/:(\d+)@/.exec(line)![1]), from, to };
      });
    const masterOfSlot = (slot: number): number => ranges.find((r) => slot >= r.from && slot <= r.to)!.port;
    const masters = new Map(ranges.map(({ port }) => [port, new Redis(port, '127.0.0.1')] as const));
    const layouts = [
      { partitions: 1, deployments: 1 },
      { partitions: 3, deployments: 1 },
      { partitions: 1, deployments: 3 },
    ];
    for (let round = 0; round < options.rounds; round++) {
      for (const layout of round % 2 === 0 ? layouts : [...layouts].reverse())
        runs.push(await partitionRun(cluster.url, masters, masterOfSlot, layout, options.jobs, round));
    }
    for (const r of masters.values()) r.disconnect();
  } finally {
    await cluster.close();
  }

  // Durable enqueue: a master with one replica (the Sentinel set), through the gateway.
  const replicasAck: ClusterResults['replicasAck'] = { '0': [], '1': [] };
  const set = await startSentinelSet();
  try {
    const masterUrl = `redis://127.0.0.1:${await set.masterPort()}`;
    for (let round = 0; round < options.rounds; round++) {
      for (const ack of round % 2 === 0 ? (['0', '1'] as const) : (['1', '0'] as const)) {
        const gateway = await startGateway({
          app: 'dist/bench/bench-app.js',
          redis: masterUrl,
          prefix: `ack-${ack}-${round}`,
          flags: ['--replicas-ack', ack, '--replicas-timeout', '1s'],
        });
        replicasAck[ack].push(h2load(Number(gateway.fields.port), PARAMS, { requests: 20_000, clients: 4, streams: 16 }));
        await gateway.stop();
      }
    }
  } finally {
    await set.close();
  }
  return { jobs: options.jobs, runs, replicasAck };
}

export function clusterTable(r: ClusterResults): string {
  const lines = [
    `${r.jobs} jobs per run, enqueued from one client process (500 in flight), drained by 3 worker processes at concurrency 50, with a --prefix whose partitions land on different masters; Redis time per job from each master's INFO commandstats (time inside scripts) and INFO cpu (the whole process, replication and cluster bus included). "1 × 3" is the control: three deployments of one partition side by side, one per master — the same three Redis processes busy at once on this machine's two cores, without partitioning.`,
    '',
    '| layout | enqueue jobs/s | drain jobs/s | Redis µs per job in scripts, per master | total | Redis CPU µs per job (process), per master | total |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const run of r.runs) {
    const cmd = run.perMaster.map((m) => m.commandUsPerJob);
    const cpu = run.perMaster.map((m) => m.cpuUsPerJob);
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    lines.push(
      `| ${run.deployments > 1 ? `1 × ${run.deployments}` : `${run.partitions} partition(s)`} | ${run.enqueueRate.toFixed(0)} | ${run.drainRate.toFixed(0)} | ${cmd.map((x) => x.toFixed(1)).join(' / ')} | ${sum(cmd).toFixed(1)} | ${cpu.map((x) => x.toFixed(1)).join(' / ')} | ${sum(cpu).toFixed(1)} |`,
    );
  }
  const totals = (p: number, pick: (m: PartitionRun['perMaster'][number]) => number, deployments = 1): number =>
    median(r.runs.filter((x) => x.partitions === p && x.deployments === deployments).map((x) => x.perMaster.reduce((a, m) => a + pick(m), 0)));
  const three = r.runs.filter((x) => x.partitions === 3);
  const spread = three.map((x) => {
    const cmd = x.perMaster.map((m) => m.commandUsPerJob);
    const mean = cmd.reduce((a, b) => a + b, 0) / cmd.length;
    return Math.max(...cmd.map((c) => Math.abs(c - mean) / mean));
  });
  lines.push(
    '',
    `Median total Redis time inside scripts per job: ${totals(1, (m) => m.commandUsPerJob).toFixed(1)} µs with 1 partition, ${totals(3, (m) => m.commandUsPerJob).toFixed(1)} µs with 3 ` +
      `(${((totals(3, (m) => m.commandUsPerJob) / totals(1, (m) => m.commandUsPerJob) - 1) * 100).toFixed(0)} %); whole-process CPU ${totals(1, (m) => m.cpuUsPerJob).toFixed(1)} vs ${totals(3, (m) => m.cpuUsPerJob).toFixed(1)} µs. ` +
      `With 3 partitions each master's share is within ±${(Math.max(...spread) * 100).toFixed(0)} % of the mean (largest deviation over the runs). ` +
      `Control, three one-partition deployments side by side: ${totals(1, (m) => m.commandUsPerJob, 3).toFixed(1)} µs in scripts, ${totals(1, (m) => m.cpuUsPerJob, 3).toFixed(1)} µs whole-process CPU per job.`,
    '',
    '| --replicas-ack | calls/s (median) | p50 ms | p99 ms | rounds |',
    '|---|---|---|---|---|',
  );
  for (const ack of ['0', '1'] as const) {
    const rows = r.replicasAck[ack];
    lines.push(
      `| ${ack} | ${median(rows.map((x) => x.rps)).toFixed(0)} | ${median(rows.map((x) => x.p50ms)).toFixed(2)} | ${median(rows.map((x) => x.p99ms)).toFixed(2)} | ${rows.map((x) => x.rps.toFixed(0)).join(', ')} |`,
    );
  }
  return lines.join('\n');
}
