/**
 * The drives the engine host can see (contract `drives-list`): the members
 * and spares of its pools, the demo folder's image files that no pool uses,
 * and the disks of the machine as the disk helper lists them, with SMART.
 *
 * The helper (disk-helper-client.ts) is started on first need, once, and
 * kept until the host stops; here it runs as the host's own user (in the
 * app the privileged launch is Electron main's business). When it cannot
 * start, or exits, the inventory goes on without the machine's disks and a
 * log event says why.
 *
 * A drive's `uri` is what to give pool-create or pool-add-member. A demo
 * image's is its export on the host's demo-disk server; a helper disk's is
 * the export the helper gives it. `prepare` serves either before it is
 * opened, so the URI works whether or not it is served yet.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normaliseMemberUri } from '../engine/member-uri.js';
import type { Member } from '../engine/member.js';
import type { Pool } from '../engine/pool.js';
import type { Drive, DriveState, Events, SmartSummary } from '../../preload/api.js';
import type { DemoDisks } from './demo-disks.js';
import { DiskHelperClient, DiskHelperError, helperLaunch, type HelperDisk, type HelperLaunch, type ServedDisk, type SmartReport } from './disk-helper-client.js';

/** SMART is read again after this long (smartctl wakes sleeping disks and takes a while). */
const SMART_MAX_AGE_MS = 60_000;
const HELPER_READY_TIMEOUT_MS = 20_000;
const DEMO_IMAGE = /^disk\d+\.img$/;

export interface DriveInventoryOptions {
  readonly runtimeDir: string;
  readonly stateDir: string;
  readonly demoDisks: DemoDisks;
  readonly report: (level: Events['log']['level'], message: string) => void;
  /** How to start the helper; by default as this process's user, from source or built code like this module. */
  readonly helperLaunch?: HelperLaunch;
}

export interface PoolsSeen {
  readonly open: ReadonlyArray<{ readonly name: string; readonly pool: Pool }>;
  /** Member URIs of pools that could not be opened: not free, though not listed. */
  readonly unavailableUris: readonly string[];
}

interface NbdUnix {
  readonly exportName: string;
  readonly socket: string;
}

export class DriveInventory {
  private helperStart: Promise<DiskHelperClient | undefined> | undefined;
  private readonly smartCache = new Map<string, { at: number; smart: SmartSummary | null }>();

  constructor(private readonly options: DriveInventoryOptions) {}

  /** Where the helper started by this host serves its disks. */
  get helperSocket(): string {
    return join(this.options.runtimeDir, 'helper', 'disks.sock');
  }

  async list(pools: PoolsSeen): Promise<Drive[]> {
    const helper = await this.helper();
    const [disks, served] = helper ? await Promise.all([helper.list(), helper.served()]).catch((error: unknown) => this.helperFailed(error)) : [[], []];
    const byExport = new Map(disks.map((d) => [d.name, d]));
    const used = new Set<string>(pools.unavailableUris.map(normalisedOrSelf));
    const drives: Drive[] = [];
    for (const { name, pool } of pools.open) {
      for (const member of pool.members.values()) {
        used.add(normalisedOrSelf(member.label));
        drives.push(await this.memberDrive(name, pool, member, helper, byExport, served));
      }
    }
    drives.push(...(await this.unusedImages(used)));
    if (helper) {
      const free = disks.filter((d) => !used.has(normalisedOrSelf(this.helperUri(d, served))));
      // Usable disks first: they are what people came for.
      free.sort((a, b) => Number(a.refusal !== null) - Number(b.refusal !== null));
      drives.push(...(await Promise.all(free.map((d) => this.helperDrive(helper, d, served)))));
    }
    return drives;
  }

