/**
 * The machine's disks as the helper sees them: `lsblk --json` parsed into
 * plain records, with what makes a disk unsafe to hand to the engine (mounted,
 * holding the running system, held by md/LVM/dm, carrying data) worked out
 * once, here, and a stable identity for each disk so that requests name a disk
 * by what it is rather than by a path the client chose.
 *
 * lsblk is asked for bytes (-b) and a fixed column list, so the parse does not
 * depend on the user's locale or lsblk's default columns. lsblk prints holders
 * (an md array, an LVM logical volume, a dm-crypt mapping) as children of the
 * disks or partitions under them; anything below a disk that is not a
 * partition is therefore a holder.
 *
 * Facts lsblk cannot give on every machine are gathered separately and passed
 * to the parse: by-id links (udev makes them; machines without udev have
 * none), loop devices' backing files (sysfs), and on-disk signatures (wipefs
 * probes the device itself, while lsblk's FSTYPE comes from the udev database
 * and is empty without udev).
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const LSBLK_COLUMNS = 'NAME,KNAME,PATH,MAJ:MIN,TYPE,SIZE,MODEL,SERIAL,WWN,ROTA,TRAN,MOUNTPOINTS,FSTYPE,PTTYPE,RO,RM';

/** Mount points that make a disk the system disk ([SWAP] is lsblk's mark for active swap). */
const SYSTEM_MOUNTS = new Set(['/', '/boot', '/boot/efi', '/usr', '[SWAP]']);

/** Device types the helper may serve: whole disks and loop devices over image files. */
const WHOLE_DEVICE_TYPES = new Set(['disk', 'loop']);

export interface Disk {
  readonly path: string;
  readonly name: string;
  /** Kernel name (sda, loop3): the sysfs directory under /sys/class/block. */
  readonly kernelName: string;
  /** "major:minor"; the opened device node must carry this number. */
  readonly devno: string;
  /** lsblk's TYPE: disk, part, loop, rom, raid1, lvm, crypt, … */
  readonly type: string;
  readonly size: number;
  readonly model: string | null;
  readonly serial: string | null;
  readonly wwn: string | null;
  readonly rotational: boolean;
  readonly transport: string | null;
  readonly readOnly: boolean;
  readonly removable: boolean;
  /** Mount points of this device and of everything on it (partitions, holders). */
  readonly mountPoints: readonly string[];
  /** Holds /, /boot, /usr or active swap: never offered to the engine. */
  readonly isSystemDisk: boolean;
  /** Devices built on this one or its partitions, as "NAME (TYPE)": md arrays, LVM volumes, dm mappings. */
  readonly holders: readonly string[];
  /** What is written on the device (file systems, partition tables, RAID or LVM labels). */
  readonly signatures: readonly string[];
  /** Stable identity (wwn:…, serial:…, loop:BACKING_FILE), or null when the disk has none. */
  readonly id: string | null;
  /** /dev/disk/by-id links that point at this device. */
  readonly byIdPaths: readonly string[];
  /** Image file behind a loop device. */
  readonly backingFile: string | null;
  readonly partitions: readonly Disk[];
}

/** Facts from outside lsblk, keyed by kernel name. */
export interface InventoryFacts {
  readonly byId?: ReadonlyMap<string, readonly string[]>;
  readonly backingFiles?: ReadonlyMap<string, string>;
  readonly signatures?: ReadonlyMap<string, readonly string[]>;
}

interface LsblkDevice {
  name: string;
  kname?: string;
  path: string;
  'maj:min'?: string;
  type: string;
  size: number | string;
  model?: string | null;
  serial?: string | null;
  wwn?: string | null;
  rota?: boolean | string;
  tran?: string | null;
  mountpoints?: Array<string | null>;
  fstype?: string | null;
  pttype?: string | null;
  ro?: boolean | string;
  rm?: boolean | string;
  children?: LsblkDevice[];
}

export class InventoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InventoryError';
  }
}

/** Older lsblk prints booleans and sizes as strings ("1", "0"); accept both. */
function flag(value: boolean | string | undefined): boolean {
  return value === true || value === '1' || value === 'true';
}

function text(value: string | null | undefined): string | null {
  return value?.trim() || null;
}

function stableId(wwn: string | null, serial: string | null, backingFile: string | null): string | null {
  if (wwn) return `wwn:${wwn}`;
  if (serial) return `serial:${serial}`;
  if (backingFile) return `loop:${backingFile}`;
  return null;
}

