// Invariants 2 and 6 (docs/design.md, "Invariants the checker verifies"), about workers and
// counters: runs and inboxes belong to registered workers whose lease holds (or ran out so
// recently that recovery is still due), every inbox entry is also its worker's run, the
// counters are whole numbers, the delayed counts add up and no run token is above {p}:runs.
import type { Level } from '../../levels';
import { shown, type Bytes } from './payload';
import { listChunks, readHash } from './read';
import type { PartitionScan } from './scan';
import type { Answer } from './state-script';

/** The registered workers and their leases, read before the runs. */
export async function readWorkers(scan: PartitionScan): Promise<void> {
  const { redis, keys } = scan.store;
  const flat = await redis.zrangeBuffer(keys.workers, 0, -1, 'WITHSCORES');
  for (let i = 0; i < flat.length; i += 2) scan.leases.set(flat[i].toString('latin1'), Number(flat[i + 1].toString()));
  for (const expiry of scan.leases.values()) if (expiry >= scan.now) scan.counts.workers += 1;
}

/** Runs and inboxes only for registered workers, recovered within the grace once their lease ran out. */
async function checkWorkerKeys(scan: PartitionScan): Promise<void> {
  const { keys } = scan.store;
  for (const worker of scan.workerKeys) {
    const expiry = scan.leases.get(worker);
    const overdue = expiry !== undefined && expiry + scan.recoveryGraceMs < scan.now;
    if (expiry !== undefined && expiry < scan.now && !overdue) scan.counts.recoveryPending += 1;
    if (expiry === undefined || overdue) {
      scan.suspect({
        code: 'WORKER_GONE_WITH_RUNS',
        message:
          expiry === undefined
            ? `${keys.workerJobs(worker)} (or its inbox) holds runs of worker ${shown(worker)}, which is not in ${keys.workers}: no recovery will ever hand them back`
            : `worker ${shown(worker)} still holds runs ${Math.round((scan.now - expiry) / 1000)} s after its lease ran out (recovery takes well under ${scan.recoveryGraceMs} ms while a worker runs)`,
        probes: [['worker', worker], ['now']],
        holds: ([state, now]: Answer[]) => {
          const [runs, inbox, score] = state as [number, number, Bytes];
          return (runs > 0 || inbox > 0) && (score === '' || Number(score) + scan.recoveryGraceMs < Number(now));
        },
        repair: ([state]) => ((state as Answer[])[2] === '' ? { action: 'adopt', args: [worker] } : null),
      });
    }
    for await (const chunk of listChunks(scan.store.redis, keys.inbox(worker))) {
      for (const entry of chunk) checkInboxEntry(scan, worker, entry);
      await scan.confirmPending();
    }
  }
}

/** A job handed to an idle worker is pushed to its inbox as "<token>:<payload>" and recorded in its hash. */
function checkInboxEntry(scan: PartitionScan, worker: Bytes, entry: Bytes): void {
  const m = /^(\d+):([\s\S]*)$/.exec(entry);
  const run = m ? scan.runs.get(m[1]) : undefined;
  if (m) scan.token(m[1], scan.store.keys.inbox(worker));
  if (m && run && run.worker === worker && run.payload === m[2]) return;
  scan.suspect({
    code: 'INBOX_ORPHANED',
    message: `${scan.store.keys.inbox(worker)} holds ${m ? `run ${m[1]}, which is not in ${scan.store.keys.workerJobs(worker)}` : `${shown(entry.slice(0, 80))}, not a handed run`}`,
    probes: [
      ['holds', 'inbox', worker, '', entry],
      ['hget', `worker:${worker}`, m ? m[1] : ''],
    ],
    holds: ([held, payload]) => Number(held) > 0 && (m === null || payload !== m[2]),
  });
}

/** Counters are whole numbers; the delayed counts (L<n>:delayed) match the delayed set. */
async function checkCounters(scan: PartitionScan): Promise<void> {
  const { redis, keys } = scan.store;
  const stats = await readHash(redis, keys.stats);
  for (const [name, value] of stats) {
    if (/^\d+$/.test(value)) continue;
    scan.suspect({
      code: 'COUNTER_INVALID',
      message: `${keys.stats} ${shown(name)} is ${shown(value)}`,
      probes: [['hget', 'stats', name]],
      holds: ([now]) => now === value,
    });
  }
  const stored = (level: Level): number => Number(stats.get(`L${level}:delayed`) ?? 0);
  if (stored(1) !== scan.delayedByLevel[1] || stored(2) !== scan.delayedByLevel[2]) {
    const counted = (level: Level): string => `L${level}:delayed ${stats.get(`L${level}:delayed`) ?? 'absent'} for ${scan.delayedByLevel[level]} waiting`;
    scan.suspect({
      code: 'COUNTER_MISMATCH',
      message: `${keys.stats} ${counted(1)}, ${counted(2)} in ${keys.delayed}`,
      probes: [['delayedByLevel'], ['hget', 'stats', 'L1:delayed'], ['hget', 'stats', 'L2:delayed']],
      holds: ([n, l1, l2]) => {
        const [n1, n2] = n as number[];
        return Number(l1 ?? 0) !== n1 || Number(l2 ?? 0) !== n2;
      },
      repair: () => ({ action: 'recountDelayed', args: [] }),
    });
  }
}

/** {p}:runs is at least every run token in use: the next token must be above them all. */
async function checkTokens(scan: PartitionScan): Promise<void> {
  const runs = await scan.store.redis.get(scan.store.keys.runs);
  const max = scan.maxToken;
  if (max.value === 0n || (runs !== null && /^\d+$/.test(runs) && BigInt(runs) >= max.value)) return;
  scan.suspect({
    code: 'TOKEN_BEHIND',
    message: `${scan.store.keys.runs} is ${runs ?? 'absent'} but run token ${max.value} is in use (${max.where})`,
    probes: [['get', 'runs']],
    holds: ([now]) => now === null || !/^\d+$/.test(String(now)) || BigInt(String(now)) < max.value,
    repair: () => ({ action: 'raiseRuns', args: [String(max.value)] }),
  });
}

/** After the runs and the index were read (they give the tokens in use). */
export async function checkWorkersAndCounters(scan: PartitionScan): Promise<void> {
  await checkWorkerKeys(scan);
  await checkCounters(scan);
  await checkTokens(scan);
  await scan.confirmPending();
}
