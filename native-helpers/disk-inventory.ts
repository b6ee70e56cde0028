/**
 * The machine's disks as the helper sees them: `lsblk --json` parsed into
 * plain records, with what makes a disk unsafe to hand to the engine (mounted,
 * holding the running system) worked out once, here.
 *
 * lsblk is asked for bytes (-b) and a fixed column list, so the parse does not
 * depend on the user's locale or lsblk's default columns.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const LSBLK_COLUMNS = 'NAME,PATH,TYPE,SIZE,MODEL,SERIAL,ROTA,TRAN,MOUNTPOINTS,FSTYPE,RO,RM';

/** Mount points that make a disk the system disk. */
const SYSTEM_MOUNTS = new Set(['/', '/boot', '/boot/efi', '/usr', '[SWAP]']);

export interface Disk {
  readonly path: string;
  readonly name: string;
  /** lsblk's TYPE: disk, part, loop, rom, … */
  readonly type: string;
  readonly size: number;
  readonly model: string | null;
  readonly serial: string | null;
  readonly rotational: boolean;
  readonly transport: string | null;
  readonly readOnly: boolean;
  readonly removable: boolean;
  /** Mount points of this device and of everything on it (partitions, holders). */
  readonly mountPoints: readonly string[];
  /** Holds /, /boot, /usr or active swap: never offered to the engine. */
  readonly isSystemDisk: boolean;
  readonly partitions: readonly Disk[];
}

interface LsblkDevice {
  name: string;
  path: string;
  type: string;
  size: number | string;
  model?: string | null;
  serial?: string | null;
  rota?: boolean | string;
  tran?: string | null;
  mountpoints?: Array<string | null>;
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

function toDisk(device: LsblkDevice): Disk {
  if (typeof device?.name !== 'string' || typeof device.path !== 'string' || typeof device.type !== 'string') {
    throw new InventoryError('lsblk returned a device without name, path or type');
  }
  const size = Number(device.size);
  if (!Number.isSafeInteger(size) || size < 0) throw new InventoryError(`lsblk returned an invalid size for ${device.path}`);
  const partitions = (device.children ?? []).map(toDisk);
  const own = (device.mountpoints ?? []).filter((m): m is string => typeof m === 'string' && m !== '');
  const mountPoints = [...own, ...partitions.flatMap((p) => p.mountPoints)];
  return {
    path: device.path,
    name: device.name,
    type: device.type,
    size,
    model: device.model?.trim() || null,
    serial: device.serial?.trim() || null,
    rotational: flag(device.rota),
    transport: device.tran ?? null,
    readOnly: flag(device.ro),
    removable: flag(device.rm),
    mountPoints,
    isSystemDisk: mountPoints.some((m) => SYSTEM_MOUNTS.has(m)),
    partitions,
  };
}

/** Parses `lsblk --json -b -o LSBLK_COLUMNS` output. */
export function parseLsblk(json: string): Disk[] {
  let parsed: { blockdevices?: LsblkDevice[] };
  try {
    parsed = JSON.parse(json) as { blockdevices?: LsblkDevice[] };
  } catch {
    throw new InventoryError('lsblk did not print JSON');
  }
  if (!Array.isArray(parsed?.blockdevices)) throw new InventoryError('lsblk JSON has no "blockdevices" list');
  return parsed.blockdevices.map(toDisk);
}

export async function listDisks(): Promise<Disk[]> {
  const { stdout } = await run('lsblk', ['--json', '-b', '-o', LSBLK_COLUMNS], { maxBuffer: 16 * 1024 * 1024 });
  return parseLsblk(stdout);
}