function toDisk(device: LsblkDevice, facts: InventoryFacts): Disk {
  if (typeof device?.name !== 'string' || typeof device.path !== 'string' || typeof device.type !== 'string') {
    throw new InventoryError('lsblk returned a device without name, path or type');
  }
  const size = Number(device.size);
  if (!Number.isSafeInteger(size) || size < 0) throw new InventoryError(`lsblk returned an invalid size for ${device.path}`);
  const kernelName = device.kname ?? device.name;
  const children = (device.children ?? []).map((c) => toDisk(c, facts));
  const partitions = children.filter((c) => c.type === 'part');
  const own = (device.mountpoints ?? []).filter((m): m is string => typeof m === 'string' && m !== '');
  const mountPoints = [...own, ...children.flatMap((c) => c.mountPoints)];
  const holders = [
    ...children.filter((c) => c.type !== 'part').map((c) => `${c.name} (${c.type})`),
    ...children.flatMap((c) => c.holders),
  ];
  const signatures = new Set([
    ...(facts.signatures?.get(kernelName) ?? []),
    ...[text(device.fstype), text(device.pttype)].filter((s): s is string => s !== null),
  ]);
  for (const p of partitions) signatures.add(`partition ${p.name}`);
  const wwn = text(device.wwn);
  const serial = text(device.serial);
  const backingFile = facts.backingFiles?.get(kernelName) ?? null;
  return {
    path: device.path,
    name: device.name,
    kernelName,
    devno: device['maj:min'] ?? '',
    type: device.type,
    size,
    model: text(device.model),
    serial,
    wwn,
    rotational: flag(device.rota),
    transport: device.tran ?? null,
    readOnly: flag(device.ro),
    removable: flag(device.rm),
    mountPoints,
    isSystemDisk: mountPoints.some((m) => SYSTEM_MOUNTS.has(m)),
    holders: [...new Set(holders)],
    signatures: [...signatures],
    id: WHOLE_DEVICE_TYPES.has(device.type) ? stableId(wwn, serial, backingFile) : null,
    byIdPaths: facts.byId?.get(kernelName) ?? [],
    backingFile,
    partitions,
  };
}

/** Parses `lsblk --json -b -o LSBLK_COLUMNS` output. */
export function parseLsblk(json: string, facts: InventoryFacts = {}): Disk[] {
  let parsed: { blockdevices?: LsblkDevice[] };
  try {
    parsed = JSON.parse(json) as { blockdevices?: LsblkDevice[] };
  } catch {
    throw new InventoryError('lsblk did not print JSON');
  }
  if (!Array.isArray(parsed?.blockdevices)) throw new InventoryError('lsblk JSON has no "blockdevices" list');
  return parsed.blockdevices.map((d) => toDisk(d, facts));
}

/** Whole devices (disks, loop devices) that the helper could serve; partitions stay inside their disk. */
export function isWholeDevice(disk: Disk): boolean {
  return WHOLE_DEVICE_TYPES.has(disk.type);
}

/** by-id links, grouped by the kernel name they resolve to. Empty where udev made none. */
async function readByIdLinks(dir = '/dev/disk/by-id'): Promise<Map<string, string[]>> {
  const byName = new Map<string, string[]>();
  let entries: string[];
  try {
    entries = await fsp.readdir(dir);
  } catch {
    return byName;
  }
  for (const entry of entries.sort()) {
    const link = join(dir, entry);
    try {
      const target = await fsp.realpath(link);
      const name = target.startsWith('/dev/') ? target.slice('/dev/'.length) : null;
      if (name) byName.set(name, [...(byName.get(name) ?? []), link]);
    } catch {
      // a dangling link: the device left between readdir and realpath
    }
  }
  return byName;
}

async function readBackingFiles(kernelNames: readonly string[]): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  await Promise.all(
    kernelNames.filter((n) => n.startsWith('loop')).map(async (name) => {
      try {
        const file = (await fsp.readFile(`/sys/class/block/${name}/loop/backing_file`, 'utf8')).trim();
        if (file) files.set(name, file);
      } catch {
        // not bound to a file
      }
    }),
  );
  return files;
}

/**
 * On-disk signatures as `wipefs --no-act --json` reports them (it probes the
 * device itself). Unreadable devices (no permission, gone) report none here;
 * serving opens and probes them again.
 */
export async function probeSignatures(path: string): Promise<string[]> {
  try {
    const { stdout } = await run('wipefs', ['--no-act', '--json', path], { timeout: 10_000 });
    if (stdout.trim() === '') return [];
    const parsed = JSON.parse(stdout) as { signatures?: Array<{ type?: unknown; offset?: unknown }> };
    return (parsed.signatures ?? []).map((s) => String(s.type ?? 'unknown'));
  } catch {
    return [];
  }
}

/** The inventory; `signatures: false` skips probing each disk (the hotplug watcher polls without it). */
export async function listDisks(options: { signatures?: boolean } = {}): Promise<Disk[]> {
  const { stdout } = await run('lsblk', ['--json', '-b', '-o', LSBLK_COLUMNS], { maxBuffer: 16 * 1024 * 1024 });
  const bare = parseLsblk(stdout);
  const whole = bare.filter(isWholeDevice);
  const probe = options.signatures ?? true;
  const [byId, backingFiles, signatureList] = await Promise.all([
    readByIdLinks(),
    readBackingFiles(whole.map((d) => d.kernelName)),
    probe ? Promise.all(whole.map(async (d) => [d.kernelName, await probeSignatures(d.path)] as const)) : [],
  ]);
  return parseLsblk(stdout, { byId, backingFiles, signatures: new Map(signatureList) });
}

/** Every device and partition, flattened (for lookups by path or kernel name). */
export function allDevices(disks: readonly Disk[]): Disk[] {
  return disks.flatMap((d) => [d, ...allDevices(d.partitions)]);
}
