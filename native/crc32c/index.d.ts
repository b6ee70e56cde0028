/** CRC32C of `data`, unsigned; `seed` is a previous result to continue from: crc32c(b, crc32c(a)) === crc32c(concat(a, b)). */
export declare function crc32c(data: Uint8Array, seed?: number): number;
/** One CRC32C per `blockBytes` of `data` (a whole number of blocks) into `out[0…]`, in one call. */
export declare function crc32cBlocks(data: Uint8Array, blockBytes: number, out: Uint32Array): void;
/** crc32c on the portable table-driven path, whatever the CPU (for tests and benchmarks). */
export declare function crc32cPortable(data: Uint8Array, seed?: number): number;
/** crc32cBlocks on the portable table-driven path, whatever the CPU. */
export declare function crc32cBlocksPortable(data: Uint8Array, blockBytes: number, out: Uint32Array): void;
/** Whether crc32c and crc32cBlocks use the CPU's CRC32C instruction (SSE4.2). */
export declare const hardware: boolean;
/** The path crc32c and crc32cBlocks take, in words. */
export declare const implementation: string;
/**
 * Reads target.length bytes of file descriptor `fd` at `position` into
 * `target` in a thread-pool thread, which also writes the CRC32C of each
 * `blockBytes` (1 to 131072; target.length a multiple of it) into `crcs`
 * while the bytes are still in its cache. Resolves with the bytes read:
 * fewer only at end of file (blocks past it get no CRC). Rejects with an
 * Error whose `code` names the errno (EIO, EBADF, …). Not on Windows.
 */
export declare function preadBlocks(fd: number, target: Uint8Array, position: number, blockBytes: number, crcs: Uint32Array): Promise<number>;
/** preadBlocks without keeping the bytes: each thread reads into its own small scratch buffer. */
export declare function checksumFileBlocks(fd: number, position: number, length: number, blockBytes: number, crcs: Uint32Array): Promise<number>;
/**
 * Writes data at `position` of file descriptor `fd` in a thread-pool thread,
 * through that thread's 4096-aligned scratch buffer, 1 MiB per pwrite: so an
 * O_DIRECT descriptor takes any buffer. position and data.length must be
 * multiples of 4096 (RangeError). Resolves with data.length; rejects as
 * preadBlocks does (EINVAL: the device wants larger alignment). Not on Windows.
 */
export declare function pwriteAligned(fd: number, data: Uint8Array, position: number): Promise<number>;
