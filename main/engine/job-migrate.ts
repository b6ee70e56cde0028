/**
 * migrate: changes a volume's layout online (raid1 → raid5, raid0 → raid1,
 * raid5 → raid6, …) by building chunks of the new layout and copying the
 * volume's bytes into them, a group of chunks at a time.
 *
 * Groups. An old chunk holds C_old logical bytes, a new one C_new; a group
 * is L = lcm(C_old, C_new) bytes of the volume: L / C_old old chunks are
 * replaced by L / C_new new ones (the last group: what is left, and new
 * chunks enough to cover the volume's size). Between groups the volume is
 * a list of new chunks followed by old ones, and reads and writes find
 * their bytes by walking that list (volume.ts), so each group is committed
 * on its own and the pool needs free room for one group of new chunks, not
 * for a second copy of the volume.
 *
 * One group (the write order that makes it crash safe):
 *
 *   1. allocate the new chunks' slabs and log them as the job's newChunks
 *      (reserved, with fresh chunk ids) before writing to them;
 *   2. attach a RowObserver to the group's old chunks: a write or trim of a
 *      byte already copied is made on the new chunks too, under the new
 *      rows' locks and inside the write-intent log of the new chunk, before
 *      the volume write resolves;
 *   3. copy in steps of lcm(old row, new row) bytes — whole rows of both —
 *      each holding the locks of every old row and then every new row it
 *      covers (old before new, as the observer takes them, so no deadlock),
 *      reading through the old chunks (verified, or rebuilt from copies and
 *      parity) and writing whole new rows (parity computed, no read).
 *      A few steps are copied at once (tuning.depth, fewer while the
 *      governor holds the job back), so they may finish out of order: the
 *      cursor is the prefix copied without gaps, and the observer mirrors
 *      writes to that prefix and to every step finished beyond it;
 *   4. now and then: flush, then log the cursor (bytes of the group copied);
 *   5. all copied: flush, then log volume-rechunk (the old chunks leave the
 *      volume's list, the new ones take their place, newChunks cleared, the
 *      layout changed with the last group); then the volume object reads the
 *      new chunks, every old row lock is taken once (requests that started
 *      on the old chunks have finished) and the old slabs are freed.
 *
 * After a crash before 5's record: the volume still names the old chunks;
 * the new ones are reserved and their copy is durable up to the logged
 * cursor. The pool re-attaches the observer at open, and the job copies
 * again from the cursor, plus every step below it that a reconciled
 * write-intent region (of an old or a new chunk) or a damaged checksum
 * table block of a new slab touches. After 5's record, the new chunks are
 * the volume's; writes in flight at the crash were in their write-intent
 * regions (step 2) and are reconciled like any others.
 *
 * Cancel drops the group under way (observer off, its slabs freed); groups
 * committed before stay: the volume is then partly of each layout, which
 * reads and writes handle, and a new migrate finishes it.
 */
import { AllocationError, type SlabAllocator } from './allocator.js';
import type { ChunkIo, RowObserver } from './chunk-io.js';
import { CHECKSUM_BLOCK } from './checksum-block.js';
import { jobBuffers } from './job-buffers.js';
import { assertReadable, batchDepth, batchRows, chunkTolerance, memberSpace } from './job-moves.js';
import { JobError, JobStop, type JobAttachment, type JobContext, type JobHost, type JobKindModule, type VolumeRedundancy } from './job-types.js';
import { STRIPE_UNIT, type LayoutName, type LayoutSpec } from './layout.js';
import { layouts } from './layouts.js';
import type { ChunkInfo, JobInfo } from './pool-state.js';
import { drainRows, withLocks } from './slab-move.js';
import { formatSize } from './units.js';
import { rowsOfRegion } from './write-intent.js';

interface Params {
  readonly volume: string;
  readonly spec: LayoutSpec;
}

interface Cursor {
  /** Bytes of the group under way copied and durable. */
  readonly copied: number;
}

const BLOCKS_PER_UNIT = STRIPE_UNIT / CHECKSUM_BLOCK;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
const lcm = (a: number, b: number): number => (a / gcd(a, b)) * b;
const sameSpec = (a: LayoutSpec, b: LayoutSpec): boolean => a.name === b.name && a.width === b.width && a.copies === b.copies;
const describeSpec = (s: LayoutSpec): string => `${s.name}${s.name === 'raid1' || s.name === 'raid10' ? ` ×${s.copies}` : ''} over ${s.width}`;

