/**
 * The pool's metadata as plain data: members, volumes, the chunk map, stale
 * regions, policy. The metadata store (metadata-store.ts) persists it as a
 * checkpoint (encodeCheckpoint) plus log records (PoolRecord) applied in
 * order by applyRecord; import = decode the checkpoint, apply the records.
 *
 * Encoding: records are small JSON documents. A checkpoint is JSON for
 * everything but the chunk map, which is binary (a pool of 24 × 16 TiB
 * members has ~1.5 million slabs; as JSON that would be slow to parse):
 *
 *   checkpoint := u32 magic "SPCK" | u32 version | u32 jsonBytes | json
 *                 | u32 chunkCount | chunk*
 *   chunk      := u32 id | u8 layout | u8 copies | u16 width
 *                 | (u16 memberIndex | u32 slab) × width
 *
 * memberIndex is the index in `members`. Little-endian throughout.
 */
import type { LayoutName, LayoutSpec } from './layout.js';

export const CHECKPOINT_VERSION = 1;
const CHECKPOINT_MAGIC = 0x4b435053; // "SPCK" little-endian
const LAYOUT_CODES: readonly LayoutName[] = ['raid0', 'raid1', 'raid10', 'raid5', 'raid6'];

export type MemberRole = 'data' | 'spare';
export type MemberRecordState = 'online' | 'failed' | 'removed';

export interface MemberInfo {
  readonly uuid: string;
  /** How the member is reached: file:PATH, nbd+unix://…, nbd://… */
  readonly uri: string;
  readonly slabCount: number;
  readonly role: MemberRole;
  readonly state: MemberRecordState;
  /** Why it failed, for people. */
  readonly reason?: string;
}

export interface ChunkInfo {
  readonly id: number;
  readonly spec: LayoutSpec;
  readonly slabs: ReadonlyArray<{ readonly member: string; readonly slab: number }>;
}

export interface VolumeInfo {
  readonly name: string;
  readonly size: number;
  readonly spec: LayoutSpec;
  readonly chunks: readonly number[];
}

export interface PoolPolicy {
  /** Start repair by itself when a member fails and there is a spare or room. */
  readonly autoRepair: boolean;
}

export interface PoolState {
  readonly name: string;
  readonly uuid: string;
  readonly slabSize: number;
  readonly members: readonly MemberInfo[];
  readonly volumes: readonly VolumeInfo[];
  readonly chunks: ReadonlyMap<number, ChunkInfo>;
  readonly nextChunkId: number;
  /** Per member uuid: rows (as "chunkId:row") written while it was not online. */
  readonly stale: ReadonlyMap<string, ReadonlySet<string>>;
  readonly policy: PoolPolicy;
}

export type PoolRecord =
  | { readonly t: 'member-add'; readonly member: MemberInfo }
  | { readonly t: 'member-state'; readonly uuid: string; readonly state: MemberRecordState; readonly reason?: string }
  | { readonly t: 'member-role'; readonly uuid: string; readonly role: MemberRole }
  | { readonly t: 'volume-create'; readonly volume: VolumeInfo; readonly chunks: readonly ChunkInfo[] }
  | { readonly t: 'volume-grow'; readonly name: string; readonly size: number; readonly chunks: readonly ChunkInfo[] }
  | { readonly t: 'volume-delete'; readonly name: string }
  | { readonly t: 'stale-add'; readonly uuid: string; readonly rows: readonly string[] }
  | { readonly t: 'stale-clear'; readonly uuid: string; readonly rows?: readonly string[] }
  | { readonly t: 'chunk-move'; readonly chunk: number; readonly column: number; readonly to: { readonly member: string; readonly slab: number } }
  | { readonly t: 'policy'; readonly policy: PoolPolicy };

export function emptyPoolState(name: string, uuid: string, slabSize: number, members: readonly MemberInfo[]): PoolState {
  return { name, uuid, slabSize, members, volumes: [], chunks: new Map(), nextChunkId: 1, stale: new Map(), policy: { autoRepair: true } };
}

/** Applies one record; returns the new state (the old one is not changed). */
export function applyRecord(state: PoolState, record: PoolRecord): PoolState {
  switch (record.t) {
    case 'member-add':
      return { ...state, members: [...state.members, record.member] };
    case 'member-state':
      return {
        ...state,
        members: state.members.map((m) => (m.uuid === record.uuid ? { ...m, state: record.state, reason: record.reason } : m)),
      };
    case 'member-role':
      return { ...state, members: state.members.map((m) => (m.uuid === record.uuid ? { ...m, role: record.role } : m)) };
    case 'volume-create': {
      const chunks = new Map(state.chunks);
      for (const c of record.chunks) chunks.set(c.id, c);
      return { ...state, volumes: [...state.volumes, record.volume], chunks, nextChunkId: nextIdAfter(state.nextChunkId, record.chunks) };
    }
    case 'volume-grow': {
      const chunks = new Map(state.chunks);
      for (const c of record.chunks) chunks.set(c.id, c);
      return {
        ...state,
        chunks,
        nextChunkId: nextIdAfter(state.nextChunkId, record.chunks),
        volumes: state.volumes.map((v) =>
          v.name === record.name ? { ...v, size: record.size, chunks: [...v.chunks, ...record.chunks.map((c) => c.id)] } : v,
        ),
      };
    }
    case 'volume-delete': {
      const volume = state.volumes.find((v) => v.name === record.name);
      if (!volume) return state;
      const chunks = new Map(state.chunks);
      for (const id of volume.chunks) chunks.delete(id);
      return { ...state, chunks, volumes: state.volumes.filter((v) => v.name !== record.name) };
    }
    case 'stale-add': {
      const stale = new Map(state.stale);
      stale.set(record.uuid, new Set([...(stale.get(record.uuid) ?? []), ...record.rows]));
      return { ...state, stale };
    }
    case 'stale-clear': {
      const stale = new Map(state.stale);
      if (!record.rows) stale.delete(record.uuid);
      else {
        const rows = new Set(stale.get(record.uuid) ?? []);
        for (const r of record.rows) rows.delete(r);
        if (rows.size === 0) stale.delete(record.uuid);
        else stale.set(record.uuid, rows);
      }
      return { ...state, stale };
    }
    case 'chunk-move': {
      const chunk = state.chunks.get(record.chunk);
      if (!chunk) return state;
      const slabs = chunk.slabs.map((s, i) => (i === record.column ? record.to : s));
      const chunks = new Map(state.chunks);
      chunks.set(chunk.id, { ...chunk, slabs });
      return { ...state, chunks };
    }
    case 'policy':
      return { ...state, policy: record.policy };
  }
}

