// Real Redis Sentinel and Redis Cluster deployments on loopback, from the redis-server binary
// (`redis-server --sentinel`, `--cluster-enabled yes`, `redis-cli --cluster create`): tests
// start them, kill their masters, and stop them.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { freePort } from '../../cli/free-port';

// Every server started here is killed when the test process ends, however it ends; a server is
// also unref'd, so that a suite whose teardown never ran (a hook that timed out) cannot keep
// the test process alive waiting for it.
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Kills every server this process started and has not closed yet (an afterAll safety net). */
export function killAllTopologies(): Promise<void> {
  return Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  ).then(() => undefined);
}

export function topologiesAvailable(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0;
}

interface Server {
  port: number;
  child: ChildProcess;
  /** SIGSTOPped: it neither answers nor fails (asking it would hang). */
  paused?: boolean;
}

function launch(dir: string, name: string, args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { cwd: dir, stdio: ['ignore', 'ignore', 'ignore'] });
  child.unref();
  children.add(child);
  child.once('exit', () => children.delete(child));
  void name;
  return child;
}

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function ask<T>(port: number, command: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 500,
    commandTimeout: 5000,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await command(r);
  } finally {
    r.disconnect();
  }
}

function kill(server: Server): Promise<void> {
  const c = server.child;
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  });
}

export interface SentinelSet {
  /** redis+sentinel://… for --redis */
  url: string;
  masterName: string;
  /** The port of the server that is master now, as the sentinels say. */
  masterPort(): Promise<number>;
  /** SIGKILLs the current master; resolves once the sentinels promoted the replica. */
  killMaster(): Promise<{ oldPort: number; newPort: number; failoverMs: number }>;
  /** Starts the servers killed so far again; the sentinels make them replicas of the master. */
  restartFormerMaster(): Promise<void>;
  close(): Promise<void>;
}

