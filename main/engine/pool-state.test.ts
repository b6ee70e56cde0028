import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { LayoutSpec } from './layout.js';
import {
  applyRecord,
  decodeCheckpoint,
  emptyPoolState,
  encodeCheckpoint,
  type ChunkInfo,
  type MemberInfo,
  type PoolState,
} from './pool-state.js';

const MiB = 1024 * 1024;

function member(i: number, extra: Partial<MemberInfo> = {}): MemberInfo {
  return { uuid: randomUUID(), uri: `file:/tmp/m${i}.img`, slabCount: 1000, role: 'data', state: 'online', ...extra };
}

const KINDS: readonly LayoutSpec[] = [
  { name: 'raid6', width: 10, copies: 1 },
  { name: 'raid1', width: 3, copies: 3 },
  { name: 'raid10', width: 4, copies: 2 },
  { name: 'raid0', width: 1, copies: 1 },
];

/** A state with every field set, and chunks of the given kinds (in turn) on `members`. */
function sampleState(members: readonly MemberInfo[], chunkCount: number, seed = 1, specs: readonly LayoutSpec[] = KINDS): PoolState {
  let x = seed >>> 0;
  const next = (): number => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  const chunks = new Map<number, ChunkInfo>();
  for (let id = 1; id <= chunkCount; id++) {
    const spec = specs[id % specs.length]!;
    const first = next() % members.length;
    const slabs = new Array<{ member: string; slab: number }>(spec.width);
    for (let c = 0; c < spec.width; c++) slabs[c] = { member: members[(first + c) % members.length]!.uuid, slab: next() % 0xffffffff };
    chunks.set(id, { id, spec, slabs });
  }
  return {
    ...emptyPoolState('tank', randomUUID(), 256 * MiB, members),
    volumes: [{ name: 'data', size: 123 * MiB, spec: specs[0]!, chunks: [...chunks.keys()].filter((id) => id % specs.length === 0) }],
    chunks,
    nextChunkId: chunkCount + 1,
    stale: new Map([[members[0]!.uuid, new Set(['1:0', '5:17'])]]),
    policy: { autoRepair: false },
  };
}

/** The state as plain data (maps and sets as arrays, chunks as plain objects), for deep comparison. */
function plain(state: PoolState): unknown {
  return {
    ...state,
    chunks: [...state.chunks].map(([id, c]) => [id, { id: c.id, spec: { ...c.spec }, slabs: c.slabs.map((s) => ({ ...s })) }]),
    stale: [...state.stale].map(([uuid, rows]) => [uuid, [...rows].sort()]),
  };
}

