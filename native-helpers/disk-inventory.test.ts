import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { InventoryError, listDisks, parseLsblk } from './disk-inventory.js';

// Shape of util-linux 2.38 output (Debian 12) for a machine with an NVMe
// system disk and an unused SATA disk; older lsblk prints flags as strings.
const FIXTURE = JSON.stringify({
  blockdevices: [
    {
      name: 'nvme0n1', path: '/dev/nvme0n1', type: 'disk', size: 512110190592, model: 'Samsung SSD 980 PRO 512GB ',
      serial: 'S5GXNX0T123456', rota: false, tran: 'nvme', mountpoints: [null], fstype: null, ro: false, rm: false,
      children: [
        { name: 'nvme0n1p1', path: '/dev/nvme0n1p1', type: 'part', size: 536870912, mountpoints: ['/boot/efi'], rota: false, ro: false, rm: false },
        { name: 'nvme0n1p2', path: '/dev/nvme0n1p2', type: 'part', size: 511571230720, mountpoints: ['/'], rota: false, ro: false, rm: false },
      ],
    },
    { name: 'sda', path: '/dev/sda', type: 'disk', size: '4000787030016', model: 'WDC WD40EFRX-68N', serial: 'WD-WCC7K1234567', rota: '1', tran: 'sata', mountpoints: [null], ro: '0', rm: '0' },
  ],
});

describe('parseLsblk', () => {
  it('reads disks, partitions and their mount points', () => {
    const [nvme, sda] = parseLsblk(FIXTURE);
    expect(nvme).toMatchObject({ path: '/dev/nvme0n1', model: 'Samsung SSD 980 PRO 512GB', rotational: false, transport: 'nvme' });
    expect(nvme!.mountPoints).toEqual(['/boot/efi', '/']);
    expect(nvme!.isSystemDisk).toBe(true);
    expect(nvme!.partitions).toHaveLength(2);
    expect(sda).toMatchObject({ size: 4000787030016, rotational: true, isSystemDisk: false, mountPoints: [] });
  });

  it.each([
    ['not JSON', 'lsblk: failed'],
    ['no device list', '{}'],
    ['a device without a path', '{"blockdevices":[{"name":"x","type":"disk","size":1}]}'],
    ['a negative size', '{"blockdevices":[{"name":"x","path":"/dev/x","type":"disk","size":-1}]}'],
  ])('refuses %s with a clear error', (_what, text) => {
    expect(() => parseLsblk(text)).toThrow(InventoryError);
  });

  it('lists this machine\'s disks through the real lsblk, marking the one holding / as the system disk', async () => {
    let available = true;
    try {
      execFileSync('lsblk', ['--version']);
    } catch {
      available = false;
    }
    if (!available) return expect.fail('lsblk (util-linux) is missing');
    const disks = await listDisks();
    expect(disks.length).toBeGreaterThan(0);
    const system = disks.filter((d) => d.isSystemDisk);
    // Containers may show / on an overlay that lsblk does not list; when a disk holds /, it is marked.
    const holdingRoot = disks.filter((d) => d.mountPoints.includes('/'));
    expect(system.map((d) => d.path)).toEqual(expect.arrayContaining(holdingRoot.map((d) => d.path)));
  });
});
