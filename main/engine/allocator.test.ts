import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AllocationError, SlabAllocator } from './allocator.js';

const members = (...counts: number[]) => counts.map((slabCount, i) => ({ uuid: `m${i}`, slabCount }));

describe('SlabAllocator', () => {
  it('puts a chunk on distinct members with the most free space', () => {
    const a = new SlabAllocator(members(10, 4, 8));
    const chunk = a.allocate(2);
    expect(chunk.map((s) => s.member).sort()).toEqual(['m0', 'm2']);
    expect(chunk.every((s) => s.slab === 0)).toBe(true);
  });

  it('counts exactly how many chunks fit with mixed member sizes', () => {
    // 3-wide chunks on members of 10, 1, 1, 1 free slabs: at most 1 chunk fits... and 2 members of 10 + 1 of 10.
    expect(new SlabAllocator(members(10, 1, 1, 1)).chunksThatFit(3)).toBe(1);
    expect(new SlabAllocator(members(10, 10, 10)).chunksThatFit(3)).toBe(10);
    expect(new SlabAllocator(members(8, 4, 4)).chunksThatFit(2)).toBe(8);
    expect(new SlabAllocator(members(5, 5)).chunksThatFit(3)).toBe(0);
  });

  it('allocates exactly as many chunks as chunksThatFit promised (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 5 }), (counts, width) => {
        const a = new SlabAllocator(members(...counts));
        const promised = a.chunksThatFit(width);
        const seen = new Set<string>();
        for (let i = 0; i < promised; i++) {
          const chunk = a.allocate(width);
          expect(new Set(chunk.map((s) => s.member)).size).toBe(width);
          for (const s of chunk) {
            const key = `${s.member}/${s.slab}`;
            expect(seen.has(key)).toBe(false);
            seen.add(key);
          }
        }
        expect(a.chunksThatFit(width)).toBe(0);
        expect(() => a.allocate(width)).toThrow(AllocationError);
      }),
      { numRuns: 300 },
    );
  });

  it('reuses released slabs, lowest first, and never hands out a used slab', () => {
    const a = new SlabAllocator(members(4, 4), [{ member: 'm0', slab: 0 }]);
    expect(a.freeSlabs('m0')).toBe(3);
    const chunk = a.allocate(2);
    expect(chunk).toEqual([
      { member: 'm1', slab: 0 },
      { member: 'm0', slab: 1 },
    ]);
    a.release([{ member: 'm0', slab: 0 }]);
    expect(a.allocate(1, new Set(['m1']))).toEqual([{ member: 'm0', slab: 0 }]);
  });

  it('skips ineligible and excluded members', () => {
    const a = new SlabAllocator(members(4, 4, 4));
    a.setEligible('m1', false);
    expect(a.chunksThatFit(3)).toBe(0);
    expect(a.allocate(2).map((s) => s.member).sort()).toEqual(['m0', 'm2']);
    expect(() => a.allocate(2, new Set(['m0']))).toThrow(/2 distinct members; only 1/);
  });
});
