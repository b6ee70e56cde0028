import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseLsblk } from './disk-inventory.js';
import { HelperError } from './helper-protocol.js';
import { findDisk, refusal } from './serve-policy.js';

// md, LVM and dm cannot be set up on the development machines (no kernel
// modules), so the holder refusals are shown on lsblk output of such a machine.
const inventory = parseLsblk(readFileSync(new URL('./fixtures/lsblk/machine-with-holders.json', import.meta.url), 'utf8'), {
  byId: new Map([['sda', ['/dev/disk/by-id/ata-WDC_WD40EFRX-68N_WD-WCC7K1234567']]]),
  backingFiles: new Map([['loop3', '/var/lib/images/disk3.img']]),
});
const ok = { served: false, confirmExistingData: false };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(HelperError);
    return (error as HelperError).code;
  }
  return 'ACCEPTED';
}

describe('findDisk', () => {
  it('finds a disk by its identity or one of its by-id links, exactly', () => {
    expect(findDisk(inventory, 'serial:WD-WCC7K1234567').path).toBe('/dev/sda');
    expect(findDisk(inventory, '/dev/disk/by-id/ata-WDC_WD40EFRX-68N_WD-WCC7K1234567').path).toBe('/dev/sda');
    expect(findDisk(inventory, 'loop:/var/lib/images/disk3.img').path).toBe('/dev/loop3');
  });

  it.each([
    ['its /dev path', '/dev/sda'],
    ['a partition', '/dev/nvme0n1p2'],
    ['a by-id path with ..', '/dev/disk/by-id/../by-id/ata-WDC_WD40EFRX-68N_WD-WCC7K1234567'],
    ['a holder', '/dev/md0'],
    ['an identity with a different case', 'SERIAL:WD-WCC7K1234567'],
    ['a loop identity through ..', 'loop:/var/lib/images/../images/disk3.img'],
    ['a CD drive (no identity)', '/dev/sr0'],
  ])('refuses %s as not in the inventory', (_what, name) => {
    expect(code(() => findDisk(inventory, name))).toBe('NOT_IN_INVENTORY');
  });

  it('tells a caller who used a /dev path which id to use', () => {
    expect(() => findDisk(inventory, '/dev/sda')).toThrow(/"serial:WD-WCC7K1234567", not by its \/dev path/);
  });
});

describe('refusal', () => {
  const disk = (id: string) => findDisk(inventory, id);

  it('serves an unused disk', () => {
    expect(refusal(disk('serial:WD-WCC7K1234567'), ok)).toBeNull();
  });

  it('refuses the system disk, naming what it holds', () => {
    const r = refusal(disk('wwn:eui.002538b411b2c3d4'), { served: false, confirmExistingData: true });
    expect(r?.code).toBe('REFUSED_SYSTEM_DISK');
    expect(r?.message).toMatch(/holds the running system \(\/boot\/efi, \/\)/);
  });

  it('refuses a member of an active md array (mounted through the array)', () => {
    const r = refusal(disk('serial:Z1X2'), { served: false, confirmExistingData: true });
    expect(r?.code).toBe('REFUSED_MOUNTED');
    expect(r?.message).toContain('/srv/data');
  });

  it('refuses a disk under an LVM volume group, even with nothing mounted', () => {
    const r = refusal(disk('serial:Z3Y4'), { served: false, confirmExistingData: true });
    expect(r?.code).toBe('REFUSED_HELD');
    expect(r?.message).toMatch(/in use by vg0-backup \(lvm\)/);
  });

  it('refuses a disk under a dm-crypt mapping', () => {
    const r = refusal(disk('serial:Z5W6'), { served: false, confirmExistingData: true });
    expect(r?.code).toBe('REFUSED_HELD');
    expect(r?.message).toMatch(/luks-0a1b \(crypt\)/);
  });

  it('refuses a disk when only one of its partitions is mounted', () => {
    const [usb] = parseLsblk(JSON.stringify({
      blockdevices: [{
        name: 'sde', path: '/dev/sde', 'maj:min': '8:64', type: 'disk', size: 64_000_000_000, serial: 'USB123', mountpoints: [null],
        children: [
          { name: 'sde1', path: '/dev/sde1', 'maj:min': '8:65', type: 'part', size: 1_000_000_000, mountpoints: [null] },
          { name: 'sde2', path: '/dev/sde2', 'maj:min': '8:66', type: 'part', size: 62_000_000_000, mountpoints: ['/media/user/STICK'] },
        ],
      }],
    }));
    const r = refusal(usb!, { served: false, confirmExistingData: true });
    expect(r?.code).toBe('REFUSED_MOUNTED');
    expect(r?.message).toMatch(/\/dev\/sde \(serial:USB123\) has mounted file systems \(\/media\/user\/STICK\)/);
  });

  it('refuses a disk holding active swap as the system disk', () => {
    const [disk] = parseLsblk(JSON.stringify({
      blockdevices: [{ name: 'sdf', path: '/dev/sdf', 'maj:min': '8:80', type: 'disk', size: 8_000_000_000, serial: 'SW1', mountpoints: ['[SWAP]'] }],
    }));
    expect(refusal(disk!, { served: false, confirmExistingData: true })?.code).toBe('REFUSED_SYSTEM_DISK');
  });

  it('refuses a disk already served', () => {
    expect(refusal(disk('serial:WD-WCC7K1234567'), { served: true, confirmExistingData: false })?.code).toBe('ALREADY_SERVED');
  });

  it('asks for confirmation before serving a disk with data on it, then serves it', () => {
    const withData = { ...disk('serial:WD-WCC7K1234567'), signatures: ['ext4'] };
    const r = refusal(withData, ok);
    expect(r?.code).toBe('NEEDS_CONFIRMATION');
    expect(r?.message).toMatch(/holds existing data \(ext4\)/);
    expect(refusal(withData, { served: false, confirmExistingData: true })).toBeNull();
  });

  it('refuses read-only and empty devices', () => {
    expect(refusal({ ...disk('serial:WD-WCC7K1234567'), readOnly: true }, ok)?.code).toBe('REFUSED_READ_ONLY');
    expect(refusal({ ...disk('serial:WD-WCC7K1234567'), size: 0 }, ok)?.code).toBe('REFUSED_EMPTY');
  });
});