describe('pool checkpoint encoding', () => {
  it('round-trips every field and every kind of chunk', () => {
    const members = [member(0), member(1, { state: 'failed', reason: 'gone' }), member(2, { role: 'spare' }), member(3), member(4)];
    const state = sampleState(members, 400);
    const decoded = decodeCheckpoint(encodeCheckpoint(state));
    expect(plain(decoded)).toEqual(plain(state));
    expect([...decoded.chunks.keys()]).toEqual([...state.chunks.keys()]);
  });

  it('re-encodes a decoded state to the same bytes, also after records changed it', () => {
    const members = Array.from({ length: 12 }, (_, i) => member(i));
    const bytes = encodeCheckpoint(sampleState(members, 2000, 7));
    const decoded = decodeCheckpoint(bytes);
    expect(encodeCheckpoint(decoded).equals(bytes)).toBe(true);

    // A mix of chunks still in the checkpoint's bytes and chunks made by records.
    const added = member(12);
    const to = { member: added.uuid, slab: 42 };
    let changed = applyRecord(decoded, { t: 'member-add', member: added });
    changed = applyRecord(changed, { t: 'chunk-move', chunk: 8, column: 1, to });
    const grown = { id: 5000, spec: { name: 'raid1' as const, width: 2, copies: 2 }, slabs: [to, { member: members[3]!.uuid, slab: 7 }] };
    changed = applyRecord(changed, { t: 'volume-grow', name: 'data', size: 200 * MiB, chunks: [grown] });
    const again = decodeCheckpoint(encodeCheckpoint(changed));
    expect(plain(again)).toEqual(plain(changed));
    expect(again.chunks.get(8)!.slabs[1]).toEqual(to);
    expect(again.chunks.get(5000)!.slabs).toEqual(grown.slabs);
  });

  it('maps member indices when the state being encoded lists members in another order', () => {
    const members = Array.from({ length: 6 }, (_, i) => member(i));
    const decoded = decodeCheckpoint(encodeCheckpoint(sampleState(members, 300, 3)));
    const reordered: PoolState = { ...decoded, members: [...decoded.members].reverse() };
    const again = decodeCheckpoint(encodeCheckpoint(reordered));
    expect(plain(again)).toEqual(plain(reordered));
    // A chunk on a member the state no longer lists cannot be encoded: it would name another member.
    const dropped: PoolState = { ...decoded, members: decoded.members.slice(1) };
    expect(() => encodeCheckpoint(dropped)).toThrow(/no longer lists/);
  });

  it('gives decoded chunks an ordinary slabs property: spread, JSON and equality see it', () => {
    const members = [member(0), member(1), member(2)];
    const state = sampleState(members, 10);
    const chunk = decodeCheckpoint(encodeCheckpoint(state)).chunks.get(2)!;
    const original = state.chunks.get(2)!;
    expect(chunk).toEqual(original);
    expect({ ...chunk, spec: { ...chunk.spec } }).toEqual(original);
    expect(JSON.parse(JSON.stringify(chunk))).toEqual(original);
    expect(Object.keys(chunk).sort()).toEqual(['id', 'slabs', 'spec']);
    expect(chunk.slabs).not.toBe(chunk.slabs); // fresh each time: nothing is kept per slab
  });

  it('round-trips a chunk map the size of a 24 × 16 TiB pool (150,000 chunks, most 10 wide) quickly', () => {
    const members = Array.from({ length: 24 }, (_, i) => member(i, { slabCount: 65_000 }));
    // Like the bench's pool: nearly all raid6 × 10, a few others.
    const state = sampleState(members, 150_000, 11, [...Array.from({ length: 9 }, () => KINDS[0]!), KINDS[1]!]);
    const bytes = encodeCheckpoint(state);
    const started = performance.now();
    const decoded = decodeCheckpoint(bytes);
    const decodeMs = performance.now() - started;
    expect(decoded.chunks.size).toBe(150_000);
    // Spot checks plus a full comparison through the compact encoding (a deep toEqual over
    // 1.1 million slab objects takes far longer than the code under test).
    for (const id of [1, 2, 3, 4, 77_777, 150_000]) expect(decoded.chunks.get(id)).toEqual(state.chunks.get(id));
    let slabs = 0;
    for (const [id, c] of decoded.chunks) {
      const want = state.chunks.get(id)!;
      const got = c.slabs;
      for (let i = 0; i < got.length; i++) {
        if (got[i]!.member !== want.slabs[i]!.member || got[i]!.slab !== want.slabs[i]!.slab) throw new Error(`chunk ${id} slab ${i} differs`);
      }
      slabs += got.length;
    }
    expect(slabs).toBe([...state.chunks.values()].reduce((n, c) => n + c.slabs.length, 0));
    expect(encodeCheckpoint(decoded).equals(bytes)).toBe(true);
    // Generous (a loaded CI machine): eager decoding took ~0.5 s here, this takes ~50 ms.
    expect(decodeMs).toBeLessThan(2000);
  });

  it('refuses damaged or foreign bytes with a clear error', () => {
    const members = [member(0), member(1), member(2)];
    const bytes = encodeCheckpoint(sampleState(members, 5));
    expect(() => decodeCheckpoint(Buffer.from('not a checkpoint at all'))).toThrow(/not a pool checkpoint/);
    const newer = Buffer.from(bytes);
    newer.writeUInt32LE(99, 4);
    expect(() => decodeCheckpoint(newer)).toThrow(/newer than this Spindle/);
    const chunkStart = 12 + bytes.readUInt32LE(8) + 4;
    const badLayout = Buffer.from(bytes);
    badLayout[chunkStart + 4] = 200;
    expect(() => decodeCheckpoint(badLayout)).toThrow(/unknown layout code/);
    const badMember = Buffer.from(bytes);
    badMember.writeUInt16LE(3, chunkStart + 8);
    expect(() => decodeCheckpoint(badMember)).toThrow(/member index that does not exist/);
    expect(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 1))).toThrow(/past the end/);
  });

  it('refuses to encode a chunk whose slab count is not its width', () => {
    const members = [member(0), member(1)];
    const state = sampleState(members, 0);
    const chunks = new Map<number, ChunkInfo>([[1, { id: 1, spec: { name: 'raid1', width: 2, copies: 2 }, slabs: [{ member: members[0]!.uuid, slab: 1 }] }]]);
    expect(() => encodeCheckpoint({ ...state, chunks })).toThrow(/1 slabs for a width of 2/);
  });
});
