/**
 * Volumes against a reference model (a plain buffer): random reads, writes,
 * trims, flushes, member failures and bit flips in member data, for every
 * layout. Within the layout's redundancy every read equals the model; beyond
 * it a read may fail with EIO but never returns wrong bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockDeviceError, DisconnectedError, type BlockDevice } from '../nbd/block-device.js';
import { MemoryBlockDevice } from '../nbd/memory-device.js';
import { SlabAllocator } from './allocator.js';
import { ChunkIo, type ChunkContext } from './chunk-io.js';
import { KeyLock } from './key-lock.js';
import { STRIPE_UNIT, type LayoutName, type LayoutSpec } from './layout.js';
import { layouts } from './layouts.js';
import { Member } from './member.js';
import { ChecksumCache } from './slab-checksums.js';
import { slabGeometry } from './slab-geometry.js';
import { Volume } from './volume.js';
import { pattern } from './test-pattern.js';

/** A member device that can be made to fail like a pulled disk. */
class PullableDevice {
  pulled = false;
  constructor(readonly inner: MemoryBlockDevice) {}
  /** `vectored`: also offer readInto/readv/writev (as NBD members do), so both engine paths are exercised. */
  wrap(vectored = false): BlockDevice {
    const guard = <T>(fn: () => Promise<T>): Promise<T> =>
      this.pulled ? Promise.reject(new DisconnectedError('pulled')) : fn();
    const inner = this.inner;
    const device: BlockDevice = {
      size: inner.size,
      capabilities: inner.capabilities,
      read: (o, l) => guard(() => inner.read(o, l)),
      write: (o, d, opt) => guard(() => inner.write(o, d, opt)),
      flush: () => guard(() => inner.flush()),
      trim: (o, l, opt) => guard(() => inner.trim(o, l, opt)),
      writeZeroes: (o, l, opt) => guard(() => inner.writeZeroes(o, l, opt)),
      close: () => inner.close(),
    };
    if (!vectored) return device;
    const total = (parts: readonly Uint8Array[]): number => parts.reduce((n, p) => n + p.length, 0);
    return {
      ...device,
      readInto: (o, target) => guard(async () => void (await inner.read(o, target.length)).copy(target)),
      readv: (o, targets) =>
        guard(async () => {
          const data = await inner.read(o, total(targets));
          let at = 0;
          for (const t of targets) at += data.copy(t, 0, at, at + t.length);
        }),
      writev: (o, parts, opt) => guard(() => inner.write(o, Buffer.concat(parts), opt)),
    };
  }
}

const SLAB_SIZE = 4 * STRIPE_UNIT + 64 * 1024; // 4 rows of data per slab, plus the table
const geometry = slabGeometry(SLAB_SIZE, STRIPE_UNIT);
const SLABS_PER_MEMBER = 6;

interface Rig {
  volume: Volume;
  members: Member[];
  devices: PullableDevice[];
  chunks: ChunkIo[];
  repairs: Set<string>;
  tolerance: number;
}