  /** Serves the demo images and helper disks among `uris` that are not served yet. */
  async prepare(uris: readonly string[], options: { confirmExistingData?: boolean } = {}): Promise<void> {
    for (const uri of uris) {
      const target = nbdUnix(uri);
      if (!target) continue;
      if (target.socket === this.options.demoDisks.socketPath) {
        const image = join(this.options.stateDir, 'demo', `${target.exportName}.img`);
        if (DEMO_IMAGE.test(`${target.exportName}.img`) && (await isFile(image))) await this.options.demoDisks.serve([image]);
      } else if (target.socket === this.helperSocket) {
        await this.serveHelperDisk(target.exportName, options.confirmExistingData ?? false);
      }
    }
  }

  /** Stops the helper, which stops serving its disks. */
  async close(): Promise<void> {
    const helper = await this.helperStart?.catch(() => undefined);
    this.helperStart = Promise.resolve(undefined);
    await helper?.close().catch(() => {});
  }

  // ---------------------------------------------------------------- the helper

  private helper(): Promise<DiskHelperClient | undefined> {
    this.helperStart ??= this.startHelper();
    return this.helperStart;
  }

  private async startHelper(): Promise<DiskHelperClient | undefined> {
    const fromSource = fileURLToPath(import.meta.url).endsWith('.ts');
    const launch =
      this.options.helperLaunch ?? helperLaunch(fromSource ? 'source' : 'built', { env: { SPINDLE_HELPER_RUNTIME_DIR: join(this.options.runtimeDir, 'helper') } });
    try {
      const helper = await DiskHelperClient.start(launch, { readyTimeoutMs: HELPER_READY_TIMEOUT_MS });
      helper.on('exit', ({ code, signal }: { code: number | null; signal: string | null }) => {
        this.options.report('warn', `the disk helper exited (${signal ?? `code ${code}`}): the machine's disks are not listed until the engine host restarts`);
      });
      return helper;
    } catch (error) {
      this.options.report('warn', `the disk helper cannot run (${describe(error)}): the machine's disks are not listed, only pool members and demo images`);
      return undefined;
    }
  }

  private helperFailed(error: unknown): [HelperDisk[], ServedDisk[]] {
    this.options.report('warn', `the disk helper did not answer (${describe(error)}): the machine's disks are not listed`);
    return [[], []];
  }

  private async serveHelperDisk(exportName: string, confirmExistingData: boolean): Promise<void> {
    const helper = await this.helper();
    if (!helper) throw new DiskHelperError('HELPER_EXITED', `the disk helper is not running, so disk ${exportName} cannot be served`);
    if ((await helper.served()).some((s) => s.exportName === exportName)) return;
    const disk = (await helper.list()).find((d) => d.name === exportName);
    if (!disk?.id) throw new DiskHelperError('NOT_IN_INVENTORY', `the disk helper lists no disk ${exportName}`);
    await helper.serve(disk.id, { confirmExistingData });
  }

  /** The URI a helper disk has, or will have once served. */
  private helperUri(disk: HelperDisk, served: readonly ServedDisk[]): string {
    return served.find((s) => s.disk === disk.id)?.uri ?? `nbd+unix:///${disk.name}?socket=${this.helperSocket}`;
  }

  private async smart(helper: DiskHelperClient, id: string): Promise<SmartSummary | null> {
    const cached = this.smartCache.get(id);
    if (cached && performance.now() - cached.at < SMART_MAX_AGE_MS) return cached.smart;
    const smart = await helper.smart(id).then(smartSummary, () => null);
    this.smartCache.set(id, { at: performance.now(), smart });
    return smart;
  }

  // ---------------------------------------------------------------- drives

