// Prometheus metrics of a process: counters and histograms of calls and jobs (recorded on the
// hot path), the worker's running jobs, and on a gateway the queue gauges read from Redis.
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Level } from '../levels';
import type { QueueGauges } from '../store/store';
import { GROUPS_TOP_DEFAULT, summarizeGroups, type GroupsRead } from './groups';

type Labels = Record<string, string>;

/**
 * Counters and histograms for the per-call and per-job paths. prom-client hashes and validates
 * the label set on every inc/observe (about 1 µs, a few per cent of a sync call); here a label
 * set is resolved once into a recorder, and recording is an array increment. The registry
 * reads them at scrape time through the same get() shape as prom-client's own metrics.
 */
class LightMetric {
  readonly aggregator = 'sum';
  private readonly series = new Map<string, { labels: Labels; counts: Float64Array; sum: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly bounds: readonly number[] = [],
  ) {}

  protected seriesFor(labels: Labels): { counts: Float64Array; sum: number } {
    const id = JSON.stringify(labels);
    let entry = this.series.get(id);
    if (!entry) this.series.set(id, (entry = { labels, counts: new Float64Array(this.bounds.length + 1), sum: 0 }));
    return entry;
  }

  protected bucketOf(value: number): number {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    return i;
  }

  get(): {
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>;
  } {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }> = [];
    for (const { labels, counts, sum } of this.series.values()) {
      if (this.type === 'counter') {
        values.push({ labels, value: counts[0] });
        continue;
      }
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += counts[i];
        values.push({ labels: { ...labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      cumulative += counts[this.bounds.length];
      values.push({ labels: { ...labels, le: '+Inf' }, value: cumulative, metricName: `${this.name}_bucket` });
      values.push({ labels, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: cumulative, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }
}

export class LightCounter extends LightMetric {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  /** The recorder for one label set: keep it, call it per event. */
  recorder(labels: Labels): () => void {
    const entry = this.seriesFor(labels);
    return () => {
      entry.counts[0] += 1;
    };
  }
}

export class LightHistogram extends LightMetric {
  constructor(name: string, help: string, bounds: readonly number[]) {
    super(name, help, 'histogram', bounds);
  }
  recorder(labels: Labels): (value: number) => void {
    const entry = this.seriesFor(labels);
    return (value) => {
      entry.counts[this.bucketOf(value)] += 1;
      entry.sum += value;
    };
  }
}

export class Metrics {
  readonly registry = new Registry();
  readonly calls = new LightCounter('switchyard_calls_total', 'Calls answered by the gateway');
  readonly callSeconds = new LightHistogram(
    'switchyard_call_seconds',
    'Time to answer a call',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  readonly jobs = new LightCounter('switchyard_jobs_total', 'Jobs run by this worker, by outcome');
  readonly jobSeconds = new LightHistogram('switchyard_job_seconds', 'Run time of a job', [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30]);
  /** The worker's running jobs, read at scrape time (a gauge set on every start and end cost the worker per job). */
  runningNow: () => number = () => 0;
  readonly running: Gauge = new Gauge({
    name: 'switchyard_jobs_running',
    help: 'Jobs running in this worker',
    registers: [this.registry],
    collect: () => this.running.set(this.runningNow()),
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const metric of [this.calls, this.callSeconds, this.jobs, this.jobSeconds]) {
      this.registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
    }
  }
}

/** Memoises one recorder per label combination, looked up by a cheap string key. */
export function recorders<R>(make: (key: string) => R): (key: string) => R {
  const cache = new Map<string, R>();
  return (key) => {
    let r = cache.get(key);
    if (r === undefined) cache.set(key, (r = make(key)));
    return r;
  };
}

/** How long one read of the queue gauges serves scrapes (several Prometheus servers, dashboards). */
const GAUGES_CACHE_MS = 1000;

/**
 * The queue gauges, read from Redis once per scrape in one round trip (a read-only script),
 * and shared by every gauge of that scrape.
 */
export function registerQueueGauges(metrics: Metrics, readGauges: () => Promise<QueueGauges>): void {
  let cached: { at: number; value: Promise<QueueGauges> } | undefined;
  const current = (): Promise<QueueGauges> => {
    if (!cached || Date.now() - cached.at > GAUGES_CACHE_MS) {
      const value = readGauges();
      cached = { at: Date.now(), value };
      // A failed read is not kept: the next scrape tries again.
      value.catch(() => (cached = undefined));
    }
    return cached.value;
  };
  const registers = [metrics.registry];
  const levels: Level[] = [1, 2];
  // Redis away: the gauges are left out of the scrape rather than failing it (or showing old values).
  const read = async (gauge: { reset(): void }): Promise<QueueGauges | null> => {
    gauge.reset();
    return current().catch(() => null);
  };
  new Gauge({
    name: 'switchyard_queue_backlog',
    help: 'Messages waiting, per level and policy',
    labelNames: ['level', 'policy'],
    registers,
    async collect() {
      const g = await read(this);
      if (g) for (const level of levels) for (const policy of ['execute', 'last', 'discard'] as const) this.set({ level, policy }, g.backlog[level][policy]);
    },
  });
  new Gauge({
    name: 'switchyard_queue_oldest_age_seconds',
    help: 'Age of the oldest waiting message per level (0 when none waits)',
    labelNames: ['level'],
    registers,
    async collect() {
      const g = await read(this);
      if (g) for (const level of levels) this.set({ level }, g.oldestAgeSeconds[level] ?? 0);
    },
  });
  const single = (name: string, help: string, pick: (g: QueueGauges) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const g = await read(this);
        if (g) this.set(pick(g));
      },
    });
  };
  single('switchyard_level2_active', 'Level 2 accepting messages (1) or refusing them (0)', (g) => (g.level2Active ? 1 : 0));
  single('switchyard_dead_jobs', 'Jobs in the dead-letter list', (g) => g.dead);
  single('switchyard_workers_live', 'Workers whose lease holds', (g) => g.liveWorkers);
  single('switchyard_retries_waiting', 'Failed jobs waiting for their retry', (g) => g.retriesWaiting);
}

/** The label of the groups beyond the top N, summed: `*` is in no group name, so it names none of them. */
export const OTHER_GROUPS_LABEL = '*other';

/**
 * The tenant groups' gauges: backlog, runs and held back, for the `top` groups by backlog, the
 * rest summed under the group label `*other`, so the series stay bounded however many groups
 * there are; and how many groups are active, and how many were not read (the read's bound).
 */
export function registerGroupGauges(metrics: Metrics, readGroups: () => Promise<GroupsRead>, top = GROUPS_TOP_DEFAULT): void {
  let cached: { at: number; value: Promise<GroupsRead> } | undefined;
  const current = (): Promise<GroupsRead> => {
    if (!cached || Date.now() - cached.at > GAUGES_CACHE_MS) {
      const value = readGroups();
      cached = { at: Date.now(), value };
      value.catch(() => (cached = undefined));
    }
    return cached.value;
  };
  const registers = [metrics.registry];
  const read = async (gauge: { reset(): void }): Promise<ReturnType<typeof summarizeGroups> | null> => {
    gauge.reset();
    return current()
      .then((r) => summarizeGroups(r, top))
      .catch(() => null);
  };
  const levels: Level[] = [1, 2];
  new Gauge({
    name: 'switchyard_group_backlog',
    help: `Messages waiting in a tenant group's queues, per level (the ${top} largest groups; the rest summed as group="${OTHER_GROUPS_LABEL}")`,
    labelNames: ['group', 'level'],
    registers,
    async collect() {
      const s = await read(this);
      if (!s) return;
      for (const g of s.top) for (const level of levels) this.set({ group: g.name, level }, g.backlog[level]);
      if (s.other) for (const level of levels) this.set({ group: OTHER_GROUPS_LABEL, level }, s.other.backlog[level]);
    },
  });
  new Gauge({
    name: 'switchyard_group_running',
    help: `Runs of a tenant group now (the ${top} largest groups by backlog; the rest summed as group="${OTHER_GROUPS_LABEL}")`,
    labelNames: ['group'],
    registers,
    async collect() {
      const s = await read(this);
      if (!s) return;
      for (const g of s.top) this.set({ group: g.name }, g.running);
      if (s.other) this.set({ group: OTHER_GROUPS_LABEL }, s.other.running);
    },
  });
  new Gauge({
    name: 'switchyard_group_limited',
    help: `1 while a tenant group is held back by its cap or its rate (for group="${OTHER_GROUPS_LABEL}": how many of the rest are)`,
    labelNames: ['group'],
    registers,
    async collect() {
      const s = await read(this);
      if (!s) return;
      for (const g of s.top) this.set({ group: g.name }, g.limited ? 1 : 0);
      if (s.other) this.set({ group: OTHER_GROUPS_LABEL }, s.other.limited);
    },
  });
  new Gauge({
    name: 'switchyard_groups_active',
    help: 'Tenant groups with something in line or running',
    registers,
    async collect() {
      const s = await read(this);
      if (s) this.set(s.active);
    },
  });
  new Gauge({
    name: 'switchyard_groups_unread',
    help: 'Active tenant groups not read for these gauges (more than the read bound per partition): the group figures leave them out',
    registers,
    async collect() {
      const s = await read(this);
      if (s) this.set(s.unread);
    },
  });
}