/** The next group to migrate, from the volume's chunk list as it is now. */
interface Group {
  /** Index in the volume's chunk list of the group's first old chunk. */
  readonly first: number;
  readonly old: readonly ChunkIo[];
  /** Logical offset of the group in the volume. */
  readonly start: number;
  /** Bytes to copy (4 KiB aligned). */
  readonly length: number;
  readonly newCount: number;
  /** Logical bytes per copy step: whole rows of both layouts. */
  readonly step: number;
  /** Whether no old chunk is left after this group. */
  readonly last: boolean;
}

function dataUnits(spec: LayoutSpec): number {
  return layouts[spec.name].dataUnits(spec);
}

function nextGroup(host: JobHost, p: Params, chunks: readonly ChunkIo[], size: number): Group | undefined {
  const dataBytes = host.pool.geometry.dataBytes;
  const first = chunks.findIndex((c) => !sameSpec(c.spec, p.spec));
  if (first < 0) return undefined;
  const oldSpec = chunks[first]!.spec;
  const cOld = dataUnits(oldSpec) * dataBytes;
  const cNew = dataUnits(p.spec) * dataBytes;
  const perGroup = lcm(dataUnits(oldSpec), dataUnits(p.spec)) / dataUnits(oldSpec);
  const old = chunks.slice(first, first + perGroup);
  let start = 0;
  for (let i = 0; i < first; i++) start += chunks[i]!.capacity;
  const length = Math.ceil(Math.min(old.length * cOld, size - start) / CHECKSUM_BLOCK) * CHECKSUM_BLOCK;
  return {
    first,
    old,
    start,
    length,
    newCount: Math.ceil(length / cNew),
    step: lcm(dataUnits(oldSpec) * STRIPE_UNIT, dataUnits(p.spec) * STRIPE_UNIT),
    last: first + old.length >= chunks.length,
  };
}

interface Piece {
  readonly chunk: ChunkIo;
  readonly row: number;
  readonly start: number;
  readonly length: number;
  /** Offset from the start of the range asked for. */
  readonly at: number;
}

/** The row pieces of bytes [from, to) of a run of chunks (offsets relative to the run's start). */
function piecesOf(chunks: readonly ChunkIo[], from: number, to: number): Piece[] {
  const pieces: Piece[] = [];
  let base = 0;
  for (const chunk of chunks) {
    const end = base + chunk.capacity;
    let at = Math.max(from, base);
    while (at < Math.min(to, end)) {
      const inChunk = at - base;
      const row = Math.floor(inChunk / chunk.rowBytes);
      const start = inChunk - row * chunk.rowBytes;
      const length = Math.min(chunk.rowBytes - start, to - at);
      pieces.push({ chunk, row, start, length, at: at - from });
      at += length;
    }
    base = end;
    if (base >= to) break;
  }
  return pieces;
}