  private async memberDrive(
    poolName: string,
    pool: Pool,
    member: Member,
    helper: DiskHelperClient | undefined,
    byExport: ReadonlyMap<string, HelperDisk>,
    served: readonly ServedDisk[],
  ): Promise<Drive> {
    const uri = member.label;
    const info = pool.state.members.find((m) => m.uuid === member.uuid);
    const size = member.device?.size ?? member.slabCount * pool.state.slabSize;
    const target = nbdUnix(uri);
    const membership = { poolName, role: info?.role ?? 'data', memberUuid: member.uuid } as const;
    const disk = target?.socket === this.helperSocket ? byExport.get(target.exportName) : undefined;
    if (helper && disk?.id && served.some((s) => s.disk === disk.id)) {
      const smart = await this.smart(helper, disk.id);
      return { ...diskFacts(disk, uri), size, state: memberState(member, smart), smart, ...membership };
    }
    const image = target?.socket === this.options.demoDisks.socketPath ? join(this.options.stateDir, 'demo', `${target.exportName}.img`) : undefined;
    const file = uri.startsWith('file:') ? uri.slice('file:'.length).replace(/^\/\/(?=\/)/, '') : image;
    const path = file ?? uri;
    return {
      id: path,
      path,
      uri,
      model: null,
      serial: null,
      size,
      rotational: false,
      transport: file ? 'file' : 'nbd',
      state: memberState(member, null),
      smart: null,
      ...membership,
    };
  }

  private async unusedImages(used: ReadonlySet<string>): Promise<Drive[]> {
    const dir = join(this.options.stateDir, 'demo');
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => DEMO_IMAGE.test(n)).sort();
    const drives: Drive[] = [];
    for (const name of names) {
      const path = join(dir, name);
      const uri = this.options.demoDisks.uriOf(path);
      if (used.has(normalisedOrSelf(uri))) continue;
      const size = await stat(path).then((s) => (s.isFile() ? s.size : undefined), () => undefined);
      if (size === undefined) continue;
      drives.push({ id: path, path, uri, model: null, serial: null, size, rotational: false, transport: 'file', state: 'online', smart: null, poolName: null, role: null, memberUuid: null });
    }
    return drives;
  }

  private async helperDrive(helper: DiskHelperClient, disk: HelperDisk, served: readonly ServedDisk[]): Promise<Drive> {
    const smart = disk.id !== null ? await this.smart(helper, disk.id) : null;
    const unusable = disk.refusal ?? (disk.id === null ? `${disk.path} has no WWN or serial number: Spindle could not tell it apart from other disks after a restart` : null);
    return {
      ...diskFacts(disk, this.helperUri(disk, served)),
      size: disk.size,
      state: smart?.verdict === 'failed' ? 'failing' : 'online',
      smart,
      poolName: null,
      role: null,
      memberUuid: null,
      ...(unusable !== null ? { unusableReason: unusable } : {}),
    };
  }
}

function diskFacts(disk: HelperDisk, uri: string): Pick<Drive, 'id' | 'path' | 'uri' | 'model' | 'serial' | 'rotational' | 'transport'> {
  return {
    // A disk without a stable id is listed (unusable) under its device path.
    id: disk.id ?? disk.path,
    path: disk.byIdPaths[0] ?? disk.path,
    uri,
    model: disk.model,
    serial: disk.serial,
    rotational: disk.rotational,
    transport: disk.transport,
  };
}

function memberState(member: Member, smart: SmartSummary | null): DriveState {
  if (member.state === 'failed') return 'failed';
  if (member.state === 'missing') return 'missing';
  if (smart?.verdict === 'failed') return 'failing';
  const { read, write, checksum } = member.errors;
  return read + write + checksum > 0 ? 'degraded' : 'online';
}

export function smartSummary(report: SmartReport): SmartSummary | null {
  if (!report.available) return null;
  return {
    verdict: report.verdict === 'passed' && report.warnings.length > 0 ? 'warning' : report.verdict,
    temperatureC: report.temperatureC,
    reallocated: report.reallocatedSectors,
    pending: report.pendingSectors,
    uncorrectable: report.uncorrectableErrors,
    powerOnHours: report.powerOnHours,
    warnings: report.warnings,
  };
}

function nbdUnix(uri: string): NbdUnix | undefined {
  if (!uri.startsWith('nbd+unix:')) return undefined;
  try {
    const url = new URL(uri);
    const socket = url.searchParams.get('socket');
    return socket ? { exportName: decodeURIComponent(url.pathname.replace(/^\//, '')), socket } : undefined;
  } catch {
    return undefined;
  }
}

function normalisedOrSelf(uri: string): string {
  try {
    return normaliseMemberUri(uri);
  } catch {
    return uri;
  }
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
