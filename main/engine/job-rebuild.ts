/**
 * rebuild: a failed (or failing) member's slabs are rebuilt onto a spare —
 * from the member itself where it still reads, else from the copies or
 * parity of each chunk — one slab move at a time (slab-move.ts). At the end
 * the spare is a data member and the old member leaves the pool.
 *
 * Refused: a member holding nothing, no spare (or one that is not a spare,
 * is not online, has had I/O errors, or is smaller than the data), and a
 * volume already beyond its redundancy (nothing left to rebuild from).
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
import { JobError, type JobHost, type JobKindModule, type JobRequest } from './job-types.js';

interface Params {
  readonly member: string;
  readonly spare: string;
}

function params(raw: Record<string, unknown>): Params {
  return raw as unknown as Params;
}

export const rebuild: JobKindModule = {
  kind: 'rebuild',
  priority: 0,

  prepare(host: JobHost, request: JobRequest) {
    if (request.kind !== 'rebuild') throw new JobError('BAD_REQUEST', 'not a rebuild request');
    const member = resolveMember(host, request.member);
    const columns = columnsOn(host, member.uuid);
    if (columns.length === 0) throw new JobError('NOTHING_TO_DO', `member ${member.label} holds no data: there is nothing to rebuild`);
    assertReadable(host, columns.map((c) => c.chunk));
    const need = columns.length;
    const fits = (uuid: string): boolean => host.pool.freeSlabs(uuid) >= need;
    let spare;
    if (request.spare !== undefined) {
      spare = resolveMember(host, request.spare, 'spare');
      if (spare === member) throw new JobError('BAD_REQUEST', `member ${member.label} cannot be rebuilt onto itself`);
      if (roleOf(host, spare.uuid) !== 'spare') {
        throw new JobError('BAD_REQUEST', `member ${spare.label} is not a spare: rebuild goes onto a spare (relocate or split use free space on data members)`);
      }
    } else {
      const spares = [...host.pool.members.values()].filter((m) => roleOf(host, m.uuid) === 'spare' && m !== member);
      if (spares.length === 0) throw new JobError('NOT_FOUND', `pool ${host.pool.name} has no spare to rebuild ${member.label} onto`);
      // The smallest healthy spare that is big enough keeps the big ones for big failures.
      const candidates = spares.filter((m) => !healthProblem(m) && fits(m.uuid)).sort((a, b) => host.pool.freeSlabs(a.uuid) - host.pool.freeSlabs(b.uuid));
      spare = candidates[0] ?? spares.find((m) => !healthProblem(m)) ?? spares[0]!;
    }
    const problem = healthProblem(spare);
    if (problem) throw new JobError('MEMBER_FAILING', `cannot rebuild onto spare ${spare.label}: ${problem}`);
    if (!fits(spare.uuid)) {
      throw new JobError(
        'SPARE_TOO_SMALL',
        `spare ${spare.label} is too small: it has room for ${describeSlabs(host, host.pool.freeSlabs(spare.uuid))} and ${member.label} holds ${describeSlabs(host, need)}`,
      );
    }
    return { member: member.uuid, spare: spare.uuid };
  },

  plan(host, raw) {
    const p = params(raw);
    const columns = columnsOn(host, p.member);
    const member = host.pool.members.get(p.member)!;
    const spare = host.pool.members.get(p.spare)!;
    const delta = new Map([[p.spare, columns.length], [p.member, -columns.length]]);
    const chunks = columns.map((c) => c.chunk);
    const red = redundancy(host, chunks, (uuid) => uuid !== p.member && !(host.pool.members.get(uuid)?.usable ?? false));
    return {
      kind: 'rebuild',
      summary: `rebuild ${member.label} (${describeSlabs(host, columns.length)}) onto spare ${spare.label}`,
      bytes: columns.length * host.pool.geometry.dataBytes,
      slabs: columns.length,
      members: memberSpace(host, delta, new Set([p.member])),
      redundancy: red,
      belowFullRedundancy: red.some((r) => r.now < r.after),
      notes: member.usable ? [`${member.label} is online: its slabs are copied from it, and it leaves the pool at the end`] : [],
    };
  },

  claims(host, raw) {
    const p = params(raw);
    return claimsFor(host, columnsOn(host, p.member).map((c) => c.chunk), [p.member, p.spare]);
  },

  async run(ctx, raw) {
    const p = params(raw);
    const { host } = ctx;
    const todo = columnsOn(host, p.member);
    setMoveTotal(ctx, todo.length);
    const spare = host.pool.members.get(p.spare);
    await runMoves(ctx, () => {
      for (;;) {
        const ref = todo.shift();
        if (!ref) return undefined;
        if (!spare || !spare.writable) throw new JobError('MEMBER_FAILING', `spare ${spare?.label ?? p.spare} is no longer online`);
        const choice = choiceFor(host, ref, p.member, () => {
          if (host.pool.freeSlabs(p.spare) === 0) throw new JobError('SPARE_TOO_SMALL', `spare ${spare.label} has no free slab left`);
          return host.allocator.allocateOn(p.spare);
        });
        if (choice) return choice;
      }
    });
    if (spare && roleOf(host, p.spare) === 'spare') {
      await host.setRole(p.spare, 'data');
      ctx.note(`spare ${spare.label} is now a data member`);
    }
    await removeEmptyMember(ctx, p.member);
  },

  restore: restoreMove,
};
