import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { allDevices, InventoryError, listDisks, parseLsblk } from './disk-inventory.js';

// Shaped as util-linux 2.38's `lsblk --json -b -o LSBLK_COLUMNS` (Debian 12) for
// a machine with an NVMe system disk, an unused SATA disk, and disks under md,
// LVM and dm-crypt; older lsblk prints flags and sizes as strings.
const FIXTURE = JSON.stringify({
  blockdevices: [
    {
      name: 'nvme0n1', kname: 'nvme0n1', path: '/dev/nvme0n1', 'maj:min': '259:0', type: 'disk', size: 512110190592,
      model: 'Samsung SSD 980 PRO 512GB ', serial: 'S5GXNX0T123456', wwn: 'eui.002538b411b2c3d4', rota: false, tran: 'nvme',
      mountpoints: [null], fstype: null, pttype: 'gpt', ro: false, rm: false,
      children: [
        { name: 'nvme0n1p1', kname: 'nvme0n1p1', path: '/dev/nvme0n1p1', 'maj:min': '259:1', type: 'part', size: 536870912, mountpoints: ['/boot/efi'], fstype: 'vfat', rota: false, ro: false, rm: false },
        { name: 'nvme0n1p2', kname: 'nvme0n1p2', path: '/dev/nvme0n1p2', 'maj:min': '259:2', type: 'part', size: 511571230720, mountpoints: ['/'], fstype: 'ext4', rota: false, ro: false, rm: false },
      ],
    },
    { name: 'sda', kname: 'sda', path: '/dev/sda', 'maj:min': '8:0', type: 'disk', size: '4000787030016', model: 'WDC WD40EFRX-68N', serial: 'WD-WCC7K1234567', wwn: null, rota: '1', tran: 'sata', mountpoints: [null], ro: '0', rm: '0' },
    {
      name: 'sdb', kname: 'sdb', path: '/dev/sdb', 'maj:min': '8:16', type: 'disk', size: 2000398934016, serial: 'Z1X2', rota: true, tran: 'sata', mountpoints: [null], fstype: 'linux_raid_member', ro: false, rm: false,
      children: [{ name: 'md0', kname: 'md0', path: '/dev/md0', 'maj:min': '9:0', type: 'raid1', size: 2000263643136, mountpoints: ['/srv/data'], fstype: 'ext4', ro: false, rm: false }],
    },
    {
      name: 'sdc', kname: 'sdc', path: '/dev/sdc', 'maj:min': '8:32', type: 'disk', size: 1000204886016, serial: 'Z3Y4', rota: true, tran: 'sata', mountpoints: [null], fstype: null, pttype: 'gpt', ro: false, rm: false,
      children: [{
        name: 'sdc1', kname: 'sdc1', path: '/dev/sdc1', 'maj:min': '8:33', type: 'part', size: 1000203091968, mountpoints: [null], fstype: 'LVM2_member', ro: false, rm: false,
        children: [{ name: 'vg0-backup', kname: 'dm-0', path: '/dev/mapper/vg0-backup', 'maj:min': '253:0', type: 'lvm', size: 536870912000, mountpoints: [null], fstype: 'xfs', ro: false, rm: false }],
      }],
    },
    {
      name: 'sdd', kname: 'sdd', path: '/dev/sdd', 'maj:min': '8:48', type: 'disk', size: 1000204886016, serial: 'Z5W6', rota: true, tran: 'usb', mountpoints: [null], fstype: 'crypto_LUKS', ro: false, rm: true,
      children: [{ name: 'luks-0a1b', kname: 'dm-1', path: '/dev/mapper/luks-0a1b', 'maj:min': '253:1', type: 'crypt', size: 1000188108800, mountpoints: [null], ro: false, rm: false }],
    },
    { name: 'loop3', kname: 'loop3', path: '/dev/loop3', 'maj:min': '7:3', type: 'loop', size: 67108864, rota: false, mountpoints: [null], ro: false, rm: false },
    { name: 'sr0', kname: 'sr0', path: '/dev/sr0', 'maj:min': '11:0', type: 'rom', size: 1073741312, model: 'QEMU DVD-ROM', serial: 'QM00003', rota: true, tran: 'ata', mountpoints: [null], ro: false, rm: true },
  ],
});

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
