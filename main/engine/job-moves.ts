/**
 * What the jobs that move slabs share (rebuild, relocate, split, evacuate,
 * rebalance): resolving members, finding the columns to move, the move
 * loop with its checkpoints and governor, and the plan's arithmetic (space
 * per member, redundancy before, during and after).
 */
import type { SlabAddress } from './allocator.js';
import type { ChunkIo, CopyResult } from './chunk-io.js';
import { JobError, JobStop, type JobAttachment, type JobClaims, type JobContext, type JobHost, type MemberSpace, type VolumeRedundancy } from './job-types.js';
import { STRIPE_UNIT } from './layout.js';
import { layouts } from './layouts.js';
import type { Member } from './member.js';
import type { ChunkInfo, JobInfo } from './pool-state.js';
import { SlabMove } from './slab-move.js';
import { formatSize } from './units.js';

/** A member named by UUID or by the URI it was added with. */
export function resolveMember(host: JobHost, ref: unknown, what = 'member'): Member {
  if (typeof ref !== 'string' || ref === '') throw new JobError('BAD_REQUEST', `no ${what} given: name it by UUID or URI`);
  const pool = host.pool;
  const member = pool.members.get(ref) ?? [...pool.members.values()].find((m) => m.label === ref);
  if (!member) throw new JobError('NOT_FOUND', `pool ${pool.name} has no ${what} "${ref}"`);
  return member;
}

export function roleOf(host: JobHost, uuid: string): 'data' | 'spare' {
  return host.pool.state.members.find((m) => m.uuid === uuid)?.role ?? 'data';
}

/** A member that may receive data: online, and no I/O errors counted against it. */
export function healthProblem(member: Member): string | undefined {
  if (!member.usable) return `member ${member.label} is ${member.state}`;
  const { read, write, checksum } = member.errors;
  if (read + write + checksum > 0) return `member ${member.label} is already failing (${read} read, ${write} write, ${checksum} checksum errors)`;
  return undefined;
}

export interface ColumnRef {
  readonly chunk: number;
  readonly column: number;
}

/** Every (chunk, column) whose slab is on `uuid`, in chunk order. */
export function columnsOn(host: JobHost, uuid: string): ColumnRef[] {
  const out: ColumnRef[] = [];
  for (const chunk of host.pool.state.chunks.values()) {
    const slabs = chunk.slabs;
    for (let c = 0; c < slabs.length; c++) if (slabs[c]!.member === uuid) out.push({ chunk: chunk.id, column: c });
  }
  return out;
}

/** Chunk id → volume name. */
export function volumeOfChunks(host: JobHost): Map<number, string> {
  const map = new Map<number, string>();
  for (const v of host.pool.state.volumes) for (const id of v.chunks) map.set(id, v.name);
  return map;
}

export function claimsFor(host: JobHost, chunks: Iterable<number>, members: Iterable<string>): JobClaims {
  const ids = new Set(chunks);
  const byChunk = volumeOfChunks(host);
  const volumes = new Set<string>();
  for (const id of ids) {
    const v = byChunk.get(id);
    if (v) volumes.add(v);
  }
  return { chunks: ids, members: new Set(members), volumes };
}

/** Refuses a job on a chunk that is beyond its redundancy (its data cannot be read, let alone moved). */
export function assertReadable(host: JobHost, chunkIds: Iterable<number>): void {
  const byChunk = volumeOfChunks(host);
  for (const id of chunkIds) {
    const chunk = host.pool.chunk(id);
    if (chunk && host.chunkHealth(chunk) === 'failed') {
      const volume = byChunk.get(id);
      throw new JobError(
        'VOLUME_FAILED',
        `volume ${volume ?? `(chunk ${id})`} has failed: more of its members are lost than ${chunk.spec.name} survives, so its data cannot be moved`,
      );
    }
  }
}

// ---------------------------------------------------------------- the move loop

/** A move under way in the log is re-attached before any I/O (the modules' restore). */
export function restoreMove(host: JobHost, info: JobInfo): JobAttachment | undefined {
  return info.move ? SlabMove.restore(host, info.id, info.move) : undefined;
}

