/**
 * CRC32C (Castagnoli, the iSCSI/ext4/Btrfs CRC) of data, one per 4 KiB block:
 * the checksum every data block carries (DESIGN.md, "Data placement").
 *
 * The CRC runs in native code. Our own addon, spindle-crc32c (native/crc32c,
 * Node-API, built by npm at install), takes a whole span and writes one CRC
 * per block in one call, three blocks at a time on independent SSE4.2 crc32
 * chains: one chain waits on the instruction's 3-cycle latency, and a call
 * per block pays the crossing into native per block. One long buffer runs
 * on three chains too, joined by a table-driven shift. Measured with
 * bench/parity.ts on this machine (AMD EPYC, data in cache): over 4 KiB
 * blocks ~23 GiB/s against ~4.5 GiB/s for @node-rs/crc32 called per block
 * (5×); over one 1 MiB buffer ~23 against ~5.8 GiB/s (4×). That is about
 * one crc32 instruction per cycle, the instruction's own limit; more would
 * take carry-less multiply folding (PCLMULQDQ), not done.
 *
 * Where the addon did not build (it is an optional dependency: no compiler),
 * does not load, or has no CRC instruction to use (its portable table path,
 * ~2 GiB/s), @node-rs/crc32 (prebuilt, SSE4.2/ARMv8 instructions) does the
 * same work a call per block, cut from one plain Uint8Array view
 * (cheaper to subarray than a Buffer). CRC32C_IMPLEMENTATION says which runs.
 */
import { createRequire } from 'node:module';
import { crc32c as nodeRsCrc32c } from '@node-rs/crc32';
import type { AlignedWrites, ChecksummedReads } from '../nbd/file-device.js';
import { CHECKSUM_BLOCK } from './checksum-block.js';

/** Bytes covered by one CRC32C (defined once, in checksum-block.ts). */
export { CHECKSUM_BLOCK };

/** What native/crc32c/index.js exports (its index.d.ts, restated so this compiles without the addon). */
export interface Crc32cAddon {
  crc32c(data: Uint8Array, seed?: number): number;
  crc32cBlocks(data: Uint8Array, blockBytes: number, out: Uint32Array): void;
  crc32cPortable(data: Uint8Array, seed?: number): number;
  crc32cBlocksPortable(data: Uint8Array, blockBytes: number, out: Uint32Array): void;
  /** Not on Windows. */
  preadBlocks?: ChecksummedReads['preadBlocks'];
  checksumFileBlocks?: ChecksummedReads['checksumFileBlocks'];
  pwriteAligned?: AlignedWrites['pwriteAligned'];
  readonly hardware: boolean;
  readonly implementation: string;
}

function loadAddon(): Crc32cAddon | undefined {
  try {
    return createRequire(import.meta.url)('spindle-crc32c') as Crc32cAddon;
  } catch {
    return undefined; // not built here: @node-rs/crc32 does the work
  }
}

/** The spindle-crc32c addon, when it loaded. */
export const crc32cAddon: Crc32cAddon | undefined = loadAddon();

/**
 * The addon when it uses the CPU's CRC32C instruction. On its portable path
 * (no SSE4.2, or not x86-64: ~2 GiB/s) @node-rs/crc32 is faster, with its
 * own instructions (ARMv8 CRC too), even a call per block.
 */
const fast = crc32cAddon?.hardware ? crc32cAddon : undefined;

/**
 * Reads of image files that checksum in the thread pool as they read
 * (FileBlockDevice's readIntoCrc32c and crc32cBlocks), when the addon runs
 * on its hardware path. With fs.read the main thread checksums afterwards,
 * alone, from memory: bench/jobs scrubs ran at ~0.6 of dd's rate that way.
 * They take O_DIRECT descriptors too (through aligned scratch of their
 * own), for slab moves' source reads (BulkReadOptions.uncached).
 */
