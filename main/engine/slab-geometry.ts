/**
 * The shape of one slab on a member: user data first, then the CRC32C table
 * of that data, one 4-byte checksum per 4 KiB block, padded to whole blocks.
 *
 *   ┌──────────────── slabSize ─────────────────┐
 *   │ data: dataBlocks × 4 KiB  │ CRC table │pad│
 *   └───────────────────────────┴───────────┴───┘
 *
 * Keeping the checksums inside the slab means a moved slab carries them, and
 * a member can be verified alone. Each 4 KiB table block holds 1022 entries,
 * then the owning chunk's id and a CRC32C of the block seeded with the pool's
 * identity, so a table left by an earlier use of the slab (or old disk
 * content) is told apart from a damaged table of ours. With 256 MiB slabs: 65,472 data blocks and a 256 KiB table (0.1 %).
 */
import { CHECKSUM_BLOCK } from './checksum-block.js';

export interface SlabGeometry {
  /** Bytes of a slab on disk, table included. */
  readonly slabSize: number;
  readonly dataBlocks: number;
  /** Bytes of user data (and parity) a slab holds. */
  readonly dataBytes: number;
  /** Offset of the CRC table inside the slab. */
  readonly tableOffset: number;
  /** Bytes of the table, padded to whole blocks. */
  readonly tableBytes: number;
}

export function slabGeometry(slabSize: number, stripeUnit: number): SlabGeometry {
  if (!Number.isSafeInteger(slabSize) || slabSize % CHECKSUM_BLOCK !== 0) {
    throw new Error(`slab size ${slabSize} is not a whole number of ${CHECKSUM_BLOCK}-byte blocks`);
  }
  const totalBlocks = slabSize / CHECKSUM_BLOCK;
  // The last two u32 of each table block are its owner and check (slab-checksums.ts).
  const checksumsPerBlock = CHECKSUM_BLOCK / 4 - 2;
  // Largest data area whose table fits in the remaining blocks, rounded down
  // to whole stripe units so that rows never straddle the table.
  const unitBlocks = stripeUnit / CHECKSUM_BLOCK;
  let dataBlocks = Math.floor((totalBlocks * checksumsPerBlock) / (checksumsPerBlock + 1));
  dataBlocks -= dataBlocks % unitBlocks;
  const tableBlocks = Math.ceil(dataBlocks / checksumsPerBlock);
  if (dataBlocks <= 0 || dataBlocks + tableBlocks > totalBlocks) {
    throw new Error(`slab size ${slabSize} is too small for one ${stripeUnit}-byte stripe unit and its checksums`);
  }
  return {
    slabSize,
    dataBlocks,
    dataBytes: dataBlocks * CHECKSUM_BLOCK,
    tableOffset: dataBlocks * CHECKSUM_BLOCK,
    tableBytes: tableBlocks * CHECKSUM_BLOCK,
  };
}
