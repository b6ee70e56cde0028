/**
 * Exclusive async locks by key (a row of a chunk). A row's parity and
 * checksums are only consistent if one operation at a time changes it, and a
 * read must not see a row half-written (new data, old checksum), which it
 * would take for corruption and "repair" with stale bytes.
 *
 * Waiters are served in arrival order; a key with no holder and no waiter
 * takes no memory.
 */
export class KeyLock<K> {
  private readonly tails = new Map<K, Promise<void>>();

  /** Runs `fn` while holding the lock of `key`. */
  async with<T>(key: K, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous ? previous.then(() => mine) : mine;
    this.tails.set(key, tail);
    try {
      if (previous) await previous;
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Runs `fn` holding several keys, taken in a fixed order so two callers cannot deadlock. */
  async withAll<T>(keys: readonly K[], fn: () => Promise<T>, compare: (a: K, b: K) => number): Promise<T> {
    const sorted = [...new Set(keys)].sort(compare);
    const take = (i: number): Promise<T> => (i === sorted.length ? fn() : this.with(sorted[i]!, () => take(i + 1)));
    return take(0);
  }

  get heldKeys(): number {
    return this.tails.size;
  }
}
