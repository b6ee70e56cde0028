import { afterEach, describe, expect, it, vi } from 'vitest';
import { KeyedThrottle } from './keyed-throttle.js';

afterEach(() => vi.useRealTimers());

describe('KeyedThrottle', () => {
  it('sends the first update at once and folds a burst into one trailing update with the latest value', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const sent: Array<[string, number]> = [];
    const throttle = new KeyedThrottle<number>(100, (key, value) => sent.push([key, value]));
    for (let i = 1; i <= 1000; i++) throttle.push('m1', i);
    throttle.push('m2', 7);
    expect(sent).toEqual([['m1', 1], ['m2', 7]]);
    vi.advanceTimersByTime(99);
    expect(sent).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([['m1', 1], ['m2', 7], ['m1', 1000]]);
    // Quiet for a whole interval: the next update goes out at once again.
    vi.advanceTimersByTime(100);
    throttle.push('m1', 1001);
    expect(sent.at(-1)).toEqual(['m1', 1001]);
  });

  it('never sends more than one update per interval per key', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    let count = 0;
    const throttle = new KeyedThrottle<number>(100, () => count++);
    for (let ms = 0; ms < 1000; ms++) {
      throttle.push('m', ms);
      vi.advanceTimersByTime(1);
    }
    expect(count).toBeLessThanOrEqual(11);
    expect(count).toBeGreaterThanOrEqual(9);
  });

  it('drops pending updates on clear', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const sent: number[] = [];
    const throttle = new KeyedThrottle<number>(100, (_key, value) => sent.push(value));
    throttle.push('m', 1);
    throttle.push('m', 2);
    throttle.clear();
    vi.advanceTimersByTime(500);
    expect(sent).toEqual([1]);
  });

  it('forgets the pending update of a key whose stream ended, and only that one', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const sent: Array<[string, number]> = [];
    const throttle = new KeyedThrottle<number>(100, (key, value) => sent.push([key, value]));
    throttle.push('job-1', 1);
    throttle.push('job-1', 2);
    throttle.push('job-2', 1);
    throttle.push('job-2', 2);
    throttle.forget('job-1');
    vi.advanceTimersByTime(200);
    expect(sent).toEqual([['job-1', 1], ['job-2', 1], ['job-2', 2]]);
  });
});
