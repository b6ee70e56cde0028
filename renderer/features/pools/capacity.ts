/** A pool's raw space from its data members' slabs; spares and failed members hold no usable space. */
import type { PoolStatus } from '../../../preload/api';

export interface Capacity {
  readonly usedBytes: number;
  readonly freeBytes: number;
  readonly totalBytes: number;
  /** Space on members that cannot be used now (failed or missing). */
  readonly unavailableBytes: number;
}

export function poolCapacity(pool: PoolStatus): Capacity {
  let used = 0;
  let free = 0;
  let unavailable = 0;
  for (const m of pool.members) {
    if (m.role !== 'data') continue;
    const bytes = (n: number) => n * pool.slabDataBytes;
    if (m.state === 'failed' || m.state === 'missing') {
      unavailable += bytes(m.slabCount);
      continue;
    }
    used += bytes(m.slabCount - m.freeSlabs);
    free += bytes(m.freeSlabs);
  }
  return { usedBytes: used, freeBytes: free, totalBytes: used + free + unavailable, unavailableBytes: unavailable };
}