/** No spread into Math.max: a record may carry a hundred thousand chunks. */
function nextIdAfter(current: number, chunks: readonly ChunkInfo[]): number {
  let next = current;
  for (const c of chunks) if (c.id + 1 > next) next = c.id + 1;
  return next;
}

export function encodeRecord(record: PoolRecord): Buffer {
  return Buffer.from(JSON.stringify(record), 'utf8');
}

export function decodeRecord(bytes: Buffer): PoolRecord {
  const record = JSON.parse(bytes.toString('utf8')) as PoolRecord;
  if (typeof record !== 'object' || record === null || typeof record.t !== 'string') throw new Error('pool record without a type');
  return record;
}

export function encodeCheckpoint(state: PoolState): Buffer {
  const memberIndex = new Map(state.members.map((m, i) => [m.uuid, i]));
  const json = Buffer.from(
    JSON.stringify({
      name: state.name,
      uuid: state.uuid,
      slabSize: state.slabSize,
      members: state.members,
      volumes: state.volumes,
      nextChunkId: state.nextChunkId,
      stale: [...state.stale].map(([uuid, rows]) => [uuid, [...rows]]),
      policy: state.policy,
    }),
    'utf8',
  );
  let chunkBytes = 0;
  for (const c of state.chunks.values()) chunkBytes += 8 + c.slabs.length * 6;
  const out = Buffer.alloc(12 + json.length + 4 + chunkBytes);
  let o = out.writeUInt32LE(CHECKPOINT_MAGIC, 0);
  o = out.writeUInt32LE(CHECKPOINT_VERSION, o);
  o = out.writeUInt32LE(json.length, o);
  o += json.copy(out, o);
  o = out.writeUInt32LE(state.chunks.size, o);
  for (const c of state.chunks.values()) {
    o = out.writeUInt32LE(c.id, o);
    o = out.writeUInt8(LAYOUT_CODES.indexOf(c.spec.name), o);
    o = out.writeUInt8(c.spec.copies, o);
    o = out.writeUInt16LE(c.spec.width, o);
    for (const s of c.slabs) {
      o = out.writeUInt16LE(memberIndex.get(s.member)!, o);
      o = out.writeUInt32LE(s.slab, o);
    }
  }
  return out;
}

export function decodeCheckpoint(bytes: Buffer): PoolState {
  if (bytes.length < 16 || bytes.readUInt32LE(0) !== CHECKPOINT_MAGIC) throw new Error('not a pool checkpoint');
  const version = bytes.readUInt32LE(4);
  if (version > CHECKPOINT_VERSION) throw new Error(`pool checkpoint version ${version} is newer than this Spindle (${CHECKPOINT_VERSION})`);
  const jsonBytes = bytes.readUInt32LE(8);
  const head = JSON.parse(bytes.toString('utf8', 12, 12 + jsonBytes)) as Omit<PoolState, 'chunks' | 'stale'> & { stale: Array<[string, string[]]> };
  let o = 12 + jsonBytes;
  const count = bytes.readUInt32LE(o);
  o += 4;
  const chunks = new Map<number, ChunkInfo>();
  for (let i = 0; i < count; i++) {
    const id = bytes.readUInt32LE(o);
    const name = LAYOUT_CODES[bytes.readUInt8(o + 4)];
    const copies = bytes.readUInt8(o + 5);
    const width = bytes.readUInt16LE(o + 6);
    o += 8;
    if (!name) throw new Error(`chunk ${id} has an unknown layout code`);
    const slabs = new Array<{ member: string; slab: number }>(width);
    for (let c = 0; c < width; c++) {
      const member = head.members[bytes.readUInt16LE(o)];
      if (!member) throw new Error(`chunk ${id} names a member index that does not exist`);
      slabs[c] = { member: member.uuid, slab: bytes.readUInt32LE(o + 2) };
      o += 6;
    }
    chunks.set(id, { id, spec: { name, width, copies }, slabs });
  }
  return { ...head, chunks, stale: new Map(head.stale.map(([uuid, rows]) => [uuid, new Set(rows)])) };
}
