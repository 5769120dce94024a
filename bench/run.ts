// npm run bench [-- --only sync|async|wake|cluster|groups] [--quick]: every section side by side in one run,
// medians of interleaved rounds, written to docs-ready markdown on stdout and JSON in bench/results/.
// npm run bench -- --compare <git ref> [--rounds 3] [--jobs 20000] [--quick]: the regression gate
// (bench/compare.ts), the ref's build against the work tree's, into bench/results/compare-latest.*.
// npm run bench -- --tracing [--rounds 3] [--jobs 20000] [--quick]: the work tree without and with
// tracing (bench/tracing.ts), into bench/results/tracing-latest.*.
// npm run bench -- --only groups [--rounds 3] [--jobs 20000] [--base 395746d] [--base-root <built
// checkout>] [--quick]: tenant groups (bench/groups.ts), into bench/results/groups-latest.*; not part
// of the full run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { benchAsync, asyncTable, benchWake, wakeTable } from './async';
import { ensureH2load, loadAverage, ROOT, startRedisServer, versionOf } from './lib';
import Redis from 'ioredis';
import { benchCluster, clusterTable } from './cluster';
import { benchSync, syncTable } from './sync';
import { compareTable, runCompare } from './compare';
import { benchTracing } from './tracing';
import { BASE_REF, benchGroups, groupsTable } from './groups';

function write(name: string, json: unknown, text: string): void {
  mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(ROOT, 'bench', 'results', `${name}.json`), JSON.stringify(json, null, 2));
  writeFileSync(path.join(ROOT, 'bench', 'results', `${name}.md`), text + '\n');
  process.stdout.write(text + '\n');
}

async function compare(ref: string, quick: boolean): Promise<void> {
  const flag = (name: string): string | undefined => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
  if (!ref || ref.startsWith('--')) throw new Error('--compare needs a git ref (a commit, branch or tag)');
  const rounds = Number(flag('--rounds') ?? (quick ? 2 : 3));
  const jobs = Number(flag('--jobs') ?? (quick ? 10_000 : 20_000));
  if (!(rounds >= 1) || !(jobs >= 100)) throw new Error('--rounds must be ≥ 1 and --jobs ≥ 100');
  const results = await runCompare({ ref, rounds, jobs, requests: quick ? 20_000 : 60_000 });
  write('compare-latest', results, `### Regression gate: ${ref} against the work tree\n\n${compareTable(results)}`);
}

async function main(): Promise<void> {
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
  const quick = process.argv.includes('--quick');
  ensureH2load();
  if (process.argv.includes('--compare')) {
    await compare(process.argv[process.argv.indexOf('--compare') + 1] ?? '', quick);
    process.exit(0);
  }
  if (process.argv.includes('--tracing')) {
    const flag = (name: string): string | undefined => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
    const results = await benchTracing({
      rounds: Number(flag('--rounds') ?? (quick ? 2 : 3)),
      jobs: Number(flag('--jobs') ?? (quick ? 10_000 : 20_000)),
      requests: quick ? 20_000 : 60_000,
    });
    write('tracing-latest', results, `### Tracing: off (first column) against on, exporting every span (second column)\n\n${compareTable(results)}`);
    process.exit(0);
  }
  if (only === 'groups') {
    const flag = (name: string): string | undefined => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
    const rounds = Number(flag('--rounds') ?? (quick ? 1 : 3));
    const jobs = Number(flag('--jobs') ?? (quick ? 10_000 : 20_000));
    if (!(rounds >= 1) || !(jobs >= 1000)) throw new Error('--rounds must be ≥ 1 and --jobs ≥ 1000');
    const header = `date ${new Date().toISOString()}, node ${process.version}, ioredis ${versionOf('ioredis')}, bullmq ${versionOf('bullmq')}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'})`;
    const results = await benchGroups({
      rounds,
      jobs,
      baseRef: flag('--base') ?? BASE_REF,
      baseRoot: flag('--base-root'),
      memoryGroups: [10_000],
    });
    write('groups-latest', { header, ...results }, `### Tenant groups\n\n${header}\n\n${groupsTable(results)}`);
    process.exit(0);
  }
  const header = [
    `date ${new Date().toISOString()}, node ${process.version}, @grpc/grpc-js ${versionOf('@grpc/grpc-js')}, koa ${versionOf('koa')}, ioredis ${versionOf('ioredis')}, bullmq ${versionOf('bullmq')}, bee-queue ${versionOf('bee-queue')}, autocannon ${versionOf('autocannon')}`,
    `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average before the run: ${loadAverage()}`,
  ].join('\n');
  const sections: string[] = [header];
  const json: Record<string, unknown> = { header };
  if (!only || only === 'sync') {
    const sync = await benchSync({ rounds: quick ? 1 : 5, requests: quick ? 50_000 : 120_000, inFlight: 64 });
    json.sync = sync;
    sections.push('### Sync path\n\n' + syncTable(sync));
  }
  if (!only || only === 'async') {
    const results = await benchAsync({ rounds: quick ? 1 : 3, jobs: quick ? 20_000 : 50_000 });
    json.async = results;
    sections.push('### Async path\n\n' + asyncTable(results));
  }
  if (only === 'wake') {
    const server = await startRedisServer();
    const redis = new Redis(server.url);
    const wake = await benchWake(server.url, redis, { rounds: quick ? 1 : 3, samples: 300 });
    redis.disconnect();
    server.stop();
    json.wake = wake;
    sections.push('### Wake-up only\n\n' + wakeTable(wake));
  }
  if (!only || only === 'cluster') {
    const cluster = await benchCluster({ jobs: quick ? 10_000 : 30_000, rounds: quick ? 1 : 3 });
    json.cluster = cluster;
    sections.push('### Sentinel and Cluster\n\n' + clusterTable(cluster));
  }
  sections.push(`load average after the run: ${loadAverage()}`);
  write('latest', json, sections.join('\n\n'));
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
