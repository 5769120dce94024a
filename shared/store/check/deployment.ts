// Invariant 7 (docs/design.md, "Invariants the checker verifies"): the partitions. One SCAN of
// every key under the deployment's hash tags finds the keys no partition of this count reads,
// and, on the way, the worker hashes and inboxes of each partition (a worker that is no
// longer registered is found only this way).
import { parseStored, tagsOf } from '../placement';
import type { Queues } from '../queues';
import type { ProblemCode } from './codes';
import { shown, type Bytes } from './payload';
import { scanKeys } from './read';

export interface DeploymentFinding {
  code: ProblemCode;
  message: string;
  keys?: Bytes[];
  /** Re-reads what it rests on: true when it still holds. */
  confirm(): Promise<boolean>;
}

export interface DeploymentScan {
  /** Per partition: worker ids that have a hash or an inbox there. */
  workerKeys: Array<Set<Bytes>>;
  findings: DeploymentFinding[];
}

const globEscaped = (text: string): string => text.replace(/[*?[\]\\]/g, '\\$&');
const regexEscaped = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The deployment's own keys under the plain tag (partitions, wake keys): kept with N > 1. */
function deploymentKeyNames(queues: Queues): Set<string> {
  const d = queues.deployment;
  return new Set([d.partitions, d.wake(1), d.wake(2)]);
}

export async function scanDeployment(queues: Queues): Promise<DeploymentScan> {
  const { redis, prefix, partitions } = queues;
  const workerKeys = Array.from({ length: partitions }, () => new Set<Bytes>());
  const tagOf = new RegExp(`^\\{${regexEscaped(prefix)}(?::[^}]*)?\\}`);
  // The tag of each partition (stored with the count: placement.ts), and the plain one.
  const partitionOf = new Map(partitions === 1 ? [] : queues.tags.map((tag, p) => [tag, p]));
  const plainTag = `{${prefix}}`;
  const allowedPlain = deploymentKeyNames(queues);
  const stray = new Map<string, Bytes[]>();
  for await (const key of scanKeys(redis, `{${globEscaped(prefix)}*`)) {
    const m = tagOf.exec(key);
    if (!m) continue;
    const partition = m[0] === plainTag ? null : (partitionOf.get(m[0]) ?? -1);
    const used = partitions === 1 ? partition === null : partition !== null && partition >= 0;
    if (!used && !(partition === null && allowedPlain.has(key))) {
      const list = stray.get(m[0]) ?? [];
      list.push(key);
      stray.set(m[0], list);
      continue;
    }
    if (!used) continue;
    const tag = m[0];
    const worker = new RegExp(`^${regexEscaped(tag)}:worker:([\\s\\S]+?)(?::inbox)?$`).exec(key);
    if (worker) workerKeys[partition ?? 0].add(worker[1]);
  }
  const findings: DeploymentFinding[] = [];
  for (const [tag, keys] of stray) {
    findings.push({
      code: 'PARTITION_STRAY_KEYS',
      message: `${keys.length} key(s) under ${tag}, which a deployment of ${partitions} partition(s) does not read: ${keys.slice(0, 5).map(shown).join(', ')}${keys.length > 5 ? ', …' : ''}`,
      keys,
      confirm: async () => (await redis.exists(...keys.slice(0, 100).map((k) => Buffer.from(k, 'latin1')))) > 0,
    });
  }
  const stored = await redis.get(queues.deployment.partitions);
  // The count, and the tags it gives the partitions (the count alone: {prefix:p}), as checked.
  const disagrees = (value: string | null): boolean => {
    if (value === null) return partitions > 1;
    try {
      const read = parseStored(value, prefix, queues.deployment.partitions);
      return read.partitions !== partitions || tagsOf(read, prefix).join(' ') !== queues.tags.join(' ');
    } catch {
      return true;
    }
  };
  if (disagrees(stored)) {
    findings.push({
      code: 'PARTITION_MISMATCH',
      message: `${queues.deployment.partitions} is ${stored ?? 'missing'}, the deployment was checked with ${partitions} partition(s)`,
      confirm: async () => disagrees(await redis.get(queues.deployment.partitions)),
    });
  }
  return { workerKeys, findings };
}
