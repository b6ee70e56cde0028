/**
 * MemoryBlockDevice: a sparse in-memory BlockDevice for tests and demos.
 *
 * Memory is allocated in 64 KiB pages on first write; unallocated pages read
 * as zeroes and are reported as holes by blockStatus, so the device also
 * exercises the server's OFFSET_HOLE and base:allocation paths. One
 * instance may be shared by many connections: every operation completes
 * atomically on the event loop, so the cache is trivially consistent
 * (canMultiConn).
 */
import {
  BlockDeviceError,
  DisconnectedError,
  type BlockDevice,
  type BlockDeviceCapabilities,
  type Extent,
  type WriteOptions,
  type WriteZeroesOptions,
} from './block-device.js';

const PAGE_SIZE = 64 * 1024;
const STATE_HOLE = 1;
const STATE_ZERO = 2;

export interface MemoryBlockDeviceOptions {
  readonly readOnly?: boolean;
  readonly minimumBlockSize?: number;
  readonly preferredBlockSize?: number;
}

export class MemoryBlockDevice implements BlockDevice {
  readonly size: number;
  readonly capabilities: BlockDeviceCapabilities;
  private readonly pages = new Map<number, Buffer>();
  private closed = false;

  constructor(size: number, options: MemoryBlockDeviceOptions = {}) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad device size ${size}`);
    this.size = size;
    this.capabilities = {
      readOnly: options.readOnly ?? false,
      canFlush: true,
      canTrim: true,
      canWriteZeroes: true,
      canFastZero: true,
      canCache: true,
      canMultiConn: true,
      minimumBlockSize: options.minimumBlockSize ?? 1,
      preferredBlockSize: options.preferredBlockSize ?? 4096,
    };
  }

  /** Bytes of pages allocated so far (a test can see trims free memory). */
  get allocatedBytes(): number {
    return this.pages.size * PAGE_SIZE;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length);
    const out = Buffer.alloc(length);
    this.forEachPage(offset, length, (page, pageOff, bufOff, n) => {
      const p = this.pages.get(page);
      if (p) p.copy(out, bufOff, pageOff, pageOff + n);
    });
    return out;
  }

  async write(offset: number, data: Uint8Array, _options?: WriteOptions): Promise<void> {
    this.checkWrite(offset, data.length);
    this.forEachPage(offset, data.length, (page, pageOff, bufOff, n) => {
      let p = this.pages.get(page);
      if (!p) {
        p = Buffer.alloc(PAGE_SIZE);
        this.pages.set(page, p);
      }
      p.set(data.subarray(bufOff, bufOff + n), pageOff);
    });
  }

  async flush(): Promise<void> {
    this.check(0, 0);
  }

  async trim(offset: number, length: number, _options?: WriteOptions): Promise<void> {
    this.checkWrite(offset, length);
    this.punch(offset, length);
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    this.checkWrite(offset, length);
    if (!options?.noHole) {
      this.punch(offset, length);
      return;
    }
    this.forEachPage(offset, length, (page, pageOff, _bufOff, n) => {
      let p = this.pages.get(page);
      if (!p) {
        p = Buffer.alloc(PAGE_SIZE);
        this.pages.set(page, p);
      } else {
        p.fill(0, pageOff, pageOff + n);
      }
    });
  }

  async cache(offset: number, length: number): Promise<void> {
    this.check(offset, length);
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.check(offset, length);
    const extents: { length: number; flags: number }[] = [];
    this.forEachPage(offset, length, (page, _pageOff, _bufOff, n) => {
      const flags = this.pages.has(page) ? 0 : STATE_HOLE | STATE_ZERO;
      const last = extents[extents.length - 1];
      if (last && last.flags === flags) last.length += n;
      else extents.push({ length: n, flags });
    });
    return extents;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pages.clear();
  }

  private punch(offset: number, length: number): void {
    this.forEachPage(offset, length, (page, pageOff, _bufOff, n) => {
      if (n === PAGE_SIZE) this.pages.delete(page);
      else this.pages.get(page)?.fill(0, pageOff, pageOff + n);
    });
  }

  private forEachPage(
    offset: number,
    length: number,
    fn: (page: number, pageOff: number, bufOff: number, n: number) => void,
  ): void {
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const page = Math.floor(pos / PAGE_SIZE);
      const pageOff = pos - page * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - pageOff, end - pos);
      fn(page, pageOff, pos - offset, n);
      pos += n;
    }
  }

  private check(offset: number, length: number): void {
    if (this.closed) throw new DisconnectedError('memory device is closed');
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockDeviceError('EINVAL', `range ${offset}+${length} outside device of ${this.size} bytes`);
    }
  }

  private checkWrite(offset: number, length: number): void {
    this.check(offset, length);
    if (this.capabilities.readOnly) throw new BlockDeviceError('EPERM', 'device is read-only');
  }
}
