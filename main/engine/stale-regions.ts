/**
 * Stale regions: the rows a member missed while it was away (failed or
 * missing), kept in the pool state (the metadata log's stale-add and
 * stale-clear records) and rebuilt onto it when it returns.
 *
 * A stale region is STALE_ROWS_PER_REGION rows of one chunk, named
 * "chunkId:index". The size is part of the on-disk format (the log's
 * records name regions of it), so it stays 64 rows. The write-intent log's
 * regions are bigger (write-intent.ts) and are turned into the stale regions
 * they cover when a member misses them.
 */

export const STALE_ROWS_PER_REGION = 64;

/** The stale region holding `row` of chunk `chunkId`. */
export function staleRegionOf(chunkId: number, row: number): string {
  return `${chunkId}:${Math.floor(row / STALE_ROWS_PER_REGION)}`;
}

/** The rows a stale region names (the last region of a chunk may run past its end). */
export function staleRowsOfRegion(region: string): { chunkId: number; firstRow: number; rows: number } {
  const [chunkId, index] = region.split(':').map(Number) as [number, number];
  return { chunkId, firstRow: index * STALE_ROWS_PER_REGION, rows: STALE_ROWS_PER_REGION };
}

/** The stale regions covering rows [firstRow, firstRow + rows) of chunk `chunkId`, none past `chunkRows`. */
export function staleRegionsCovering(chunkId: number, firstRow: number, rows: number, chunkRows: number): string[] {
  const end = Math.min(firstRow + rows, chunkRows);
  const out: string[] = [];
  for (let i = Math.floor(firstRow / STALE_ROWS_PER_REGION); i * STALE_ROWS_PER_REGION < end; i++) out.push(`${chunkId}:${i}`);
  return out;
}