/** Waits for every one of `work` to end, then throws the first failure (none is left running on shared memory). */
async function settled(work: ReadonlyArray<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The group under way: its new chunks, how far the copy is, and the write mirror. */
class MigrateGroup implements JobAttachment {
  /** Bytes of the group copied without a gap from its start (the cursor). */
  copied: number;
  /** Steps [from, to) copied beyond `copied`, while steps below them are still being copied. */
  private ahead: Array<[number, number]> = [];
  private attached = false;

  constructor(
    private readonly host: JobHost,
    readonly jobId: string,
    readonly group: Group,
    readonly fresh: readonly ChunkIo[],
    copied: number,
  ) {
    this.copied = copied;
    // Written once, start to end: around the page cache (chunk-io.ts), as a slab move's copy is.
    for (const chunk of fresh) chunk.bulkFill = true;
  }

  /** Step 2: old chunks tell us of every write and trim (synchronous, before any I/O can slip by). */
  attach(): void {
    if (this.attached) return;
    this.group.old.forEach((chunk, i) => {
      if (chunk.rowObserver) throw new Error(`chunk ${chunk.id} is already being migrated`);
      chunk.rowObserver = this.observer(i * chunk.capacity, chunk);
    });
    this.attached = true;
  }

  private detach(): void {
    for (const chunk of this.group.old) chunk.rowObserver = undefined;
    this.attached = false;
  }

  private observer(base: number, chunk: ChunkIo): RowObserver {
    return {
      wrote: async (row, start, data, fua) => {
        const at = base + row * chunk.rowBytes + start;
        await this.mirror(at, at + data.length, (piece) => piece.chunk.writeRow(piece.row, piece.start, data.subarray(piece.at, piece.at + piece.length), fua));
      },
      trimmed: async (row, start, length) => {
        const at = base + row * chunk.rowBytes + start;
        await this.mirror(at, at + length, (piece) => piece.chunk.trimRow(piece.row, piece.start, piece.length));
      },
    };
  }

  /** Whether the step holding logical byte `at` is copied (a new row never spans two steps). */
  private isCopied(at: number): boolean {
    return at < this.copied || this.ahead.some(([from, to]) => at >= from && at < to);
  }

  /** Step [from, to) is copied: the cursor moves over it and over any steps it closes the gap to. */
  private copiedStep(from: number, to: number): void {
    this.ahead.push([from, to]);
    for (let i = this.ahead.findIndex(([f]) => f === this.copied); i >= 0; i = this.ahead.findIndex(([f]) => f === this.copied)) {
      this.copied = this.ahead[i]![1];
      this.ahead.splice(i, 1);
    }
    // A job stopped and resumed copies again from the cursor: steps it had copied ahead come twice.
    this.ahead = this.ahead.filter(([, t]) => t > this.copied);
  }

  /**
   * Makes the change on the new chunks where their step is copied. Piece by piece: one write can
   * span several rows (ChunkIo.writeRows), the first in a step not copied yet and a later one in a
   * step copied ahead of it.
   */
  private async mirror(from: number, to: number, write: (piece: Piece) => Promise<void>): Promise<void> {
    for (const piece of piecesOf(this.fresh, from, to)) {
      if (!this.isCopied(from + piece.at)) continue;
      await this.host.rowLock.with(`${piece.chunk.id}:${piece.row}`, async () => {
        const done = await this.host.intent.begin(piece.chunk.id, piece.row);
        try {
          await write(piece);
        } finally {
          done();
        }
      });
    }
  }

  /** Step 3: copies logical bytes [from, to) of the group (whole steps) under the rows' locks. */
  async copy(from: number, to: number, advance: boolean): Promise<void> {
    const oldPieces = piecesOf(this.group.old, from, to);
    const newPieces = piecesOf(this.fresh, from, to);
    const keys = [...oldPieces, ...newPieces].map((p) => `${p.chunk.id}:${p.row}`);
    await withLocks(this.host, keys, async () => {
      // Read straight into a reused buffer: a fresh one per step, and a copy out of each read, took
      // half the main thread of a raid1 -> raid5 migrate in page faults, copies and GC (--cpu-prof).
      const data = jobBuffers.take(to - from);
      await settled(oldPieces.map((p) => p.chunk.readRowInto(p.row, p.start, data.subarray(p.at, p.at + p.length))));
      await settled(newPieces.map((p) => p.chunk.writeRow(p.row, p.start, data.subarray(p.at, p.at + p.length), false)));
      // Inside the locks: a write to these rows waiting for them finds the step copied, and is mirrored.
      if (advance) this.copiedStep(from, to);
      // Only after every read and write into it has ended (settled): then nothing uses it any more.
      jobBuffers.give(data);
    });
  }

  /** After a crash: the steps below the cursor that may differ between old and new (see the theory comment). */
  async stale(): Promise<Set<number>> {
    const steps = new Set<number>();
    const mark = (from: number, to: number): void => {
      for (let s = Math.floor(from / this.group.step); s * this.group.step < Math.min(to, this.copied); s++) steps.add(s);
    };
    const runs: Array<[readonly ChunkIo[], ChunkIo, number]> = [
      ...this.group.old.map((c, i): [readonly ChunkIo[], ChunkIo, number] => [this.group.old, c, i]),
      ...this.fresh.map((c, i): [readonly ChunkIo[], ChunkIo, number] => [this.fresh, c, i]),
    ];
    for (const region of this.host.reconciledRegions) {
      const { chunkId, firstRow, rows } = rowsOfRegion(region);
      for (const [, chunk, i] of runs) {
        if (chunk.id === chunkId) mark(i * chunk.capacity + firstRow * chunk.rowBytes, i * chunk.capacity + (firstRow + rows) * chunk.rowBytes);
      }
    }
    for (const [i, chunk] of this.fresh.entries()) {
      for (const column of chunk.columns) {
        if (!column.member.writable) continue;
        const table = await this.host.pool.checksums.table(column.member, column.slab, chunk.id);
        for (const [first, end] of table.damagedRanges()) {
          const rowFrom = Math.floor(first / BLOCKS_PER_UNIT);
          const rowTo = Math.ceil(end / BLOCKS_PER_UNIT);
          mark(i * chunk.capacity + rowFrom * chunk.rowBytes, i * chunk.capacity + rowTo * chunk.rowBytes);
        }
      }
    }
    return steps;
  }

  /** Step 5, after the volume-rechunk record: the old chunks are no longer used by anything. */
  async retire(): Promise<void> {
    // Requests that found the old chunks before the volume-rechunk record are still queued on their
    // rows: a write among them must still be mirrored, so the observer stays until they are done.
    // Detached first, such a write landed only on a slab about to be freed, and later reads of the
    // new chunk missed it (a migrate on image files under load; job-migrate.test.ts now holds a
    // write on an old row across the record).
    for (const chunk of this.group.old) await drainRows(this.host, chunk);
    this.detach();
    // The volume's chunks now: their writes go through the page cache like any others.
    for (const chunk of this.fresh) chunk.bulkFill = false;
    this.host.releaseSlabs(this.group.old.flatMap((c) => c.columns.map((col) => ({ member: col.member, slab: col.slab }))));
  }

  /** Cancel: the new chunks are given back; the volume keeps the old ones. */
  async abort(): Promise<void> {
    this.detach();
    for (const chunk of this.group.old) await drainRows(this.host, chunk);
    await this.host.commit({ t: 'job-update', id: this.jobId, newChunks: null, cursor: { copied: 0 } satisfies Cursor });
    this.host.releaseSlabs(this.fresh.flatMap((c) => c.columns.map((col) => ({ member: col.member, slab: col.slab }))));
  }
}

/** Tries every remaining group on a copy of the allocator: per-member slab change, or NO_SPACE. */
function simulate(host: JobHost, p: Params): { delta: Map<string, number>; newChunks: number; bytes: number; groups: number } {
  const trial: SlabAllocator = host.allocator.clone();
  const volume = host.pool.volume(p.volume);
  const chunks = [...volume.chunks];
  const delta = new Map<string, number>();
  let newChunks = 0;
  let bytes = 0;
  let groups = 0;
  const add = (uuid: string, n: number): void => void delta.set(uuid, (delta.get(uuid) ?? 0) + n);
  for (;;) {
    const g = nextGroup(host, p, chunks, volume.size);
    if (!g) break;
    for (let i = 0; i < g.newCount; i++) {
      try {
        for (const s of trial.allocate(p.spec.width)) add(s.member, 1);
      } catch (error) {
        if (!(error instanceof AllocationError)) throw error;
        throw new JobError(
          'NO_SPACE',
          `not enough free space to migrate ${p.volume} to ${describeSpec(p.spec)}: a step of ${formatSize(g.length)} needs ${g.newCount} new chunk(s) of ${p.spec.width} slabs on distinct members, and ${error.message}`,
        );
      }
    }
    for (const c of g.old) {
      for (const col of c.columns) {
        trial.release([{ member: col.member.uuid, slab: col.slab }]);
        add(col.member.uuid, -1);
      }
    }
    // Stand-ins for the new chunks, so the next group starts after them.
    const placeholder = { spec: p.spec, capacity: dataUnits(p.spec) * host.pool.geometry.dataBytes } as ChunkIo;
    chunks.splice(g.first, g.old.length, ...Array.from({ length: g.newCount }, () => placeholder));
    newChunks += g.newCount;
    bytes += g.length;
    groups++;
  }
  return { delta, newChunks, bytes, groups };
}

export const migrate: JobKindModule = {
  kind: 'migrate',
  priority: 2,

  prepare(host, request) {
    if (request.kind !== 'migrate') throw new JobError('BAD_REQUEST', 'not a migrate request');
    const pool = host.pool;
    if (!pool.volumeNames().includes(request.volume)) throw new JobError('NOT_FOUND', `pool ${pool.name} has no volume "${request.volume}"`);
    if (pool.volumeState(request.volume) === 'failed') {
      throw new JobError('VOLUME_FAILED', `volume ${request.volume} has failed: more of its members are lost than its layout survives, so it cannot be migrated`);
    }
    let spec: LayoutSpec;
    try {
      spec = pool.specFor(request.layout as LayoutName, request.copies, request.width);
    } catch (error) {
      throw new JobError('BAD_REQUEST', `cannot migrate ${request.volume} to ${request.layout}: ${(error as Error).message}`);
    }
    const chunks = pool.volume(request.volume).chunks;
    const old = chunks.filter((c) => !sameSpec(c.spec, spec));
    if (old.length === 0) throw new JobError('NOTHING_TO_DO', `volume ${request.volume} is already ${describeSpec(spec)}`);
    const firstOld = chunks.indexOf(old[0]!);
    if (chunks.slice(firstOld).some((c) => sameSpec(c.spec, spec)) || old.some((c) => !sameSpec(c.spec, old[0]!.spec))) {
      throw new JobError('BAD_REQUEST', `volume ${request.volume} mixes layouts in a way migrate cannot regroup; migrate it to ${describeSpec(old[0]!.spec)} first`);
    }
    assertReadable(host, old.map((c) => c.id));
    const params: Params = { volume: request.volume, spec };
    simulate(host, params);
    return { ...params };
  },

  plan(host, raw) {
    const p = raw as unknown as Params;
    const { delta, newChunks, bytes, groups } = simulate(host, p);
    const volume = host.pool.volume(p.volume);
    const from = volume.chunks.find((c) => !sameSpec(c.spec, p.spec))!.spec;
    const info = host.pool.state.volumes.find((v) => v.name === p.volume)!;
    const down = (uuid: string): boolean => !(host.pool.members.get(uuid)?.usable ?? false);
    let now = Infinity;
    for (const id of info.chunks) now = Math.min(now, chunkTolerance(host.pool.state.chunks.get(id)!, down));
    const after = layouts[p.spec.name].faultTolerance(p.spec);
    const red: VolumeRedundancy[] = [{ volume: p.volume, now, during: Math.min(now, after), after }];
    return {
      kind: 'migrate',
      summary: `migrate ${p.volume} from ${describeSpec(from)} to ${describeSpec(p.spec)} (${formatSize(bytes)} in ${groups} step${groups === 1 ? '' : 's'})`,
      bytes,
      slabs: newChunks * p.spec.width,
      members: memberSpace(host, delta),
      redundancy: red,
      belowFullRedundancy: now < layouts[from.name].faultTolerance(from),
      notes: after < now ? [`${p.volume} will survive ${after} member failure(s) afterwards, fewer than now (${now})`] : [],
    };
  },

  claims(host, raw) {
    const p = raw as unknown as Params;
    const info = host.pool.state.volumes.find((v) => v.name === p.volume);
    return { chunks: new Set(info?.chunks ?? []), members: new Set(), volumes: new Set([p.volume]) };
  },

  async run(ctx, raw) {
    const p = raw as unknown as Params;
    const { host } = ctx;
    const volume = host.pool.volume(p.volume);
    const chunks = host.volumeChunks(p.volume);
    {
      const left = simulate(host, p).bytes - ((ctx.info().cursor as Cursor | undefined)?.copied ?? 0);
      ctx.setTotal(ctx.tally().bytes + left);
    }
    for (;;) {
      let attached = ctx.attachment instanceof MigrateGroup ? ctx.attachment : undefined;
      const recopy = ctx.resumedAfterImport && attached !== undefined;
      if (!attached) {
        const group = nextGroup(host, p, chunks, volume.size);
        if (!group) break;
        attached = await startGroup(ctx, p, group);
      }
      const current = attached;
      try {
        if (recopy) {
          const steps = await current.stale();
          for (const s of [...steps].sort((a, b) => a - b)) {
            await ctx.admit(current.group.step);
            await current.copy(s * current.group.step, Math.min((s + 1) * current.group.step, current.group.length), false);
          }
          if (steps.size > 0) ctx.note(`copied ${steps.size} step(s) of ${p.volume} again: they were in flight when the pool last stopped`);
        }
        await copyGroup(ctx, current);
        await commitGroup(ctx, p, current);
      } catch (error) {
        if (error instanceof JobStop && !ctx.cancelling) throw error;
        ctx.attachment = undefined;
        await current.abort().catch((e: unknown) => host.log('error', `job ${ctx.id}: could not give back the new chunks of ${p.volume}: ${(e as Error).message}`));
        throw error;
      }
      ctx.attachment = undefined;
    }
    ctx.note(`${p.volume} is ${describeSpec(p.spec)} now`);
    host.volumeStatesChanged();
  },

  restore(host, info: JobInfo) {
    if (!info.newChunks || info.newChunks.length === 0) return undefined;
    const p = info.params as unknown as Params;
    const volume = host.pool.volume(p.volume);
    const group = nextGroup(host, p, host.volumeChunks(p.volume), volume.size);
    if (!group) return undefined;
    const fresh = info.newChunks.map((c) => host.makeChunk(c));
    const attachment = new MigrateGroup(host, info.id, group, fresh, (info.cursor as Cursor | undefined)?.copied ?? 0);
    attachment.attach();
    return attachment;
  },
};

/** Step 1: the group's new chunks, reserved and logged, and the mirror attached. */
async function startGroup(ctx: JobContext, p: Params, group: Group): Promise<MigrateGroup> {
  const { host } = ctx;
  const taken: Array<Array<{ member: string; slab: number }>> = [];
  try {
    for (let i = 0; i < group.newCount; i++) taken.push(host.allocator.allocate(p.spec.width));
  } catch (error) {
    for (const slabs of taken) host.allocator.release(slabs);
    if (error instanceof AllocationError) throw new JobError('NO_SPACE', `not enough free space for the next step of migrating ${p.volume}: ${error.message}`);
    throw error;
  }
  let infos: ChunkInfo[] = [];
  try {
    await host.commitWith((state) => {
      infos = taken.map((slabs, i) => ({ id: state.nextChunkId + i, spec: p.spec, slabs }));
      return { t: 'job-update', id: ctx.id, newChunks: infos, cursor: { copied: 0 } satisfies Cursor, done: ctx.tally() };
    });
  } catch (error) {
    for (const slabs of taken) host.allocator.release(slabs);
    throw error;
  }
  const attachment = new MigrateGroup(host, ctx.id, group, infos.map((c) => host.makeChunk(c)), 0);
  attachment.attach();
  ctx.attachment = attachment;
  return attachment;
}

/** Steps 3 and 4: the rest of the group, a few steps at once, checkpointing on the way. */
async function copyGroup(ctx: JobContext, g: MigrateGroup): Promise<void> {
  const { host } = ctx;
  let lastCheckpoint = performance.now();
  let since = 0;
  let next = g.copied;
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  try {
    while (next < g.group.length) {
      while (inflight.size >= batchDepth(ctx) && failure === undefined) await Promise.race(inflight);
      if (failure !== undefined) break;
      // At least a batch's worth of bytes per lock round; a held-back batch while the governor holds
      // the job back, so that no foreground write waits long behind the rows a round locks.
      const step = g.group.step * Math.max(1, Math.floor((batchRows(ctx) * STRIPE_UNIT) / g.group.step));
      const from = next;
      const to = Math.min(from + step, g.group.length);
      await ctx.admit(to - from);
      next = to;
      const p = g.copy(from, to, true).then(
        () => {
          ctx.advance(to - from);
          since += to - from;
        },
        (error: unknown) => {
          failure ??= error;
        },
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      if (since >= ctx.tuning.checkpointBytes || performance.now() - lastCheckpoint >= ctx.tuning.checkpointMs) {
        // What is copied now is what the flush makes durable; the steps in flight go on meanwhile.
        const copied = g.copied;
        lastCheckpoint = performance.now();
        since = 0;
        await host.flush();
        await ctx.checkpoint({ cursor: { copied } satisfies Cursor });
      }
    }
  } finally {
    await Promise.allSettled(inflight);
  }
  if (failure !== undefined) throw failure;
}

/** Step 5. */
async function commitGroup(ctx: JobContext, p: Params, g: MigrateGroup): Promise<void> {
  const { host } = ctx;
  await host.flush();
  const ids = g.fresh.map((c) => c.id);
  await host.commit({
    t: 'volume-rechunk',
    name: p.volume,
    first: g.group.first,
    count: g.group.old.length,
    chunks: ids,
    job: ctx.id,
    ...(g.group.last ? { spec: p.spec } : {}),
    cursor: { copied: 0 } satisfies Cursor,
  });
  host.replaceChunks(p.volume, g.group.first, g.group.old.length, g.fresh, g.group.last ? p.spec : undefined);
  await g.retire();
  ctx.count({ slabsMoved: g.fresh.length * p.spec.width });
}
