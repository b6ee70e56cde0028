import { execFileSync } from 'node:child_process';
import fs, { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DisconnectedError } from '../main/nbd/block-device.js';
import { listDisks, type Disk } from './disk-inventory.js';
import { DiskBlockDevice, makedev } from './disk-device.js';

const MiB = 1024 * 1024;
const rootSkip = process.getuid?.() === 0 ? null : 'needs root for loop devices (losetup)';
const loops: string[] = [];
let dir = '';

function loopDevice(name: string, size = 8 * MiB): { dev: string; image: string } {
  const image = join(dir, name);
  fs.writeFileSync(image, '');
  fs.truncateSync(image, size);
  const dev = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
  loops.push(dev);
  return { dev, image };
}

async function inventoryEntry(dev: string): Promise<Disk> {
  const disk = (await listDisks()).find((d) => d.path === dev);
  if (!disk) throw new Error(`${dev} is not in lsblk's list`);
  return disk;
}

async function openError(disk: Disk): Promise<{ code: string; message: string }> {
  try {
    const device = await DiskBlockDevice.open(disk);
    await device.close();
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error('open succeeded');
}

beforeAll(() => {
  if (!rootSkip) dir = fs.realpathSync(mkdtempSync(join(tmpdir(), 'spindle-disk-device-')));
});
beforeEach((ctx) => {
  if (rootSkip) ctx.skip(rootSkip);
});
afterAll(() => {
  for (const dev of loops) {
    try {
      execFileSync('losetup', ['-d', dev]);
    } catch {
      // already gone
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('DiskBlockDevice', () => {
  it('encodes device numbers as stat does', () => {
    const { dev } = loopDevice('devno.img');
    const [major, minor] = execFileSync('lsblk', ['-dno', 'MAJ:MIN', dev], { encoding: 'utf8' }).trim().split(':').map(Number);
    expect(makedev(major!, minor!)).toBe(fs.statSync(dev).rdev);
    // glibc: minor bits above 8 go to bit 20 and up (an NVMe namespace 259:256).
    expect(makedev(259, 256)).toBe(0x103_00 + (256 << 12));
  });

  it('reads and writes the device, and holds it exclusively until closed', async () => {
    const { dev, image } = loopDevice('io.img');
    const device = await DiskBlockDevice.open(await inventoryEntry(dev));
    expect(device.size).toBe(8 * MiB);
    await device.write(4096, Buffer.alloc(512, 0xa5), { fua: true });
    expect((await device.read(4096, 512)).equals(Buffer.alloc(512, 0xa5))).toBe(true);
    await device.writeZeroes(4096, 256);
    expect((await device.read(4096, 512)).subarray(0, 256).equals(Buffer.alloc(256))).toBe(true);
    expect(fs.readFileSync(image).subarray(4096 + 256, 4096 + 512).equals(Buffer.alloc(256, 0xa5))).toBe(true);
    expect(() => fs.openSync(dev, fs.constants.O_RDWR | fs.constants.O_EXCL)).toThrow(/EBUSY/);
    await device.close();
    fs.closeSync(fs.openSync(dev, fs.constants.O_RDWR | fs.constants.O_EXCL));
    await expect(device.read(0, 512)).rejects.toThrow(DisconnectedError);
  });

  it('refuses a device someone else holds exclusively', async () => {
    const { dev } = loopDevice('busy.img');
    const fd = fs.openSync(dev, fs.constants.O_RDWR | fs.constants.O_EXCL);
    try {
      expect(await openError(await inventoryEntry(dev))).toMatchObject({ code: 'REFUSED_BUSY' });
    } finally {
      fs.closeSync(fd);
    }
  });

  it('refuses when the node is not the device the inventory listed, or its size changed', async () => {
    const { dev } = loopDevice('changed.img');
    const disk = await inventoryEntry(dev);
    expect(await openError({ ...disk, devno: '7:999' })).toMatchObject({ code: 'REFUSED_CHANGED', message: expect.stringMatching(/no longer the device/) });
    expect(await openError({ ...disk, size: disk.size + 512 })).toMatchObject({ code: 'REFUSED_CHANGED', message: expect.stringMatching(/changed size/) });
  });

  it('a device that shrinks under it fails reads as gone and tells its owner once', async () => {
    const { dev, image } = loopDevice('shrink.img');
    const reasons: string[] = [];
    const device = await DiskBlockDevice.open(await inventoryEntry(dev), (reason) => reasons.push(reason));
    fs.truncateSync(image, 0);
    execFileSync('losetup', ['-c', dev]);
    await expect(device.read(MiB, 4096)).rejects.toThrow(DisconnectedError);
    await expect(device.read(2 * MiB, 4096)).rejects.toThrow(DisconnectedError);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/shrank|gone/);
    await device.close();
  });
});
