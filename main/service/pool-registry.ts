/**
 * The engine host's pools: the one owner of every open Pool, the member
 * devices it opened for them, and their NBD exports (volume-exports.ts).
 *
 * Guarantees:
 * - Changes to the set of pools and exports run one at a time, in call
 *   order (a `serial` chain), and each is saved to pools.json (atomically,
 *   pool-state-file.ts) before its request is answered, so a restart
 *   imports exactly the pools, and re-exports exactly the volumes, that
 *   clients were told about.
 * - At start every saved pool is imported again. One whose members cannot
 *   be opened or read stays in the list as `unavailable`, with the reason;
 *   it is never fatal, and it is not forgotten until a client says so.
 * - Engine events are forwarded to subscribers in the contract's shapes;
 *   member error counters at most 10 times a second per member.
 * - close() stops the exports (in-flight requests finish), then flushes and
 *   closes every pool, then closes the devices: the order that leaves
 *   nothing to reconcile at the next import.
 *
 * Member restores do not take the serial chain: a resync can take long, and
 * the rest of the host must not wait for it. Nor do jobs (pool-actions.ts):
 * they run in the engine; only their effect on the member list (a rebuilt
 * or evacuated member leaves the pool) is saved, when it happens.
 */
import { join } from 'node:path';
import { readdir, rename } from 'node:fs/promises';
import type { BlockDevice } from '../nbd/block-device.js';
import { parseLayoutName } from '../engine/layouts.js';
import { normaliseMemberUri, openMember } from '../engine/member-uri.js';
import { MetadataStore } from '../engine/metadata-store.js';
import { createPool, importPool } from '../engine/pool-open.js';
import type { PoolPolicy as EnginePoolPolicy } from '../engine/pool-state.js';
import type { MemberSource, Pool } from '../engine/pool.js';
import type {
  CorruptionDone,
  Events,
  JobProgress,
  MemberRestored,
  MemberStatus,
  PoolPolicy,
  PoolStatus,
  PoolSummary,
  Replies,
  RequestParams,
  VolumeStatus,
  VolumeSummary,
} from '../../preload/api.js';
import { corruptBlock } from './corrupt-block.js';
import { DemoDisks } from './demo-disks.js';
import type { HelperLaunch } from './disk-helper-client.js';
import { DriveInventory } from './drive-inventory.js';
import { findMember } from './find-member.js';
import { JobBook } from './job-book.js';
import { KeyedThrottle } from './keyed-throttle.js';
import { closeMembers, openAllMembers, openReachableMembers } from './member-sources.js';
import { forwardPoolEvents, type PoolEventListener, type PoolEventName } from './pool-event-forwarder.js';
import { PoolStateFile, type SavedPool } from './pool-state-file.js';
import { memberStatus, poolPolicy, poolStatus, poolSummary, unavailableSummary, volumeStatus, volumeSummary } from './pool-views.js';
import { VolumeExports } from './volume-exports.js';

/** ≤ 10 member-errors events a second per member, and job-progress events per job (issue 7). */
const MEMBER_ERRORS_INTERVAL_MS = 100;
const JOB_PROGRESS_INTERVAL_MS = 100;

/** A request that is valid but cannot be done here; the message is for people. */
export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

export interface PoolRegistryOptions {
  /** pools.json and the demo images live here. */
  readonly stateDir: string;
  /** nbd.sock lives here (a private folder: the socket is the only access control). */
  readonly runtimeDir: string;
  readonly log?: (line: string) => void;
  /** A ceiling on every job's I/O, bytes per second (SPINDLE_JOB_MAX_RATE; tests slow jobs down with it). */
  readonly jobMaxRate?: number;
  /** How to start the disk helper (drive-inventory.ts has the default). */
  readonly helperLaunch?: HelperLaunch;
}

/** An open pool, for the modules that act on it (pool-actions.ts, drive-inventory.ts). */
export interface OpenPoolView {
  readonly pool: Pool;
  readonly demo: boolean;
  readonly jobs: JobBook;
}

