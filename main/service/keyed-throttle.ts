/**
 * Rate-limits a stream of updates per key: the first update of a quiet key
 * goes out at once, later ones within the interval are folded into one that
 * goes out when the interval ends, carrying the latest value. So a member
 * whose error counters climb by thousands a second costs clients at most
 * 1000 / intervalMs events a second, and the last count is never lost.
 */
export class KeyedThrottle<T> {
  private readonly lastSent = new Map<string, number>();
  private readonly pending = new Map<string, { value: T; timer: NodeJS.Timeout }>();

  constructor(
    private readonly intervalMs: number,
    private readonly send: (key: string, value: T) => void,
  ) {}

  push(key: string, value: T): void {
    const waiting = this.pending.get(key);
    if (waiting) {
      waiting.value = value;
      return;
    }
    const now = performance.now();
    const due = (this.lastSent.get(key) ?? -Infinity) + this.intervalMs;
    if (now >= due) {
      this.emit(key, value, now);
      return;
    }
    const timer = setTimeout(() => {
      const entry = this.pending.get(key);
      this.pending.delete(key);
      if (entry) this.emit(key, entry.value, performance.now());
    }, due - now);
    timer.unref();
    this.pending.set(key, { value, timer });
  }

  /** Drops the pending update of one key, whose stream has ended (a late one would be stale). */
  forget(key: string): void {
    const entry = this.pending.get(key);
    if (entry) clearTimeout(entry.timer);
    this.pending.delete(key);
    this.lastSent.delete(key);
  }

  /** Drops every pending update (shutdown). */
  clear(): void {
    for (const entry of this.pending.values()) clearTimeout(entry.timer);
    this.pending.clear();
    this.lastSent.clear();
  }

  private emit(key: string, value: T, now: number): void {
    this.lastSent.set(key, now);
    this.send(key, value);
  }
}