export interface MoveChoice {
  readonly chunk: ChunkIo;
  readonly column: number;
  /** Taken from the allocator already; the loop gives it back if it cannot log the move. */
  readonly to: SlabAddress;
}

/**
 * Moves slabs until `next` has none left, going on with the move the job
 * had under way (after a pause, a yield, or an import). A failure or a
 * cancel undoes the move under way; a pause, yield or close leaves it
 * attached (its target reserved, writes still mirrored) for later.
 */
export async function runMoves(ctx: JobContext, next: () => MoveChoice | undefined): Promise<void> {
  const { host } = ctx;
  let move = ctx.attachment instanceof SlabMove ? ctx.attachment : undefined;
  let recopy = ctx.resumedAfterImport && move !== undefined;
  const volumes = volumeOfChunks(host);
  for (;;) {
    if (!move) {
      const choice = next();
      if (!choice) return;
      const member = host.pool.members.get(choice.to.member)!;
      const candidate = new SlabMove(host, ctx.id, choice.chunk, choice.column, { member, slab: choice.to.slab });
      try {
        await ctx.checkpoint({ move: candidate.info });
      } catch (error) {
        host.releaseSlabs([{ member, slab: choice.to.slab }]);
        throw error;
      }
      candidate.attach();
      move = candidate;
      ctx.attachment = move;
    }
    const from = move.chunk.columns[move.column]!;
    try {
      if (recopy) {
        recopy = false;
        const rows = await move.recopyAfterImport();
        if (rows > 0) ctx.note(`copied ${rows} row(s) of chunk ${move.chunk.id} again: they were in flight when the pool last stopped`);
      }
      await copySlab(ctx, move);
      await move.commit();
    } catch (error) {
      if (error instanceof JobStop && !ctx.cancelling) throw error;
      ctx.attachment = undefined;
      await move.abort().catch((e: unknown) => host.log('error', `job ${ctx.id}: could not give back the target of chunk ${move!.chunk.id}: ${(e as Error).message}`));
      throw error;
    }
    ctx.attachment = undefined;
    ctx.count({ slabsMoved: 1 });
    ctx.moved({
      chunk: move.chunk.id,
      ...(volumes.has(move.chunk.id) ? { volume: volumes.get(move.chunk.id)! } : {}),
      column: move.column,
      from: { member: from.member.uuid, slab: from.slab },
      to: { member: move.to.member.uuid, slab: move.to.slab },
    });
    move = undefined;
  }
}

/** Batches in flight while the governor holds a job back (fewer if tuning.depth says so). */
const THROTTLED_DEPTH = 2;
/**
 * Rows per batch while the governor holds a job back: one, so no foreground
 * request waits long behind one. Held rebuilds at fixed rates of 50, 100 and
 * 150 MiB/s under fio QD1 4 KiB reads (bench/_governor-curve.ts --held,
 * taking turns): with 1 row the foreground's p99 was 0.95-1.40 ms, with 4
 * rows 1.22-1.47, and the engine-side p99 the governor judges 0.56-1.04
 * against 0.88-1.60, so the same budget lets a held job go faster.
 */
const THROTTLED_ROWS = 1;

/**
 * Rows per batch: tuning.batchRows running free; held back, THROTTLED_ROWS,
 * or a quarter of tuning.batchRows when that is smaller (tests).
 */
export function batchRows(ctx: JobContext): number {
  return ctx.throttled ? Math.max(1, Math.min(THROTTLED_ROWS, Math.floor(ctx.tuning.batchRows / 4))) : ctx.tuning.batchRows;
}

/** Batches in flight: tuning.depth running free, at most THROTTLED_DEPTH held back. */
export function batchDepth(ctx: JobContext): number {
  return ctx.throttled ? Math.min(THROTTLED_DEPTH, ctx.tuning.depth) : ctx.tuning.depth;
}

