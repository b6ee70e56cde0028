import { describe, expect, it } from 'vitest';
import { BlockDeviceError, DisconnectedError } from './block-device.js';
import { MemoryBlockDevice } from './memory-device.js';

describe('MemoryBlockDevice', () => {
  it('reads back what was written, across page boundaries, and zeroes elsewhere', async () => {
    const d = new MemoryBlockDevice(1 << 20);
    const data = Buffer.alloc(100_000, 0x5a);
    await d.write(60_000, data);
    expect((await d.read(60_000, data.length)).equals(data)).toBe(true);
    expect((await d.read(0, 60_000)).equals(Buffer.alloc(60_000))).toBe(true);
  });

  it('reports holes for never-written pages and data for written ones', async () => {
    const d = new MemoryBlockDevice(4 * 65536);
    await d.write(65536, Buffer.alloc(10, 1));
    expect(await d.blockStatus(0, 4 * 65536)).toEqual([
      { length: 65536, flags: 3 },
      { length: 65536, flags: 0 },
      { length: 2 * 65536, flags: 3 },
    ]);
  });

  it('trim frees whole pages and zeroes partial ones', async () => {
    const d = new MemoryBlockDevice(4 * 65536);
    await d.write(0, Buffer.alloc(4 * 65536, 7));
    await d.trim(100, 65536 * 2);
    expect(d.allocatedBytes).toBe(3 * 65536);
    const r = await d.read(0, 4 * 65536);
    expect(r[99]).toBe(7);
    expect(r.subarray(100, 100 + 2 * 65536).equals(Buffer.alloc(2 * 65536))).toBe(true);
    expect(r[100 + 2 * 65536]).toBe(7);
  });

  it('writeZeroes with noHole keeps pages allocated', async () => {
    const d = new MemoryBlockDevice(2 * 65536);
    await d.writeZeroes(0, 2 * 65536, { noHole: true });
    expect(d.allocatedBytes).toBe(2 * 65536);
    expect(await d.blockStatus(0, 2 * 65536)).toEqual([{ length: 2 * 65536, flags: 0 }]);
    await d.writeZeroes(0, 2 * 65536);
    expect(d.allocatedBytes).toBe(0);
  });

  it('refuses out-of-range and read-only writes, and everything after close', async () => {
    const d = new MemoryBlockDevice(4096);
    await expect(d.read(4000, 100)).rejects.toMatchObject({ errno: 'EINVAL' });
    const ro = new MemoryBlockDevice(4096, { readOnly: true });
    await expect(ro.write(0, Buffer.alloc(1))).rejects.toBeInstanceOf(BlockDeviceError);
    await expect(ro.write(0, Buffer.alloc(1))).rejects.toMatchObject({ errno: 'EPERM' });
    await d.close();
    await expect(d.read(0, 1)).rejects.toBeInstanceOf(DisconnectedError);
  });
});
