import { describe, expect, it } from 'vitest';
import { BlockDeviceError, type BlockDevice } from '../nbd/block-device.js';
import { MemoryBlockDevice } from '../nbd/memory-device.js';
import { STRIPE_UNIT } from './layout.js';
import { createPool, importPool } from './pool-open.js';
import { PoolError, type MemberSource } from './pool.js';
import { pattern } from './test-pattern.js';

const SLAB = 16 * STRIPE_UNIT + 64 * 1024; // 1 MiB of data per slab
const METADATA = 1024 * 1024;
const MEMBER = METADATA + 12 * SLAB + 64 * 1024;

function members(count: number, size = MEMBER): MemberSource[] {
  return Array.from({ length: count }, (_, i) => ({ uri: `mem:${i}`, device: new MemoryBlockDevice(size) }));
}


/** A copy of a device's bytes at this instant: what a disk holds if power is cut now. */
async function snapshot(device: BlockDevice): Promise<MemoryBlockDevice> {
  const copy = new MemoryBlockDevice(device.size);
  await copy.write(0, await device.read(0, device.size));
  return copy;
}

const create = (sources: MemberSource[], name = 'tank') => createPool({ name, members: sources, slabSize: SLAB, metadataBytes: METADATA });

describe('Pool', () => {
  it('creates volumes of every layout and reads back what was written after reimport', async () => {
    const sources = members(6);
    const pool = await create(sources);
    const layouts = [
      { name: 'r0', layout: 'raid0' as const },
      { name: 'r1', layout: 'raid1' as const },
      { name: 'r1x3', layout: 'raid1' as const, copies: 3 },
      { name: 'r10', layout: 'raid10' as const, width: 4 },
      { name: 'r5', layout: 'raid5' as const, width: 4 },
      { name: 'r6', layout: 'raid6' as const, width: 5 },
    ];
    const data = pattern(1, 1536 * 1024 + 512);
    for (const l of layouts) {
      const volume = await pool.createVolume({ name: l.name, size: 2 * 1024 * 1024, layout: l.layout, copies: l.copies, width: l.width });
      await volume.write(12345, data);
    }
    await pool.close();
    const { pool: again, missing } = await importPool(sources);
    expect(missing).toEqual([]);
    expect(again.volumeNames().sort()).toEqual(layouts.map((l) => l.name).sort());
    for (const l of layouts) {
      expect((await again.volume(l.name).read(12345, data.length)).equals(data)).toBe(true);
      expect(again.volumeState(l.name)).toBe('online');
    }
    await again.close();
  });

  it('grows and deletes volumes, keeping data and giving the space back', async () => {
    const sources = members(4);
    const pool = await create(sources);
    const free = pool.freeSpace('raid10');
    const volume = await pool.createVolume({ name: 'g', size: 1024 * 1024, layout: 'raid10', width: 4 });
    const data = pattern(11, 1024 * 1024);
    await volume.write(0, data);
    const grown = await pool.growVolume('g', 5 * 1024 * 1024);
    expect(grown.size).toBe(5 * 1024 * 1024);
    expect((await grown.read(0, data.length)).equals(data)).toBe(true);
    await grown.write(4 * 1024 * 1024, data);
    await expect(pool.growVolume('g', 1024 * 1024)).rejects.toMatchObject({ code: 'BAD_SIZE' });
    await pool.close();
    const { pool: again } = await importPool(sources);
    expect(again.volume('g').size).toBe(5 * 1024 * 1024);
    expect((await again.volume('g').read(4 * 1024 * 1024, data.length)).equals(data)).toBe(true);
    await again.deleteVolume('g');
    expect(again.volumeNames()).toEqual([]);
    expect(again.freeSpace('raid10')).toBe(free);
    await expect(again.deleteVolume('g')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await again.close();
  });

  it('a new volume on slabs freed by a deleted one reads zeroes, not the old data', async () => {
    const pool = await create(members(3));
    const old = await pool.createVolume({ name: 'old', size: 2 * 1024 * 1024, layout: 'raid5' });
    await old.write(0, pattern(12, 2 * 1024 * 1024));
    await pool.flush();
    await pool.deleteVolume('old');
    const fresh = await pool.createVolume({ name: 'new', size: 2 * 1024 * 1024, layout: 'raid5' });
    expect(fresh.chunks[0]!.columns.map((c) => c.slab)).toEqual(old.chunks[0]!.columns.map((c) => c.slab));
    expect((await fresh.read(0, 2 * 1024 * 1024)).every((b) => b === 0)).toBe(true);
    await fresh.write(5000, Buffer.from('partial'));
    expect((await fresh.read(4096, 8192)).indexOf('partial')).toBe(5000 - 4096);
    await pool.close();
  });

  it('works on members full of old data: unwritten blocks read as zeroes, partial writes work', async () => {
    const sources = members(4);
    for (const s of sources) await s.device.write(0, pattern(13, MEMBER));
    const pool = await create(sources);
    for (const layout of ['raid1', 'raid5', 'raid6'] as const) {
      const volume = await pool.createVolume({ name: layout, size: 1024 * 1024, layout, width: layout === 'raid1' ? 2 : 4 });
      expect((await volume.read(0, 1024 * 1024)).every((b) => b === 0), layout).toBe(true);
      await volume.write(100, Buffer.from('hello'));
      const got = await volume.read(0, 8192);
      expect(got.subarray(100, 105).toString(), layout).toBe('hello');
      expect(got.subarray(105).every((b) => b === 0), layout).toBe(true);
    }
    await pool.close();
    const { pool: again } = await importPool(sources);
    expect((await again.volume('raid6').read(100, 5)).toString()).toBe('hello');
    await again.close();
  });

  it('a damaged checksum table is not taken for "unwritten": reads come from the other copy, and repair rewrites it', async () => {
    const sources = members(2);
    const pool = await create(sources);
    const volume = await pool.createVolume({ name: 'm', size: 1024 * 1024, layout: 'raid1' });
    const data = pattern(14, 1024 * 1024);
    await volume.write(0, data);
    await pool.close();
    // Rot one byte of the first table block of one copy.
    const { pool: first } = await importPool(sources);
    const column = first.volume('m').chunks[0]!.columns[0]!;
    const at = column.member.slabOffset(column.slab, first.geometry.tableOffset + 10);
    await first.close();
    const byte = await column.member.device!.read(at, 1);
    await column.member.device!.write(at, Buffer.from([byte[0]! ^ 0x10]));
    const { pool: again } = await importPool(sources);
    expect((await again.volume('m').read(0, data.length)).equals(data)).toBe(true);
    await again.repairsDone();
    await again.close();
    const { pool: healed } = await importPool(sources);
    const damagedMember = [...healed.members.values()].find((m) => m.uuid === column.member.uuid)!;
    await healed.failMember([...healed.members.keys()].find((u) => u !== damagedMember.uuid)!);
    expect((await healed.volume('m').read(0, data.length)).equals(data)).toBe(true);
    await healed.close();
  });

  it('imports from a subset, names the missing member, and serves a degraded raid5', async () => {
    const sources = members(4);
    const pool = await create(sources);
    const volume = await pool.createVolume({ name: 'v', size: 3 * 1024 * 1024, layout: 'raid5' });
    const data = pattern(2, 3 * 1024 * 1024);
    await volume.write(0, data);
    await pool.close();
    const { pool: degraded, missing } = await importPool(sources.slice(1));
    expect(missing.map((m) => m.uri)).toEqual(['mem:0']);
    expect(degraded.volumeState('v')).toBe('degraded');
    expect((await degraded.volume('v').read(0, data.length)).equals(data)).toBe(true);
    await degraded.close();
  });

  it('keeps serving through a member failure within redundancy, and fails with EIO beyond it', async () => {
    const sources = members(4);
    const pool = await create(sources);
    const volume = await pool.createVolume({ name: 'v', size: 2 * 1024 * 1024, layout: 'raid5' });
    const data = pattern(3, 2 * 1024 * 1024);
    await volume.write(0, data);
    const [first, second] = [...pool.members.values()];
    await pool.failMember(first!.uuid);
    expect(pool.volumeState('v')).toBe('degraded');
    const more = pattern(4, 100_000);
    await volume.write(50_000, more);
    more.copy(data, 50_000);
    expect((await volume.read(0, data.length)).equals(data)).toBe(true);
    await pool.failMember(second!.uuid);
    expect(pool.volumeState('v')).toBe('failed');
    await expect(volume.read(0, 4096)).rejects.toBeInstanceOf(BlockDeviceError);
    await expect(volume.write(0, Buffer.alloc(4096))).rejects.toThrow(/EIO/);
    await pool.close();
  });

  it('remembers a failed member across import', async () => {
    const sources = members(3);
    const pool = await create(sources);
    const volume = await pool.createVolume({ name: 'm', size: 1024 * 1024, layout: 'raid1' });
    const [victim] = [...pool.members.values()];
    await pool.failMember(victim!.uuid);
    const data = pattern(5, 1024 * 1024);
    await volume.write(0, data);
    await pool.close();
    const { pool: again } = await importPool(sources);
    expect(again.members.get(victim!.uuid)!.state).toBe('failed');
    expect((await again.volume('m').read(0, data.length)).equals(data)).toBe(true);
    expect(again.state.stale.get(victim!.uuid)?.size ?? 0).toBeGreaterThan(0);
    await again.close();
  });

  it('resyncs only what a returning member missed, then serves from it', async () => {
    const sources = members(3);
    const pool = await create(sources);
    const volume = await pool.createVolume({ name: 'm', size: 4 * 1024 * 1024, layout: 'raid1' });
    const data = pattern(8, 4 * 1024 * 1024);
    await volume.write(0, data);
    await pool.flush(); // unflushed rows would count as missed too
    const [away, other] = volume.chunks[0]!.columns.map((c) => c.member);
    await pool.failMember(away!.uuid);
    const change = pattern(9, 4096);
    await volume.write(8192, change);
    change.copy(data, 8192);
    const rows = await pool.returnMember(away!.uuid, sources.find((s) => s.uri === away!.label)!.device);
    // One stale region (a whole 16-row chunk here, regions being 64 rows), not the 64 rows of the volume.
    expect(rows).toBe(16);
    expect(away!.state).toBe('online');
    expect(pool.state.stale.size).toBe(0);
    await pool.failMember(other!.uuid);
    const got = await volume.read(0, data.length);
    expect(got.findIndex((x, i) => x !== data[i])).toBe(-1);
    await pool.close();
  });

  it('repairs a corrupted block found by a read, in the background', async () => {
    const sources = members(3);
    const pool = await create(sources);
    const volume = await pool.createVolume({ name: 'm', size: 1024 * 1024, layout: 'raid1' });
    const data = pattern(6, 65536);
    await volume.write(0, data);
    await pool.flush();
    const chunk = volume.chunks[0]!;
    // Row 0 reads its first copy first: corrupt a byte there, behind the engine's back.
    const column = chunk.columns[0]!;
    const at100 = column.member.slabOffset(column.slab, 100);
    const byte = await column.member.device!.read(at100, 1);
    await column.member.device!.write(at100, Buffer.from([byte[0]! ^ 0xff]));
    const events: string[] = [];
    pool.on('member-errors', (member, kind) => events.push(`${member.uuid}:${kind}`));
    expect((await volume.read(0, 65536)).equals(data)).toBe(true);
    expect(events).toEqual([`${column.member.uuid}:checksum`]);
    await pool.repairsDone();
    const corrupted = chunk.columns[0]!.member;
    expect(corrupted.errors.checksum).toBeGreaterThan(0);
    const at = corrupted.slabOffset(chunk.columns[0]!.slab, 0);
    expect((await corrupted.device!.read(at, 65536)).equals(data)).toBe(true);
    await pool.close();
  });

  describe('refuses bad requests with a clear error and changes nothing', () => {
    it('a volume larger than the free space', async () => {
      const pool = await create(members(3));
      const free = pool.freeSpace('raid5');
      expect(free).toBeGreaterThan(0);
      await expect(pool.createVolume({ name: 'big', size: free + 1024 * 1024, layout: 'raid5' })).rejects.toThrow(/not enough free space.*free for that layout/);
      expect(pool.volumeNames()).toEqual([]);
      expect(pool.freeSpace('raid5')).toBe(free);
      const fits = await pool.createVolume({ name: 'fits', size: free, layout: 'raid5' });
      expect(fits.size).toBe(free);
      expect(pool.freeSpace('raid5')).toBe(0);
      await pool.close();
    });

    it('an unknown layout, or one needing more members than the pool has', async () => {
      const pool = await create(members(2));
      await expect(pool.createVolume({ name: 'x', size: 1 << 20, layout: 'raid7' as never })).rejects.toThrow(/unknown layout "raid7"/);
      await expect(pool.createVolume({ name: 'x', size: 1 << 20, layout: 'raid5' })).rejects.toMatchObject({ code: 'TOO_FEW_MEMBERS' });
      await expect(pool.createVolume({ name: 'x', size: 1 << 20, layout: 'raid1', copies: 3 })).rejects.toThrow(/needs 3 members/);
      await expect(pool.createVolume({ name: 'bad/name', size: 1 << 20, layout: 'raid1' })).rejects.toMatchObject({ code: 'BAD_NAME' });
      await expect(pool.createVolume({ name: 'x', size: 1000, layout: 'raid1' })).rejects.toMatchObject({ code: 'BAD_SIZE' });
      await pool.createVolume({ name: 'x', size: 1 << 20, layout: 'raid1' });
      await expect(pool.createVolume({ name: 'x', size: 1 << 20, layout: 'raid1' })).rejects.toMatchObject({ code: 'EXISTS' });
      expect(pool.volumeNames()).toEqual(['x']);
      await pool.close();
    });

    it('the same member twice, a member of another pool, a member too small', async () => {
      const sources = members(2);
      await expect(create([sources[0]!, sources[0]!])).rejects.toMatchObject({ code: 'DUPLICATE_MEMBER' });
      await expect(create([sources[0]!, { uri: 'mem:again', device: sources[0]!.device }])).rejects.toMatchObject({ code: 'DUPLICATE_MEMBER' });
      const pool = await create(sources);
      await pool.close();
      const before = await sources[0]!.device.read(0, 8192);
      const fresh = { uri: 'mem:fresh', device: new MemoryBlockDevice(MEMBER) };
      await expect(create([sources[0]!, fresh], 'other')).rejects.toThrow(/already.*pool|another pool|labelled|pool/i);
      expect((await fresh.device.read(0, 8192)).every((b) => b === 0)).toBe(true);
      expect((await sources[0]!.device.read(0, 8192)).equals(before)).toBe(true);
      await expect(create(members(2, METADATA + SLAB / 2))).rejects.toThrow(/too small/);
    });
  });

  it('survives a crash in the middle of a write storm: flushed writes are kept, nothing reads as corrupt', async () => {
    for (const layout of ['raid1', 'raid5', 'raid6'] as const) {
      const sources = members(5);
      const pool = await create(sources);
      const volume = await pool.createVolume({ name: 'v', size: 4 * 1024 * 1024, layout, width: layout === 'raid1' ? 2 : layout === 'raid5' ? 4 : 5 });
      const flushed = pattern(7, 4 * 1024 * 1024);
      await volume.write(0, flushed);
      await pool.flush();
      // A storm of unflushed writes; the power goes out at several points while they are in flight.
      const storm = Array.from({ length: 64 }, (_, i) => volume.write(((i * 7919) % 1000) * 4096, pattern(100 + i, 8192 + (i % 3) * 1000)));
      const images: MemoryBlockDevice[][] = [];
      for (const ticks of [1, 3, 6, 10]) {
        for (let t = 0; t < ticks; t++) await new Promise((resolve) => setImmediate(resolve));
        images.push(await Promise.all(sources.map((s) => snapshot(s.device))));
      }
      await Promise.allSettled(storm);
      await pool.close();
      for (const image of images) {
        const { pool: after } = await importPool(image.map((device, i) => ({ uri: `img:${i}`, device })));
        const got = await after.volume('v').read(0, flushed.length);
        // The storm wrote below `untouched`; everything above must be exactly what was flushed.
        const untouched = 1000 * 4096 + 8192 + 2000;
        expect(got.subarray(untouched).equals(flushed.subarray(untouched))).toBe(true);
        // A scrub after reconcile finds nothing to repair: copies, parity and checksums agree.
        let fixed = 0;
        for (const chunk of after.volume('v').chunks) for (let row = 0; row < chunk.rows; row++) fixed += await chunk.repairRow(row);
        expect(fixed, layout).toBe(0);
        await after.close();
      }
    }
  });
});

it('PoolError carries a code', () => {
  expect(new PoolError('NO_SPACE', 'x').code).toBe('NO_SPACE');
});