function rig(spec: LayoutSpec, memberCount: number, size: number): Rig {
  const devices = Array.from({ length: memberCount }, () => new PullableDevice(new MemoryBlockDevice(SLAB_SIZE * SLABS_PER_MEMBER)));
  const members = devices.map((d, i) => new Member(`m${i}`, d.wrap(i % 2 === 1), 0, SLAB_SIZE, SLABS_PER_MEMBER, `m${i}`));
  const checksums = new ChecksumCache(geometry, '00000000-0000-4000-8000-000000000000');
  const repairs = new Set<string>();
  const ctx: ChunkContext = {
    layout: layouts[spec.name],
    geometry,
    checksums,
    memberFailed: async (member) => {
      member.state = 'failed';
    },
    memberSkipped: async () => {},
    repairNeeded: (chunk, row) => repairs.add(`${chunk}:${row}`),
    errorCounted: (member, kind) => {
      member.errors[kind]++;
    },
  };
  const allocator = new SlabAllocator(members.map((m) => ({ uuid: m.uuid, slabCount: SLABS_PER_MEMBER })));
  const chunks: ChunkIo[] = [];
  let capacity = 0;
  while (capacity < size) {
    const slabs = allocator.allocate(spec.width);
    const chunk = new ChunkIo(chunks.length + 1, spec, slabs.map((s) => ({ member: members.find((m) => m.uuid === s.member)!, slab: s.slab })), ctx);
    chunks.push(chunk);
    capacity += chunk.capacity;
  }
  const volume = new Volume('v', size, spec, chunks, {
    rowLock: new KeyLock<string>(),
    state: () => 'online',
    flush: async () => {
      await checksums.writeBackAll(async (member) => {
        member.state = 'failed';
      });
      await Promise.all(
        members
          .filter((m) => m.usable)
          .map((m) =>
            m.device!.flush().catch(() => {
              m.state = 'failed';
            }),
          ),
      );
    },
  });
  return { volume, members, devices, chunks, repairs, tolerance: layouts[spec.name].faultTolerance(spec) };
}

type Op =
  | { kind: 'write'; offset: number; length: number; seed: number }
  | { kind: 'read'; offset: number; length: number }
  | { kind: 'trim'; offset: number; length: number }
  | { kind: 'flush' }
  | { kind: 'fail'; member: number }
  | { kind: 'flip'; member: number; at: number }
  | { kind: 'repair' };

function opArbitrary(size: number, members: number): fc.Arbitrary<Op> {
  // Byte ranges anywhere, and 4 KiB-aligned ranges of up to 10 stripe units
  // (several rows, so the ranged read/write paths that batch a column's
  // units into one member request are exercised, failures included).
  const anyRange = fc.integer({ min: 0, max: size - 1 }).chain((offset) =>
    fc.record({ offset: fc.constant(offset), length: fc.integer({ min: 1, max: Math.min(size - offset, 3 * STRIPE_UNIT) }) }),
  );
  const blocks = Math.floor(size / 4096);
  const alignedRange = fc.integer({ min: 0, max: blocks - 1 }).chain((block) =>
    fc.record({ offset: fc.constant(block * 4096), length: fc.integer({ min: 1, max: Math.min(blocks - block, 10 * (STRIPE_UNIT / 4096)) }).map((n) => n * 4096) }),
  );
  const range = fc.oneof(anyRange, alignedRange);
  return fc.oneof(
    { weight: 5, arbitrary: fc.tuple(range, fc.integer()).map(([r, seed]) => ({ kind: 'write' as const, ...r, seed })) },
    { weight: 5, arbitrary: range.map((r) => ({ kind: 'read' as const, ...r })) },
    { weight: 1, arbitrary: range.map((r) => ({ kind: 'trim' as const, ...r })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: members - 1 }).map((member) => ({ kind: 'fail' as const, member })) },
    {
      weight: 2,
      arbitrary: fc.record({ member: fc.integer({ min: 0, max: members - 1 }), at: fc.integer({ min: 0, max: SLAB_SIZE * SLABS_PER_MEMBER - 1 }) }).map((r) => ({ kind: 'flip' as const, ...r })),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'repair' as const }) },
  );
}


