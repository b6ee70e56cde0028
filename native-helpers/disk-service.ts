/**
 * DiskService: what the helper does, independent of how requests arrive.
 *
 * Serving a disk: read the inventory afresh, find the disk by identity,
 * apply the refusals of serve-policy.ts, check sysfs for holders the
 * inventory may not show yet, open the device exclusively (disk-device.ts),
 * and add it as an export of the one NBD server, whose Unix socket lives in
 * the owner's 0700 directory (socket-dir.ts). Stopping removes the export
 * (open connections get ESHUTDOWN and close, which the engine sees as a
 * failed member) and closes the device.
 *
 * A served disk that disappears, is re-bound, changes size, or fails I/O as
 * gone is stopped the same way and reported as `served-disk-lost`.
 */
import { promises as fsp } from 'node:fs';
import { NbdServer } from '../main/nbd/server.js';
import { isWholeDevice, listDisks, type Disk } from './disk-inventory.js';
import { DiskBlockDevice } from './disk-device.js';
import { HelperError, type ServedDisk } from './helper-protocol.js';
import type { HotplugEvent } from './hotplug.js';
import { findDisk, refusal } from './serve-policy.js';
import { readSmart, SmartError, type SmartReport } from './smart.js';
import type { SocketDir } from './socket-dir.js';

/** A disk as `list` reports it: the inventory record, whether it is served, and why it could not be. */
export interface DiskView extends Disk {
  readonly served: boolean;
  /** Why `serve` would refuse it now (null: it can be served; confirmation for existing data aside). */
  readonly refusal: string | null;
}

export interface DiskServiceOptions {
  readonly socketDir: SocketDir;
  readonly log?: (line: string) => void;
  /** Disks and served disks that come, go or are lost. */
  readonly onEvent?: (event: string, body: Record<string, unknown>) => void;
  /** The inventory; defaults to lsblk with signature probing. */
  readonly inventory?: () => Promise<Disk[]>;
}

interface Serving {
  readonly view: ServedDisk;
  readonly kernelName: string;
  readonly device: DiskBlockDevice;
}

/** Devices built on `kernelName` or its partitions, live from sysfs. */
async function sysfsHolders(disk: Disk): Promise<string[]> {
  const names = [disk.kernelName, ...disk.partitions.map((p) => p.kernelName)];
  const held = await Promise.all(
    names.map(async (name) => {
      try {
        return await fsp.readdir(`/sys/class/block/${name}/holders`);
      } catch {
        return [];
      }
    }),
  );
  return held.flat();
}

export class DiskService {
  private readonly serving = new Map<string, Serving>();
  private readonly pending = new Set<string>();
  private server: NbdServer | undefined;
  private readonly inventory: () => Promise<Disk[]>;
  private readonly log: (line: string) => void;
  private readonly emit: (event: string, body: Record<string, unknown>) => void;

  constructor(private readonly options: DiskServiceOptions) {
    this.inventory = options.inventory ?? (() => listDisks());
    this.log = options.log ?? (() => {});
    this.emit = options.onEvent ?? (() => {});
  }

  /** Listens on the socket and hands it (and its directory) to the owner. */
  async start(): Promise<void> {
    const server = new NbdServer({ log: (line) => this.log(`nbd: ${line}`) });
    await server.listenUnix(this.socket);
    await this.options.socketDir.handOver();
    this.server = server;
  }

  get socket(): string {
    return this.options.socketDir.socket;
  }

  async list(): Promise<DiskView[]> {
    const disks = (await this.inventory()).filter(isWholeDevice);
    return disks.map((d) => {
      const served = d.id !== null && this.serving.has(d.id);
      const why =
        refusal(d, { served: false, confirmExistingData: true })?.message ??
        (d.id === null ? `${d.path} reports no WWN or serial to identify it by, so it cannot be served` : null);
      return { ...d, served, refusal: served ? null : why };
    });
  }

