/**
 * BlockDevice: the one interface below a volume.
 *
 * Everything that stores bytes in Spindle is a BlockDevice: an NBD client
 * connection to a member disk, an image file, a memory buffer in tests, and a
 * volume itself (which the NBD server then exports). Quantities are bytes.
 *
 * Contract every implementation keeps:
 * - `offset + length <= size`; callers validate first (the NBD server does),
 *   implementations may still throw BlockDeviceError('EINVAL') defensively.
 * - A write resolved with `fua: true` is durable (on stable storage) when the
 *   promise resolves; without it, only after a later `flush()` resolves.
 * - write() borrows `data` only until its promise settles: the NBD server
 *   reuses payload buffers after that, so a device that keeps bytes longer
 *   (a cache, a queue) must copy them.
 * - Failures reject with BlockDeviceError carrying an NBD errno name, or with
 *   DisconnectedError when the device is gone for good (the engine marks the
 *   member failed on the latter, and counts the former).
 */
export interface BlockDevice {
  /** Size in bytes; fixed for the life of the object. */
  readonly size: number;
  readonly capabilities: BlockDeviceCapabilities;
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * `data` is lent for the duration of the call: the caller (the NBD server)
   * reuses the buffer once the promise settles, so an implementation that
   * keeps the bytes longer (a cache, a queue) must copy them.
   */
  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void>;
  flush(): Promise<void>;
  /** Discard a range: later reads return unspecified data (zeroes, for ours). */
  trim(offset: number, length: number, options?: WriteOptions): Promise<void>;
  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void>;
  /** Prefetch hint; optional. */
  cache?(offset: number, length: number): Promise<void>;
  /** Allocation map of a range (NBD `base:allocation`); optional. */
  blockStatus?(offset: number, length: number): Promise<Extent[]>;
  /**
   * Optional fast path of read(): fills `target` (target.length bytes from
   * `offset`) instead of allocating. The NBD server uses it with pooled
   * buffers, because a fresh multi-megabyte Buffer per request costs more
   * than the I/O itself. Same errors as read().
   */
  readInto?(offset: number, target: Buffer): Promise<void>;
  /**
   * Optional: reads the bytes at `offset` into `targets`, filled one after
   * the other, as one device request (a member's run of stripe units, each
   * unit going to its own place in a volume's reply). Same errors as read().
   */
  readv?(offset: number, targets: readonly Buffer[]): Promise<void>;
  /** Optional: writes `parts` back to back from `offset` as one device request. Same errors as write(). */
  writev?(offset: number, parts: readonly Uint8Array[], options?: WriteOptions): Promise<void>;
  /**
   * Optional: readInto() that also writes the CRC32C of each `blockBytes` of
   * `target` into `crcs` (target.length must be a whole number of blocks),
   * computed where the bytes were read, while they are still in cache. Same
   * errors as read().
   */
  readIntoCrc32c?(offset: number, target: Buffer, blockBytes: number, crcs: Uint32Array, options?: BulkReadOptions): Promise<void>;
  /**
   * Optional: the CRC32C of each `blockBytes` from `offset` into `crcs`,
   * without handing the bytes back (a verify pass that needs only the
   * checksums). Same errors as read().
   */
  crc32cBlocks?(offset: number, length: number, blockBytes: number, crcs: Uint32Array, options?: BulkReadOptions): Promise<void>;
  /**
   * Optional: write() for bulk data nobody will read soon (a job's copy
   * onto a spare), which may go around the host's page cache (O_DIRECT)
   * rather than pile up there as dirty pages for a flush to write back in
   * one burst. Durable, like write(), only after flush(). Same errors as
   * write().
   */
  writeUncached?(offset: number, data: Uint8Array): Promise<void>;

  close(): Promise<void>;
}

/** How a bulk read (readIntoCrc32c, crc32cBlocks) may be done. */
export interface BulkReadOptions {
  /**
   * Bytes read once, to be copied elsewhere (a slab move's source): the
   * device may read around its page cache (O_DIRECT), as writeUncached
   * writes.
   */
  readonly uncached?: boolean;
}

export interface BlockDeviceCapabilities {
  readonly readOnly: boolean;
  /** Writes may be cached until flush: the server must advertise SEND_FLUSH/FUA. */
  readonly canFlush: boolean;
  readonly canTrim: boolean;
  readonly canWriteZeroes: boolean;
  /** writeZeroes with fastZero either is fast or fails with ENOTSUP at once. */
  readonly canFastZero: boolean;
  readonly canCache: boolean;
  /**
   * Several connections to this device see one consistent cache: a flush on
   * any connection makes writes completed on all of them durable (NBD's
   * CAN_MULTI_CONN). Only claim it when true.
   */
  readonly canMultiConn: boolean;
  /** Smallest I/O unit the device handles without read-modify-write; power of two. */
  readonly minimumBlockSize: number;
  readonly preferredBlockSize: number;
}

export interface WriteOptions {
  /** Force unit access: durable before the promise resolves. */
  readonly fua?: boolean;
}

export interface WriteZeroesOptions extends WriteOptions {
  /** The range must read back as zeroes but must not be deallocated. */
  readonly noHole?: boolean;
  /** Fail with ENOTSUP instead of falling back to slow writes. */
  readonly fastZero?: boolean;
}

/** One run of a block-status reply, in the `base:allocation` context. */
export interface Extent {
  readonly length: number;
  /** NBD_STATE_HOLE (1) and NBD_STATE_ZERO (2) bits. */
  readonly flags: number;
}

/** The errno names the NBD protocol can carry on the wire. */
export type NbdErrno =
  | 'EPERM'
  | 'EIO'
  | 'ENOMEM'
  | 'EINVAL'
  | 'ENOSPC'
  | 'EOVERFLOW'
  | 'ENOTSUP'
  | 'ESHUTDOWN';

/** A request failed; the device is still usable for other requests. */
export class BlockDeviceError extends Error {
  readonly errno: NbdErrno;
  constructor(errno: NbdErrno, message: string) {
    super(`${errno}: ${message}`);
    this.name = 'BlockDeviceError';
    this.errno = errno;
  }
}

/** The device is gone (connection lost, closed): every pending and later request fails. */
export class DisconnectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DisconnectedError';
  }
}
