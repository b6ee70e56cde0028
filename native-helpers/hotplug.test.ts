import { describe, expect, it } from 'vitest';
import type { Disk } from './disk-inventory.js';
import { diffInventories } from './hotplug.js';

const disk = (kernelName: string, id: string | null, size = 1 << 20) => ({ kernelName, id, size, path: `/dev/${kernelName}` }) as Disk;

// The watcher itself is exercised against real loop devices in
// main/service/disk-helper-client.test.ts; this is the diff it reports.
describe('diffInventories', () => {
  it('reports nothing when nothing changed', () => {
    expect(diffInventories([disk('sda', 'serial:A')], [disk('sda', 'serial:A')])).toEqual([]);
  });

  it('reports a disk that appeared and one that vanished', () => {
    const events = diffInventories([disk('sda', 'serial:A')], [disk('sdb', 'serial:B')]);
    expect(events.map((e) => [e.type, e.disk.kernelName])).toEqual([['removed', 'sda'], ['added', 'sdb']]);
  });

  it('a kernel name now holding another disk is a removal and an addition', () => {
    const events = diffInventories([disk('loop0', 'loop:/a.img')], [disk('loop0', 'loop:/b.img')]);
    expect(events.map((e) => [e.type, e.disk.id])).toEqual([['removed', 'loop:/a.img'], ['added', 'loop:/b.img']]);
  });

  it('a size change (media removed reads as size 0) is a change with the size before', () => {
    const [event] = diffInventories([disk('sdc', 'serial:C', 4096)], [disk('sdc', 'serial:C', 0)]);
    expect(event).toMatchObject({ type: 'changed', disk: { size: 0 }, before: { size: 4096 } });
  });
});
