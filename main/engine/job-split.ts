/**
 * split: a failed member's slabs are spread over the other data members,
 * each to the member with the most free space that holds no other slab of
 * the same chunk — for when no single member has room for all of them
 * (relocate). At the end the old member leaves the pool.
 */
import { AllocationError, type SlabAllocator } from './allocator.js';
import type { ChunkIo } from './chunk-io.js';
import {
  assertReadable,
  choiceFor,
  claimsFor,
  columnsOn,
  describeSlabs,
  memberSpace,
  redundancy,
  removeEmptyMember,
  resolveMember,
  restoreMove,
  runMoves,
  setMoveTotal,
  type ColumnRef,
} from './job-moves.js';
import { JobError, type JobHost, type JobKindModule } from './job-types.js';

/**
 * Where each column would go, tried on a copy of the allocator: target
 * member per column, or a JobError saying which chunk cannot be placed.
 * `leaving` is kept out (an evacuated member still has free slabs).
 */
export function placeColumns(host: JobHost, columns: readonly ColumnRef[], leaving: string, code: 'NO_SPACE' | 'REDUNDANCY'): Map<string, number> {
  const trial: SlabAllocator = host.allocator.clone();
  trial.setEligible(leaving, false);
  const delta = new Map<string, number>();
  for (const ref of columns) {
    const info = host.pool.state.chunks.get(ref.chunk)!;
    const exclude = new Set(info.slabs.map((s) => s.member));
    try {
      const [to] = trial.allocate(1, exclude);
      delta.set(to!.member, (delta.get(to!.member) ?? 0) + 1);
    } catch (error) {
      if (!(error instanceof AllocationError)) throw error;
      const volume = host.pool.state.volumes.find((v) => v.chunks.includes(ref.chunk));
      const what = `chunk ${ref.chunk}${volume ? ` of volume ${volume.name}` : ''} (${info.spec.name} over ${info.spec.width} members)`;
      throw new JobError(
        code,
        code === 'REDUNDANCY'
          ? `removing ${host.pool.members.get(leaving)?.label ?? leaving} would break the redundancy of ${what}: no member outside that chunk has a free slab for it`
          : `not enough free space: ${what} needs a free slab on a member it does not use yet, and none is left`,
      );
    }
  }
  delta.set(leaving, -columns.length);
  return delta;
}

/** Takes a slab for `chunk`'s moving column on the eligible member with most free slabs outside the chunk. */
export function spreadTarget(host: JobHost, chunk: ChunkIo): { member: string; slab: number } {
  const exclude = new Set(chunk.columns.map((c) => c.member.uuid));
  try {
    return host.allocator.allocate(1, exclude)[0]!;
  } catch (error) {
    if (error instanceof AllocationError) throw new JobError('NO_SPACE', `no member outside chunk ${chunk.id} has a free slab left`);
    throw error;
  }
}

export const split: JobKindModule = {
  kind: 'split',
  priority: 0,

  prepare(host, request) {
    if (request.kind !== 'split') throw new JobError('BAD_REQUEST', 'not a split request');
    const member = resolveMember(host, request.member);
    const columns = columnsOn(host, member.uuid);
    if (columns.length === 0) throw new JobError('NOTHING_TO_DO', `member ${member.label} holds no data: there is nothing to split`);
    assertReadable(host, columns.map((c) => c.chunk));
    placeColumns(host, columns, member.uuid, 'NO_SPACE');
    return { member: member.uuid };
  },

  plan(host, raw) {
    const uuid = (raw as { member: string }).member;
    const columns = columnsOn(host, uuid);
    const delta = placeColumns(host, columns, uuid, 'NO_SPACE');
    const member = host.pool.members.get(uuid)!;
    const targets = [...delta.keys()].filter((m) => m !== uuid).length;
    const red = redundancy(host, columns.map((c) => c.chunk), (m) => m !== uuid && !(host.pool.members.get(m)?.usable ?? false));
    return {
      kind: 'split',
      summary: `split ${member.label} (${describeSlabs(host, columns.length)}) over ${targets} member${targets === 1 ? '' : 's'}`,
      bytes: columns.length * host.pool.geometry.dataBytes,
      slabs: columns.length,
      members: memberSpace(host, delta, new Set([uuid])),
      redundancy: red,
      belowFullRedundancy: red.some((r) => r.now < r.after),
      notes: [],
    };
  },

  claims(host, raw) {
    const uuid = (raw as { member: string }).member;
    const columns = columnsOn(host, uuid);
    // Targets are chosen as the job goes: it claims its chunks and the member.
    return claimsFor(host, columns.map((c) => c.chunk), [uuid]);
  },

  async run(ctx, raw) {
    const uuid = (raw as { member: string }).member;
    const { host } = ctx;
    const todo = columnsOn(host, uuid);
    setMoveTotal(ctx, todo.length);
    await runMoves(ctx, () => {
      for (;;) {
        const ref = todo.shift();
        if (!ref) return undefined;
        const choice = choiceFor(host, ref, uuid, (chunk) => spreadTarget(host, chunk));
        if (choice) return choice;
      }
    });
    await removeEmptyMember(ctx, uuid);
  },

  restore: restoreMove,
};


