import { describe, expect, it } from 'vitest';
import { MemoryBlockDevice } from '../nbd/memory-device.js';
import { WriteIntentLog } from './write-intent.js';

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
    const release = await intent.begin(7, 200);
    const epoch = intent.flushStarting();
    intent.flushed(epoch);
    expect(intent.dirtyRegionKeys()).toEqual(['7:3']);
    release();
  });
});
