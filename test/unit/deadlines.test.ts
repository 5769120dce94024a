// The shared deadline sweep (shared/call/deadlines.ts): each run expires once, in due order,
// within a few ms of its deadline; a run removed in time never expires, and nothing stays behind.
import { Deadline, deadlines } from '../../shared/call/deadlines';

class Probe extends Deadline {
  expiredAt: number | undefined;
  constructor(
    readonly name: string,
    private readonly log: string[],
    private readonly then?: () => void,
  ) {
    super();
  }
  expire(): void {
    if (this.expiredAt !== undefined) throw new Error(`${this.name} expired twice`);
    this.expiredAt = performance.now();
    this.log.push(this.name);
    this.then?.();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('runs expire in due order, within a few ms of their deadline; removed ones never; nothing stays behind', async () => {
  const log: string[] = [];
  const started = performance.now();
  const probes = [80, 20, 50, 20, 120, 5].map((ms, i) => {
    const probe = new Probe(`${ms}#${i}`, log);
    deadlines.add(probe, ms);
    return { probe, ms };
  });
  expect(deadlines.size).toBe(6);
  // Ended before their deadline: the 50 ms run and the 120 ms run.
  expect(deadlines.remove(probes[2].probe)).toBe(true);
  expect(deadlines.remove(probes[4].probe)).toBe(true);
  expect(deadlines.remove(probes[4].probe)).toBe(false);
  await sleep(200);
  expect(log).toEqual(['5#5', '20#1', '20#3', '80#0']);
  for (const { probe, ms } of probes) {
    if (probe.expiredAt === undefined) continue;
    const late = probe.expiredAt - (started + ms);
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(50);
    // Expired: its end finds it gone.
    expect(deadlines.remove(probe)).toBe(false);
  }
  expect(deadlines.size).toBe(0);
});

test('an expiry may add and remove runs; an earlier run added later re-arms the sweep', async () => {
  const log: string[] = [];
  const late = new Probe('late', log);
  const added = new Probe('added', log);
  const first = new Probe('first', log, () => {
    deadlines.add(added, 10);
    deadlines.remove(late);
  });
  deadlines.add(late, 60);
  deadlines.add(first, 30);
  const earliest = new Probe('earliest', log);
  deadlines.add(earliest, 5);
  await sleep(100);
  expect(log).toEqual(['earliest', 'first', 'added']);
  expect(deadlines.size).toBe(0);
});

test('many runs added and removed at random keep the heap in due order', async () => {
  const log: string[] = [];
  let seed = 7;
  const random = (): number => (seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647;
  const live: Probe[] = [];
  for (let i = 0; i < 2000; i++) {
    if (live.length > 0 && random() < 0.4) {
      const [probe] = live.splice(Math.floor(random() * live.length), 1);
      expect(deadlines.remove(probe)).toBe(true);
      continue;
    }
    const ms = 10 + Math.floor(random() * 60);
    const probe = new Probe(String(i), log);
    deadlines.add(probe, ms);
    live.push(probe);
  }
  expect(deadlines.size).toBe(live.length);
  await sleep(150);
  expect(deadlines.size).toBe(0);
  // Every live run expired, in due order.
  const byName = new Map(live.map((probe) => [probe.name, probe]));
  expect(log.length).toBe(live.length);
  const dueTimes = log.map((name) => byName.get(name)!.at);
  expect(dueTimes).toEqual([...dueTimes].sort((x, y) => x - y));
});
