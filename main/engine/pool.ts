/**
 * A pool: members, the metadata that describes them, and the volumes placed
 * on them. The one place that changes pool state, always in this order:
 *
 *   1. append the record to the metadata log (durable on the replicas),
 *   2. apply it to the in-memory state,
 *   3. act on it (use new chunks, stop using a failed member).
 *
 * So whatever import finds after a crash is a state the pool was really in,
 * and nothing was ever acknowledged on the strength of a state that import
 * would not find (a write that skipped a failed member is acknowledged only
 * after "member failed" and "row stale on that member" are in the log).
 *
 * Failure handling: a member whose I/O fails for good is marked failed (and
 * its slabs stop being read or written); reads are served from copies or
 * parity (chunk-io.ts); bad copies found on the way are queued and rewritten
 * by the repair loop. A volume with a failed member is degraded; one with a
 * chunk missing more than its layout survives is failed and returns EIO.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { BlockDevice } from '../nbd/block-device.js';
import { AllocationError, SlabAllocator } from './allocator.js';
import { ChunkIo, type ChunkContext } from './chunk-io.js';
import { KeyLock } from './key-lock.js';
import { STRIPE_UNIT, type Layout, type LayoutName, type LayoutSpec } from './layout.js';
import { layouts } from './layouts.js';
import { JobRunner } from './job-runner.js';
import type { JobHost } from './job-types.js';
import { Member } from './member.js';
import {
  applyRecord,
  encodeCheckpoint,
  encodeRecord,
  type ChunkInfo,
  type MemberRole,
  type PoolPolicy,
  type PoolRecord,
  type PoolState,
} from './pool-state.js';
import { ChecksumCache } from './slab-checksums.js';
import { slabGeometry, type SlabGeometry } from './slab-geometry.js';
import { Volume, type VolumeState } from './volume.js';
import { formatSize } from './units.js';
import { RowJournal, type JournalArea, type JournalWrite } from './row-journal.js';
import { rowsOfRegion, WriteIntentLog, type IntentTarget } from './write-intent.js';
import { staleRegionOf, staleRegionsCovering, staleRowsOfRegion } from './stale-regions.js';

/** Default slab size: big enough that the chunk map stays small, small enough to move one at a time. */
export const DEFAULT_SLAB_SIZE = 256 * 1024 * 1024;
/** Records above this go in as a checkpoint (see commit). */
const MAX_RECORD_BYTES = 256 * 1024;

export class PoolError extends Error {
  constructor(
    readonly code:
      | 'BAD_NAME'
      | 'EXISTS'
      | 'NOT_FOUND'
      | 'NO_SPACE'
      | 'BAD_LAYOUT'
      | 'TOO_FEW_MEMBERS'
      | 'DUPLICATE_MEMBER'
      | 'BAD_SIZE'
      | 'BUSY'
      | 'FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'PoolError';
  }
}

/** How the pool persists its metadata; metadata-store.ts provides the real one. */
export interface PoolMetadata {
  append(record: Buffer): Promise<void>;
  checkpoint(state: Buffer): Promise<void>;
  /** 0..1: how full the log is; the pool checkpoints past a threshold. */
  readonly logFillRatio: number;
  memberFailed(uuid: string): void;
  /** Checks that `device` is this member, brings its metadata up to date, and says where its areas are. */
  memberOnline(uuid: string, device: BlockDevice): Promise<MemberLayoutInfo>;
  /** Labels a new member of the pool and says where its areas are. */
  addMember(uuid: string, device: BlockDevice, options: AddMemberOptions): Promise<MemberLayoutInfo>;
  /** Forgets a member (wiping its labels when it is reachable). */
  removeMember(uuid: string): Promise<void>;
  close(): Promise<void>;
}

export interface AddMemberOptions {
  /** A spare takes no data until a rebuild puts some on it (job-rebuild.ts). Default data. */
  readonly role?: MemberRole;
  /** Metadata reservation (tests use small members); default scales with member size. */
  readonly metadataBytes?: number;
  /** Take a device labelled for another pool (its data is lost). */
  readonly force?: boolean;
}

export interface MemberSource {
  readonly uri: string;
  readonly device: BlockDevice;
}

export interface MemberLayoutInfo {
  readonly uuid: string;
  readonly dataOffset: number;
  readonly slabCount: number;
  /** The member's write-intent area (on-disk-format.ts). */
  readonly intentOffset: number;
  readonly intentBytes: number;
  /** The member's row journal (0 bytes: it has none). */
  readonly journalOffset: number;
  readonly journalBytes: number;
}

