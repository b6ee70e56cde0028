/**
 * What the helper refuses to serve, decided on the inventory alone (pure, so
 * every refusal is testable on fixture lsblk output): the request's name must
 * be exactly a disk's stable identity or one of its by-id links, never a path
 * that merely resolves to it; then the disk must not be the system disk,
 * mounted, held by md/LVM/dm, read-only, empty or served already; a disk
 * with data on it needs the caller's explicit confirmation.
 *
 * The live checks that follow (sysfs holders, an exclusive open, the device
 * number of what was opened) are in disk-service.ts.
 */
import { isWholeDevice, type Disk } from './disk-inventory.js';
import { HelperError } from './helper-protocol.js';

/**
 * The whole disk a request names. Matching is by string equality with an
 * identity the inventory produced, so symlinks, `..`, relative paths and
 * /dev/sdX names (which change between boots) all fail here.
 */
export function findDisk(inventory: readonly Disk[], name: string): Disk {
  const disk = inventory.find((d) => isWholeDevice(d) && d.id !== null && (d.id === name || d.byIdPaths.includes(name)));
  if (disk) return disk;
  const byPath = inventory.find((d) => d.path === name || d.partitions.some((p) => p.path === name));
  const hint = byPath
    ? ` (name a disk by the id that "list" reports${byPath.id ? `, here "${byPath.id}"` : ''}, not by its /dev path)`
    : ': name a disk by the id or by-id path that "list" reports (symlinks and relative paths are not accepted)';
  throw new HelperError('NOT_IN_INVENTORY', `"${name}" is not a disk in the inventory${hint}`);
}

export interface ServeCheck {
  readonly served: boolean;
  readonly confirmExistingData: boolean;
}

/** The first reason not to serve `disk`, as a HelperError; null when it may be served. */
export function refusal(disk: Disk, check: ServeCheck): HelperError | null {
  const what = disk.id ? `${disk.path} (${disk.id})` : disk.path;
  if (check.served) return new HelperError('ALREADY_SERVED', `${what} is already served`);
  if (disk.isSystemDisk) {
    const system = disk.mountPoints.filter((m) => ['/', '/boot', '/boot/efi', '/usr', '[SWAP]'].includes(m));
    return new HelperError('REFUSED_SYSTEM_DISK', `${what} holds the running system (${system.join(', ')}); it is never served`);
  }
  if (disk.mountPoints.length > 0) {
    return new HelperError('REFUSED_MOUNTED', `${what} has mounted file systems (${disk.mountPoints.join(', ')}); unmount them first`);
  }
  if (disk.holders.length > 0) {
    return new HelperError('REFUSED_HELD', `${what} is in use by ${disk.holders.join(', ')}; stop the md array, LVM volume group or dm device first`);
  }
  if (disk.readOnly) return new HelperError('REFUSED_READ_ONLY', `${what} is read-only`);
  if (disk.size === 0) return new HelperError('REFUSED_EMPTY', `${what} has no media (size 0)`);
  if (disk.signatures.length > 0 && !check.confirmExistingData) {
    return new HelperError(
      'NEEDS_CONFIRMATION',
      `${what} holds existing data (${disk.signatures.join(', ')}); serving it for a pool destroys that data, so confirm it first (confirmExistingData)`,
    );
  }
  return null;
}
