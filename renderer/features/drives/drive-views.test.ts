import { describe, expect, it } from 'vitest';
import type { Drive, MemberStatus, PoolStatus } from '../../../preload/api';
import { driveViews, sameDriveView } from './drive-views';

const member = (uuid: string, over: Partial<MemberStatus> = {}): MemberStatus => ({
  uuid,
  uri: `file:/state/demo/${uuid}.img`,
  role: 'data',
  state: 'online',
  errors: { read: 0, write: 0, checksum: 0 },
  slabCount: 8,
  freeSlabs: 5,
  ...over,
});

const pool = (members: MemberStatus[]): PoolStatus => ({
  name: 'demo', uuid: 'p', health: 'online', demo: true, memberCount: members.length, volumeCount: 0,
  slabSize: 1024 * 1024, slabDataBytes: 1000 * 1024, members, volumes: [],
  freeSpace: { raid0: 0, raid1: 0, raid1x3: 0, raid10: 0, raid5: 0, raid6: 0 }, policy: { autoRepair: true, latencyBudget: 2 },
});

const drive = (id: string, over: Partial<Drive> = {}): Drive => ({
  id, path: `/dev/disk/by-id/${id}`, uri: `nbd+unix:///${id}?socket=/run/h.sock`, model: 'WDC WD40', serial: `S-${id}`,
  size: 4e12, rotational: true, transport: 'sata', state: 'online',
  smart: { verdict: 'passed', temperatureC: 34, reallocated: 0, pending: 0, uncorrectable: 0, powerOnHours: 1200, warnings: [] },
  poolName: null, role: null, memberUuid: null, ...over,
});

describe('driveViews', () => {
  it('shows members without an inventory, sized from their slabs', () => {
    const [view] = driveViews([pool([member('aa')])], undefined);
    expect(view).toMatchObject({ label: 'aa.img', model: 'Image file', serial: '—', size: 8 * 1024 * 1024, pool: 'demo', role: 'data', state: 'online', attention: false, slabs: { used: 3, total: 8 } });
  });

  it('a member with errors is degraded and stands out; failed and missing members keep their state', () => {
    const views = driveViews([pool([member('a', { errors: { read: 0, write: 0, checksum: 2 } }), member('b', { state: 'failed', reason: 'gone' }), member('c', { state: 'resyncing' })])], undefined);
    expect(views.map((v) => [v.state, v.attention])).toEqual([['degraded', true], ['failed', true], ['resyncing', false]]);
    expect(views[1]!.reason).toBe('gone');
  });

  it('joins inventory drives to members by uuid, and lists the rest as unassigned', () => {
    const views = driveViews([pool([member('aa')])], [drive('x', { memberUuid: 'aa', poolName: 'demo', role: 'data' }), drive('y')]);
    expect(views).toHaveLength(2);
    expect(views[0]).toMatchObject({ serial: 'S-x', model: 'WDC WD40', pool: 'demo', smart: { temperatureC: 34 } });
    expect(views[1]).toMatchObject({ label: 'WDC WD40', pool: null, role: null, errors: undefined });
  });

  it('a drive whose SMART verdict is failing stands out even without engine errors', () => {
    const views = driveViews([pool([member('aa')])], [drive('x', { memberUuid: 'aa', smart: { verdict: 'failed', temperatureC: 50, reallocated: 120, pending: 8, uncorrectable: 3, powerOnHours: 40000, warnings: ['reallocated sectors'] } })]);
    expect(views[0]).toMatchObject({ state: 'failing', attention: true });
  });
});

describe('sameDriveView', () => {
  it('is true for a rebuilt view of an unchanged drive, false when anything it shows changed', () => {
    const [a] = driveViews([pool([member('aa')])], undefined);
    const [b] = driveViews([pool([member('aa')])], undefined);
    const [c] = driveViews([pool([member('aa', { errors: { read: 0, write: 0, checksum: 1 } })])], undefined);
    const [d] = driveViews([pool([member('aa', { freeSlabs: 4 })])], undefined);
    expect(sameDriveView(a!, b!)).toBe(true);
    expect(sameDriveView(a!, c!)).toBe(false);
    expect(sameDriveView(a!, d!)).toBe(false);
  });
});