async function runOps(r: Rig, ops: Op[], size: number): Promise<void> {
  const model = Buffer.alloc(size);
  // Members failed or holding bit flips not yet repaired: beyond `tolerance`, EIO is allowed.
  const damaged = new Set<number>();
  const within = () => damaged.size <= r.tolerance;
  for (const op of ops) {
    switch (op.kind) {
      case 'write': {
        const data = pattern(op.seed, op.length);
        try {
          await r.volume.write(op.offset, data);
          data.copy(model, op.offset);
        } catch (error) {
          expect(error).toBeInstanceOf(BlockDeviceError);
          expect(within(), `write failed within redundancy: ${(error as Error).message}`).toBe(false);
          return; // the model no longer knows what the volume holds
        }
        break;
      }
      case 'read': {
        try {
          const got = await r.volume.read(op.offset, op.length);
          expect(got.equals(model.subarray(op.offset, op.offset + op.length)), `read ${op.offset}+${op.length} returned wrong bytes`).toBe(true);
        } catch (error) {
          if (!(error instanceof BlockDeviceError)) throw error;
          expect(within(), `read failed within redundancy: ${error.message}`).toBe(false);
        }
        break;
      }
      case 'trim': {
        try {
          await r.volume.trim(op.offset, op.length);
        } catch {
          expect(within()).toBe(false);
          return;
        }
        // Whole blocks read back as zeroes after a trim (ours is not merely advisory).
        const from = Math.ceil(op.offset / 4096) * 4096;
        const to = Math.floor((op.offset + op.length) / 4096) * 4096;
        if (to > from) model.fill(0, from, to);
        break;
      }
      case 'flush':
        if (within()) await r.volume.flush();
        break;
      case 'fail':
        damaged.add(op.member);
        r.devices[op.member]!.pulled = true;
        break;
      case 'flip': {
        if (r.devices[op.member]!.pulled) break;
        const device = r.devices[op.member]!.inner;
        const byte = await device.read(op.at, 1);
        await device.write(op.at, Buffer.from([byte[0]! ^ 0x5a]));
        damaged.add(op.member);
        break;
      }
      case 'repair': {
        const healable = within();
        for (const chunk of r.chunks) for (let row = 0; row < chunk.rows; row++) await chunk.repairRow(row);
        // Repair restores bad copies from good ones: only possible while within redundancy.
        if (healable) for (const m of [...damaged]) if (!r.devices[m]!.pulled) damaged.delete(m);
        break;
      }
    }
  }
  // Finally: everything readable within redundancy equals the model.
  if (within()) {
    const all = await r.volume.read(0, size);
    const first = all.findIndex((x, i) => x !== model[i]);
    expect(first, `first difference at ${first}`).toBe(-1);
  }
}

const CASES: Array<{ name: LayoutName; width: number; copies: number; members: number }> = [
  { name: 'raid0', width: 1, copies: 1, members: 1 },
  { name: 'raid0', width: 3, copies: 1, members: 4 },
  { name: 'raid1', width: 2, copies: 2, members: 3 },
  { name: 'raid1', width: 3, copies: 3, members: 3 },
  { name: 'raid10', width: 4, copies: 2, members: 5 },
  { name: 'raid5', width: 4, copies: 1, members: 4 },
  { name: 'raid5', width: 3, copies: 1, members: 5 },
  { name: 'raid6', width: 5, copies: 1, members: 6 },
];