/** 1 master, 1 replica, 3 sentinels (quorum 2), failing over within about 2 s. */
export async function startSentinelSet(): Promise<SentinelSet> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sy-sentinel-'));
  const masterName = 'symaster';
  const servers: Server[] = [];
  const [masterPort, replicaPort] = [await freePort(), await freePort()];
  const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const serverArgs = (port: number): string[] => ['--port', String(port), '--dbfilename', `${port}.rdb`, ...common];
  servers.push({ port: masterPort, child: launch(dir, 'master', serverArgs(masterPort)) });
  servers.push({ port: replicaPort, child: launch(dir, 'replica', [...serverArgs(replicaPort), '--replicaof', '127.0.0.1', String(masterPort)]) });
  await until(async () => (await ask(replicaPort, (r) => r.info('replication'))).includes('master_link_status:up'), 10_000, 'the replica to sync');
  const sentinelPorts: number[] = [];
  const sentinels: Server[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const conf = path.join(dir, `sentinel-${i}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'),
    );
    sentinelPorts.push(port);
    sentinels.push({ port, child: launch(dir, `sentinel-${i}`, [conf, '--sentinel']) });
  }
  const masterNow = async (): Promise<number> =>
    Number((await ask(sentinelPorts[0], (r) => r.call('SENTINEL', 'get-master-addr-by-name', masterName) as Promise<string[]>))[1]);
  await until(
    async () => {
      for (const port of sentinelPorts) {
        const known = (await ask(port, (r) => r.call('SENTINEL', 'replicas', masterName) as Promise<unknown[]>)).length;
        const others = (await ask(port, (r) => r.call('SENTINEL', 'sentinels', masterName) as Promise<unknown[]>)).length;
        if (known < 1 || others < 2) return false;
      }
      return true;
    },
    20_000,
    'the sentinels to find the replica and each other',
  );
  return {
    url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${masterName}`,
    masterName,
    masterPort: masterNow,
    async killMaster() {
      const oldPort = await masterNow();
      const killedAt = Date.now();
      await kill(servers.find((s) => s.port === oldPort)!);
      await until(async () => (await masterNow()) !== oldPort, 30_000, 'the sentinels to promote the replica');
      const newPort = await masterNow();
      await until(async () => (await ask(newPort, (r) => r.info('replication'))).includes('role:master'), 10_000, 'the new master');
      return { oldPort, newPort, failoverMs: Date.now() - killedAt };
    },
    async restartFormerMaster() {
      const master = await masterNow();
      for (const s of servers) {
        if (s.child.exitCode === null && s.child.signalCode === null) continue;
        s.child = launch(dir, 'restarted', [...serverArgs(s.port), '--replicaof', '127.0.0.1', String(master)]);
        await until(async () => (await ask(s.port, (r) => r.info('replication'))).includes('master_link_status:up'), 20_000, 'the restarted server to sync');
      }
      await until(async () => (await ask(master, (r) => r.info('replication'))).includes('connected_slaves:1'), 20_000, 'the master to see its replica');
    },
    async close() {
      await Promise.all([...servers, ...sentinels].map(kill));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface LocalCluster {
  /** redis+cluster://… for --redis */
  url: string;
  ports: number[];
  /** The master serving `key`'s slot now. */
  masterFor(key: string): Promise<number>;
  /** Live replicas of the master on `port` (a master promoted by an earlier failover may have none). */
  replicasOf(port: number): Promise<number>;
  /** SIGKILLs the master serving `key`'s slot; resolves once its replica took over (fails at once when it has none). */
  killMasterFor(key: string): Promise<{ oldPort: number; newPort: number; failoverMs: number }>;
  /**
   * SIGSTOPs the master serving `key`'s slot: a shard lost without a word (it neither answers
   * nor closes its connections); resolves once the other masters have marked it failed.
   */
  pauseMasterFor(key: string): Promise<number>;
  /** SIGCONTs a paused master; resolves once every node sees the cluster ok again. */
  resumeMaster(port: number): Promise<void>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  /** Replicas per master (default 1): with 0 a lost master stays lost, no failover brings its slots back. */
  replicas?: 0 | 1;
  /** cluster-require-full-coverage (default yes): with no, the other masters serve on while one is lost. */
  fullCoverage?: boolean;
}

/** 3 masters with a replica each (or none), cluster-node-timeout 1 s. */
export async function startCluster(options: ClusterOptions = {}): Promise<LocalCluster> {
  const replicas = options.replicas ?? 1;
  const dir = mkdtempSync(path.join(tmpdir(), 'sy-cluster-'));
  const servers: Server[] = [];
  for (let i = 0; i < 3 * (1 + replicas); i++) {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes'];
    args.push('--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '1000', '--dbfilename', `d-${port}.rdb`);
    if (options.fullCoverage === false) args.push('--cluster-require-full-coverage', 'no');
    servers.push({ port, child: launch(dir, `node-${i}`, args) });
  }
  for (const s of servers) await until(async () => (await ask(s.port, (r) => r.ping())) === 'PONG', 10_000, `cluster node ${s.port}`);
  execFileSync('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], {
    stdio: 'ignore',
    timeout: 30_000,
  });
  const alive = (): Server[] => servers.filter((s) => s.child.exitCode === null && s.child.signalCode === null && !s.paused);
  const clusterOk = async (): Promise<boolean> => {
    for (const s of alive()) if (!(await ask(s.port, (r) => r.cluster('INFO') as Promise<string>)).includes('cluster_state:ok')) return false;
    return true;
  };
  await until(clusterOk, 30_000, 'the cluster to be ok');
  const masterFor = async (key: string): Promise<number> => {
    const s = alive()[0];
    const slot = await ask(s.port, (r) => r.cluster('KEYSLOT', key) as Promise<number>);
    const slots = (await ask(s.port, (r) => r.cluster('SLOTS'))) as unknown as Array<[number, number, [string, number]]>;
    const range = slots.find(([from, to]) => slot >= from && slot <= to)!;
    return Number(range[2][1]);
  };
  const replicasOf = async (port: number): Promise<number> => {
    const nodes = (await ask(alive()[0].port, (r) => r.cluster('NODES') as Promise<string>))
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    const master = nodes.find((n) => n[1].startsWith(`127.0.0.1:${port}@`));
    return master ? nodes.filter((n) => n[3] === master[0] && n[2].includes('slave') && !n[2].includes('fail')).length : 0;
  };
  // Every live replica reports its master link up: a replica that is still syncing cannot take over.
  await until(
    async () => {
      for (const s of alive()) {
        const info = await ask(s.port, (r) => r.info('replication'));
        if (info.includes('role:slave') && !info.includes('master_link_status:up')) return false;
      }
      return true;
    },
    30_000,
    'the replicas to sync',
  );
  return {
    url: `redis+cluster://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`,
    ports: servers.map((s) => s.port),
    masterFor,
    async pauseMasterFor(key) {
      const port = await masterFor(key);
      const server = servers.find((s) => s.port === port)!;
      server.paused = true;
      server.child.kill('SIGSTOP');
      const failed = async (): Promise<boolean> => {
        for (const s of alive()) if (!(await ask(s.port, (r) => r.cluster('NODES') as Promise<string>)).includes(`:${port}@`)) return false;
        for (const s of alive()) {
          const line = (await ask(s.port, (r) => r.cluster('NODES') as Promise<string>)).split('\n').find((l) => l.includes(`:${port}@`))!;
          if (!/\bfail\b/.test(line)) return false;
        }
        return true;
      };
      await until(failed, 15_000, `the other masters to mark ${port} failed`);
      return port;
    },
    async resumeMaster(port) {
      const server = servers.find((s) => s.port === port)!;
      server.child.kill('SIGCONT');
      server.paused = false;
      await until(clusterOk, 15_000, 'the cluster to be ok again');
    },
    replicasOf,
    async killMasterFor(key) {
      const oldPort = await masterFor(key);
      if ((await replicasOf(oldPort)) === 0) throw new Error(`the master of ${key} (${oldPort}) has no live replica to take over`);
      const killedAt = Date.now();
      await kill(servers.find((s) => s.port === oldPort)!);
      await until(async () => (await masterFor(key)) !== oldPort && (await clusterOk()), 30_000, 'the replica to take over the slot');
      return { oldPort, newPort: await masterFor(key), failoverMs: Date.now() - killedAt };
    },
    async close() {
      await Promise.all(servers.map(kill));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
