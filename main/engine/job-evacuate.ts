/**
 * evacuate: removes an online member: its slabs move to the other data
 * members (as split places them), it takes no new slab meanwhile, and at
 * the end it leaves the pool (its labels wiped). Refused when some chunk
 * would have nowhere to go (its layout needs more distinct members than the
 * pool would have with free space): that would break its redundancy.
 */
import { claimsFor, columnsOn, describeSlabs, memberSpace, redundancy, removeEmptyMember, resolveMember, restoreMove, roleOf, runMoves, choiceFor, setMoveTotal } from './job-moves.js';
import { placeColumns, spreadTarget } from './job-split.js';
import { JobError, type JobHost, type JobKindModule } from './job-types.js';

function eligibleAgain(host: JobHost, uuid: string): void {
  const member = host.pool.members.get(uuid);
  if (member) host.allocator.setEligible(uuid, member.usable && roleOf(host, uuid) === 'data');
}

export const evacuate: JobKindModule = {
  kind: 'evacuate',
  priority: 1,

  prepare(host, request) {
    if (request.kind !== 'evacuate') throw new JobError('BAD_REQUEST', 'not an evacuate request');
    const member = resolveMember(host, request.member);
    if (!member.usable) {
      throw new JobError('BAD_REQUEST', `member ${member.label} is ${member.state}: evacuate moves data off an online member; rebuild, relocate or split restore a lost member's data`);
    }
    const columns = columnsOn(host, member.uuid);
    if (host.pool.members.size === 1) throw new JobError('REDUNDANCY', `member ${member.label} is the only member of pool ${host.pool.name}`);
    placeColumns(host, columns, member.uuid, 'REDUNDANCY');
    return { member: member.uuid };
  },

  plan(host, raw) {
    const uuid = (raw as { member: string }).member;
    const columns = columnsOn(host, uuid);
    const delta = placeColumns(host, columns, uuid, 'REDUNDANCY');
    const member = host.pool.members.get(uuid)!;
    const red = redundancy(host, columns.map((c) => c.chunk), (m) => !(host.pool.members.get(m)?.usable ?? false));
    return {
      kind: 'evacuate',
      summary: `evacuate ${member.label} (${describeSlabs(host, columns.length)}) and remove it`,
      bytes: columns.length * host.pool.geometry.dataBytes,
      slabs: columns.length,
      members: memberSpace(host, delta, new Set([uuid])),
      redundancy: red,
      belowFullRedundancy: false,
      notes: columns.length === 0 ? [`${member.label} holds no data: it is removed at once`] : [],
    };
  },

  claims(host, raw) {
    const uuid = (raw as { member: string }).member;
    return claimsFor(host, columnsOn(host, uuid).map((c) => c.chunk), [uuid]);
  },

  async run(ctx, raw) {
    const uuid = (raw as { member: string }).member;
    const { host } = ctx;
    host.allocator.setEligible(uuid, false);
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

  restore(host, info) {
    host.allocator.setEligible((info.params as { member: string }).member, false);
    return restoreMove(host, info);
  },

  ended(host, raw, outcome) {
    if (outcome !== 'done') eligibleAgain(host, (raw as { member: string }).member);
  },
};
