/**
 * relocate: a failed member's slabs move to free space on one other data
 * member (the "new RAID set" of the design: the chunks get that member in
 * place of the lost one), then the old member leaves the pool. The target
 * must have room for all of them and hold no other slab of the same chunks
 * (a chunk's slabs stay on distinct members). When no single member
 * qualifies, split (job-split.ts) spreads the slabs instead.
 */
import {
  assertReadable,
  choiceFor,
  claimsFor,
  columnsOn,
  describeSlabs,
  healthProblem,
  memberSpace,
  redundancy,
  removeEmptyMember,
  resolveMember,
  restoreMove,
  roleOf,
  runMoves,
  setMoveTotal,
} from './job-moves.js';
import { JobError, type JobHost, type JobKindModule } from './job-types.js';
import type { Member } from './member.js';

interface Params {
  readonly member: string;
  readonly target: string;
}

/** Why `target` cannot take every slab of `member`, or undefined. */
function unfit(host: JobHost, member: Member, target: Member, chunks: ReadonlySet<number>, need: number): string | undefined {
  if (target === member) return `${target.label} is the member being relocated`;
  if (roleOf(host, target.uuid) !== 'data') return `${target.label} is a spare (rebuild uses spares)`;
  const problem = healthProblem(target);
  if (problem) return problem;
  const free = host.pool.freeSlabs(target.uuid);
  if (free < need) return `${target.label} has room for ${describeSlabs(host, free)}, and ${member.label} holds ${describeSlabs(host, need)}`;
  for (const id of chunks) {
    if (host.pool.state.chunks.get(id)!.slabs.some((s) => s.member === target.uuid)) {
      return `${target.label} already holds a slab of chunk ${id}, which must stay on distinct members`;
    }
  }
  return undefined;
}

export const relocate: JobKindModule = {
  kind: 'relocate',
  priority: 0,

  prepare(host, request) {
    if (request.kind !== 'relocate') throw new JobError('BAD_REQUEST', 'not a relocate request');
    const member = resolveMember(host, request.member);
    const columns = columnsOn(host, member.uuid);
    if (columns.length === 0) throw new JobError('NOTHING_TO_DO', `member ${member.label} holds no data: there is nothing to relocate`);
    assertReadable(host, columns.map((c) => c.chunk));
    const chunks = new Set(columns.map((c) => c.chunk));
    if (request.target !== undefined) {
      const target = resolveMember(host, request.target, 'target member');
      const why = unfit(host, member, target, chunks, columns.length);
      if (why) throw new JobError(why.includes('room for') ? 'NO_SPACE' : why.includes('failing') ? 'MEMBER_FAILING' : 'BAD_REQUEST', `cannot relocate ${member.label} onto ${target.label}: ${why}`);
      return { member: member.uuid, target: target.uuid };
    }
    const reasons: string[] = [];
    const candidates = [...host.pool.members.values()]
      .filter((m) => {
        const why = unfit(host, member, m, chunks, columns.length);
        if (why && m !== member && roleOf(host, m.uuid) === 'data') reasons.push(why);
        return why === undefined;
      })
      .sort((a, b) => host.pool.freeSlabs(b.uuid) - host.pool.freeSlabs(a.uuid));
    const target = candidates[0];
    if (!target) {
      throw new JobError(
        'NO_SPACE',
        `no single member can take the ${describeSlabs(host, columns.length)} of ${member.label}${reasons.length > 0 ? ` (${reasons.join('; ')})` : ''}; split spreads them over several members`,
      );
    }
    return { member: member.uuid, target: target.uuid };
  },

  plan(host, raw) {
    const p = raw as unknown as Params;
    const columns = columnsOn(host, p.member);
    const member = host.pool.members.get(p.member)!;
    const target = host.pool.members.get(p.target)!;
    const red = redundancy(host, columns.map((c) => c.chunk), (uuid) => uuid !== p.member && !(host.pool.members.get(uuid)?.usable ?? false));
    return {
      kind: 'relocate',
      summary: `relocate ${member.label} (${describeSlabs(host, columns.length)}) onto ${target.label}`,
      bytes: columns.length * host.pool.geometry.dataBytes,
      slabs: columns.length,
      members: memberSpace(host, new Map([[p.target, columns.length], [p.member, -columns.length]]), new Set([p.member])),
      redundancy: red,
      belowFullRedundancy: red.some((r) => r.now < r.after),
      notes: [],
    };
  },

  claims(host, raw) {
    const p = raw as unknown as Params;
    return claimsFor(host, columnsOn(host, p.member).map((c) => c.chunk), [p.member, p.target]);
  },

  async run(ctx, raw) {
    const p = raw as unknown as Params;
    const { host } = ctx;
    const todo = columnsOn(host, p.member);
    setMoveTotal(ctx, todo.length);
    const target = host.pool.members.get(p.target);
    await runMoves(ctx, () => {
      for (;;) {
        const ref = todo.shift();
        if (!ref) return undefined;
        if (!target || !target.usable) throw new JobError('MEMBER_FAILING', `target ${target?.label ?? p.target} is no longer online`);
        const choice = choiceFor(host, ref, p.member, (chunk) => {
          if (chunk.columns.some((c) => c.member === target)) throw new JobError('BAD_STATE', `${target.label} already holds a slab of chunk ${chunk.id}`);
          return host.allocator.allocateOn(p.target);
        });
        if (choice) return choice;
      }
    });
    await removeEmptyMember(ctx, p.member);
  },

  restore: restoreMove,
};
