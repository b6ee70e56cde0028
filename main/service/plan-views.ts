/**
 * The contract's Plan (preload/api.ts) from the engine's JobPlan: space per
 * member before and after, and the pool's redundancy while the job runs and
 * after it — the weakest volume's, counting the volumes the job does not
 * touch as they are now.
 */
import { chunkTolerance } from '../engine/job-moves.js';
import type { JobPlan, MemberSpace, VolumeRedundancy } from '../engine/job-types.js';
import type { Pool } from '../engine/pool.js';
import type { Plan, PlanAction, PlanMemberSpace, Redundancy } from '../../preload/api.js';
import { readableLabels } from './job-views.js';

/** Further member failures each volume survives now. */
export function volumeTolerances(pool: Pool): Map<string, number> {
  const down = (uuid: string): boolean => !(pool.members.get(uuid)?.usable ?? false);
  const out = new Map<string, number>();
  for (const volume of pool.state.volumes) {
    let worst = Infinity;
    for (const id of volume.chunks) {
      const info = pool.state.chunks.get(id);
      if (info) worst = Math.min(worst, chunkTolerance(info, down));
    }
    if (worst !== Infinity) out.set(volume.name, worst);
  }
  return out;
}

/** The weakest volume's tolerance, in numbers and words. */
export function describeRedundancy(tolerances: ReadonlyMap<string, number>): Redundancy {
  if (tolerances.size === 0) return { failuresTolerated: 0, description: 'no volumes: no data to protect' };
  const sorted = [...tolerances].sort((a, b) => a[1] - b[1]);
  const [weakest, n] = sorted[0]!;
  const all = sorted.every(([, t]) => t === n);
  const who = all ? (tolerances.size === 1 ? `volume ${weakest}` : 'every volume') : `volume ${weakest}, the least redundant,`;
  if (n < 0) {
    const lost = sorted.filter(([, t]) => t < 0).map(([v]) => v);
    return { failuresTolerated: -1, description: `${lost.length === 1 ? 'volume' : 'volumes'} ${lost.join(', ')} ${lost.length === 1 ? 'has' : 'have'} lost data` };
  }
  if (n === 0) return { failuresTolerated: 0, description: `${who} survives no further member failure` };
  return { failuresTolerated: n, description: `${who} survives ${n} more member failure${n === 1 ? '' : 's'}` };
}

function redundancyOf(pool: Pool, planned: readonly VolumeRedundancy[], when: 'during' | 'after'): Redundancy {
  const tolerances = volumeTolerances(pool);
  for (const v of planned) tolerances.set(v.volume, v[when]);
  return describeRedundancy(tolerances);
}

export function memberSpaceView(pool: Pool, m: MemberSpace): PlanMemberSpace {
  const capacity = m.slabCount * pool.state.slabSize;
  return {
    member: m.uuid,
    uri: m.label,
    before: { usedBytes: m.usedBytesBefore, freeBytes: capacity - m.usedBytesBefore },
    // A member that leaves the pool has no space in it after.
    after: m.remains ? { usedBytes: m.usedBytesAfter, freeBytes: capacity - m.usedBytesAfter } : { usedBytes: 0, freeBytes: 0 },
  };
}

/** Space per member when nothing moves. */
export function unchangedSpace(pool: Pool): PlanMemberSpace[] {
  return [...pool.members.values()].map((m) => {
    const capacity = m.slabCount * pool.state.slabSize;
    const used = (m.slabCount - pool.freeSlabs(m.uuid)) * pool.state.slabSize;
    const space = { usedBytes: used, freeBytes: capacity - used };
    return { member: m.uuid, uri: m.label, before: space, after: space };
  });
}

export function planView(pool: Pool, action: PlanAction, plan: JobPlan, extraNotes: readonly string[] = []): Plan {
  const notes = [...plan.notes, ...extraNotes];
  if (plan.rateSource === 'default' && plan.bytes > 0) {
    notes.push(`the time is estimated at ${Math.round(plan.rateBytesPerSecond / (1024 * 1024))} MiB/s: no job has run on this pool yet to measure its rate`);
  }
  return {
    pool: pool.name,
    action,
    possible: true,
    summary: readableLabels(plan.summary),
    bytesToMove: plan.bytes,
    perMember: plan.members.map((m) => memberSpaceView(pool, m)),
    redundancyDuring: redundancyOf(pool, plan.redundancy, 'during'),
    redundancyAfter: redundancyOf(pool, plan.redundancy, 'after'),
    estimatedSeconds: Math.ceil(plan.estimatedMs / 1000),
    riskWindowSeconds: Math.ceil(plan.riskWindowMs / 1000),
    notes,
  };
}

/** What nothing would change: an impossible action (with the reason), or a change that moves no data. */
export function stillPlan(pool: Pool, action: PlanAction, summary: string, outcome: { reason: string } | { possible: true; notes?: string[] }): Plan {
  const now = describeRedundancy(volumeTolerances(pool));
  return {
    pool: pool.name,
    action,
    possible: 'possible' in outcome,
    ...('reason' in outcome ? { reason: outcome.reason } : {}),
    summary,
    bytesToMove: 0,
    perMember: unchangedSpace(pool),
    redundancyDuring: now,
    redundancyAfter: now,
    estimatedSeconds: 0,
    riskWindowSeconds: 0,
    notes: 'notes' in outcome && outcome.notes ? outcome.notes : [],
  };
}
