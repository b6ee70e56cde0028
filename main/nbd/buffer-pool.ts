/**
 * BufferPool: reusable I/O buffers in power-of-two size classes.
 *
 * Why: allocating a fresh multi-megabyte Buffer per request makes the
 * allocator map and unmap memory and the kernel fault and zero its pages
 * again each time; measured on the NBD server, 1 MiB reads ran 8x slower
 * with a new buffer per request than with a reused one. Buffers return to
 * the pool when the socket has written them; the pool keeps at most
 * `maxPooledBytes` idle, so a burst does not pin memory forever.
 */
const MIN_CLASS = 12; // 4 KiB
const MAX_CLASS = 25; // 32 MiB, the largest NBD payload

export class BufferPool {
  private readonly free: Buffer[][] = [];
  private pooledBytes = 0;

  constructor(private readonly maxPooledBytes: number) {
    for (let c = 0; c <= MAX_CLASS; c++) this.free.push([]);
  }

  /** A buffer of at least n bytes (n ≤ 32 MiB); use subarray(0, n). */
  take(n: number): Buffer {
    const cls = sizeClass(n);
    const list = this.free[cls];
    const b = list.pop();
    if (b) {
      this.pooledBytes -= b.length;
      return b;
    }
    return Buffer.allocUnsafeSlow(1 << cls);
  }

  /** Returns a buffer obtained from take(); the caller must not use it afterwards. */
  give(b: Buffer): void {
    if (this.pooledBytes + b.length > this.maxPooledBytes) return;
    const cls = sizeClass(b.length);
    if (1 << cls !== b.length) return;
    this.free[cls].push(b);
    this.pooledBytes += b.length;
  }
}

function sizeClass(n: number): number {
  let c = MIN_CLASS;
  while (1 << c < n && c < MAX_CLASS) c++;
  return c;
}
