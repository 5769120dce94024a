// `switchyard check`: reads a deployment — every partition — and verifies every invariant of
// its stored state (docs/design.md, "Invariants the checker verifies"). It reads with plain
// chunked reads while the deployment runs, then confirms each suspected problem in one atomic
// read (checkState.lua) before it reports it, so a running deployment gives no false alarm.
// With `repair`, what is safe to repair is repaired by a script that re-checks the condition
// before it writes; everything else is left to the operator, with advice.
import { PROBLEMS, remedyOf, type ProblemCode } from './codes';
import { scanDeployment } from './deployment';
import { checkIndex, checkJobs } from './jobs';
import { checkGroups } from './groups';
import { readGroups } from './group-queues';
import { checkKeys, readKeyState } from './keys';
import { shown } from './payload';
import { noCounts, PartitionScan, type PartitionCounts } from './scan';
import { probe, repair } from './state-script';
import { checkWorkersAndCounters, readWorkers } from './workers';
import { partitionStores, type Queues } from '../queues';
import type { Store } from '../store';

export { PROBLEMS, type ProblemCode };

export interface CheckOptions {
  /** Repair what is safe to repair (see PROBLEMS): each repair re-checks its condition first. */
  repair?: boolean;
  /**
   * A worker whose lease ran out with runs still in its hash is recovered by any live worker
   * within a fraction of a second; it is a problem only when its lease ran out longer ago than
   * this (Redis time). Default: 32 s (the default lease, 30 s, and 2 s).
   */
  recoveryGraceMs?: number;
  /** The most problems listed per partition (the rest are counted in `unlisted`). Default 1,000. */
  maxProblems?: number;
}

export interface Problem {
  code: ProblemCode;
  /** The partition (0 in a deployment of one); null for the deployment as a whole. */
  partition: number | null;
  message: string;
  /** What --repair does about it, or what the operator can do. */
  remedy: string;
  repairable: boolean;
  ids?: string[];
  /** `last` keys or Redis keys involved, as text. */
  keys?: string[];
}

export interface CheckReport {
  /** Nothing is wrong (after the repairs, when asked). */
  ok: boolean;
  /** The problems found and not repaired. */
  problems: Problem[];
  /** The problems repaired. */
  repaired: Problem[];
  counts: PartitionCounts & { partitions: number; problems: number; unlisted: number };
}

const DEFAULT_GRACE_MS = 32_000;

async function redisNow(store: Store): Promise<number> {
  const [now] = await probe(store, [], [['now']]);
  return Number(now);
}

function problemOf(
  code: ProblemCode,
  partition: number | null,
  message: string,
  repairable: boolean,
  extra: { ids?: string[]; keys?: string[] } = {},
): Problem {
  return { code, partition, message, remedy: remedyOf(code, repairable), repairable, ...extra };
}

/** Reads one partition and returns what it suspects there. */
async function scanPartition(store: Store, partition: number, workerKeys: Set<string>, grace: number, max: number): Promise<PartitionScan> {
  const scan = new PartitionScan(store, partition, await redisNow(store), workerKeys, grace, max);
  await readWorkers(scan);
  await readKeyState(scan);
  await checkJobs(scan);
  const groups = await readGroups(scan);
  await checkIndex(scan);
  await checkGroups(scan, groups);
  checkKeys(scan);
  await scan.confirmPending();
  await checkWorkersAndCounters(scan);
  return scan;
}

/** Reports the confirmed problems of a partition; with `doRepair`, repairs those that can be. */
async function settle(scan: PartitionScan, doRepair: boolean, report: CheckReport): Promise<void> {
  for (const { suspect, answers } of scan.confirmed) {
    const fix = suspect.repair ? suspect.repair(answers) : null;
    const keys = suspect.keys?.map((k) => JSON.parse(shown(k)) as string);
    const problem = problemOf(suspect.code, scan.partition, suspect.message, fix !== null, { ids: suspect.ids, keys });
    if (doRepair && fix) {
      if (await repair(scan.store, scan.workerIds, fix.action, fix.args)) {
        report.repaired.push(problem);
        continue;
      }
      problem.message += ' (not repaired: it changed meanwhile; check again)';
    }
    report.problems.push(problem);
  }
}

/** Checks every partition of a deployment (and the deployment's own keys). */
export async function checkDeployment(queues: Queues, options: CheckOptions = {}): Promise<CheckReport> {
  const grace = options.recoveryGraceMs ?? DEFAULT_GRACE_MS;
  const max = options.maxProblems ?? 1000;
  const report: CheckReport = {
    ok: false,
    problems: [],
    repaired: [],
    counts: { partitions: queues.partitions, problems: 0, unlisted: 0, ...noCounts() },
  };
  await queues.locate(true);
  const deployment = await scanDeployment(queues);
  for (const finding of deployment.findings) {
    if (await finding.confirm())
      report.problems.push(
        problemOf(finding.code, null, finding.message, false, { keys: finding.keys?.slice(0, 20).map((k) => JSON.parse(shown(k)) as string) }),
      );
  }
  for (const [partition, store] of partitionStores(queues.redis, queues.prefix, queues.partitions, queues.tags).entries()) {
    const scan = await scanPartition(store, partition, deployment.workerKeys[partition], grace, max);
    await settle(scan, options.repair === true, report);
    for (const [name, n] of Object.entries(scan.counts) as Array<[keyof PartitionCounts, number]>) {
      // Every worker holds a lease in every partition: the same workers, counted once.
      report.counts[name] = name === 'workers' ? Math.max(report.counts[name], n) : report.counts[name] + n;
    }
    report.counts.unlisted += scan.dropped;
  }
  report.counts.problems = report.problems.length;
  report.ok = report.problems.length === 0 && report.counts.unlisted === 0;
  return report;
}

/** One line per problem: code, where, what, and what --repair does (or the advice). */
export function formatProblem(p: Problem, queues: Pick<Queues, 'keysOf'>): string {
  const where = p.partition === null ? 'deployment' : queues.keysOf(p.partition).tag;
  return `${p.code} ${where}: ${p.message}. ${p.remedy}`;
}

/** The report for people: the problems, the repairs, and a summary line. */
export function formatReport(report: CheckReport, queues: Pick<Queues, 'keysOf'>): string {
  const lines = [...report.problems.map((p) => formatProblem(p, queues)), ...report.repaired.map((p) => `repaired ${formatProblem(p, queues)}`)];
  const c = report.counts;
  const what =
    `${c.partitions} partition(s), ${c.waiting} waiting, ${c.running} running, ${c.delayed} delayed, ${c.dead} dead` +
    `${c.deadUnreadable ? ` (${c.deadUnreadable} unreadable)` : ''}, ${c.done} done kept, ${c.indexEntries} index entries, ` +
    `${c.groupLevels ? `${c.groupLevels} group queue(s) with messages, ` : ''}${c.workers} live worker(s)${c.recoveryPending ? `, ${c.recoveryPending} awaiting recovery` : ''}`;
  const verdict = report.ok
    ? report.repaired.length > 0
      ? `repaired ${report.repaired.length} problem(s); nothing else wrong`
      : 'no problems'
    : `${report.problems.length} problem(s)${c.unlisted ? ` and ${c.unlisted} more not listed` : ''}${report.repaired.length ? `, ${report.repaired.length} repaired` : ''}`;
  lines.push(`check: ${verdict} (${what})`);
  return lines.join('\n');
}
