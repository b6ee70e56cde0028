import { describe, expect, it } from 'vitest';
import { BufferPool } from './job-buffers.js';

describe('BufferPool', () => {
  it('gives back the same memory for the same size, and keeps no more than its limit', () => {
    const pool = new BufferPool(3 * 1024);
    const a = pool.take(1024);
    const b = pool.take(1024);
    expect(a.length).toBe(1024);
    expect(a.buffer).not.toBe(b.buffer);
    pool.give(a);
    expect(pool.take(1024).buffer).toBe(a.buffer);
    expect(pool.take(2048).length).toBe(2048);
    pool.give(a);
    pool.give(b);
    pool.give(Buffer.allocUnsafeSlow(2048)); // over the limit: dropped
    expect(pool.bytesKept).toBe(2048);
    // A slice of a bigger buffer is not taken in.
    pool.give(Buffer.allocUnsafeSlow(4096).subarray(0, 1024));
    expect(pool.bytesKept).toBe(2048);
  });
});