describe('Volume against a reference model', () => {
  for (const c of CASES) {
    it(`${c.name} width ${c.width}${c.copies > 1 ? ` ×${c.copies}` : ''}: reads equal the model within redundancy, never wrong beyond it`, async () => {
      const spec: LayoutSpec = { name: c.name, width: c.width, copies: c.copies };
      const size = 2 * geometry.dataBytes * layouts[c.name].dataUnits(spec) - 12345;
      await fc.assert(
        fc.asyncProperty(fc.array(opArbitrary(size, c.members), { minLength: 5, maxLength: 40 }), async (ops) => {
          await runOps(rig(spec, c.members, size), ops, size);
        }),
        { numRuns: Number(process.env.SPINDLE_PROPERTY_RUNS ?? 60) },
      );
    });
  }

  it('a write beyond redundancy fails with EIO, one row or many', async () => {
    const cases: Array<{ spec: LayoutSpec; members: number; pull: number[] }> = [
      { spec: { name: 'raid5', width: 3, copies: 1 }, members: 3, pull: [0, 1] },
      { spec: { name: 'raid6', width: 5, copies: 1 }, members: 5, pull: [1, 2, 4] },
      { spec: { name: 'raid1', width: 2, copies: 2 }, members: 2, pull: [0, 1] },
      { spec: { name: 'raid0', width: 3, copies: 1 }, members: 3, pull: [0, 1, 2] },
    ];
    for (const c of cases) {
      for (const length of [4096, 8 * STRIPE_UNIT]) {
        const r = rig(c.spec, c.members, 1 << 20);
        for (const m of c.pull) r.devices[m]!.pulled = true;
        const error = await r.volume.write(0, pattern(3, length)).then(() => undefined, (e: unknown) => e);
        expect(error, `${c.spec.name} ${length} bytes`).toBeInstanceOf(BlockDeviceError);
        expect((error as BlockDeviceError).errno).toBe('EIO');
      }
    }
  });

  it('serves a sub-block write and read through read-modify-write', async () => {
    const r = rig({ name: 'raid5', width: 3, copies: 1 }, 3, 1 << 20);
    await r.volume.write(100, Buffer.from('hello'));
    expect((await r.volume.read(98, 9)).toString('latin1')).toBe('\0\0hello\0\0');
  });

  it('a short read through a member that reads into place never returns a block that fails its checksum', async () => {
    // raid0: nothing else to serve, so EIO; raid1: the other copy. Chunks
    // land on both members; only odd ones read into place (the fast path).
    for (const spec of [
      { name: 'raid0', width: 1, copies: 1 },
      { name: 'raid1', width: 2, copies: 2 },
    ] satisfies LayoutSpec[]) {
      const r = rig(spec, 3, 6 * 4 * STRIPE_UNIT);
      const data = pattern(11, r.volume.size);
      await r.volume.write(0, data);
      await r.volume.flush();
      let start = 0;
      let intoPlace = 0;
      for (const chunk of r.chunks) {
        const column = chunk.columns.find((c) => c.member.device!.readInto !== undefined);
        if (column) {
          const device = r.devices[r.members.indexOf(column.member)]!.inner;
          const at = column.member.slabOffset(column.slab, 100);
          const byte = await device.read(at, 1);
          await device.write(at, Buffer.from([byte[0]! ^ 0x10]));
          const before = column.member.errors.checksum;
          const got = await r.volume.read(start, 4096).then((b) => b, (e: unknown) => e);
          if (spec.name === 'raid0') {
            expect(got).toBeInstanceOf(BlockDeviceError);
            expect((got as BlockDeviceError).errno).toBe('EIO');
          } else {
            expect((got as Buffer).equals(data.subarray(start, start + 4096))).toBe(true);
          }
          intoPlace += column.member.errors.checksum - before;
        }
        start += chunk.capacity;
      }
      expect(intoPlace, `${spec.name}: reads that met the bad block through readInto`).toBeGreaterThan(0);
    }
  });

  it('rewrites a corrupted copy after serving the good one', async () => {
    const r = rig({ name: 'raid1', width: 2, copies: 2 }, 2, 1 << 18);
    const data = pattern(7, 8192);
    await r.volume.write(0, data);
    await r.volume.flush();
    // Flip a byte of the first block on both copies' devices in turn; each time the read is right.
    const chunk = r.chunks[0]!;
    const column = chunk.columns[0]!;
    const device = r.devices[r.members.indexOf(column.member)]!.inner;
    const at = column.member.slabOffset(column.slab, 10);
    const before = await device.read(at, 1);
    await device.write(at, Buffer.from([before[0]! ^ 1]));
    for (let i = 0; i < 2; i++) expect((await r.volume.read(0, 8192)).equals(data)).toBe(true);
    expect(column.member.errors.checksum).toBeGreaterThan(0);
    expect(r.repairs.size).toBe(1);
    expect(await chunk.repairRow(0)).toBe(1);
    expect((await device.read(at, 1))[0]).toBe(before[0]);
  });
});

