import { describe, expect, it } from 'vitest';
import { STALE_ROWS_PER_REGION, staleRegionOf, staleRegionsCovering, staleRowsOfRegion } from './stale-regions.js';

describe('stale regions', () => {
  it('are 64 rows of one chunk (the size the metadata log has always named)', () => {
    expect(STALE_ROWS_PER_REGION).toBe(64);
    expect(staleRegionOf(5, 0)).toBe('5:0');
    expect(staleRegionOf(5, 63)).toBe('5:0');
    expect(staleRegionOf(5, 64)).toBe('5:1');
    expect(staleRowsOfRegion('5:3')).toEqual({ chunkId: 5, firstRow: 192, rows: 64 });
  });

  it('cover a span of rows, none past the end of the chunk', () => {
    expect(staleRegionsCovering(2, 0, 1024, 4096)).toEqual(Array.from({ length: 16 }, (_, i) => `2:${i}`));
    expect(staleRegionsCovering(2, 1024, 1024, 1100)).toEqual(['2:16', '2:17']);
    expect(staleRegionsCovering(2, 0, 1024, 16)).toEqual(['2:0']);
    expect(staleRegionsCovering(2, 2048, 1024, 1100)).toEqual([]);
  });
});