export interface PoolEvents {
  'member-state': [member: Member];
  /** A member's read, write or checksum error counter went up. */
  'member-errors': [member: Member, kind: 'read' | 'write' | 'checksum'];
  'volume-state': [name: string, state: VolumeState];
  /** A member was added (addMember) or left the pool (a job took it out). */
  'member-added': [member: Member];
  'member-removed': [uuid: string, label: string];
  log: [level: 'info' | 'warn' | 'error', message: string];
}

export interface VolumeRequest {
  readonly name: string;
  readonly size: number;
  readonly layout: LayoutName;
  readonly copies?: number;
  /** Members per chunk; the layout's default for this pool when omitted. */
  readonly width?: number;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class Pool extends EventEmitter<PoolEvents> {
  private stateValue: PoolState;
  readonly members = new Map<string, Member>();
  private readonly volumes = new Map<string, Volume>();
  private readonly chunkIo = new Map<number, ChunkIo>();
  private readonly allocator: SlabAllocator;
  readonly geometry: SlabGeometry;
  readonly checksums: ChecksumCache;
  private readonly rowLock = new KeyLock<string>();
  private readonly repairQueue = new Set<string>();
  private repairRunning: Promise<void> | undefined;
  /** Serialises state changes, so records reach the log in the order they apply. */
  private changeChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  readonly intent: WriteIntentLog;
  private readonly intentAreas = new Map<string, { offset: number; bytes: number }>();
  /** Degraded parity rows journal here before they are written (row-journal.ts). */
  private readonly journal: RowJournal;
  private readonly journalAreas = new Map<string, { offset: number; bytes: number }>();
  private warnedNoJournal = false;
  /** Repair and reconfiguration jobs (job-runner.ts has the API). */
  readonly jobs: JobRunner;
  /** Write-intent regions the last reconcile settled (a resumed slab move copies them again). */
  private readonly reconciled = new Set<string>();
  /** Each volume's chunk list, as its Volume object reads it (a migrate changes it in place). */
  private readonly volumeChunks = new Map<string, ChunkIo[]>();
  /** The row locks as volumes see them: timed while a job runs, for the governor. */
  private readonly foregroundLock: Pick<KeyLock<string>, 'with'>;

  constructor(
    state: PoolState,
    private readonly metadata: PoolMetadata,
    memberLayouts: readonly MemberLayoutInfo[],
    devices: ReadonlyMap<string, BlockDevice>,
  ) {
    super();
    this.stateValue = state;
    this.geometry = slabGeometry(state.slabSize, STRIPE_UNIT);
    this.checksums = new ChecksumCache(this.geometry, state.uuid);
    for (const info of state.members) {
      if (info.state === 'removed') continue;
      const where = memberLayouts.find((l) => l.uuid === info.uuid);
      if (!where) throw new PoolError('FAILED', `no on-disk layout for member ${info.uuid}`);
      const member = new Member(info.uuid, devices.get(info.uuid), where.dataOffset, state.slabSize, info.slabCount, info.uri);
      this.intentAreas.set(info.uuid, { offset: where.intentOffset, bytes: where.intentBytes });
      this.journalAreas.set(info.uuid, { offset: where.journalOffset, bytes: where.journalBytes });
      if (info.state === 'failed') member.state = 'failed';
      this.members.set(info.uuid, member);
    }
    this.allocator = new SlabAllocator(
      [...this.members.values()].map((m) => ({ uuid: m.uuid, slabCount: m.slabCount })),
      allSlabs(state),
    );
    for (const member of this.members.values()) this.allocator.setEligible(member.uuid, this.isEligible(member));
    this.intent = new WriteIntentLog(
      state.uuid,
      () => this.intentTargets(),
      (target, error) => {
        const member = [...this.members.values()].find((m) => m.device === target.device);
        return member ? this.markFailed(member, describe(error)) : Promise.resolve();
      },
    );
    this.journal = new RowJournal(
      state.uuid,
      (uuid) => this.journalArea(uuid),
      () => this.flush(),
      (uuid, error) => {
        const member = this.members.get(uuid);
        return member ? this.markFailed(member, describe(error)) : Promise.resolve();
      },
    );
    for (const chunk of state.chunks.values()) this.chunkIo.set(chunk.id, this.makeChunk(chunk));
    this.foregroundLock = {
      with: (key, fn) => {
        const governor = this.jobs.governor;
        if (!governor.sampling) return this.rowLock.with(key, fn);
        const start = performance.now();
        return this.rowLock.with(key, fn).finally(() => governor.sample(performance.now() - start));
      },
    };
    for (const volume of state.volumes) this.openVolume(volume.name);
    // Jobs found in the log re-attach to the chunks they were moving before any I/O can happen.
    this.jobs = new JobRunner(this.jobHost());
  }

  // ---------------------------------------------------------------- queries

  get state(): PoolState {
    return this.stateValue;
  }

  get name(): string {
    return this.stateValue.name;
  }

  volume(name: string): Volume {
    const volume = this.volumes.get(name);
    if (!volume) throw new PoolError('NOT_FOUND', `pool ${this.name} has no volume "${name}"`);
    return volume;
  }

  volumeNames(): string[] {
    return [...this.volumes.keys()];
  }

  chunk(id: number): ChunkIo | undefined {
    return this.chunkIo.get(id);
  }

  /** The layout spec the pool would use for a request (validated), or a PoolError. */
  specFor(layout: LayoutName, copies?: number, width?: number): LayoutSpec {
    const impl: Layout | undefined = layouts[layout];
    if (!impl) throw new PoolError('BAD_LAYOUT', `unknown layout "${layout}": expected raid0, raid1, raid10, raid5 or raid6`);
    const c = copies ?? (layout === 'raid1' || layout === 'raid10' ? 2 : 1);
    const eligible = [...this.members.values()].filter((m) => this.isEligible(m)).length;
    const w = width ?? impl.defaultWidth(eligible, c);
    const spec: LayoutSpec = { name: layout, width: w, copies: c };
    const problem = impl.validate(spec);
    if (problem) throw new PoolError('BAD_LAYOUT', problem);
    if (w > eligible) {
      throw new PoolError('TOO_FEW_MEMBERS', `${layout}${c > 1 && layout === 'raid1' ? ` with ${c} copies` : ''} needs ${w} members with free space; pool ${this.name} has ${eligible}`);
    }
    return spec;
  }

  /** Bytes a new volume of this layout could still get (exact, from the allocator). */
  freeSpace(layout: LayoutName, copies?: number): number {
    let spec: LayoutSpec;
    try {
      spec = this.specFor(layout, copies);
    } catch {
      return 0;
    }
    const perChunk = layouts[spec.name].dataUnits(spec) * this.geometry.dataBytes;
    return this.allocator.chunksThatFit(spec.width) * perChunk;
  }

  volumeState(name: string): VolumeState {
    const info = this.stateValue.volumes.find((v) => v.name === name);
    if (!info) return 'failed';
    let degraded = false;
    for (const id of info.chunks) {
      const health = this.chunkHealth(this.chunkIo.get(id)!);
      if (health === 'failed') return 'failed';
      if (health === 'degraded') degraded = true;
    }
    return degraded ? 'degraded' : 'online';
  }

  // ---------------------------------------------------------------- volumes

  async createVolume(request: VolumeRequest): Promise<Volume> {
    return this.change(async () => {
      if (!NAME_PATTERN.test(request.name)) {
        throw new PoolError('BAD_NAME', `invalid volume name "${request.name}": use letters, digits, '.', '_' and '-' (at most 64, not starting with a symbol)`);
      }
      if (this.volumes.has(request.name)) throw new PoolError('EXISTS', `pool ${this.name} already has a volume "${request.name}"`);
      if (!Number.isSafeInteger(request.size) || request.size <= 0 || request.size % 512 !== 0) {
        throw new PoolError('BAD_SIZE', `invalid volume size ${request.size}: it must be a positive multiple of 512 bytes`);
      }
      const spec = this.specFor(request.layout, request.copies, request.width);
      const chunks = this.allocateChunks(spec, request.size, request.name);
      await this.commit({ t: 'volume-create', volume: { name: request.name, size: request.size, spec, chunks: chunks.map((c) => c.id) }, chunks });
      for (const c of chunks) this.chunkIo.set(c.id, this.makeChunk(c));
      return this.openVolume(request.name);
    });
  }

  async deleteVolume(name: string): Promise<void> {
    return this.change(async () => {
      const info = this.stateValue.volumes.find((v) => v.name === name);
      if (!info) throw new PoolError('NOT_FOUND', `pool ${this.name} has no volume "${name}"`);
      this.assertFree({ volume: name });
      const chunks = info.chunks.map((id) => this.stateValue.chunks.get(id)!);
      await this.commit({ t: 'volume-delete', name });
      this.volumes.delete(name);
      this.volumeChunks.delete(name);
      for (const c of chunks) {
        this.chunkIo.delete(c.id);
        for (const s of c.slabs) this.checksums.forget(this.members.get(s.member)!, s.slab);
      }
      this.allocator.release(chunks.flatMap((c) => c.slabs));
    });
  }

  async growVolume(name: string, size: number): Promise<Volume> {
    return this.change(async () => {
      const info = this.stateValue.volumes.find((v) => v.name === name);
      if (!info) throw new PoolError('NOT_FOUND', `pool ${this.name} has no volume "${name}"`);
      if (!Number.isSafeInteger(size) || size % 512 !== 0 || size <= info.size) {
        throw new PoolError('BAD_SIZE', `volume ${name} can only grow: ${size} is not a multiple of 512 larger than its ${info.size} bytes`);
      }
      this.assertFree({ volume: name });
      const have = info.chunks.reduce((sum, id) => sum + this.chunkIo.get(id)!.capacity, 0);
      const chunks = size > have ? this.allocateChunks(info.spec, size - have, name) : [];
      await this.commit({ t: 'volume-grow', name, size, chunks });
      for (const c of chunks) this.chunkIo.set(c.id, this.makeChunk(c));
      return this.openVolume(name);
    });
  }

  /** Allocates the chunks for `bytes` of a volume, or throws NO_SPACE and gives back what it took. */
  private allocateChunks(spec: LayoutSpec, bytes: number, volumeName: string): ChunkInfo[] {
    const perChunk = layouts[spec.name].dataUnits(spec) * this.geometry.dataBytes;
    const count = Math.ceil(bytes / perChunk);
    const fit = this.allocator.chunksThatFit(spec.width);
    if (count > fit) {
      throw new PoolError(
        'NO_SPACE',
        `not enough free space in pool ${this.name} for ${volumeName}: it needs ${formatSize(count * perChunk)} of ${spec.name}, and ${formatSize(fit * perChunk)} is free for that layout`,
      );
    }
    const chunks: ChunkInfo[] = [];
    let id = this.stateValue.nextChunkId;
    try {
      for (let i = 0; i < count; i++) chunks.push({ id: id++, spec, slabs: this.allocator.allocate(spec.width) });
    } catch (error) {
      this.allocator.release(chunks.flatMap((c) => c.slabs));
      if (error instanceof AllocationError) throw new PoolError('NO_SPACE', error.message);
      throw error;
    }
    return chunks;
  }

  private openVolume(name: string): Volume {
    const info = this.stateValue.volumes.find((v) => v.name === name)!;
    const chunks = info.chunks.map((id) => this.chunkIo.get(id)!);
    this.volumeChunks.set(name, chunks);
    const volume = new Volume(name, info.size, info.spec, chunks, {
      rowLock: this.foregroundLock,
      flush: () => this.flush(),
      beginWrite: (chunk, row) => this.intent.begin(chunk.id, row),
      state: () => this.volumeState(name),
    });
    this.volumes.set(name, volume);
    return volume;
  }

  // ---------------------------------------------------------------- I/O support

  /** One context per layout, shared by its chunks (a big pool has a hundred thousand). */
  private readonly chunkContexts = new Map<LayoutName, ChunkContext>();

  private makeChunk(info: ChunkInfo): ChunkIo {
    let context = this.chunkContexts.get(info.spec.name);
    if (!context) {
      context = {
        layout: layouts[info.spec.name],
        geometry: this.geometry,
        checksums: this.checksums,
        memberFailed: (member, error) => this.markFailed(member, describe(error)),
        memberSkipped: (member, chunkId, row) => this.markStale(member, chunkId, row),
        repairNeeded: (chunkId, row) => this.queueRepair(chunkId, row),
        errorCounted: (member, kind) => {
          member.errors[kind]++;
          this.emit('member-errors', member, kind);
        },
        journalRow: (write) => this.journalRow(write),
      };
      this.chunkContexts.set(info.spec.name, context);
    }
    return new ChunkIo(
      info.id,
      info.spec,
      info.slabs.map((s) => ({ member: this.members.get(s.member)!, slab: s.slab })),
      context,
    );
  }

  private journalArea(uuid: string): JournalArea | undefined {
    const member = this.members.get(uuid);
    const area = this.journalAreas.get(uuid);
    if (!member?.device || !member.writable || !area || area.bytes === 0) return undefined;
    return { device: member.device, ...area };
  }

  private async journalRow(write: JournalWrite): Promise<(() => void) | undefined> {
    if (!this.journal.canHold(write.targets, write.units.length)) {
      if (!this.warnedNoJournal) {
        this.warnedNoJournal = true;
        this.emit('log', 'warn', `pool ${this.name}: a degraded parity row is written without a row journal (its parity members were labelled before the journal existed, or have too little room for one): a crash in the middle of such a write can leave the missing column wrong`);
      }
      return undefined;
    }
    const ticket = await this.journal.write(write);
    return () => this.journal.done(ticket);
  }

  /** Every earlier write is durable on every usable member when this resolves. */
  async flush(): Promise<void> {
    const journalEpoch = this.journal.flushStarting();
    const epoch = this.intent.flushStarting();
    await this.checksums.writeBackAll((member, error) => this.markFailed(member, describe(error)));
    const writable = [...this.members.values()].filter((m) => m.writable);
    await Promise.all(
      writable.map((m) =>
        m.device!.flush().catch((error: unknown) => this.markFailed(m, describe(error))),
      ),
    );
    // Journal records retire before the write-intent log may forget their regions (row-journal.ts).
    await this.journal.flushed(journalEpoch);
    this.intent.flushed(epoch);
  }

  private intentTargets(): IntentTarget[] {
    return [...this.members.values()]
      .filter((m) => m.writable)
      .map((m) => ({ device: m.device!, ...this.intentAreas.get(m.uuid)! }));
  }

  /**
   * After an unclean stop: reconciles every row the write-intent log names
   * (chunk-io.ts resyncRow), then records the log empty. Returns the rows done.
   */
  async reconcile(): Promise<number> {
    const { regions, sequence } = await WriteIntentLog.read(this.stateValue.uuid, this.intentTargets());
    let rows = 0;
    // A live journal record always has its region in the write-intent record (row-journal.ts).
    if (regions.size > 0) rows += await this.replayJournal();
    for (const region of regions) {
      this.reconciled.add(region);
      const { chunkId, firstRow, rows: count } = rowsOfRegion(region);
      const chunk = this.chunkIo.get(chunkId);
      if (!chunk) continue;
      for (let row = firstRow; row < Math.min(firstRow + count, chunk.rows); row++) {
        await this.rowLock.with(`${chunkId}:${row}`, () => resyncRow(chunk, row));
        rows++;
      }
      // A member absent now missed this reconcile: the region is stale on it.
      for (const member of new Set(chunk.columns.map((c) => c.member))) {
        if (!member.writable) await this.commit({ t: 'stale-add', uuid: member.uuid, rows: staleRegionsCovering(chunkId, firstRow, count, chunk.rows) });
      }
    }
    if (regions.size > 0) this.emit('log', 'warn', `reconciled ${rows} row(s) left in flight by an unclean stop`);
    await this.flush();
    // Replayed rows are durable: this open's journal starts (every older record dead).
    await this.journal.start(this.members.keys());
    this.intent.resume(sequence);
    await this.intent.persist();
    return rows;
  }

  /** Replays the row journal's live groups (row-journal.ts); returns the rows replayed. */
  private async replayJournal(): Promise<number> {
    const areas: Array<[string, JournalArea]> = [];
    for (const uuid of this.members.keys()) {
      const area = this.journalArea(uuid);
      if (area) areas.push([uuid, area]);
    }
    const groups = await RowJournal.readLive(this.stateValue.uuid, areas);
    let replayed = 0;
    for (const group of groups) {
      const chunk = this.chunkIo.get(group.chunkId);
      const done = chunk ? await this.rowLock.with(`${group.chunkId}:${group.row}`, () => chunk.replayJournal(group)) : false;
      if (done) replayed++;
      else this.emit('log', 'error', `pool ${this.name}: chunk ${group.chunkId} row ${group.row} was being written with a column missing when the pool stopped, and too few of its columns are here to make it whole`);
    }
    if (groups.length > 0) this.emit('log', 'warn', `replayed ${replayed} journalled row write(s) of degraded parity rows`);
    return replayed;
  }

  private chunkHealth(chunk: ChunkIo): 'online' | 'degraded' | 'failed' {
    const down = chunk.columns.map((c) => !c.member.usable);
    if (!down.some(Boolean)) return 'online';
    const layout = layouts[chunk.spec.name];
    for (let r = 0; r < chunk.spec.width; r++) {
      const map = layout.row(chunk.spec, r);
      if (map.p !== undefined) {
        const columns = [...map.data.flat(), map.p, ...(map.q !== undefined ? [map.q] : [])];
        if (columns.filter((c) => down[c]).length > chunk.faultTolerance) return 'failed';
      } else if (map.data.some((copies) => copies.every((c) => down[c]))) {
        return 'failed';
      }
    }
    return 'degraded';
  }

  // ---------------------------------------------------------------- failures

  /** Marks a member failed: durable first, then it is no longer used. Idempotent. */
  markFailed(member: Member, reason: string): Promise<void> {
    if (member.state === 'failed' || member.state === 'missing') return Promise.resolve();
    const before = new Map([...this.volumes.keys()].map((n) => [n, this.volumeState(n)]));
    member.state = 'failed'; // stop using it at once; the record follows before anything is acknowledged
    this.allocator.setEligible(member.uuid, false);
    this.metadata.memberFailed(member.uuid);
    this.emit('member-state', member);
    this.emit('log', 'error', `member ${member.label} failed: ${reason}`);
    for (const [name, state] of before) {
      const now = this.volumeState(name);
      if (now !== state) this.emit('volume-state', name, now);
    }
    // Rows written since the last flush may not be on this member's disk (data
    // or checksum tables): they are stale on it too, so a return rebuilds them.
    const unflushed = this.intent.dirtyRegionKeys().flatMap((region) => {
      const { chunkId, firstRow, rows } = rowsOfRegion(region);
      const chunk = this.chunkIo.get(chunkId);
      return chunk?.columns.some((c) => c.member === member) ? staleRegionsCovering(chunkId, firstRow, rows, chunk.rows) : [];
    });
    return this.commit({ t: 'member-state', uuid: member.uuid, state: 'failed', reason }).then(() =>
      unflushed.length > 0 ? this.commit({ t: 'stale-add', uuid: member.uuid, rows: unflushed }) : undefined,
    );
  }

  private staleInFlight = new Map<string, Promise<void>>();

  private markStale(member: Member, chunkId: number, row: number): Promise<void> {
    // A returning member resyncs regions, not single rows.
    const region = staleRegionOf(chunkId, row);
    if (this.stateValue.stale.get(member.uuid)?.has(region)) return Promise.resolve();
    const key = `${member.uuid}/${region}`;
    let pending = this.staleInFlight.get(key);
    if (!pending) {
      pending = this.commit({ t: 'stale-add', uuid: member.uuid, rows: [region] }).finally(() => this.staleInFlight.delete(key));
      this.staleInFlight.set(key, pending);
    }
    return pending;
  }

  /** Simulates a dead disk (demo pools, tests): the member fails as if its I/O had. */
  async failMember(uuid: string): Promise<void> {
    const member = this.members.get(uuid);
    if (!member) throw new PoolError('NOT_FOUND', `pool ${this.name} has no member ${uuid}`);
    await this.markFailed(member, 'failed on request');
  }

  /**
   * A failed or missing member is back (the disk returned, the server came
   * back): it takes writes at once, and the rows it missed (the stale
   * regions recorded while it was away) are rebuilt onto it before it serves
   * reads again. Resolves when it is online. Rejects, changing nothing, when
   * the device is not this member (the metadata store checks its label).
   */
  async returnMember(uuid: string, device: BlockDevice): Promise<number> {
    const member = this.members.get(uuid);
    if (!member) throw new PoolError('NOT_FOUND', `pool ${this.name} has no member ${uuid}`);
    if (member.state === 'online' || member.state === 'resyncing') throw new PoolError('FAILED', `member ${member.label} is already ${member.state}`);
    this.assertFree({ member: uuid });
    const where = await this.metadata.memberOnline(uuid, device);
    // A member missing at import had no known offsets until now.
    member.dataOffset = where.dataOffset;
    this.intentAreas.set(uuid, { offset: where.intentOffset, bytes: where.intentBytes });
    this.journalAreas.set(uuid, { offset: where.journalOffset, bytes: where.journalBytes });
    this.checksums.forget(member);
    member.device = device;
    member.state = 'resyncing';
    // Its journal starts under this open's salt: records from before it left are dead (row-journal.ts).
    await this.journal.start([uuid]);
    this.emit('member-state', member);
    let rebuilt = 0;
    // Writes made while it was away, and any made by the failure path since: loop until none is left.
    for (;;) {
      const stale = [...(this.stateValue.stale.get(uuid) ?? [])];
      if (stale.length === 0) break;
      for (const region of stale) {
        const { chunkId, firstRow, rows } = staleRowsOfRegion(region);
        const chunk = this.chunkIo.get(chunkId);
        if (chunk) {
          const columns = chunk.columns.flatMap((c, i) => (c.member === member ? [i] : []));
          for (let row = firstRow; row < Math.min(firstRow + rows, chunk.rows); row++) {
            for (const column of columns) {
              await this.rowLock.with(`${chunkId}:${row}`, () => chunk.rebuildColumnRow(row, column));
            }
            rebuilt++;
          }
        }
        await this.flush();
        await this.change(() => this.commit({ t: 'stale-clear', uuid, rows: [region] }));
      }
    }
    await this.change(() => this.commit({ t: 'member-state', uuid, state: 'online' }));
    member.state = 'online';
    this.allocator.setEligible(uuid, this.isEligible(member));
    this.emit('member-state', member);
    this.emit('log', 'info', `member ${member.label} is back online; ${rebuilt} row(s) it missed were rebuilt`);
    for (const name of this.volumes.keys()) this.emit('volume-state', name, this.volumeState(name));
    return rebuilt;
  }

  // ---------------------------------------------------------------- repair

  private queueRepair(chunkId: number, row: number): void {
    this.repairQueue.add(`${chunkId}:${row}`);
    this.repairRunning ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.runRepairs());
  }

