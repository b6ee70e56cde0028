import { describe, expect, it } from 'vitest';
import type { ChunkStatus, MemberStatus, VolumeStatus } from '../../../preload/api';
import { buildLayoutMap } from './map-model';

const member = (uuid: string, over: Partial<MemberStatus> = {}): MemberStatus => ({
  uuid, uri: `file:/d/${uuid}.img`, role: 'data', state: 'online', errors: { read: 0, write: 0, checksum: 0 }, slabCount: 10, freeSlabs: 5, ...over,
});

/** raid5 over 3 of the members, rotating which members hold each chunk. */
function volume(chunkCount: number, memberIds: string[]): VolumeStatus {
  const chunks: ChunkStatus[] = [];
  for (let id = 0; id < chunkCount; id++) {
    const cols = [0, 1, 2].map((k) => memberIds[(id + k) % memberIds.length]!);
    chunks.push({ id, capacity: 1, columns: cols.map((m, k) => ({ member: m, slab: id, role: k === 2 ? 'parity-p' : 'data', state: 'online' })) });
  }
  return { pool: 'p', name: 'v', size: chunkCount, layout: 'raid5', width: 3, copies: 1, state: 'online', chunkCount, firstChunk: 0, chunks };
}

describe('buildLayoutMap', () => {
  it('puts each slab under its member with its role; members without a slab in a chunk are empty', () => {
    const map = buildLayoutMap(volume(2, ['a', 'b', 'c', 'd']), ['a', 'b', 'c', 'd'].map((u) => member(u)), 100);
    expect(map.columns.map((c) => c.uuid)).toEqual(['a', 'b', 'c', 'd']);
    expect(map.rows[0]!.cells).toEqual(['data', 'data', 'parity-p', 'empty']);
    expect(map.rows[1]!.cells).toEqual(['empty', 'data', 'data', 'parity-p']);
    expect(map.degradedChunks).toBe(0);
  });

  it('a failed member makes its slabs lost and the rest of their chunks degraded, using the newest member state', () => {
    const members = [member('a', { state: 'failed' }), member('b'), member('c'), member('d')];
    const map = buildLayoutMap(volume(4, ['a', 'b', 'c', 'd']), members, 100);
    expect(map.rows[0]!.cells).toEqual(['lost', 'degraded', 'degraded', 'empty']);
    expect(map.rows[1]!.cells).toEqual(['empty', 'data', 'data', 'parity-p']);
    expect(map.degradedChunks).toBe(3);
    expect(map.perMember[0]).toEqual({ uuid: 'a', slabs: 3, byKind: { lost: 3 } });
  });

  it('a resyncing member shows its slabs rebuilding', () => {
    const map = buildLayoutMap(volume(1, ['a', 'b', 'c']), [member('a', { state: 'resyncing' }), member('b'), member('c')], 100);
    expect(map.rows[0]!.cells).toEqual(['rebuilding', 'data', 'parity-p']);
    expect(map.rebuildingChunks).toBe(1);
  });

  it('aggregates rows when there are more chunks than rows, keeping the worst cell of each group', () => {
    const ids = Array.from({ length: 24 }, (_, i) => `m${i}`);
    const members = ids.map((u, i) => member(u, { state: i === 5 ? 'failed' : 'online' }));
    const map = buildLayoutMap(volume(1000, ids), members, 64);
    expect(map.chunksPerRow).toBe(16);
    expect(map.rows).toHaveLength(63);
    expect(map.rows[0]).toMatchObject({ firstChunk: 0, lastChunk: 15 });
    // Chunks 3, 4 and 5 touch member 5 in the first group.
    expect(map.rows[0]!.cells[5]).toBe('lost');
    expect(map.rows[0]!.cells[4]).toBe('degraded');
    expect(map.rows.at(-1)!.lastChunk).toBe(999);
    // Chunk ids 3, 4 and 5 mod 24 touch member 5: 42 of each below 1000.
    expect(map.degradedChunks).toBe(126);
  });

  it('spares come after data members', () => {
    const map = buildLayoutMap(volume(1, ['a', 'b', 'c']), [member('s', { role: 'spare' }), member('a'), member('b'), member('c')], 10);
    expect(map.columns.map((c) => c.uuid)).toEqual(['a', 'b', 'c', 's']);
  });
});
