/**
 * Simulated silent corruption, for demo and test pools: flips bytes of one
 * copy (or one column) of the 4 KiB block that holds a volume offset,
 * writing straight to the member's device behind the engine's back. The
 * block's stored checksum is left alone, so the next read of it finds the
 * mismatch, serves the data from another copy or from parity, counts a
 * checksum error against the member and queues the repair.
 *
 * The copy chosen is the one a read of that row tries first (chunk-io.ts
 * spreads mirror reads over the copies by row), so the damage is seen at once.
 */
import { CHECKSUM_BLOCK } from '../engine/checksum-block.js';
import { mirrorTurn } from '../engine/chunk-io.js';
import { STRIPE_UNIT } from '../engine/layout.js';
import { layouts } from '../engine/layouts.js';
import type { Pool } from '../engine/pool.js';
import { UNWRITTEN } from '../engine/slab-checksums.js';
import type { CorruptionDone } from '../../preload/api.js';

/** Bytes flipped: enough to see in a hex dump, inside one block. */
const FLIP_BYTES = 16;

export class CorruptionRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptionRefusedError';
  }
}

export async function corruptBlock(pool: Pool, volumeName: string, offset: number): Promise<CorruptionDone> {
  const volume = pool.volume(volumeName);
  if (offset >= volume.size) {
    throw new CorruptionRefusedError(`offset ${offset} is past the end of volume ${volumeName} (${volume.size} bytes)`);
  }
  let chunkStart = 0;
  let chunkIndex = 0;
  while (offset >= chunkStart + volume.chunks[chunkIndex]!.capacity) chunkStart += volume.chunks[chunkIndex++]!.capacity;
  const chunk = volume.chunks[chunkIndex]!;
  const inChunk = offset - chunkStart;
  const row = Math.floor(inChunk / chunk.rowBytes);
  const inRow = inChunk - row * chunk.rowBytes;
  const unit = Math.floor(inRow / STRIPE_UNIT);
  const copies = layouts[chunk.spec.name].row(chunk.spec, row).data[unit]!;
  const readOrder = copies.map((_, i) => copies[(i + mirrorTurn(row)) % copies.length]!);
  const column = readOrder.find((c) => chunk.columns[c]!.member.usable);
  if (column === undefined) throw new CorruptionRefusedError(`no online member holds offset ${offset} of volume ${volumeName}`);
  const { member, slab } = chunk.columns[column]!;
  const block = (row * STRIPE_UNIT + (inRow % STRIPE_UNIT)) / CHECKSUM_BLOCK;
  const blockIndex = Math.floor(block);
  const table = await pool.checksums.table(member, slab, chunk.id);
  if (table.entries[blockIndex] === UNWRITTEN) {
    // An unwritten block reads as zeroes without touching the disk: damage there would never be seen.
    throw new CorruptionRefusedError(`offset ${offset} of volume ${volumeName} has never been written; write it first`);
  }
  const blockOffset = member.slabOffset(slab, blockIndex * CHECKSUM_BLOCK);
  const within = Math.min(offset % CHECKSUM_BLOCK, CHECKSUM_BLOCK - FLIP_BYTES);
  const deviceOffset = blockOffset + within;
  const device = member.device!;
  const bytes = await device.read(deviceOffset, FLIP_BYTES);
  for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i]! ^ 0xff;
  await device.write(deviceOffset, bytes, { fua: true });
  return { pool: pool.name, volume: volumeName, offset, member: member.uuid, slab, deviceOffset, bytes: FLIP_BYTES };
}