  private async runRepairs(): Promise<void> {
    try {
      while (this.repairQueue.size > 0 && !this.closed) {
        const [key] = this.repairQueue;
        this.repairQueue.delete(key!);
        const [chunkId, row] = key!.split(':').map(Number) as [number, number];
        const chunk = this.chunkIo.get(chunkId);
        if (!chunk) continue;
        try {
          const fixed = await this.rowLock.with(`${chunkId}:${row}`, () => chunk.repairRow(row));
          if (fixed > 0) this.emit('log', 'info', `repaired ${fixed} block(s) in chunk ${chunkId} row ${row}`);
        } catch (error) {
          this.emit('log', 'warn', `repair of chunk ${chunkId} row ${row} failed: ${describe(error)}`);
        }
      }
    } finally {
      this.repairRunning = undefined;
    }
  }

  /** Resolves when every queued repair has run (tests, clean shutdown). */
  async repairsDone(): Promise<void> {
    while (this.repairRunning) await this.repairRunning;
  }

  // ---------------------------------------------------------------- members and policy

  /**
   * Adds a member (a data member, or a spare that rebuilds use). Its labels
   * are written first, then the record: a crash in between leaves a labelled
   * disk the pool does not list, which import ignores.
   */
  async addMember(source: MemberSource, options: AddMemberOptions = {}): Promise<Member> {
    return this.change(async () => {
      const role = options.role ?? 'data';
      if (role !== 'data' && role !== 'spare') throw new PoolError('BAD_LAYOUT', `unknown member role "${String(role)}": expected data or spare`);
      for (const m of this.members.values()) {
        if (m.label === source.uri) throw new PoolError('DUPLICATE_MEMBER', `${source.uri} is already a member of pool ${this.name}`);
      }
      const uuid = randomUUID();
      let where: MemberLayoutInfo;
      try {
        where = await this.metadata.addMember(uuid, source.device, options);
      } catch (error) {
        const code = (error as { code?: string }).code;
        throw new PoolError(code === 'DUPLICATE_DEVICE' || code === 'DUPLICATE_MEMBER' ? 'DUPLICATE_MEMBER' : 'FAILED', `cannot add ${source.uri} to pool ${this.name}: ${describe(error)}`);
      }
      await this.commit({ t: 'member-add', member: { uuid, uri: source.uri, slabCount: where.slabCount, role, state: 'online' } });
      const member = new Member(uuid, source.device, where.dataOffset, this.stateValue.slabSize, where.slabCount, source.uri);
      this.members.set(uuid, member);
      this.intentAreas.set(uuid, { offset: where.intentOffset, bytes: where.intentBytes });
      this.journalAreas.set(uuid, { offset: where.journalOffset, bytes: where.journalBytes });
      await this.journal.start([uuid]);
      this.allocator.addMember(uuid, where.slabCount);
      this.allocator.setEligible(uuid, this.isEligible(member));
      this.emit('member-added', member);
      this.emit('log', 'info', `member ${source.uri} added to pool ${this.name} as ${role === 'spare' ? 'a spare' : 'a data member'} (${where.slabCount} slabs)`);
      return member;
    });
  }

