/**
 * DiskBlockDevice: a BlockDevice over a whole block device, opened
 * exclusively.
 *
 * O_EXCL on a block device (without O_CREAT) asks the kernel for an exclusive
 * claim: the open fails with EBUSY while the device is mounted, used as swap,
 * part of md/dm, or opened exclusively by anyone else, and while we hold it
 * nobody can mount it or claim it. O_NOFOLLOW refuses a symlink planted where
 * the node was; the opened node's device number must be the one the
 * inventory listed, and its size (sysfs, in 512-byte sectors: Node has no
 * BLKGETSIZE64 ioctl) the size the inventory listed.
 *
 * I/O goes through the page cache (no O_DIRECT, so any alignment works) and
 * flush() is fdatasync, which on a block device writes the cache back and
 * flushes the disk's write cache. Node cannot issue BLKDISCARD, so trim is
 * not offered and write-zeroes writes zeroes.
 *
 * A disk that vanishes (unplugged, media removed) fails I/O with ENXIO or
 * ENODEV, or reads short because its size dropped; all three become
 * DisconnectedError, and `onGone` tells the owner once so it can stop
 * serving.
 */
import fs, { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { BlockDeviceError, DisconnectedError, type BlockDevice, type BlockDeviceCapabilities, type WriteOptions, type WriteZeroesOptions } from '../main/nbd/block-device.js';
import type { Disk } from './disk-inventory.js';
import { HelperError } from './helper-protocol.js';

const ZERO_CHUNK = 1024 * 1024;

/** glibc's makedev(): how st_rdev encodes major and minor on Linux. */
export function makedev(major: number, minor: number): number {
  return (major & 0xfff) * 256 + (minor & 0xff) + (minor & ~0xff) * 4096 + Math.floor(major / 0x1000) * 2 ** 32;
}

function parseDevno(devno: string): number | null {
  const m = /^(\d+):(\d+)$/.exec(devno);
  return m ? makedev(Number(m[1]), Number(m[2])) : null;
}

const GONE_CODES = new Set(['ENXIO', 'ENODEV', 'ESHUTDOWN', 'EBADF']);

export class DiskBlockDevice implements BlockDevice {
  readonly capabilities: BlockDeviceCapabilities;
  private closed = false;
  private goneReported = false;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly onGone: (reason: string) => void,
  ) {
    this.capabilities = {
      readOnly: false,
      canFlush: true,
      canTrim: false,
      canWriteZeroes: true,
      canFastZero: false,
      canCache: false,
      // One descriptor, one page cache: a flush on any connection covers every write.
      canMultiConn: true,
      minimumBlockSize: 1,
      preferredBlockSize: 4096,
    };
  }

  /** Opens `disk` exclusively and checks that what was opened is the disk the inventory listed. */
  static async open(disk: Disk, onGone: (reason: string) => void = () => {}): Promise<DiskBlockDevice> {
    let fh: FileHandle;
    try {
      fh = await fsp.open(disk.path, fs.constants.O_RDWR | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EBUSY') {
        throw new HelperError('REFUSED_BUSY', `${disk.path} is in use (mounted, swap, an md/dm member, or opened exclusively by another program)`);
      }
      if (code === 'ENOENT' || code === 'ENXIO' || code === 'ENODEV') throw new HelperError('REFUSED_CHANGED', `${disk.path} is gone`);
      if (code === 'EACCES' || code === 'EPERM') throw new HelperError('FAILED', `no permission to open ${disk.path} (the helper needs root for real disks)`);
      throw new HelperError('FAILED', `cannot open ${disk.path}: ${(error as Error).message}`);
    }
    try {
      const st = await fh.stat();
      if (!st.isBlockDevice()) throw new HelperError('REFUSED_CHANGED', `${disk.path} is not a block device`);
      const expected = parseDevno(disk.devno);
      if (expected === null || st.rdev !== expected) {
        throw new HelperError('REFUSED_CHANGED', `${disk.path} is no longer the device the inventory listed (${disk.devno}); list again`);
      }
      const sectors = Number((await fsp.readFile(`/sys/class/block/${disk.kernelName}/size`, 'utf8')).trim());
      const size = sectors * 512;
      if (!Number.isSafeInteger(size) || size !== disk.size) {
        throw new HelperError('REFUSED_CHANGED', `${disk.path} changed size (${disk.size} → ${size} bytes); list again`);
      }
      return new DiskBlockDevice(disk.path, fh, size, onGone);
    } catch (error) {
      await fh.close();
      throw error;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(offset, buf);
    return buf;
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    this.check(offset, target.length);
    let done = 0;
    try {
      while (done < target.length) {
        const { bytesRead } = await this.fh.read(target, done, target.length - done, offset + done);
        if (bytesRead === 0) throw this.gone(`read at ${offset + done} ended early: the device shrank or its media was removed`);
        done += bytesRead;
      }
    } catch (error) {
      throw this.translate(error, `read ${offset}+${target.length}`);
    }
  }

  async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    this.check(offset, data.length);
    try {
      await this.writeAll(data, offset);
      if (options?.fua) await this.fh.datasync();
    } catch (error) {
      throw this.translate(error, `write ${offset}+${data.length}`);
    }
  }

  async flush(): Promise<void> {
    this.check(0, 0);
    try {
      await this.fh.datasync();
    } catch (error) {
      throw this.translate(error, 'flush');
    }
  }

  trim(): Promise<void> {
    return Promise.reject(new BlockDeviceError('ENOTSUP', 'discard is not supported on served disks'));
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    this.check(offset, length);
    if (options?.fastZero) throw new BlockDeviceError('ENOTSUP', 'zeroing a disk is no faster than writing');
    const zero = Buffer.alloc(Math.min(ZERO_CHUNK, length));
    try {
      for (let pos = offset; pos < offset + length; pos += zero.length) {
        await this.writeAll(zero.subarray(0, Math.min(zero.length, offset + length - pos)), pos);
      }
      if (options?.fua) await this.fh.datasync();
    } catch (error) {
      throw this.translate(error, `write zeroes ${offset}+${length}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  private async writeAll(data: Uint8Array, offset: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
      if (bytesWritten === 0) throw this.gone(`write at ${offset + done} made no progress: the device shrank or its media was removed`);
      done += bytesWritten;
    }
  }

  private check(offset: number, length: number): void {
    if (this.closed) throw new DisconnectedError(`${this.path} is no longer served`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockDeviceError('EINVAL', `range ${offset}+${length} outside ${this.path} (${this.size} bytes)`);
    }
  }

  private gone(reason: string): DisconnectedError {
    if (!this.goneReported) {
      this.goneReported = true;
      this.onGone(`${this.path}: ${reason}`);
    }
    return new DisconnectedError(`${this.path}: ${reason}`);
  }

  private translate(error: unknown, what: string): Error {
    if (error instanceof DisconnectedError || error instanceof BlockDeviceError) return error;
    const code = (error as NodeJS.ErrnoException)?.code;
    if (code && GONE_CODES.has(code)) return this.gone(`${what}: ${code} (the device is gone)`);
    if (code === 'ENOSPC') return this.gone(`${what}: past the end of the device (it shrank)`);
    return new BlockDeviceError('EIO', `${what}: ${(error as Error)?.message ?? String(error)}`);
  }
}
