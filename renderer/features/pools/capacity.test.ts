import { describe, expect, it } from 'vitest';
import type { MemberStatus, PoolStatus } from '../../../preload/api';
import { poolCapacity } from './capacity';

const m = (uuid: string, over: Partial<MemberStatus>): MemberStatus => ({
  uuid, uri: `file:/${uuid}`, role: 'data', state: 'online', errors: { read: 0, write: 0, checksum: 0 }, slabCount: 10, freeSlabs: 4, ...over,
});

it('counts data members only, and failed members as unavailable', () => {
  const pool = {
    slabDataBytes: 100,
    members: [m('a', {}), m('b', { freeSlabs: 10 }), m('s', { role: 'spare', freeSlabs: 10 }), m('f', { state: 'failed' })],
  } as unknown as PoolStatus;
  expect(poolCapacity(pool)).toEqual({ usedBytes: 600, freeBytes: 1400, unavailableBytes: 1000, totalBytes: 3000 });
});

describe('empty pool', () => {
  it('is all zeros', () => {
    expect(poolCapacity({ slabDataBytes: 1, members: [] } as unknown as PoolStatus)).toEqual({ usedBytes: 0, freeBytes: 0, unavailableBytes: 0, totalBytes: 0 });
  });
});