interface OpenPool {
  readonly kind: 'open';
  readonly pool: Pool;
  readonly demo: boolean;
  /** Every device opened for this pool, with the URI it was opened from; closed with the pool. */
  readonly devices: Map<BlockDevice, string>;
  /** URIs to open at the next start: the members' own, and those of members missing now. */
  memberUris: string[];
  /** Exported volumes, with the TCP port to bind again at the next start. */
  readonly exports: Map<string, { tcpPort?: number }>;
  readonly jobs: JobBook;
  readonly detach: () => void;
}

interface UnavailablePool {
  readonly kind: 'unavailable';
  readonly saved: SavedPool;
  readonly problem: string;
}

type Entry = OpenPool | UnavailablePool;

/** A drive looked at before it is added (probeDrives). */
export interface ProbedDrive {
  readonly uri: string;
  readonly size: number;
  /** Its Spindle label, when it has one: the member of which pool it was. */
  readonly label?: { readonly poolUuid: string; readonly memberUuid: string; readonly poolName?: string; readonly inUse: boolean };
}

export class PoolRegistry {
  readonly exports: VolumeExports;
  /** The demo pool's image files, served over NBD by this host (demo-disks.ts). */
  readonly demoDisks: DemoDisks;
  /** Drives: members, unused demo images, the helper's disks (drive-inventory.ts). */
  readonly drives: DriveInventory;
  readonly stateDir: string;
  readonly runtimeDir: string;
  private readonly entries = new Map<string, Entry>();
  private readonly stateFile: PoolStateFile;
  private readonly listeners = new Set<PoolEventListener>();
  /** pool/member uuid of the restores running now. */
  private readonly restoring = new Set<string>();
  private readonly errorEvents: KeyedThrottle<Events['member-errors']>;
  private readonly jobProgress: KeyedThrottle<JobProgress>;
  private readonly jobMaxRate: number | undefined;
  private readonly log: (line: string) => void;
  private chain: Promise<unknown> = Promise.resolve();
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: PoolRegistryOptions) {
    this.stateDir = options.stateDir;
    this.runtimeDir = options.runtimeDir;
    this.log = options.log ?? (() => {});
    this.jobMaxRate = options.jobMaxRate;
    this.stateFile = new PoolStateFile(options.stateDir);
    this.exports = new VolumeExports(join(options.runtimeDir, 'nbd.sock'), this.log);
    this.demoDisks = new DemoDisks(options.runtimeDir, this.log);
    this.errorEvents = new KeyedThrottle(MEMBER_ERRORS_INTERVAL_MS, (_key, data) => this.emit('member-errors', data));
    this.jobProgress = new KeyedThrottle(JOB_PROGRESS_INTERVAL_MS, (_key, data) => this.emit('job-progress', data));
    this.drives = new DriveInventory({
      runtimeDir: options.runtimeDir,
      stateDir: options.stateDir,
      demoDisks: this.demoDisks,
      report: (level, message) => this.report(level, message),
      ...(options.helperLaunch ? { helperLaunch: options.helperLaunch } : {}),
    });
  }

  subscribe(listener: PoolEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Imports the saved pools (once; later calls wait for the first). Every request waits for it. */
  start(): Promise<void> {
    this.starting ??= this.serial(() => this.importSavedPools());
    return this.starting;
  }

  // ---------------------------------------------------------------- queries

  async list(): Promise<PoolSummary[]> {
    await this.start();
    return this.summaries();
  }

  async status(name: string): Promise<PoolStatus> {
    await this.start();
    const entry = this.openPool(name);
    return poolStatus(entry.pool, entry.demo, (volume) => this.exports.info(exportName(name, volume)));
  }

  async volumeStatus(params: RequestParams<'volume-status'>): Promise<VolumeStatus> {
    await this.start();
    const { pool } = this.openPool(params.pool);
    const volume = pool.volume(params.name);
    if (params.firstChunk !== undefined && params.firstChunk > 0 && params.firstChunk >= volume.chunks.length) {
      throw new RegistryError(`volume ${params.pool}/${params.name} has ${volume.chunks.length} chunks; firstChunk ${params.firstChunk} is past them`);
    }
    return volumeStatus(pool, params.name, this.exports.info(exportName(params.pool, params.name)), params.firstChunk);
  }

  /** The running pool, for the demo (which writes its first data through it). */
  async pool(name: string): Promise<Pool> {
    await this.start();
    return this.openPool(name).pool;
  }

  /** An open pool with its jobs; a RegistryError naming the pools when there is none of that name. */
  async openEntry(name: string): Promise<OpenPoolView> {
    await this.start();
    return this.openPool(name);
  }

  /** Every open pool, and the member URIs of those that could not be opened (their drives are not free). */
  async openAndUnavailable(): Promise<{ open: Array<OpenPoolView & { name: string }>; unavailableUris: string[] }> {
    await this.start();
    const open: Array<OpenPoolView & { name: string }> = [];
    const unavailableUris: string[] = [];
    for (const [name, entry] of this.entries) {
      if (entry.kind === 'open') open.push({ name, pool: entry.pool, demo: entry.demo, jobs: entry.jobs });
      else unavailableUris.push(...entry.saved.members);
    }
    return { open, unavailableUris };
  }

  /** The pools open now (for the I/O rate sampler; no waiting for the start). */
  openPools(): Pool[] {
    return [...this.entries.values()].flatMap((e) => (e.kind === 'open' ? [e.pool] : []));
  }

  async has(name: string): Promise<{ demo: boolean } | undefined> {
    await this.start();
    const entry = this.entries.get(name);
    if (!entry) return undefined;
    return { demo: entry.kind === 'open' ? entry.demo : entry.saved.demo };
  }

  // ---------------------------------------------------------------- pools

  async create(params: RequestParams<'pool-create'>): Promise<PoolStatus> {
    await this.start();
    return this.serial(async () => {
      if (this.entries.has(params.name)) throw new RegistryError(`a pool named ${params.name} already exists`);
      const spares = params.spares ?? [];
      const opened = await this.openAll([...params.members, ...spares], params.force ?? false);
      let pool: Pool;
      try {
        pool = await createPool({
          name: params.name,
          members: opened.slice(0, params.members.length),
          spares: opened.slice(params.members.length),
          slabSize: params.slabSize,
          force: params.force,
        });
      } catch (error) {
        await closeMembers(opened);
        throw error;
      }
      this.register(pool, params.demo ?? false, opened, opened.map((s) => s.uri));
      await this.save(`pool ${params.name} was created`);
      this.emit('log', { level: 'info', message: `created pool ${params.name} on ${opened.length} member(s)`, pool: params.name });
      this.emitListChanged();
      return this.status(params.name);
    });
  }

  async import(params: RequestParams<'pool-import'>): Promise<Replies['pool-import']> {
    await this.start();
    return this.serial(async () => {
      // Importing is asking for what is on them: a disk's existing data is expected.
      const opened = await this.openAll(params.members, true);
      let report;
      try {
        report = await importPool(opened);
      } catch (error) {
        await closeMembers(opened);
        throw error;
      }
      const { pool } = report;
      const rejected = new Set(report.unrecognized.map((u) => u.uri));
      const kept = opened.filter((s) => !rejected.has(s.uri));
      await closeMembers(opened.filter((s) => rejected.has(s.uri)));
      const existing = this.entries.get(pool.name);
      const replacesUnavailable = existing?.kind === 'unavailable' && existing.saved.uuid === pool.state.uuid;
      const sameUuid = [...this.entries.values()].find((e) => e.kind === 'open' && e.pool.state.uuid === pool.state.uuid);
      if ((existing && !replacesUnavailable) || sameUuid) {
        await pool.close().catch(() => {});
        await closeMembers(kept);
        throw new RegistryError(
          sameUuid ? `pool ${pool.name} is already imported` : `a pool named ${pool.name} already exists; export it before importing another of that name`,
        );
      }
      const demo = params.demo ?? (existing?.kind === 'unavailable' ? existing.saved.demo : false);
      if (replacesUnavailable) this.entries.delete(pool.name);
      this.register(pool, demo, kept, unique([...kept.map((s) => s.uri), ...report.missing.map((m) => m.uri)]));
      if (existing?.kind === 'unavailable') await this.restoreExports(pool.name, existing.saved.exports);
      await this.save(`pool ${pool.name} was imported`);
      const missing = report.missing.length > 0 ? `; ${report.missing.length} member(s) missing` : '';
      this.emit('log', { level: report.missing.length > 0 ? 'warn' : 'info', message: `imported pool ${pool.name}${missing}`, pool: pool.name });
      this.emitListChanged();
      return { ...(await this.status(pool.name)), unrecognized: report.unrecognized };
    });
  }

  /** Closes a pool cleanly and forgets it (an unavailable one is just forgotten). */
  async exportPool(name: string): Promise<void> {
    await this.start();
    await this.serial(async () => {
      const entry = this.entries.get(name);
      if (!entry) throw this.noSuchPool(name);
      if (entry.kind === 'open') await this.closePool(name, entry);
      this.entries.delete(name);
      await this.save(`pool ${name} was exported`);
      this.emit('log', { level: 'info', message: `exported pool ${name}`, pool: name });
      this.emitListChanged();
    });
  }

  // ---------------------------------------------------------------- volumes

  async createVolume(params: RequestParams<'volume-create'>): Promise<VolumeSummary> {
    await this.start();
    return this.serial(async () => {
      const { pool } = this.openPool(params.pool);
      const { name, copies } = parseLayoutName(params.layout);
      await pool.createVolume({ name: params.name, size: params.size, layout: name, copies, width: params.width });
      this.emitListChanged();
      return volumeSummary(pool, params.name, undefined);
    });
  }

  async deleteVolume(params: RequestParams<'volume-delete'>): Promise<void> {
    await this.start();
    await this.serial(async () => {
      const { pool } = this.openPool(params.pool);
      const exported = this.exports.info(exportName(params.pool, params.name));
      if (exported) throw new RegistryError(`volume ${params.pool}/${params.name} is exported at ${exported.uri}; unexport it first`);
      await pool.deleteVolume(params.name);
      this.emitListChanged();
    });
  }

  async growVolume(params: RequestParams<'volume-grow'>): Promise<VolumeSummary> {
    await this.start();
    return this.serial(async () => {
      const { pool } = this.openPool(params.pool);
      const grown = await pool.growVolume(params.name, params.size);
      // The export still serves the old Volume object (and size): serve the grown one instead.
      await this.exports.replace(exportName(params.pool, params.name), grown);
      return volumeSummary(pool, params.name, this.exports.info(exportName(params.pool, params.name)));
    });
  }

  async exportVolume(params: RequestParams<'volume-export'>): Promise<Replies['volume-export']> {
    await this.start();
    return this.serial(async () => {
      const entry = this.openPool(params.pool);
      const volume = entry.pool.volume(params.name);
      const exported = await this.exports.add(exportName(params.pool, params.name), volume, params.tcpPort);
      entry.exports.set(params.name, exported.tcpPort !== undefined ? { tcpPort: exported.tcpPort } : {});
      await this.save(`volume ${params.pool}/${params.name} was exported`);
      return { ...volumeSummary(entry.pool, params.name, exported), export: exported };
    });
  }

  async unexportVolume(params: RequestParams<'volume-unexport'>): Promise<boolean> {
    await this.start();
    return this.serial(async () => {
      const entry = this.openPool(params.pool);
      entry.pool.volume(params.name);
      const was = await this.exports.remove(exportName(params.pool, params.name));
      entry.exports.delete(params.name);
      if (was) await this.save(`volume ${params.pool}/${params.name} was unexported`);
      return was;
    });
  }

  // ---------------------------------------------------------------- members and policy

  /**
   * Adds drives to a pool (data members or spares; their contents are lost),
   * all or none: the drives are opened first, and one the pool refuses
   * stops the ones after it (those before stay added, and are saved).
   */
  async addMembers(params: { pool: string; members: readonly string[]; role?: 'data' | 'spare'; force?: boolean }): Promise<PoolStatus> {
    await this.start();
    return this.serial(async () => {
      const entry = this.openPool(params.pool);
      const opened = await this.openAll(params.members, params.force ?? false);
      let added = 0;
      try {
        for (const source of opened) {
          await entry.pool.addMember(source, { role: params.role ?? 'data', force: params.force });
          entry.devices.set(source.device, source.uri);
          entry.memberUris = unique([...entry.memberUris, source.uri]);
          added++;
        }
      } finally {
        await closeMembers(opened.slice(added));
        if (added > 0) {
          await this.save(`member(s) were added to pool ${params.pool}`);
          this.emitListChanged();
        }
      }
      return this.status(params.pool);
    });
  }

  /** Opens drives to learn their sizes, and closes them (plans of adds): refused like addMembers would refuse them. */
  /**
   * Opens drives to learn their size and whether they carry a Spindle label
   * (a member of some pool, which adding them would erase), and closes them.
   * `confirmExistingData` lets a disk helper serve a disk that holds data.
   */
  async probeDrives(uris: readonly string[], options: { confirmExistingData?: boolean } = {}): Promise<ProbedDrive[]> {
    await this.start();
    const opened = await this.openAll(uris, options.confirmExistingData ?? false);
    try {
      return await Promise.all(
        opened.map(async (s) => {
          const label = await MetadataStore.readLabel(s.device).catch(() => undefined);
          if (!label) return { uri: s.uri, size: s.device.size };
          const owner = [...this.entries].find(([, e]) => e.kind === 'open' && e.pool.state.uuid === label.poolUuid);
          const pool = owner?.[1].kind === 'open' ? owner[1].pool : undefined;
          return {
            uri: s.uri,
            size: s.device.size,
            label: {
              poolUuid: label.poolUuid,
              memberUuid: label.memberUuid,
              ...(owner ? { poolName: owner[0] } : {}),
              // The pool is open here and still counts the drive as its member (reached some other way, or missing).
              inUse: pool !== undefined && pool.state.members.some((m) => m.uuid === label.memberUuid && m.state !== 'removed'),
            },
          };
        }),
      );
    } finally {
      await closeMembers(opened);
    }
  }

  /** Changes what the pool does by itself (kept in the pool's own metadata, not in pools.json). */
  async setPolicy(name: string, policy: Partial<PoolPolicy>): Promise<PoolStatus & { policy: PoolPolicy }> {
    await this.start();
    const { pool } = this.openPool(name);
    const change: Partial<EnginePoolPolicy> = {
      ...(policy.autoRepair !== undefined ? { autoRepair: policy.autoRepair } : {}),
      ...(policy.latencyBudget !== undefined ? { latencyBudget: policy.latencyBudget } : {}),
    };
    await pool.setPolicy(change);
    this.emit('log', { level: 'info', message: `policy of pool ${name}: automatic repair ${pool.state.policy.autoRepair ? 'on' : 'off'}, latency budget ${poolPolicy(pool).latencyBudget}× the idle p99`, pool: name });
    const status = await this.status(name);
    return { ...status, policy: status.policy };
  }

  /** A job took a member out of the pool (rebuilt, relocated, split or evacuated): close its device, forget its URI. */
  private memberLeft(name: string, label: string): void {
    const entry = this.entries.get(name);
    if (entry?.kind !== 'open') return;
    const uri = normalisedOrSelf(label);
    for (const [device, opened] of entry.devices) {
      if (opened === uri || opened === label) {
        entry.devices.delete(device);
        void device.close().catch(() => {});
      }
    }
    entry.memberUris = entry.memberUris.filter((u) => u !== uri && u !== label);
    this.emitListChanged();
    void this.serial(() => this.save(`member ${label} left pool ${name}`)).catch((error: unknown) => this.report('error', describe(error), name));
  }

  // ---------------------------------------------------------------- faults

  async failMember(params: RequestParams<'member-fail'>): Promise<MemberStatus> {
    await this.start();
    const { pool } = this.openPool(params.pool);
    const member = findMember(pool, params.member);
    await pool.failMember(member.uuid);
    return memberStatus(pool, member);
  }

  async restoreMember(params: RequestParams<'member-restore'>): Promise<MemberRestored> {
    await this.start();
    const entry = this.openPool(params.pool);
    const { pool } = entry;
    const member = findMember(pool, params.member);
    if (member.state === 'online' || member.state === 'resyncing') {
      throw new RegistryError(`member ${member.label} of pool ${pool.name} is already ${member.state}`);
    }
    // The engine's own check comes after an await; two restores at once must not both get past it.
    const key = `${pool.name}/${member.uuid}`;
    if (this.restoring.has(key)) throw new RegistryError(`member ${member.label} of pool ${pool.name} is already being restored`);
    this.restoring.add(key);
    const old = member.device;
    const uri = (old && entry.devices.get(old)) ?? member.label;
    let device: BlockDevice | undefined;
    let rowsRebuilt: number;
    try {
      device = await openMember(uri);
      rowsRebuilt = await pool.returnMember(member.uuid, device);
    } catch (error) {
      await device?.close().catch(() => {});
      throw error;
    } finally {
      this.restoring.delete(key);
    }
    entry.devices.set(device, uri);
    if (old && old !== device) {
      entry.devices.delete(old);
      await old.close().catch(() => {});
    }
    return { pool: pool.name, member: memberStatus(pool, member), rowsRebuilt };
  }

  async corrupt(params: RequestParams<'volume-corrupt'>): Promise<CorruptionDone> {
    await this.start();
    const entry = this.openPool(params.pool);
    if (!entry.demo) {
      throw new RegistryError(
        `pool ${params.pool} is not a demo or test pool: simulated corruption is only allowed on pools created with demo: true or by \`spindle demo\``,
      );
    }
    const done = await corruptBlock(entry.pool, params.name, params.offset);
    this.emit('log', { level: 'warn', message: `corrupted ${done.bytes} bytes of volume ${params.name} on member ${done.member} (simulated)`, pool: params.pool });
    return done;
  }

  // ---------------------------------------------------------------- shutdown

  /** Stops exports, flushes and closes every pool, closes their devices. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.starting?.catch(() => {});
      await this.chain.catch(() => {});
      this.errorEvents.clear();
      this.jobProgress.clear();
      await this.exports.close();
      for (const [name, entry] of this.entries) {
        if (entry.kind !== 'open') continue;
        try {
          await this.closePool(name, entry);
        } catch (error) {
          this.log(`pool ${name} did not close cleanly: ${(error as Error).message}`);
        }
      }
      this.entries.clear();
      // Last: the pools' members were served by them.
      await this.drives.close();
      await this.demoDisks.close();
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------- internals

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new RegistryError('the engine host is stopping'));
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private openPool(name: string): OpenPool {
    const entry = this.entries.get(name);
    if (!entry) throw this.noSuchPool(name);
    if (entry.kind === 'unavailable') {
      throw new RegistryError(
        `pool ${name} is unavailable: ${entry.problem}. Bring its members back and import it again, or forget it with pool export`,
      );
    }
    return entry;
  }

  private noSuchPool(name: string): RegistryError {
    const names = [...this.entries.keys()];
    return new RegistryError(`no pool named "${name}" ${names.length > 0 ? `(pools: ${names.join(', ')})` : '(there are no pools)'}`);
  }

  private summaries(): PoolSummary[] {
    return [...this.entries.values()].map((entry) =>
      entry.kind === 'open' ? poolSummary(entry.pool, entry.demo) : unavailableSummary(entry.saved, entry.problem),
    );
  }

  /** Opens member URIs that no pool here uses; all or nothing. */
  private async openAll(uris: readonly string[], confirmExistingData: boolean): Promise<MemberSource[]> {
    const normal = uris.map((uri) => normaliseMemberUri(uri));
    for (const uri of normal) {
      for (const [name, entry] of this.entries) {
        if (entry.kind === 'open' && [...entry.devices.values(), ...entry.memberUris].includes(uri)) {
          throw new RegistryError(`${uri} is already a member of pool ${name}`);
        }
      }
    }
    await this.drives.prepare(normal, { confirmExistingData });
    return openAllMembers(normal);
  }


  private register(pool: Pool, demo: boolean, sources: readonly MemberSource[], memberUris: readonly string[]): void {
    const name = pool.name;
    const emit: PoolEventListener = (event, data) => this.emit(event, data);
    const jobs = new JobBook(pool, emit, this.jobProgress);
    const forwarding = forwardPoolEvents(pool, emit, this.errorEvents, this.log);
    const onRemoved = (_uuid: string, label: string): void => this.memberLeft(name, label);
    pool.on('member-removed', onRemoved);
    if (this.jobMaxRate !== undefined) pool.jobs.tuning = { ...pool.jobs.tuning, maxRate: this.jobMaxRate };
    this.entries.set(name, {
      kind: 'open',
      pool,
      demo,
      devices: new Map(sources.map((s) => [s.device, s.uri])),
      memberUris: [...memberUris],
      exports: new Map(),
      jobs,
      detach: () => {
        forwarding();
        jobs.detach();
        pool.off('member-removed', onRemoved);
      },
    });
  }

  private async closePool(name: string, entry: OpenPool): Promise<void> {
    for (const volume of entry.exports.keys()) await this.exports.remove(exportName(name, volume)).catch(() => false);
    entry.detach();
    try {
      await entry.pool.close();
    } finally {
      await Promise.all([...entry.devices.keys()].map((d) => d.close().catch(() => {})));
    }
  }

  /** Serves every image of the demo folder (a demo pool's members and spare). */
  private async serveDemoImages(): Promise<void> {
    const dir = join(this.stateDir, 'demo');
    const names = await readdir(dir).catch(() => [] as string[]);
    const images = names.filter((n) => /^disk\d+\.img$/.test(n)).sort().map((n) => join(dir, n));
    if (images.length > 0) await this.demoDisks.serve(images);
  }

  private async importSavedPools(): Promise<void> {
    let saved: SavedPool[];
    try {
      saved = await this.stateFile.read();
    } catch (error) {
      // Keep the unreadable file for people to look at; start with no pools rather than not at all.
      const aside = `${this.stateFile.path}.unreadable-${Date.now()}`;
      await rename(this.stateFile.path, aside).catch(() => {});
      this.report('error', `cannot read the list of pools (${(error as Error).message}); moved it to ${aside}`);
      return;
    }
    if (saved.some((entry) => entry.demo)) {
      // A demo pool's members are served by this host: serve them before importing it.
      await this.serveDemoImages().catch((error: unknown) => this.report('error', `cannot serve the demo disks: ${(error as Error).message}`));
    }
    for (const entry of saved) {
      if (this.entries.has(entry.name)) continue;
      const problem = await this.importSaved(entry);
      if (problem) {
        this.entries.set(entry.name, { kind: 'unavailable', saved: entry, problem });
        this.report('error', `pool ${entry.name} is unavailable: ${problem}`, entry.name);
      }
    }
    if (saved.length > 0) this.emitListChanged();
  }

  /** Imports one saved pool; returns why it could not be, or undefined. */
  private async importSaved(saved: SavedPool): Promise<string | undefined> {
    // Served again if this host or its helper served them (demo images, helper disks); the pool's own labels are expected.
    await this.drives.prepare(saved.members, { confirmExistingData: true }).catch((error: unknown) => this.report('warn', describe(error), saved.name));
    const { opened, failures } = await openReachableMembers(saved.members);
    for (const failure of failures) this.report('warn', failure.error.message, saved.name);
    if (opened.length === 0) return `none of its ${saved.members.length} member(s) could be opened${failures[0] ? ` (${failures[0].error.message})` : ''}`;
    let report;
    try {
      report = await importPool(opened);
    } catch (error) {
      await closeMembers(opened);
      return describe(error);
    }
    const { pool } = report;
    if (pool.state.uuid !== saved.uuid || pool.name !== saved.name) {
      await pool.close().catch(() => {});
      await closeMembers(opened);
      return `its members now hold pool ${pool.name} (${pool.state.uuid}), not ${saved.name} (${saved.uuid})`;
    }
    const rejected = new Set(report.unrecognized.map((u) => u.uri));
    await closeMembers(opened.filter((s) => rejected.has(s.uri)));
    // A member that no longer carries the pool's labels left it (a job removed it just before a crash): forget it too.
    this.register(pool, saved.demo, opened.filter((s) => !rejected.has(s.uri)), saved.members.filter((uri) => !rejected.has(uri)));
    await this.restoreExports(saved.name, saved.exports);
    const missing = report.missing.length > 0 ? ` with ${report.missing.length} member(s) missing` : '';
    this.report(report.missing.length > 0 ? 'warn' : 'info', `imported pool ${saved.name}${missing}`, saved.name);
    return undefined;
  }

  private async restoreExports(poolName: string, exports: SavedPool['exports']): Promise<void> {
    const entry = this.openPool(poolName);
    for (const { volume, tcpPort } of exports) {
      try {
        const device = entry.pool.volume(volume);
        let exported;
        try {
          exported = await this.exports.add(exportName(poolName, volume), device, tcpPort);
        } catch (error) {
          if (tcpPort === undefined) throw error;
          // The port was taken while we were away: serve it on the Unix socket at least.
          this.report('warn', `volume ${volume}: ${describe(error)}; exported on the Unix socket only`, poolName);
          exported = await this.exports.add(exportName(poolName, volume), device);
        }
        entry.exports.set(volume, exported.tcpPort !== undefined ? { tcpPort: exported.tcpPort } : {});
      } catch (error) {
        this.report('warn', `cannot export volume ${volume} again: ${describe(error)}`, poolName);
      }
    }
  }

  private async save(what: string): Promise<void> {
    const pools: SavedPool[] = [...this.entries.entries()].map(([name, entry]) =>
      entry.kind === 'unavailable'
        ? entry.saved
        : {
            name,
            uuid: entry.pool.state.uuid,
            members: [...entry.memberUris],
            demo: entry.demo,
            exports: [...entry.exports].map(([volume, e]) => ({ volume, ...e })),
          },
    );
    try {
      await this.stateFile.write(pools);
    } catch (error) {
      throw new RegistryError(`${what}, but ${this.stateFile.path} could not be written (${describe(error)}): the engine host will not remember it after a restart`);
    }
  }

  private report(level: Events['log']['level'], message: string, pool?: string): void {
    this.log(pool ? `pool ${pool}: ${message}` : message);
    this.emit('log', { level, message, ...(pool ? { pool } : {}) });
  }

  private emitListChanged(): void {
    this.emit('pool-list-changed', { pools: this.summaries() });
  }

  private emit<E extends PoolEventName>(event: E, data: Events[E]): void {
    for (const listener of this.listeners) listener(event, data);
  }
}

function exportName(pool: string, volume: string): string {
  return `${pool}/${volume}`;
}

function normalisedOrSelf(uri: string): string {
  try {
    return normaliseMemberUri(uri);
  } catch {
    return uri;
  }
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
