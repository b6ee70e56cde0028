import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { allDevices, InventoryError, listDisks, parseLsblk } from './disk-inventory.js';

// Shaped as util-linux 2.38's `lsblk --json -b -o LSBLK_COLUMNS` (Debian 12) for
// a machine with an NVMe system disk, an unused SATA disk, and disks under md,
// LVM and dm-crypt (written for these tests: this machine has none of them);
// older lsblk prints flags and sizes as strings, as sda does here.
const FIXTURE = readFileSync(new URL('./fixtures/lsblk/machine-with-holders.json', import.meta.url), 'utf8');

const FACTS = {
  byId: new Map([['sda', ['/dev/disk/by-id/ata-WDC_WD40EFRX-68N_WD-WCC7K1234567']]]),
  backingFiles: new Map([['loop3', '/var/lib/images/disk3.img']]),
  signatures: new Map([['sda', []]]),
};

function byName(name: string) {
  const d = allDevices(parseLsblk(FIXTURE, FACTS)).find((x) => x.name === name);
  if (!d) throw new Error(`${name} not in fixture`);
  return d;
}

describe('parseLsblk', () => {
  it('reads disks, partitions and their mount points; the disk holding / and /boot/efi is the system disk', () => {
    const nvme = byName('nvme0n1');
    expect(nvme).toMatchObject({ path: '/dev/nvme0n1', kernelName: 'nvme0n1', devno: '259:0', model: 'Samsung SSD 980 PRO 512GB', rotational: false, transport: 'nvme' });
    expect(nvme.mountPoints).toEqual(['/boot/efi', '/']);
    expect(nvme.isSystemDisk).toBe(true);
    expect(nvme.partitions).toHaveLength(2);
    expect(nvme.signatures).toEqual(expect.arrayContaining(['gpt', 'partition nvme0n1p1']));
  });

  it('an unused disk: no mounts, holders or signatures, identified by serial and by-id link', () => {
    expect(byName('sda')).toMatchObject({
      size: 4000787030016, rotational: true, isSystemDisk: false, mountPoints: [], holders: [], signatures: [],
      id: 'serial:WD-WCC7K1234567', byIdPaths: ['/dev/disk/by-id/ata-WDC_WD40EFRX-68N_WD-WCC7K1234567'],
    });
  });

  it('names the holders above a disk: an md array, an LVM volume on a partition, a dm-crypt mapping', () => {
    expect(byName('sdb').holders).toEqual(['md0 (raid1)']);
    expect(byName('sdb').mountPoints).toEqual(['/srv/data']);
    expect(byName('sdb').signatures).toContain('linux_raid_member');
    expect(byName('sdc').holders).toEqual(['vg0-backup (lvm)']);
    expect(byName('sdc').partitions.map((p) => p.name)).toEqual(['sdc1']);
    expect(byName('sdd').holders).toEqual(['luks-0a1b (crypt)']);
  });

  it('prefers the WWN as identity, then the serial, then a loop device\'s backing file; partitions and CD drives have none', () => {
    expect(byName('nvme0n1').id).toBe('wwn:eui.002538b411b2c3d4');
    expect(byName('sdb').id).toBe('serial:Z1X2');
    expect(byName('loop3')).toMatchObject({ id: 'loop:/var/lib/images/disk3.img', backingFile: '/var/lib/images/disk3.img' });
    expect(byName('nvme0n1p2').id).toBeNull();
    expect(byName('sr0').id).toBeNull();
  });

  it.each([
    ['not JSON', 'lsblk: failed'],
    ['no device list', '{}'],
    ['a device without a path', '{"blockdevices":[{"name":"x","type":"disk","size":1}]}'],
    ['a negative size', '{"blockdevices":[{"name":"x","path":"/dev/x","type":"disk","size":-1}]}'],
  ])('refuses %s with a clear error', (_what, text) => {
    expect(() => parseLsblk(text)).toThrow(InventoryError);
  });

  it('lists this machine\'s disks through the real lsblk, marking the one holding / as the system disk', async (ctx) => {
    try {
      execFileSync('lsblk', ['--version']);
    } catch {
      return ctx.skip('lsblk (util-linux) is missing');
    }
    const disks = await listDisks();
    expect(disks.length).toBeGreaterThan(0);
    const system = disks.filter((d) => d.isSystemDisk);
    // Containers may show / on an overlay that lsblk does not list; when a disk holds /, it is marked.
    const holdingRoot = disks.filter((d) => d.mountPoints.includes('/'));
    expect(system.map((d) => d.path)).toEqual(expect.arrayContaining(holdingRoot.map((d) => d.path)));
    for (const d of disks) expect(d.devno).toMatch(/^\d+:\d+$/);
  });
});
