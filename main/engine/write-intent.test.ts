import { describe, expect, it } from 'vitest';
import { MemoryBlockDevice } from '../nbd/memory-device.js';
import { crc32c } from './checksum.js';
import { uuidToBytes } from './on-disk-format.js';
import { ROWS_PER_REGION, WriteIntentLog } from './write-intent.js';

const POOL = '6f1c1d2e-8a47-4c1b-9d0e-2b7f3a9c5e11';

function log(): WriteIntentLog {
  const device = new MemoryBlockDevice(64 * 1024);
  return new WriteIntentLog(POOL, () => [{ device, offset: 0, bytes: 64 * 1024 }], () => Promise.resolve());
}

describe('WriteIntentLog', () => {
  it('a region whose writes all finished before a flush began is clean after it', async () => {
    const intent = log();
    const release = await intent.begin(3, 10);
    release();
    const epoch = intent.flushStarting();
    intent.flushed(epoch);
    expect(intent.dirtyRegionKeys()).toEqual([]);
  });

  it('a write that began before a flush and finished during it keeps its region dirty (the flush may have missed it)', async () => {
    const intent = log();
    const release = await intent.begin(3, 10);
    const epoch = intent.flushStarting();
    release(); // lands while the members are being flushed
    intent.flushed(epoch);
    expect(intent.dirtyRegionKeys()).toEqual(['3:0']);
    const next = intent.flushStarting();
    intent.flushed(next);
    expect(intent.dirtyRegionKeys()).toEqual([]);
  });

  it('a write still running when the flush ends keeps its region dirty', async () => {
    const intent = log();
    const release = await intent.begin(7, 3 * ROWS_PER_REGION + 200);
    const epoch = intent.flushStarting();
    intent.flushed(epoch);
    expect(intent.dirtyRegionKeys()).toEqual(['7:3']);
    release();
  });

  it('reads back the regions it wrote, and reads a record of 64-row regions (written before the size was recorded) as the regions holding them', async () => {
    const device = new MemoryBlockDevice(64 * 1024);
    const targets = [{ device, offset: 0, bytes: 64 * 1024 }];
    const intent = new WriteIntentLog(POOL, () => targets, () => Promise.resolve());
    await intent.begin(2, 5);
    await intent.begin(2, ROWS_PER_REGION + 1);
    expect(await WriteIntentLog.read(POOL, targets)).toEqual({ regions: new Set(['2:0', '2:1']), sequence: 2 });

    // An older record, by hand: version 1, its rowsPerRegion field 0 (64 rows); regions 9:0, 9:17 and 4:31.
    const old = Buffer.alloc(4096);
    old.write('SPNDLWIL', 0, 'latin1');
    old.writeUInt32LE(1, 8);
    old.writeUInt32LE(3, 12);
    old.writeBigUInt64LE(7n, 16);
    uuidToBytes(POOL).copy(old, 24);
    [[9, 0], [9, 17], [4, 31]].forEach(([chunk, index], i) => {
      old.writeUInt32LE(chunk!, 48 + i * 8);
      old.writeUInt32LE(index!, 52 + i * 8);
    });
    old.writeUInt32LE(crc32c(old.subarray(0, 48 + 3 * 8)), 40);
    const slot = 32 * 1024; // slot 1 holds odd sequences
    await device.write(slot, old);
    const read = await WriteIntentLog.read(POOL, targets);
    expect(read.sequence).toBe(7);
    // Rows 0-63 and 1088-1151 of chunk 9, rows 1984-2047 of chunk 4, in the regions of today's size.
    expect(read.regions).toEqual(new Set([`9:0`, `9:${Math.floor(1088 / ROWS_PER_REGION)}`, `4:${Math.floor(1984 / ROWS_PER_REGION)}`]));
  });
});