  /** Changes the pool's policy (automatic repair and its delay, the governor's latency budget). */
  async setPolicy(policy: Partial<PoolPolicy>): Promise<PoolPolicy> {
    const budget = policy.latencyBudget;
    if (budget !== undefined && (!Number.isFinite(budget) || budget < 1.1 || budget > 100)) {
      throw new PoolError('BAD_SIZE', `invalid latency budget ${budget}: it is a factor of the idle p99 latency between 1.1 and 100`);
    }
    const delay = policy.autoRepairDelayMs;
    if (delay !== undefined && (!Number.isSafeInteger(delay) || delay < 0 || delay > 7 * 24 * 3600 * 1000)) {
      throw new PoolError('BAD_SIZE', `invalid automatic repair delay ${delay}: it is a whole number of milliseconds, at most a week`);
    }
    return this.change(async () => {
      const next = { ...this.stateValue.policy, ...policy };
      await this.commit({ t: 'policy', policy: next });
      return next;
    });
  }

  private assertFree(what: { volume?: string; member?: string }): void {
    const reason = this.jobs.busyReason(what);
    if (reason) throw new PoolError('BUSY', reason);
  }

  /** Free slabs of a member (for plans and views). */
  freeSlabs(uuid: string): number {
    return this.allocator.freeSlabs(uuid);
  }

