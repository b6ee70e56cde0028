/**
 * Pools against a reference model, with members failing and returning: after
 * a member returns, what it missed is rebuilt, and every read equals the
 * model while the failures stay within the layout's redundancy.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockDeviceError } from '../nbd/block-device.js';
import { MemoryBlockDevice } from '../nbd/memory-device.js';
import { STRIPE_UNIT, type LayoutName } from './layout.js';
import { createPool } from './pool-open.js';
import { pattern } from './test-pattern.js';

const SLAB = 4 * STRIPE_UNIT + 64 * 1024;
const METADATA = 512 * 1024;
const MEMBER = METADATA + 8 * SLAB + 64 * 1024;

type Op =
  | { kind: 'write'; offset: number; length: number; seed: number }
  | { kind: 'read'; offset: number; length: number }
  | { kind: 'flush' }
  | { kind: 'fail'; member: number }
  | { kind: 'return'; member: number };


const CASES: Array<{ layout: LayoutName; copies?: number; members: number; tolerance: number }> = [
  { layout: 'raid1', members: 2, tolerance: 1 },
  { layout: 'raid1', copies: 3, members: 3, tolerance: 2 },
  { layout: 'raid5', members: 4, tolerance: 1 },
  { layout: 'raid6', members: 5, tolerance: 2 },
];

describe('Pool against a reference model, with members failing and returning', () => {
  for (const c of CASES) {
    it(`${c.layout}${c.copies ? `×${c.copies}` : ''} over ${c.members} members`, async () => {
      const size = 1536 * 1024;
      // Byte ranges anywhere, and 4 KiB-aligned multi-row ranges (the batched paths).
      const anyRange = fc.integer({ min: 0, max: size - 1 }).chain((offset) =>
        fc.record({ offset: fc.constant(offset), length: fc.integer({ min: 1, max: Math.min(size - offset, 200_000) }) }),
      );
      const blocks = Math.floor(size / 4096);
      const alignedRange = fc.integer({ min: 0, max: blocks - 1 }).chain((block) =>
        fc.record({ offset: fc.constant(block * 4096), length: fc.integer({ min: 1, max: Math.min(blocks - block, 160) }).map((n) => n * 4096) }),
      );
      const range = fc.oneof(anyRange, alignedRange);
      const op: fc.Arbitrary<Op> = fc.oneof(
        { weight: 4, arbitrary: fc.tuple(range, fc.integer()).map(([r, seed]) => ({ kind: 'write' as const, ...r, seed })) },
        { weight: 3, arbitrary: range.map((r) => ({ kind: 'read' as const, ...r })) },
        { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: c.members - 1 }).map((member) => ({ kind: 'fail' as const, member })) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: c.members - 1 }).map((member) => ({ kind: 'return' as const, member })) },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 4, maxLength: 25 }), async (ops) => {
          const devices = Array.from({ length: c.members }, () => new MemoryBlockDevice(MEMBER));
          const pool = await createPool({ name: 'p', members: devices.map((device, i) => ({ uri: `mem:${i}`, device })), slabSize: SLAB, metadataBytes: METADATA });
          const volume = await pool.createVolume({ name: 'v', size, layout: c.layout, copies: c.copies });
          const uuids = [...pool.members.keys()];
          const model = Buffer.alloc(size);
          const down = new Set<number>();
          for (const o of ops) {
            if (o.kind === 'write') {
              const data = pattern(o.seed, o.length);
              await volume.write(o.offset, data);
              data.copy(model, o.offset);
            } else if (o.kind === 'read') {
              const got = await volume.read(o.offset, o.length);
              expect(got.equals(model.subarray(o.offset, o.offset + o.length))).toBe(true);
            } else if (o.kind === 'flush') {
              await volume.flush();
            } else if (o.kind === 'fail') {
              if (down.has(o.member) || down.size >= c.tolerance) continue;
              await pool.failMember(uuids[o.member]!);
              down.add(o.member);
            } else {
              if (!down.has(o.member)) continue;
              await pool.returnMember(uuids[o.member]!, devices[o.member]!);
              down.delete(o.member);
            }
          }
          // Everything returns; then each member alone must be able to go while all reads stay right.
          for (const m of [...down]) await pool.returnMember(uuids[m]!, devices[m]!);
          for (let m = 0; m < c.members; m++) {
            await pool.failMember(uuids[m]!);
            expect((await volume.read(0, size)).equals(model)).toBe(true);
            await pool.returnMember(uuids[m]!, devices[m]!);
          }
          await pool.close();
        }),
        { numRuns: Number(process.env.SPINDLE_PROPERTY_RUNS ?? 15) },
      );
    });
  }

  it('a volume beyond its redundancy fails reads with EIO, never wrong bytes', async () => {
    const devices = Array.from({ length: 3 }, () => new MemoryBlockDevice(MEMBER));
    const pool = await createPool({ name: 'p', members: devices.map((device, i) => ({ uri: `mem:${i}`, device })), slabSize: SLAB, metadataBytes: METADATA });
    const volume = await pool.createVolume({ name: 'v', size: 1 << 20, layout: 'raid5' });
    await volume.write(0, pattern(1, 1 << 20));
    const [a, b] = [...pool.members.keys()];
    await pool.failMember(a!);
    await pool.failMember(b!);
    await expect(volume.read(0, 4096)).rejects.toBeInstanceOf(BlockDeviceError);
    await pool.close();
  });
});