  served(): ServedDisk[] {
    return [...this.serving.values()].map((s) => s.view);
  }

  async smart(name: string): Promise<SmartReport> {
    const disk = findDisk(await this.inventory(), name);
    try {
      return await readSmart(disk.path);
    } catch (error) {
      if (error instanceof SmartError) throw new HelperError('SMART_FAILED', error.message);
      throw error;
    }
  }

  async serve(name: string, confirmExistingData: boolean): Promise<ServedDisk> {
    const disk = findDisk(await this.inventory(), name);
    const id = disk.id!;
    if (this.pending.has(id)) throw new HelperError('ALREADY_SERVED', `${disk.path} (${id}) is being served by another request`);
    const refused = refusal(disk, { served: this.serving.has(id), confirmExistingData });
    if (refused) throw refused;
    const holders = await sysfsHolders(disk);
    if (holders.length > 0) throw new HelperError('REFUSED_HELD', `${disk.path} (${id}) is in use by ${holders.join(', ')}; stop the md array, LVM volume group or dm device first`);
    this.pending.add(id);
    try {
      const device = await DiskBlockDevice.open(disk, (reason) => void this.lost(id, reason));
      const exportName = disk.kernelName;
      try {
        const server = await this.nbdServer();
        server.addExport(exportName, device, { description: `${disk.model ?? disk.type} ${id}` });
      } catch (error) {
        await device.close();
        throw error;
      }
      const socket = this.socket;
      const view: ServedDisk = { disk: id, path: disk.path, size: device.size, exportName, socket, uri: `nbd+unix:///${exportName}?socket=${socket}` };
      this.serving.set(id, { view, kernelName: disk.kernelName, device });
      this.log(`serving ${disk.path} (${id}) as export ${exportName}`);
      return view;
    } finally {
      this.pending.delete(id);
    }
  }

  async stop(name: string): Promise<void> {
    const entry = [...this.serving.values()].find((s) => s.view.disk === name || s.view.path === name);
    if (!entry) throw new HelperError('NOT_SERVED', `"${name}" is not served`);
    await this.unserve(entry);
    this.log(`stopped serving ${entry.view.path} (${entry.view.disk})`);
  }

  /** Hotplug: reports disks coming and going, and stops serving disks that went away or changed. */
  async hotplug(event: HotplugEvent): Promise<void> {
    const { disk } = event;
    const body = { disk: { id: disk.id, path: disk.path, name: disk.name, size: disk.size } };
    if (event.type === 'added') this.emit('disk-added', body);
    else if (event.type === 'removed') this.emit('disk-removed', body);
    else this.emit('disk-changed', { ...body, sizeBefore: event.before.size });
    const affected = [...this.serving.values()].find(
      (s) => s.kernelName === disk.kernelName && (event.type !== 'added' || s.view.disk !== disk.id),
    );
    if (affected && event.type !== 'added') {
      const why = event.type === 'removed' ? 'the disk was removed' : `its size changed from ${event.before.size} to ${disk.size} bytes`;
      await this.lost(affected.view.disk, why);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.serving.values()].map((s) => this.unserve(s)));
    await this.server?.close();
    this.server = undefined;
  }

  private async lost(id: string, reason: string): Promise<void> {
    const entry = this.serving.get(id);
    if (!entry) return;
    this.log(`lost ${entry.view.path} (${id}): ${reason}`);
    await this.unserve(entry);
    this.emit('served-disk-lost', { disk: id, path: entry.view.path, exportName: entry.view.exportName, reason });
  }

  private async unserve(entry: Serving): Promise<void> {
    if (this.serving.get(entry.view.disk) !== entry) return;
    this.serving.delete(entry.view.disk);
    await this.server?.removeExport(entry.view.exportName).catch(() => {});
    await entry.device.close();
  }

  private async nbdServer(): Promise<NbdServer> {
    if (!this.server) throw new HelperError('FAILED', 'the helper is not listening (start() was not called or failed)');
    return this.server;
  }
}
