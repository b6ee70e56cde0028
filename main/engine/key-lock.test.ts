import { describe, expect, it } from 'vitest';
import { KeyLock } from './key-lock.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('KeyLock', () => {
  it('runs holders of one key one at a time, in arrival order', async () => {
    const lock = new KeyLock<number>();
    const log: string[] = [];
    const job = (name: string) =>
      lock.with(1, async () => {
        log.push(`${name}+`);
        await tick();
        log.push(`${name}-`);
      });
    await Promise.all([job('a'), job('b'), job('c')]);
    expect(log).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
    expect(lock.heldKeys).toBe(0);
  });

  it('lets different keys run at once', async () => {
    const lock = new KeyLock<number>();
    let inside = 0;
    let most = 0;
    await Promise.all(
      [1, 2, 3].map((key) =>
        lock.with(key, async () => {
          most = Math.max(most, ++inside);
          await tick();
          inside--;
        }),
      ),
    );
    expect(most).toBe(3);
  });

  it('releases the key when the holder throws', async () => {
    const lock = new KeyLock<string>();
    await expect(lock.with('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(lock.with('k', async () => 5)).resolves.toBe(5);
    expect(lock.heldKeys).toBe(0);
  });

  it('takes several keys in a fixed order, so crossing callers do not deadlock', async () => {
    const lock = new KeyLock<number>();
    const cmp = (a: number, b: number) => a - b;
    const results = await Promise.all([
      lock.withAll([1, 2], async () => {
        await tick();
        return 'x';
      }, cmp),
      lock.withAll([2, 1], async () => {
        await tick();
        return 'y';
      }, cmp),
    ]);
    expect(results).toEqual(['x', 'y']);
  });
});
