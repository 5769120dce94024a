// The deadlines of the runs in progress, swept by one timer: a min-heap by due time and a
// single unref'd timer armed for the earliest. A run adds itself when it starts and removes
// itself when it ends, so nothing of an ended run stays behind; a timer per run cost every
// call a Timeout object, its async-hook set-up and a clearTimeout.

/** A run with a deadline: `expire` is called once, when `at` (performance.now() ms) has passed, unless removed before. */
export abstract class Deadline {
  /** Due time, in performance.now() milliseconds. */
  at = 0;
  /** Its place in the heap; -1 when not in it (expired, removed, or never added). */
  slot = -1;
  abstract expire(): void;
}

/** setTimeout's longest delay; a later deadline is re-armed when the timer fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

class DeadlineSweep {
  private readonly heap: Deadline[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (Infinity: none armed). */
  private armedAt = Infinity;
  private readonly onTimer = (): void => this.sweep();

  /** Due `ms` from now (0 when `ms` is not a positive number: due at once, as setTimeout would run it). */
  add(entry: Deadline, ms: number): void {
    entry.at = performance.now() + (ms > 0 ? ms : 0);
    const heap = this.heap;
    entry.slot = heap.length;
    heap.push(entry);
    this.up(entry.slot);
    if (entry.at < this.armedAt) this.arm(entry.at);
  }

  /** Takes the entry out; false when it is not in (it expired already). */
  remove(entry: Deadline): boolean {
    const slot = entry.slot;
    if (slot < 0) return false;
    entry.slot = -1;
    const heap = this.heap;
    const last = heap.pop()!;
    if (slot < heap.length) {
      heap[slot] = last;
      last.slot = slot;
      this.down(slot);
      this.up(last.slot);
    }
    return true;
  }

  /** Entries in the heap (for tests). */
  get size(): number {
    return this.heap.length;
  }

  /**
   * The timer stays armed when the heap empties: it fires once, finds nothing and stops. Clearing
   * it would cost a caller sending one call at a time a new timer per call again.
   */
  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(this.onTimer, Math.min(MAX_DELAY_MS, Math.max(1, Math.ceil(at - performance.now()))));
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const heap = this.heap;
    try {
      const now = performance.now();
      // An expiry may add or remove entries (a route's abort listener runs at once): the top is read again each time.
      while (heap.length > 0 && heap[0].at <= now) {
        const due = heap[0];
        this.remove(due);
        due.expire();
      }
    } finally {
      // Also when an expiry threw: the rest stay due.
      if (heap.length > 0 && heap[0].at < this.armedAt) this.arm(heap[0].at);
    }
  }

  private up(slot: number): void {
    const heap = this.heap;
    const entry = heap[slot];
    while (slot > 0) {
      const parentSlot = (slot - 1) >> 1;
      const parent = heap[parentSlot];
      if (parent.at <= entry.at) break;
      heap[slot] = parent;
      parent.slot = slot;
      slot = parentSlot;
    }
    heap[slot] = entry;
    entry.slot = slot;
  }

  private down(slot: number): void {
    const heap = this.heap;
    const entry = heap[slot];
    const n = heap.length;
    for (;;) {
      let child = 2 * slot + 1;
      if (child >= n) break;
      if (child + 1 < n && heap[child + 1].at < heap[child].at) child++;
      if (heap[child].at >= entry.at) break;
      heap[slot] = heap[child];
      heap[slot].slot = slot;
      slot = child;
    }
    heap[slot] = entry;
    entry.slot = slot;
  }
}

/** The process's one sweep: every dispatched run with a deadline (sync calls in the gateway, jobs in the worker). */
export const deadlines = new DeadlineSweep();
