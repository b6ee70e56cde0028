/**
 * The contract's views of a running pool (preload/api.ts): plain, readonly
 * data built from the engine's state on each request, so a client never
 * holds a live engine object.
 */
import { layouts, parseLayoutName } from '../engine/layouts.js';
import type { LayoutSpec } from '../engine/layout.js';
import type { Member } from '../engine/member.js';
import type { Pool } from '../engine/pool.js';
import {
  VOLUME_LAYOUTS,
  type ChunkStatus,
  type ColumnRole,
  type MemberStatus,
  type PoolHealth,
  type PoolPolicy,
  type PoolStatus,
  type PoolSummary,
  type VolumeExport,
  type VolumeLayout,
  type VolumeStatus,
  type VolumeSummary,
} from '../../preload/api.js';
import type { SavedPool } from './pool-state-file.js';

/** A page of the layout map stops after this many columns (~100 bytes of JSON each). */
const MAP_PAGE_COLUMNS = 4096;

export type ExportLookup = (volume: string) => VolumeExport | undefined;

/** The name people use for a spec: raid1x3 for a three-way mirror, plain names for the defaults. */
export function layoutSpelling(spec: LayoutSpec): string {
  const defaultCopies = spec.name === 'raid1' || spec.name === 'raid10' ? 2 : 1;
  return spec.copies === defaultCopies ? spec.name : `${spec.name}x${spec.copies}`;
}

export function memberStatus(pool: Pool, member: Member, used = usedSlabs(pool)): MemberStatus {
  const info = pool.state.members.find((m) => m.uuid === member.uuid);
  return {
    uuid: member.uuid,
    uri: member.label,
    role: info?.role ?? 'data',
    state: member.state,
    errors: { ...member.errors },
    slabCount: member.slabCount,
    freeSlabs: member.slabCount - (used.get(member.uuid) ?? 0),
    ...(info?.reason && member.state === 'failed' ? { reason: info.reason } : {}),
  };
}

export function poolHealth(pool: Pool): { health: PoolHealth; problem?: string } {
  const problems: string[] = [];
  let failed = false;
  for (const member of pool.members.values()) {
    if (member.state !== 'online') problems.push(`member ${member.label} is ${member.state}`);
  }
  for (const name of pool.volumeNames()) {
    const state = pool.volumeState(name);
    if (state === 'failed') {
      failed = true;
      problems.unshift(`volume ${name} has failed`);
    }
  }
  if (problems.length === 0) return { health: 'online' };
  return { health: failed ? 'failed' : 'degraded', problem: problems.join('; ') };
}

export function poolSummary(pool: Pool, demo: boolean): PoolSummary {
  return {
    name: pool.name,
    uuid: pool.state.uuid,
    ...poolHealth(pool),
    demo,
    memberCount: pool.members.size,
    volumeCount: pool.volumeNames().length,
  };
}

/** A pool the host knows but could not import: what pools.json says of it, and why. */
export function unavailableSummary(saved: SavedPool, problem: string): PoolSummary {
  return {
    name: saved.name,
    uuid: saved.uuid,
    health: 'unavailable',
    demo: saved.demo,
    memberCount: saved.members.length,
    volumeCount: 0,
    problem,
  };
}

export function poolStatus(pool: Pool, demo: boolean, exportOf: ExportLookup): PoolStatus {
  const used = usedSlabs(pool);
  const freeSpace = {} as Record<VolumeLayout, number>;
  for (const spelling of VOLUME_LAYOUTS) {
    const { name, copies } = parseLayoutName(spelling);
    freeSpace[spelling] = pool.freeSpace(name, copies);
  }
  return {
    ...poolSummary(pool, demo),
    slabSize: pool.state.slabSize,
    slabDataBytes: pool.geometry.dataBytes,
    members: [...pool.members.values()].map((m) => memberStatus(pool, m, used)),
    volumes: pool.volumeNames().map((name) => volumeSummary(pool, name, exportOf(name))),
    freeSpace,
    policy: poolPolicy(pool),
  };
}

/** The engine leaves the latency budget unset until someone sets it; its default is 2 (job-runner.ts). */
const DEFAULT_LATENCY_BUDGET = 2;

export function poolPolicy(pool: Pool): PoolPolicy {
  const { autoRepair, latencyBudget } = pool.state.policy;
  return { autoRepair, latencyBudget: latencyBudget ?? DEFAULT_LATENCY_BUDGET };
}

export function volumeSummary(pool: Pool, name: string, exported: VolumeExport | undefined): VolumeSummary {
  const volume = pool.volume(name);
  return {
    pool: pool.name,
    name,
    size: volume.size,
    layout: layoutSpelling(volume.spec),
    width: volume.spec.width,
    copies: volume.spec.copies,
    state: pool.volumeState(name),
    ...(exported ? { export: exported } : {}),
  };
}

export function volumeStatus(pool: Pool, name: string, exported: VolumeExport | undefined, firstChunk = 0): VolumeStatus {
  const volume = pool.volume(name);
  const chunks: ChunkStatus[] = [];
  let columns = 0;
  let index = firstChunk;
  for (; index < volume.chunks.length && (chunks.length === 0 || columns < MAP_PAGE_COLUMNS); index++) {
    const chunk = volume.chunks[index]!;
    const roles = columnRoles(chunk.spec);
    chunks.push({
      id: chunk.id,
      capacity: chunk.capacity,
      columns: chunk.columns.map((c, i) => ({ member: c.member.uuid, slab: c.slab, role: roles[i]!, state: c.member.state })),
    });
    columns += chunk.columns.length;
  }
  return {
    ...volumeSummary(pool, name, exported),
    chunkCount: volume.chunks.length,
    firstChunk,
    chunks,
    ...(index < volume.chunks.length ? { nextChunk: index } : {}),
  };
}

/** What each column holds in row 0: the first copy of a data unit is data, the others copies. */
function columnRoles(spec: LayoutSpec): ColumnRole[] {
  const row = layouts[spec.name].row(spec, 0);
  const roles = new Array<ColumnRole>(spec.width).fill('data');
  for (const copies of row.data) copies.forEach((column, i) => (roles[column] = i === 0 ? 'data' : 'copy'));
  if (row.p !== undefined) roles[row.p] = 'parity-p';
  if (row.q !== undefined) roles[row.q] = 'parity-q';
  return roles;
}

function usedSlabs(pool: Pool): Map<string, number> {
  const used = new Map<string, number>();
  for (const chunk of pool.state.chunks.values()) {
    for (const slab of chunk.slabs) used.set(slab.member, (used.get(slab.member) ?? 0) + 1);
  }
  return used;
}