  private jobHost(): JobHost {
    return {
      pool: this,
      rowLock: this.rowLock,
      allocator: this.allocator,
      intent: this.intent,
      reconciledRegions: this.reconciled,
      commit: (record) => this.change(() => this.commit(record)),
      commitWith: (build) => this.change(() => this.commit(build(this.stateValue))),
      flush: () => this.flush(),
      markFailed: (member, reason) => this.markFailed(member, reason),
      makeChunk: (info) => this.makeChunk(info),
      volumeChunks: (name) => {
        const chunks = this.volumeChunks.get(name);
        if (!chunks) throw new PoolError('NOT_FOUND', `pool ${this.name} has no volume "${name}"`);
        return chunks;
      },
      replaceChunks: (name, first, count, chunks, spec) => {
        const list = this.volumeChunks.get(name)!;
        const old = list.splice(first, count, ...chunks);
        this.volume(name).chunksChanged();
        for (const c of chunks) this.chunkIo.set(c.id, c);
        for (const c of old) this.chunkIo.delete(c.id);
        if (spec) this.volume(name).spec = spec;
        return old;
      },
      releaseSlabs: (slabs) => {
        for (const { member, slab } of slabs) {
          this.checksums.forget(member, slab);
          if (this.members.get(member.uuid) === member) this.allocator.release([{ member: member.uuid, slab }]);
        }
      },
      setRole: (uuid, role) =>
        this.change(async () => {
          await this.commit({ t: 'member-role', uuid, role });
          const member = this.members.get(uuid);
          if (member) this.allocator.setEligible(uuid, this.isEligible(member));
        }),
      removeMember: (uuid) =>
        this.change(async () => {
          const member = this.members.get(uuid);
          if (!member) return;
          for (const chunk of this.stateValue.chunks.values()) {
            if (chunk.slabs.some((s) => s.member === uuid)) throw new PoolError('BUSY', `member ${member.label} still holds slabs of chunk ${chunk.id}`);
          }
          await this.commit({ t: 'member-state', uuid, state: 'removed', reason: 'removed by a job' });
          if (this.stateValue.stale.has(uuid)) await this.commit({ t: 'stale-clear', uuid });
          this.members.delete(uuid);
          this.intentAreas.delete(uuid);
          this.journalAreas.delete(uuid);
          this.journal.forget(uuid);
          this.allocator.removeMember(uuid);
          this.checksums.forget(member);
          await this.metadata.removeMember(uuid).catch((error: unknown) => {
            this.emit('log', 'warn', `member ${member.label} left pool ${this.name}, but its labels could not be wiped: ${describe(error)}`);
          });
          this.emit('member-removed', uuid, member.label);
          this.emit('log', 'info', `member ${member.label} left pool ${this.name}`);
        }),
      chunkHealth: (chunk) => this.chunkHealth(chunk),
      volumeStatesChanged: () => {
        for (const name of this.volumes.keys()) this.emit('volume-state', name, this.volumeState(name));
      },
      log: (level, message) => this.emit('log', level, message),
    };
  }