/** Copies every row of the move, a few batches at once, checkpointing on the way. */
async function copySlab(ctx: JobContext, move: SlabMove): Promise<void> {
  const { host } = ctx;
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  let lastCheckpoint = performance.now();
  let sinceCheckpoint = 0;
  // A checkpoint (flush, then the record) runs beside the copy, one at a time: the copy does not wait for the disks.
  let checkpointing: Promise<void> | undefined;
  try {
    while (!move.allIssued) {
      // Held back, two small batches at most: the governor's rate limit, not one batch at a time, sets the pace.
      while (inflight.size >= batchDepth(ctx) && failure === undefined) await Promise.race(inflight);
      if (failure !== undefined) break;
      // Held back for foreground I/O: smaller steps, so that no foreground request waits long behind one.
      const batch = batchRows(ctx);
      await ctx.admit(batch * STRIPE_UNIT);
      if (move.broken) throw move.broken;
      if (host.chunkHealth(move.chunk) === 'failed') {
        throw new JobError('VOLUME_FAILED', `chunk ${move.chunk.id} lost more members than ${move.chunk.spec.name} survives while it was being moved; its volume has failed`);
      }
      const p = move.copyNext(batch).then(
        ({ rows, result }) => {
          ctx.advance(rows * STRIPE_UNIT);
          sinceCheckpoint += rows * STRIPE_UNIT;
          account(ctx, result);
        },
        (error: unknown) => {
          failure ??= error;
        },
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      if (!checkpointing && (sinceCheckpoint >= ctx.tuning.checkpointBytes || performance.now() - lastCheckpoint >= ctx.tuning.checkpointMs)) {
        // What is copied now is what the flush makes durable.
        const info = move.info;
        lastCheckpoint = performance.now();
        sinceCheckpoint = 0;
        checkpointing = (async () => {
          await host.flush();
          await ctx.checkpoint({ move: info });
        })().then(
          () => (checkpointing = undefined),
          (error: unknown) => {
            failure ??= error;
            checkpointing = undefined;
          },
        );
      }
    }
  } finally {
    await Promise.allSettled([...inflight, ...(checkpointing ? [checkpointing] : [])]);
  }
  if (failure !== undefined) throw failure;
  if (move.broken) throw move.broken;
}

export function account(ctx: JobContext, result: Pick<CopyResult, 'bad' | 'lost'>): void {
  if (result.bad.length > 0) ctx.badBlocks(result.bad);
  const repaired = result.bad.filter((b) => b.from !== undefined).length;
  if (repaired > 0 || result.lost > 0) ctx.count({ blocksRepaired: repaired, blocksLost: result.lost });
}

/** Sets the job's total: done so far, plus `columns` slabs to move, less what the move under way has copied. */
export function setMoveTotal(ctx: JobContext, columns: number): void {
  const move = ctx.attachment instanceof SlabMove ? ctx.attachment : undefined;
  const copied = move ? move.rowsCopied * STRIPE_UNIT : 0;
  ctx.setTotal(ctx.tally().bytes + columns * ctx.host.pool.geometry.dataBytes - copied);
}

/** A move of `ref` onto a slab the allocator gives (`take`), or undefined when the chunk is gone or has moved on. */
export function choiceFor(host: JobHost, ref: ColumnRef, fromMember: string, take: (chunk: ChunkIo) => SlabAddress): MoveChoice | undefined {
  const chunk = host.pool.chunk(ref.chunk);
  if (!chunk || chunk.columns[ref.column]?.member.uuid !== fromMember) return undefined;
  return { chunk, column: ref.column, to: take(chunk) };
}

// ---------------------------------------------------------------- plans

/**
 * Space per member before and after: `delta` adds (or removes) used slabs,
 * `leaving` members are out of the pool after the job.
 */
export function memberSpace(host: JobHost, delta: ReadonlyMap<string, number>, leaving: ReadonlySet<string> = new Set()): MemberSpace[] {
  const pool = host.pool;
  const slabSize = pool.state.slabSize;
  return [...pool.members.values()].map((m) => {
    const used = m.slabCount - pool.freeSlabs(m.uuid);
    const after = used + (delta.get(m.uuid) ?? 0);
    return {
      uuid: m.uuid,
      label: m.label,
      role: roleOf(host, m.uuid),
      state: m.state,
      usedSlabsBefore: used,
      usedSlabsAfter: leaving.has(m.uuid) ? 0 : after,
      slabCount: m.slabCount,
      usedBytesBefore: used * slabSize,
      usedBytesAfter: (leaving.has(m.uuid) ? 0 : after) * slabSize,
      remains: !leaving.has(m.uuid),
    };
  });
}

/** Further member failures a chunk survives when the members `down` says are lost (-1: already lost). */
export function chunkTolerance(info: Pick<ChunkInfo, 'spec' | 'slabs'>, down: (uuid: string) => boolean): number {
  const layout = layouts[info.spec.name];
  const spec = info.spec;
  const slabs = info.slabs;
  const isDown = slabs.map((s) => down(s.member));
  let worst = layout.faultTolerance(spec);
  for (let r = 0; r < spec.width; r++) {
    const map = layout.row(spec, r);
    if (map.p !== undefined) {
      const columns = [...map.data.flat(), map.p, ...(map.q !== undefined ? [map.q] : [])];
      worst = Math.min(worst, layout.faultTolerance(spec) - columns.filter((c) => isDown[c]).length);
    } else {
      for (const copies of map.data) worst = Math.min(worst, copies.filter((c) => !isDown[c]).length - 1);
    }
  }
  return Math.max(-1, worst);
}

/**
 * Redundancy of the volumes holding `chunks`: now, at worst while the job
 * runs (moving a column off a member that stays online costs nothing;
 * a column on a lost member stays lost until its move), and after, with the
 * members `after` says are down then.
 */
export function redundancy(
  host: JobHost,
  chunks: Iterable<number>,
  afterDown: (uuid: string) => boolean,
  afterSpec?: (info: ChunkInfo) => Pick<ChunkInfo, 'spec' | 'slabs'>,
): VolumeRedundancy[] {
  const pool = host.pool;
  const downNow = (uuid: string): boolean => !(pool.members.get(uuid)?.usable ?? false);
  const byChunk = volumeOfChunks(host);
  const wanted = new Set<string>();
  for (const id of chunks) {
    const v = byChunk.get(id);
    if (v) wanted.add(v);
  }
  const out: VolumeRedundancy[] = [];
  for (const volume of pool.state.volumes) {
    if (!wanted.has(volume.name)) continue;
    let now = Infinity;
    let after = Infinity;
    for (const id of volume.chunks) {
      const info = pool.state.chunks.get(id)!;
      now = Math.min(now, chunkTolerance(info, downNow));
      after = Math.min(after, chunkTolerance(afterSpec ? afterSpec(info) : info, afterDown));
    }
    if (now === Infinity) continue;
    out.push({ volume: volume.name, now, during: Math.min(now, after), after });
  }
  return out;
}

export function fullRedundancy(host: JobHost, volume: string): number {
  const info = host.pool.state.volumes.find((v) => v.name === volume);
  return info ? layouts[info.spec.name].faultTolerance(info.spec) : 0;
}

export function describeSlabs(host: JobHost, count: number): string {
  return `${count} slab${count === 1 ? '' : 's'}, ${formatSize(count * host.pool.geometry.dataBytes)}`;
}

/** After the job: the member holds no slab any more and leaves the pool. */
export async function removeEmptyMember(ctx: JobContext, uuid: string): Promise<void> {
  const member = ctx.host.pool.members.get(uuid);
  if (!member) return;
  if (columnsOn(ctx.host, uuid).length > 0) throw new JobError('BAD_STATE', `member ${member.label} still holds slabs`);
  await ctx.host.removeMember(uuid);
  ctx.memberRemoved(uuid);
  ctx.note(`member ${member.label} left the pool`);
  ctx.host.volumeStatesChanged();
}
