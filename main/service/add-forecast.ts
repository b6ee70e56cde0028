/**
 * The plan of adding drives to a pool, before they are added: the engine
 * plans only for its members, so this forecasts what the rebalance that
 * follows the add would move.
 *
 * It applies the engine's rebalance rule (job-rebalance.ts) to the pool with
 * the new members in it, each with as many slabs as the engine would give
 * it (on-disk-format.ts memberGeometry): move a slab from the fullest data
 * member (by fraction used) to the emptiest one that holds no slab of that
 * chunk, while the receiver stays less full than the giver was. The tests
 * hold the forecast to the engine's own rebalance plan after the add.
 */
import { memberGeometry } from '../engine/on-disk-format.js';
import type { Pool } from '../engine/pool.js';
import type { Plan, PlanAction, PlanMemberSpace } from '../../preload/api.js';
import { describeRedundancy, volumeTolerances } from './plan-views.js';

/** The most moves looked ahead, as the engine's rebalance plan. */
const PLAN_LIMIT = 100_000;

export interface NewDrive {
  readonly uri: string;
  readonly size: number;
}

interface Usage {
  readonly id: string;
  readonly uri: string;
  readonly slabCount: number;
  readonly usedBefore: number;
  used: number;
}

export function forecastAdd(pool: Pool, action: PlanAction, drives: readonly NewDrive[], rate: { bytesPerSecond: number; measured: boolean }): Plan {
  const slabSize = pool.state.slabSize;
  const newSlabs = drives.map((d) => memberGeometry(d.size, slabSize).slabCount);
  const dataRole = new Map(pool.state.members.map((m) => [m.uuid, m.role]));
  const members: Usage[] = [...pool.members.values()].map((m) => {
    const used = m.slabCount - pool.freeSlabs(m.uuid);
    return { id: m.uuid, uri: m.label, slabCount: m.slabCount, usedBefore: used, used };
  });
  const added: Usage[] = drives.map((d, i) => ({ id: d.uri, uri: d.uri, slabCount: newSlabs[i]!, usedBefore: 0, used: 0 }));
  const eligible = [
    ...members.filter((u) => dataRole.get(u.id) === 'data' && (pool.members.get(u.id)?.usable ?? false)),
    ...added,
  ];
  // Which chunks each member holds, in the order the engine walks them.
  const chunksOf = new Map<string, Set<number>>(eligible.map((u) => [u.id, new Set<number>()]));
  const membersOf = new Map<number, Set<string>>();
  for (const chunk of pool.state.chunks.values()) {
    const set = new Set<string>();
    for (const s of chunk.slabs) {
      set.add(s.member);
      chunksOf.get(s.member)?.add(chunk.id);
    }
    membersOf.set(chunk.id, set);
  }
  let moves = 0;
  while (moves < PLAN_LIMIT && move(eligible, chunksOf, membersOf)) moves++;

  const space = (u: Usage): PlanMemberSpace => ({
    member: u.id,
    uri: u.uri,
    before: { usedBytes: u.usedBefore * slabSize, freeBytes: (u.slabCount - u.usedBefore) * slabSize },
    after: { usedBytes: u.used * slabSize, freeBytes: (u.slabCount - u.used) * slabSize },
  });
  const bytes = moves * pool.geometry.dataBytes;
  const estimatedSeconds = Math.ceil(bytes / rate.bytesPerSecond);
  const redundancy = describeRedundancy(volumeTolerances(pool));
  const names = drives.map((d) => d.uri).join(', ');
  const notes = [
    `a forecast: the rebalance is planned by the engine once ${drives.length === 1 ? 'the drive is' : 'the drives are'} in the pool`,
    ...(moves >= PLAN_LIMIT ? [`only the first ${PLAN_LIMIT} moves are planned; run rebalance again afterwards`] : []),
    ...(!rate.measured && bytes > 0
      ? [`the time is estimated at ${Math.round(rate.bytesPerSecond / (1024 * 1024))} MiB/s: no job has run on this pool yet to measure its rate`]
      : []),
  ];
  return {
    pool: pool.name,
    action,
    possible: true,
    summary:
      moves === 0
        ? `add ${names} to pool ${pool.name} (nothing to rebalance)`
        : `add ${names} to pool ${pool.name}, then rebalance (${moves} slab${moves === 1 ? '' : 's'} to move)`,
    bytesToMove: bytes,
    perMember: [...members, ...added].map(space),
    // A rebalance moves copies between online members: redundancy holds throughout.
    redundancyDuring: redundancy,
    redundancyAfter: redundancy,
    estimatedSeconds,
    riskWindowSeconds: 0,
    notes,
  };
}

/** One move by the engine's rule, applied; false when the pool is balanced. */
function move(usage: Usage[], chunksOf: Map<string, Set<number>>, membersOf: Map<number, Set<string>>): boolean {
  const fraction = (u: Usage, extra = 0): number => (u.used + extra) / u.slabCount;
  const givers = [...usage].filter((u) => u.used > 0).sort((a, b) => fraction(b) - fraction(a));
  const takers = [...usage].filter((u) => u.used < u.slabCount).sort((a, b) => fraction(a) - fraction(b));
  for (const giver of givers) {
    for (const taker of takers) {
      if (taker === giver || fraction(taker, 1) >= fraction(giver)) continue;
      for (const id of chunksOf.get(giver.id) ?? []) {
        const holders = membersOf.get(id)!;
        if (holders.has(taker.id)) continue;
        holders.delete(giver.id);
        holders.add(taker.id);
        chunksOf.get(giver.id)!.delete(id);
        chunksOf.get(taker.id)!.add(id);
        giver.used--;
        taker.used++;
        return true;
      }
    }
  }
  return false;
}