  // ---------------------------------------------------------------- state changes

  /** Runs state changes one at a time, in call order. */
  private change<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.changeChain.then(fn, fn);
    this.changeChain = run.catch(() => {});
    return run;
  }

  /**
   * Log first, then apply (see the theory comment). A record too big for the
   * log (a volume of a hundred thousand chunks) is committed as a checkpoint
   * of the state it produces instead: just as durable, and far more compact.
   */
  private commit(record: PoolRecord): Promise<void> {
    // One commit at a time: each applies to the state the previous one left,
    // so concurrent commits (two stale rows marked at once) never lose one.
    const run = this.commitChain.then(async () => {
      const bytes = encodeRecord(record);
      const next = applyRecord(this.stateValue, record);
      if (bytes.length > MAX_RECORD_BYTES) await this.metadata.checkpoint(encodeCheckpoint(next));
      else await this.metadata.append(bytes);
      this.stateValue = next;
      if (this.metadata.logFillRatio > 0.5) await this.metadata.checkpoint(encodeCheckpoint(this.stateValue));
    });
    this.commitChain = run.catch(() => {});
    return run;
  }
  private commitChain: Promise<void> = Promise.resolve();

  private isEligible(member: Member): boolean {
    const info = this.stateValue.members.find((m) => m.uuid === member.uuid);
    return member.usable && info?.role === 'data';
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Jobs stop at their next step and stay in the log: the next import resumes them.
    await this.jobs.stop();
    await this.repairsDone();
    await this.flush();
    // Everything is durable: a clean stop leaves nothing to reconcile.
    await this.intent.persist().catch(() => {});
    this.closed = true;
    await this.metadata.checkpoint(encodeCheckpoint(this.stateValue)).catch(() => {});
    await this.metadata.close();
  }
}

/**
 * Reconciles one row, through a slab move's resync when the move holds the
 * only copy of a lost column's data for it (slab-move.ts).
 */
function resyncRow(chunk: ChunkIo, row: number): Promise<number> {
  for (const shadow of chunk.shadows ?? []) {
    const done = shadow?.resync?.(row);
    if (done) return done;
  }
  return chunk.resyncRow(row);
}

function* allSlabs(state: PoolState): Generator<{ member: string; slab: number }> {
  for (const chunk of state.chunks.values()) yield* chunk.slabs;
  // Slabs jobs have reserved: a move's target, a migrate's new chunks.
  for (const job of state.jobs) {
    if (job.move) yield job.move.to;
    for (const chunk of job.newChunks ?? []) yield* chunk.slabs;
  }
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
