/**
 * CRC32C (Castagnoli, the iSCSI/ext4/Btrfs CRC) of data, one per 4 KiB block:
 * the checksum every data block carries (DESIGN.md, "Data placement").
 *
 * The CRC itself runs in native code (@node-rs/crc32, SSE4.2/ARMv8 CRC
 * instructions): per 4 KiB block it measured 2.7-4.4× a table-driven JS
 * slice-by-8 on this machine (bench/parity.ts prints both). The per-call cost
 * of crossing into native dominates at 4 KiB, so blocks are cut from one
 * plain Uint8Array view (cheaper to subarray than a Buffer) and no other
 * object is made per block.
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { CHECKSUM_BLOCK } from './checksum-block.js';

/** Bytes covered by one CRC32C (defined once, in checksum-block.ts). */
export { CHECKSUM_BLOCK };

/** CRC32C of all of `data`, as an unsigned 32-bit number ("123456789" → 0xe3069283). */
export function crc32c(data: Uint8Array, seed?: number): number {
  // The native call takes its seed as a signed 32-bit integer.
  return nativeCrc32c(data, seed === undefined ? undefined : seed | 0) >>> 0;
}

/**
 * One CRC32C per CHECKSUM_BLOCK of `data` (whose length must be a whole
 * number of blocks), written into `out` when given (it must have room for
 * them) and returned.
 */
export function crc32cBlocks(data: Uint8Array, out?: Uint32Array): Uint32Array {
  if (data.length % CHECKSUM_BLOCK !== 0) {
    throw new RangeError(`crc32cBlocks: length ${data.length} is not a multiple of ${CHECKSUM_BLOCK}`);
  }
  const blocks = data.length / CHECKSUM_BLOCK;
  const crcs = out ?? new Uint32Array(blocks);
  if (crcs.length < blocks) throw new RangeError(`crc32cBlocks: out holds ${crcs.length} CRCs, ${blocks} needed`);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.length);
  for (let b = 0; b < blocks; b++) {
    crcs[b] = nativeCrc32c(bytes.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK));
  }
  return crcs;
}
