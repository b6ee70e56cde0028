/**
 * FileBlockDevice: a BlockDevice over a regular image file.
 *
 * All I/O is positional (pread/pwrite through fs.promises FileHandle), so
 * any number of requests, from any number of NBD connections, may run at
 * once on the one descriptor; they share the kernel page cache, and a flush
 * (fdatasync) makes every completed write durable whichever connection made
 * it, which is what CAN_MULTI_CONN promises.
 *
 * The FileHandle owns the descriptor (and closes it); the I/O itself goes
 * through fs.read/fs.write callbacks on its fd, which cost about half as much
 * event-loop time per request as FileHandle.read/write promises, and that
 * per-request cost is what bounds small random I/O. close() waits for
 * requests in flight before closing the descriptor.
 *
 * Node has no fallocate(): trim and write-zeroes write real zeroes (from one
 * shared zero buffer), so neither punches holes, "fast zero" always fails at
 * once with ENOTSUP as the spec permits, and there is no blockStatus (no
 * SEEK_DATA either); the server then reports every range as allocated.
 */
import fs, { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import {
  BlockDeviceError,
  DisconnectedError,
  type BlockDevice,
  type BlockDeviceCapabilities,
  type BulkReadOptions,
  type NbdErrno,
  type WriteOptions,
  type WriteZeroesOptions,
} from './block-device.js';

/** 1 MiB: large enough that zeroing runs near disk speed, small enough to share. */
const ZERO_CHUNK = 1024 * 1024;
let zeroBuffer: Buffer | undefined;

function zeroes(): Buffer {
  zeroBuffer ??= Buffer.alloc(ZERO_CHUNK);
  return zeroBuffer;
}

export interface FileBlockDeviceOptions {
  readonly readOnly?: boolean;
  /**
   * Native reads that checksum as they go; when given, the device offers
   * readIntoCrc32c and crc32cBlocks. The engine passes spindle-crc32c's.
   */
  readonly checksummedReads?: ChecksummedReads;
  /**
   * A native positional write that takes any buffer on an O_DIRECT
   * descriptor (spindle-crc32c's pwriteAligned); when given (and the
   * platform has O_DIRECT), the device offers writeUncached.
   */
  readonly alignedWrites?: AlignedWrites;
}

/** Writes through an aligned bounce buffer: position and data.length multiples of 4096; resolves with the bytes written. */
export interface AlignedWrites {
  pwriteAligned(fd: number, data: Uint8Array, position: number): Promise<number>;
}

/** What pwriteAligned needs of offsets and lengths (the largest logical block size of common devices). */
const DIRECT_ALIGN = 4096;

/**
 * Reads that CRC32C each block in the thread that read it (spindle-crc32c's
 * preadBlocks and checksumFileBlocks). Both resolve with the bytes read:
 * fewer than asked only at end of file. Errors carry fs-style codes.
 */
export interface ChecksummedReads {
  preadBlocks(fd: number, target: Uint8Array, position: number, blockBytes: number, crcs: Uint32Array): Promise<number>;
  checksumFileBlocks(fd: number, position: number, length: number, blockBytes: number, crcs: Uint32Array): Promise<number>;
  /** CRC32C per block in this thread: for the zeroes past a short read. */
  crc32cBlocks(data: Uint8Array, blockBytes: number, crcs: Uint32Array): void;
  /**
   * The reads take an O_DIRECT descriptor (reading through aligned memory
   * of their own): the device then gives them one for reads asked to be
   * uncached (BulkReadOptions).
   */
  readonly direct?: boolean;
}

/** fs error codes → the NBD errno a client should see. */
function toDeviceError(err: unknown, what: string): Error {
  if (err instanceof BlockDeviceError || err instanceof DisconnectedError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  let errno: NbdErrno = 'EIO';
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') errno = 'ENOSPC';
  else if (code === 'EROFS' || code === 'EPERM' || code === 'EACCES') errno = 'EPERM';
  else if (code === 'ENOMEM') errno = 'ENOMEM';
  else if (code === 'EBADF') return new DisconnectedError(`${what}: file is closed`);
  return new BlockDeviceError(errno, `${what}: ${(err as Error)?.message ?? String(err)}`);
}

export class FileBlockDevice implements BlockDevice {
  readonly size: number;
  readonly capabilities: BlockDeviceCapabilities;
  readonly path: string;
  private readonly fh: FileHandle;
  private readonly fd: number;
  private closed = false;
  /** Requests using the descriptor right now; close() waits for them. */
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  readonly readIntoCrc32c?: (offset: number, target: Buffer, blockBytes: number, crcs: Uint32Array, options?: BulkReadOptions) => Promise<void>;
  readonly crc32cBlocks?: (offset: number, length: number, blockBytes: number, crcs: Uint32Array, options?: BulkReadOptions) => Promise<void>;
  readonly writeUncached?: (offset: number, data: Uint8Array) => Promise<void>;
  /** The O_DIRECT descriptor of writeUncached and uncached checksummed reads, opened at first use (undefined where it cannot be). */
  private direct: Promise<FileHandle | undefined> | undefined;
  /** Cleared once the descriptor refused a request; it stays open (requests may be under way on it) until close(). */
  private directUsable = true;

  private constructor(path: string, fh: FileHandle, size: number, readOnly: boolean, options: FileBlockDeviceOptions) {
    const checksummed = options.checksummedReads;
    this.path = path;
    this.fh = fh;
    this.fd = fh.fd;
    this.size = size;
    this.capabilities = {
      readOnly,
      canFlush: true,
      canTrim: !readOnly,
      canWriteZeroes: !readOnly,
      canFastZero: !readOnly,
      canCache: true,
      canMultiConn: true,
      minimumBlockSize: 1,
      preferredBlockSize: 4096,
    };
    if (checksummed) {
      this.readIntoCrc32c = (offset, target, blockBytes, crcs, how) =>
        this.checksummedRead(offset, target.length, blockBytes, crcs, (fd) => checksummed.preadBlocks(fd, target, offset, blockBytes, crcs), target, checksummed, how);
      this.crc32cBlocks = (offset, length, blockBytes, crcs, how) =>
        this.checksummedRead(offset, length, blockBytes, crcs, (fd) => checksummed.checksumFileBlocks(fd, offset, length, blockBytes, crcs), undefined, checksummed, how);
    }
    const aligned = options.alignedWrites;
    if (aligned && !readOnly && fs.constants.O_DIRECT !== undefined) {
      this.writeUncached = (offset, data) => this.uncachedWrite(offset, data, aligned);
    }
  }

  /** Opens an existing regular file; throws a clear Error for missing files and directories. */
  static async open(path: string, options: FileBlockDeviceOptions = {}): Promise<FileBlockDevice> {
    const readOnly = options.readOnly ?? false;
    let st;
    try {
      st = await fsp.stat(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new Error(`image file not found: ${path}`);
      throw new Error(`cannot open image file ${path}: ${(err as Error).message}`);
    }
    if (st.isDirectory()) throw new Error(`${path} is a directory, not an image file`);
    if (!st.isFile()) throw new Error(`${path} is not a regular file (only image files are supported)`);
    let fh: FileHandle;
    try {
      fh = await fsp.open(path, readOnly ? 'r' : 'r+');
    } catch (err) {
      throw new Error(`cannot open image file ${path}: ${(err as Error).message}`);
    }
    return new FileBlockDevice(path, fh, st.size, readOnly, options);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(offset, buf);
    return buf;
  }

  /**
   * Written with one Promise and plain callbacks rather than async/await:
   * for 4 KiB random reads the promise hops cost as much as the pread.
   */
  readInto(offset: number, buf: Buffer): Promise<void> {
    const length = buf.length;
    try {
      this.check(offset, length);
    } catch (err) {
      return Promise.reject(err);
    }
    this.active++;
    return new Promise<void>((resolve, reject) => {
      fs.read(this.fd, buf, 0, length, offset, (err, n) => {
        if (!err && n === length) {
          this.idle();
          resolve();
        } else {
          // A short read or an error: the rare path, with async/await.
          this.finishRead(err, n, buf, offset).then(resolve, reject);
        }
      });
    });
  }

  /**
   * readIntoCrc32c / crc32cBlocks: `read(fd)` reads and checksums it all
   * (the native side loops over short reads until end of file): on the
   * O_DIRECT descriptor when asked for an uncached read of whole 4 KiB
   * blocks and the reads take one (else, or after an EINVAL, on the usual
   * one). Short of the end (the file shrank under us), the rest reads as
   * zeroes, as in readInto, and the blocks from the one the file ends in
   * are read and checksummed here.
   */
  private async checksummedRead(
    offset: number,
    length: number,
    blockBytes: number,
    crcs: Uint32Array,
    read: (fd: number) => Promise<number>,
    target: Buffer | undefined,
    checksummed: ChecksummedReads,
    how: BulkReadOptions | undefined,
  ): Promise<void> {
    this.check(offset, length);
    if (!Number.isInteger(blockBytes) || blockBytes <= 0 || length % blockBytes !== 0 || crcs.length < length / blockBytes) {
      throw new BlockDeviceError('EINVAL', `checksummed read of ${length} bytes in ${blockBytes}-byte blocks into ${crcs.length} CRCs`);
    }
    this.active++;
    try {
      const direct = how?.uncached && checksummed.direct && offset % DIRECT_ALIGN === 0 && length % DIRECT_ALIGN === 0 ? await this.directHandle() : undefined;
      let n: number | undefined;
      if (direct) n = await read(direct.fd).catch((err: unknown) => this.refusedDirect(err));
      n ??= await read(this.fd);
      if (n < length) {
        const from = n - (n % blockBytes);
        const tail = target ? target.subarray(from) : Buffer.allocUnsafe(length - from);
        await this.preadToEnd(tail, 0, offset + from);
        checksummed.crc32cBlocks(tail, blockBytes, crcs.subarray(from / blockBytes));
      }
    } catch (e) {
      throw toDeviceError(e, `read ${offset}+${length}`);
    } finally {
      this.idle();
    }
  }

  private async finishRead(err: NodeJS.ErrnoException | null, n: number, buf: Buffer, offset: number): Promise<void> {
    const length = buf.length;
    try {
      if (err) throw err;
      await this.preadToEnd(buf, n, offset);
    } catch (e) {
      throw toDeviceError(e, `read ${offset}+${length}`);
    } finally {
      this.idle();
    }
  }

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    try {
      this.checkWrite(offset, data.length);
    } catch (err) {
      return Promise.reject(err);
    }
    if (options?.fua) return this.writeSlow(offset, data, options);
    // The common case in one Promise with callbacks, as in readInto().
    this.active++;
    return new Promise<void>((resolve, reject) => {
      fs.write(this.fd, data, 0, data.length, offset, (err, n) => {
        if (err) {
          this.idle();
          reject(toDeviceError(err, `write ${offset}+${data.length}`));
        } else if (n < data.length) {
          this.writeAll(data.subarray(n), offset + n).then(
            () => (this.idle(), resolve()),
            (e: unknown) => (this.idle(), reject(toDeviceError(e, `write ${offset}+${data.length}`))),
          );
        } else {
          this.idle();
          resolve();
        }
      });
    });
  }

  private async writeSlow(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    this.active++;
    try {
      await this.writeAll(data, offset);
      if (options?.fua) await this.fh.datasync();
    } catch (err) {
      throw toDeviceError(err, `write ${offset}+${data.length}`);
    } finally {
      this.idle();
    }
  }

  /**
   * writeUncached: through a second descriptor opened O_DIRECT, which Linux
   * keeps coherent with the page cache of the first (cached pages of the
   * range are written back before and dropped after). Where that cannot be
   * (a file system without O_DIRECT, such as tmpfs before Linux 6.6; a
   * device that wants larger alignment; offsets or lengths not multiples of
   * 4 KiB), the write goes through the page cache as write() does, and
   * after an open or an EINVAL that says the file system will not, always.
   * fdatasync on the first descriptor (flush) covers both: it flushes the
   * file, not the descriptor.
   */
  private async uncachedWrite(offset: number, data: Uint8Array, aligned: AlignedWrites): Promise<void> {
    this.checkWrite(offset, data.length);
    if (offset % DIRECT_ALIGN !== 0 || data.length % DIRECT_ALIGN !== 0) return this.write(offset, data);
    this.active++;
    try {
      const direct = await this.directHandle();
      if (direct) {
        const written = await aligned.pwriteAligned(direct.fd, data, offset).catch((err: unknown) => this.refusedDirect(err));
        if (written !== undefined) return;
      }
      await this.writeAll(data, offset);
    } catch (err) {
      throw toDeviceError(err, `write ${offset}+${data.length}`);
    } finally {
      this.idle();
    }
  }

  /** The O_DIRECT descriptor, opened at first use; undefined where the file system refuses one (tmpfs before Linux 6.6) or once it refused a request. */
  private async directHandle(): Promise<FileHandle | undefined> {
    const flags = (this.capabilities.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR) | fs.constants.O_DIRECT;
    this.direct ??= fsp.open(this.path, flags).catch(() => undefined);
    const direct = await this.direct;
    return this.directUsable ? direct : undefined;
  }

  /**
   * A request on the O_DIRECT descriptor failed: EINVAL means the file
   * system or device will not take it (alignment), so from now on every
   * request goes through the page cache, and the caller retries there
   * (resolves undefined); any other error is the request's.
   */
  private refusedDirect(err: unknown): undefined {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    this.directUsable = false;
    return undefined;
  }

  async flush(): Promise<void> {
    this.check(0, 0);
    this.active++;
    try {
      await this.fh.datasync();
    } catch (err) {
      throw toDeviceError(err, 'flush');
    } finally {
      this.idle();
    }
  }

  async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    await this.writeZeroes(offset, length, options);
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    this.checkWrite(offset, length);
    if (options?.fastZero) throw new BlockDeviceError('ENOTSUP', 'zeroing an image file is no faster than writing');
    const z = zeroes();
    this.active++;
    try {
      let pos = offset;
      const end = offset + length;
      while (pos < end) {
        const n = Math.min(z.length, end - pos);
        await this.writeAll(n === z.length ? z : z.subarray(0, n), pos);
        pos += n;
      }
      if (options?.fua) await this.fh.datasync();
    } catch (err) {
      throw toDeviceError(err, `write zeroes ${offset}+${length}`);
    } finally {
      this.idle();
    }
  }

  /** Reads the range once so that it sits in the page cache. */
  async cache(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    const scratch = Buffer.allocUnsafe(Math.min(length, ZERO_CHUNK));
    this.active++;
    try {
      let pos = offset;
      const end = offset + length;
      while (pos < end) {
        const n = await this.pread(scratch, 0, Math.min(scratch.length, end - pos), pos);
        if (n === 0) break;
        pos += n;
      }
    } catch (err) {
      throw toDeviceError(err, `cache ${offset}+${length}`);
    } finally {
      this.idle();
    }
  }

  /** Waits for requests in flight, then closes the file. Later calls reject with DisconnectedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.active > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    const direct = await this.direct;
    await direct?.close().catch(() => {});
    await this.fh.close();
  }

  private idle(): void {
    this.active--;
    if (this.active === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * Fills buf[from…] with the file's bytes from position + from on; short of
   * the end (the file shrank under us), the rest reads as zeroes.
   */
  private async preadToEnd(buf: Buffer, from: number, position: number): Promise<void> {
    let done = from;
    while (done < buf.length) {
      const n = await this.pread(buf, done, buf.length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    buf.fill(0, done);
  }

  private pread(buf: Buffer, at: number, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      fs.read(this.fd, buf, at, length, position, (err, n) => (err ? reject(err) : resolve(n)));
    });
  }

  private async writeAll(data: Uint8Array, offset: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      done += await new Promise<number>((resolve, reject) => {
        fs.write(this.fd, data, done, data.length - done, offset + done, (err, n) => (err ? reject(err) : resolve(n)));
      });
    }
  }

  private check(offset: number, length: number): void {
    if (this.closed) throw new DisconnectedError(`image file ${this.path} is closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockDeviceError('EINVAL', `range ${offset}+${length} outside ${this.path} (${this.size} bytes)`);
    }
  }

  private checkWrite(offset: number, length: number): void {
    this.check(offset, length);
    if (this.capabilities.readOnly) throw new BlockDeviceError('EPERM', `${this.path} is opened read-only`);
  }
}