export const checksummedReads: ChecksummedReads | undefined =
  fast?.preadBlocks && fast.checksumFileBlocks
    ? { preadBlocks: fast.preadBlocks, checksumFileBlocks: fast.checksumFileBlocks, crc32cBlocks: fast.crc32cBlocks, direct: true }
    : undefined;

/**
 * Writes that take any buffer on an O_DIRECT descriptor (FileBlockDevice's
 * writeUncached, which jobs' copies use), wherever the addon loaded: it
 * lives here because the addon is the engine's one piece of native code.
 */
export const alignedWrites: AlignedWrites | undefined = crc32cAddon?.pwriteAligned ? { pwriteAligned: crc32cAddon.pwriteAligned } : undefined;

/** Which CRC32C code runs, for benchmarks and reports. */
export const CRC32C_IMPLEMENTATION: string = fast
  ? `spindle-crc32c (${fast.implementation})`
  : `@node-rs/crc32 (${crc32cAddon ? `spindle-crc32c is on its ${crc32cAddon.implementation} path` : 'spindle-crc32c did not load'})`;

/** crc32c with @node-rs/crc32: the fallback, exported for tests and bench/parity.ts. */
export function crc32cNodeRs(data: Uint8Array, seed?: number): number {
  // The call takes its seed as a signed 32-bit integer.
  return nodeRsCrc32c(data, seed === undefined ? undefined : seed | 0) >>> 0;
}

/** The addon's crc32cBlocks with @node-rs/crc32, a call per block: same checks and messages. The fallback. */
export function crc32cBlocksNodeRs(data: Uint8Array, blockBytes: number, out: Uint32Array): void {
  if (data.length % blockBytes !== 0) throw new RangeError(`crc32cBlocks: length ${data.length} is not a multiple of ${blockBytes}`);
  const blocks = data.length / blockBytes;
  if (out.length < blocks) throw new RangeError(`crc32cBlocks: out holds ${out.length} CRCs, ${blocks} needed`);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.length);
  for (let b = 0; b < blocks; b++) out[b] = nodeRsCrc32c(bytes.subarray(b * blockBytes, (b + 1) * blockBytes)) >>> 0;
}

/**
 * CRC32C of all of `data`, as an unsigned 32-bit number ("123456789" →
 * 0xe3069283). `seed` is a previous result to continue from (taken modulo
 * 2^32): crc32c(b, crc32c(a)) === crc32c(concat(a, b)).
 */
export const crc32c: (data: Uint8Array, seed?: number) => number = fast ? fast.crc32c : crc32cNodeRs;

const blocksInto: (data: Uint8Array, blockBytes: number, out: Uint32Array) => void = fast ? fast.crc32cBlocks : crc32cBlocksNodeRs;

/**
 * One CRC32C per CHECKSUM_BLOCK of `data` (whose length must be a whole
 * number of blocks), written into `out` when given (it must have room for
 * them) and returned. One native call for the whole span.
 */
export function crc32cBlocks(data: Uint8Array, out?: Uint32Array): Uint32Array {
  const crcs = out ?? new Uint32Array(Math.floor(data.length / CHECKSUM_BLOCK));
  blocksInto(data, CHECKSUM_BLOCK, crcs);
  return crcs;
}

let scratch = new Uint32Array(64);

/**
 * crc32cBlocks of exactly `blocks` blocks into an array shared by the whole
 * module, grown when needed: for verify loops that compare at once. The
 * result is only good until the next call, so never keep it across an await
 * (or a call that could checksum). A `data` of another length throws, so no
 * CRC left from an earlier call is ever read as this one's.
 */
export function crc32cBlocksScratch(data: Uint8Array, blocks: number): Uint32Array {
  if (data.length !== blocks * CHECKSUM_BLOCK) throw new RangeError(`crc32cBlocksScratch: ${data.length} bytes are not ${blocks} blocks`);
  if (scratch.length < blocks) scratch = new Uint32Array(Math.max(blocks, scratch.length * 2));
  blocksInto(data, CHECKSUM_BLOCK, scratch);
  return scratch;
}
