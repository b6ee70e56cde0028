/**
 * rebalance: evens out how full the data members are (after a member was
 * added, or a split left some fuller than others), one slab move at a time.
 *
 * Greedy, and the same rule for the plan and the run: move a slab from the
 * fullest member (by fraction used) to the emptiest one that holds no slab
 * of that chunk, as long as the move leaves the receiving member less full
 * than the giving one was — so every move lowers the spread and the job
 * ends. The run asks the rule again before each move (the pool may have
 * changed: volumes created, deleted), so what it does is what the plan said
 * while nothing else happens.
 */
import type { SlabAllocator } from './allocator.js';
import type { ChunkInfo } from './pool-state.js';
import { choiceFor, describeSlabs, memberSpace, redundancy, restoreMove, runMoves, type ColumnRef } from './job-moves.js';
import { JobError, type JobHost, type JobKindModule } from './job-types.js';

/** The most moves one plan looks ahead (a big pool's rebalance is planned in parts). */
const PLAN_LIMIT = 100_000;

interface Usage {
  readonly uuid: string;
  used: number;
  free: number;
  readonly slabCount: number;
}

/**
 * The next move by the rule, applied to `usage` and `chunksOf` (so a caller
 * can simulate several), or undefined when the pool is balanced.
 */
function nextMove(usage: Usage[], chunksOf: Map<string, Set<number>>, chunks: ReadonlyMap<number, ChunkInfo>): { ref: ColumnRef; from: string; to: string } | undefined {
  const fraction = (u: Usage, extra = 0): number => (u.used + extra) / u.slabCount;
  const givers = [...usage].filter((u) => u.used > 0).sort((a, b) => fraction(b) - fraction(a));
  const takers = [...usage].filter((u) => u.free > 0).sort((a, b) => fraction(a) - fraction(b));
  for (const giver of givers) {
    for (const taker of takers) {
      if (taker === giver || fraction(taker, 1) >= fraction(giver)) continue;
      for (const id of chunksOf.get(giver.uuid) ?? []) {
        const info = chunks.get(id)!;
        const slabs = info.slabs;
        if (slabs.some((s) => s.member === taker.uuid)) continue;
        const column = slabs.findIndex((s) => s.member === giver.uuid);
        return { ref: { chunk: id, column }, from: giver.uuid, to: taker.uuid };
      }
    }
  }
  return undefined;
}

function snapshot(host: JobHost, allocator: SlabAllocator): { usage: Usage[]; chunksOf: Map<string, Set<number>> } {
  const usage = allocator
    .memberFree()
    .filter((m) => m.eligible)
    .map((m) => ({ uuid: m.uuid, used: m.slabCount - m.free, free: m.free, slabCount: m.slabCount }));
  const eligible = new Set(usage.map((u) => u.uuid));
  const chunksOf = new Map<string, Set<number>>([...eligible].map((u) => [u, new Set<number>()]));
  for (const chunk of host.pool.state.chunks.values()) for (const s of chunk.slabs) chunksOf.get(s.member)?.add(chunk.id);
  // Slabs reserved by other jobs count as used but belong to no chunk here: fine for balancing.
  return { usage, chunksOf };
}

function simulate(host: JobHost): { moves: number; delta: Map<string, number>; chunks: Set<number> } {
  const { usage, chunksOf } = snapshot(host, host.allocator);
  const delta = new Map<string, number>();
  const touched = new Set<number>();
  // Moving a chunk's slab changes which members it uses: simulate on copies.
  const chunks = new Map(host.pool.state.chunks);
  let moves = 0;
  for (; moves < PLAN_LIMIT; moves++) {
    const m = nextMove(usage, chunksOf, chunks);
    if (!m) break;
    const info = chunks.get(m.ref.chunk)!;
    chunks.set(m.ref.chunk, { ...info, slabs: info.slabs.map((s, i) => (i === m.ref.column ? { member: m.to, slab: -1 } : s)) });
    const from = usage.find((u) => u.uuid === m.from)!;
    const to = usage.find((u) => u.uuid === m.to)!;
    from.used--;
    from.free++;
    to.used++;
    to.free--;
    chunksOf.get(m.from)!.delete(m.ref.chunk);
    chunksOf.get(m.to)!.add(m.ref.chunk);
    delta.set(m.from, (delta.get(m.from) ?? 0) - 1);
    delta.set(m.to, (delta.get(m.to) ?? 0) + 1);
    touched.add(m.ref.chunk);
  }
  return { moves, delta, chunks: touched };
}

export const rebalance: JobKindModule = {
  kind: 'rebalance',
  priority: 3,

  prepare(host, request) {
    if (request.kind !== 'rebalance') throw new JobError('BAD_REQUEST', 'not a rebalance request');
    if (simulate(host).moves === 0) throw new JobError('NOTHING_TO_DO', `pool ${host.pool.name} is balanced already: no slab move would even it out further`);
    return {};
  },

  plan(host) {
    const { moves, delta, chunks } = simulate(host);
    const red = redundancy(host, chunks, (uuid) => !(host.pool.members.get(uuid)?.usable ?? false));
    return {
      kind: 'rebalance',
      summary: `rebalance pool ${host.pool.name} (${describeSlabs(host, moves)} to move)`,
      bytes: moves * host.pool.geometry.dataBytes,
      slabs: moves,
      members: memberSpace(host, delta),
      redundancy: red,
      belowFullRedundancy: false,
      notes: moves >= PLAN_LIMIT ? [`only the first ${PLAN_LIMIT} moves are planned; run rebalance again afterwards`] : [],
    };
  },

  claims(host) {
    // Any chunk may move, onto any data member: a rebalance runs alone.
    return {
      chunks: new Set(host.pool.state.chunks.keys()),
      members: new Set([...host.pool.members.keys()]),
      volumes: new Set(host.pool.state.volumes.map((v) => v.name)),
    };
  },

  async run(ctx) {
    const { host } = ctx;
    let planned = simulate(host).moves;
    ctx.setTotal(ctx.tally().bytes + (planned + (ctx.attachment ? 1 : 0)) * host.pool.geometry.dataBytes);
    await runMoves(ctx, () => {
      if (planned-- <= 0) return undefined;
      const { usage, chunksOf } = snapshot(host, host.allocator);
      const m = nextMove(usage, chunksOf, host.pool.state.chunks);
      if (!m) return undefined;
      return choiceFor(host, m.ref, m.from, () => host.allocator.allocateOn(m.to));
    });
  },

  restore: restoreMove,
};
