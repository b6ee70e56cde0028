/**
 * The pool's metadata as plain data: members, volumes, the chunk map, stale
 * regions, policy, and the jobs under way with their checkpoints
 * (job-runner.ts; a job's reserved slabs are in its record, so import never
 * hands them out). The metadata store (metadata-store.ts) persists it as a
 * checkpoint (encodeCheckpoint) plus log records (PoolRecord) applied in
 * order by applyRecord; import = decode the checkpoint, apply the records.
 * Chunks decoded from a checkpoint read their slabs from its bytes when
 * asked (StoredChunk, below) and otherwise behave as plain data.
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
  /** May be built on each read (chunks decoded from a checkpoint): read it once when using it more than once. */
  readonly slabs: ReadonlyArray<{ readonly member: string; readonly slab: number }>;
}

export interface VolumeInfo {
  readonly name: string;
  readonly size: number;
  readonly spec: LayoutSpec;
  readonly chunks: readonly number[];
}

export interface PoolPolicy {
  /** Start repair by itself when a member fails and there is a spare or room (spare first, then relocate, then split). */
  readonly autoRepair: boolean;
  /**
   * How long a failed member may stay failed before automatic repair
   * starts, in milliseconds (default AUTO_REPAIR_DELAY_MS): a member that
   * is back sooner (a dropped connection) only resyncs what it missed.
   */
  readonly autoRepairDelayMs?: number;
  /**
   * The governor's budget: job I/O is slowed so that foreground p99 latency
   * stays within this factor of the idle p99 (job-governor.ts). Default 2.
   */
  readonly latencyBudget?: number;
}

export type JobKindName = 'rebuild' | 'relocate' | 'split' | 'evacuate' | 'rebalance' | 'migrate' | 'scrub';

/** A slab being moved: chunk `chunk`'s column `column` is copied onto `to`, rows [0, rows) durably so. */
export interface SlabMoveInfo {
  readonly chunk: number;
  readonly column: number;
  readonly to: { readonly member: string; readonly slab: number };
  readonly rows: number;
}

/**
 * A job as the metadata log keeps it (job-runner.ts): enough to resume after
 * a crash from its last checkpoint. Slabs named by `move` and `newChunks`
 * are reserved: the allocator never hands them out while the job lives.
 */
export interface JobInfo {
  readonly id: string;
  readonly kind: JobKindName;
  /** The request, as given (member UUIDs resolved). */
  readonly params: Readonly<Record<string, unknown>>;
  /** Milliseconds since 1970. */
  readonly created: number;
  readonly paused: boolean;
  /** The slab move in progress, if any. */
  readonly move?: SlabMoveInfo;
  /** Chunks being built and not yet part of a volume (migrate). */
  readonly newChunks?: readonly ChunkInfo[];
  /** Kind-specific position (JSON): where to go on from. */
  readonly cursor?: unknown;
  /** Bytes done and counters so far, so progress survives a restart. */
  readonly done: JobTally;
}

export interface JobTally {
  readonly bytes: number;
  readonly slabsMoved: number;
  readonly blocksRepaired: number;
  readonly blocksLost: number;
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
  /** Jobs started and not finished (job-runner.ts). */
  readonly jobs: readonly JobInfo[];
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
  /** A slab move is complete: the column now lives on `to`; `job` (when given) no longer has a move in progress. */
  | { readonly t: 'chunk-move'; readonly chunk: number; readonly column: number; readonly to: { readonly member: string; readonly slab: number }; readonly job?: string }
  | { readonly t: 'policy'; readonly policy: PoolPolicy }
  | { readonly t: 'job-start'; readonly job: JobInfo }
  /** Fields given replace the job's; `move: null` / `newChunks: null` clear them. */
  | {
      readonly t: 'job-update';
      readonly id: string;
      readonly paused?: boolean;
      readonly move?: SlabMoveInfo | null;
      readonly newChunks?: readonly ChunkInfo[] | null;
      readonly cursor?: unknown;
      readonly done?: JobTally;
    }
  | { readonly t: 'job-end'; readonly id: string }
  /**
   * Migrate: chunks [first, first + count) of the volume's list are replaced
   * by `chunks` (which the job built, and which leave its newChunks); `spec`,
   * when given, becomes the volume's layout.
   */
  | {
      readonly t: 'volume-rechunk';
      readonly name: string;
      readonly first: number;
      readonly count: number;
      readonly chunks: readonly number[];
      readonly job: string;
      readonly spec?: LayoutSpec;
      readonly cursor?: unknown;
    };

export function emptyPoolState(name: string, uuid: string, slabSize: number, members: readonly MemberInfo[]): PoolState {
  return { name, uuid, slabSize, members, volumes: [], chunks: new Map(), nextChunkId: 1, stale: new Map(), policy: { autoRepair: true }, jobs: [] };
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
      const before = chunk.slabs;
      const from = before[record.column]?.member;
      const slabs = before.map((s, i) => (i === record.column ? record.to : s));
      const chunks = new Map(state.chunks);
      chunks.set(chunk.id, { ...chunk, slabs });
      // Regions of this chunk stale on the member it left mean nothing now.
      let stale = state.stale;
      const rows = from === undefined ? undefined : stale.get(from);
      if (rows && !slabs.some((s) => s.member === from)) {
        const kept = new Set([...rows].filter((r) => !r.startsWith(`${chunk.id}:`)));
        if (kept.size !== rows.size) {
          const changed = new Map(stale);
          if (kept.size === 0) changed.delete(from!);
          else changed.set(from!, kept);
          stale = changed;
        }
      }
      const jobs = record.job === undefined ? state.jobs : state.jobs.map((j) => (j.id === record.job ? withoutKey(j, 'move') : j));
      return { ...state, chunks, stale, jobs };
    }
    case 'policy':
      return { ...state, policy: record.policy };
    case 'job-start':
      return { ...state, jobs: [...state.jobs, record.job], nextChunkId: nextIdAfter(state.nextChunkId, record.job.newChunks ?? []) };
    case 'job-update': {
      let next = state.nextChunkId;
      const jobs = state.jobs.map((j) => {
        if (j.id !== record.id) return j;
        let updated: JobInfo = { ...j };
        if (record.paused !== undefined) updated = { ...updated, paused: record.paused };
        if (record.move === null) updated = withoutKey(updated, 'move');
        else if (record.move !== undefined) updated = { ...updated, move: record.move };
        if (record.newChunks === null) updated = withoutKey(updated, 'newChunks');
        else if (record.newChunks !== undefined) {
          updated = { ...updated, newChunks: record.newChunks };
          next = nextIdAfter(next, record.newChunks);
        }
        if (record.cursor !== undefined) updated = { ...updated, cursor: record.cursor };
        if (record.done !== undefined) updated = { ...updated, done: record.done };
        return updated;
      });
      return { ...state, jobs, nextChunkId: next };
    }
    case 'job-end':
      return { ...state, jobs: state.jobs.filter((j) => j.id !== record.id) };
    case 'volume-rechunk': {
      const volume = state.volumes.find((v) => v.name === record.name);
      const job = state.jobs.find((j) => j.id === record.job);
      if (!volume || !job) return state;
      const built = new Map((job.newChunks ?? []).map((c) => [c.id, c]));
      const chunks = new Map(state.chunks);
      for (const id of volume.chunks.slice(record.first, record.first + record.count)) chunks.delete(id);
      for (const id of record.chunks) {
        const c = built.get(id);
        if (c) chunks.set(id, c);
      }
      const ids = [...volume.chunks];
      ids.splice(record.first, record.count, ...record.chunks);
      return {
        ...state,
        chunks,
        volumes: state.volumes.map((v) => (v === volume ? { ...v, chunks: ids, ...(record.spec ? { spec: record.spec } : {}) } : v)),
        jobs: state.jobs.map((j) => {
          if (j !== job) return j;
          const rest = (j.newChunks ?? []).filter((c) => !record.chunks.includes(c.id));
          const updated = rest.length > 0 ? { ...j, newChunks: rest } : withoutKey(j, 'newChunks');
          return record.cursor !== undefined ? { ...updated, cursor: record.cursor } : updated;
        }),
      };
    }
  }
}

function withoutKey<T extends object, K extends keyof T>(value: T, key: K): T {
  const copy = { ...value };
  delete copy[key];
  return copy;
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
      jobs: state.jobs.map((j) => (j.newChunks ? { ...j, newChunks: j.newChunks.map((c) => ({ id: c.id, spec: c.spec, slabs: c.slabs })) } : j)),
    }),
    'utf8',
  );
  let chunkBytes = 0;
  for (const c of state.chunks.values()) {
    // The header says width; a chunk with another number of slabs would misalign every chunk after it.
    if (!(c instanceof StoredChunk) && c.slabs.length !== c.spec.width) {
      throw new Error(`chunk ${c.id} has ${c.slabs.length} slabs for a width of ${c.spec.width}`);
    }
    chunkBytes += 8 + c.spec.width * 6;
  }
  const out = Buffer.alloc(12 + json.length + 4 + chunkBytes);
  let o = out.writeUInt32LE(CHECKPOINT_MAGIC, 0);
  o = out.writeUInt32LE(CHECKPOINT_VERSION, o);
  o = out.writeUInt32LE(json.length, o);
  o += json.copy(out, o);
  o = out.writeUInt32LE(state.chunks.size, o);
  // Chunks decoded from a checkpoint are copied from its bytes, without making
  // their slabs into objects; their member indices are mapped once per table.
  const remaps = new Map<ChunkTable, Int32Array>();
  const remap = (table: ChunkTable): Int32Array => {
    let r = remaps.get(table);
    if (!r) remaps.set(table, (r = Int32Array.from(table.members, (uuid) => memberIndex.get(uuid) ?? -1)));
    return r;
  };
  for (const c of state.chunks.values()) {
    o = out.writeUInt32LE(c.id, o);
    o = out.writeUInt8(LAYOUT_CODES.indexOf(c.spec.name), o);
    o = out.writeUInt8(c.spec.copies, o);
    o = out.writeUInt16LE(c.spec.width, o);
    if (c instanceof StoredChunk) {
      o = StoredChunk.writeSlabs(c, out, o, remap);
      continue;
    }
    for (const s of c.slabs) {
      o = out.writeUInt16LE(memberIndex.get(s.member)!, o);
      o = out.writeUInt32LE(s.slab, o);
    }
  }
  return out;
}

/**
 * The state a checkpoint holds. The chunk map keeps reading `bytes` (see
 * StoredChunk): they must not change afterwards (the metadata store's
 * checkpoint buffers never do).
 */
export function decodeCheckpoint(bytes: Buffer): PoolState {
  if (bytes.length < 16 || bytes.readUInt32LE(0) !== CHECKPOINT_MAGIC) throw new Error('not a pool checkpoint');
  const version = bytes.readUInt32LE(4);
  if (version > CHECKPOINT_VERSION) throw new Error(`pool checkpoint version ${version} is newer than this Spindle (${CHECKPOINT_VERSION})`);
  const jsonBytes = bytes.readUInt32LE(8);
  const parsed = JSON.parse(bytes.toString('utf8', 12, 12 + jsonBytes)) as Omit<PoolState, 'chunks' | 'stale' | 'jobs'> & {
    stale: Array<[string, string[]]>;
    jobs?: JobInfo[];
  };
  // Checkpoints written before jobs existed have none.
  const head = { ...parsed, jobs: parsed.jobs ?? [] };
  let o = 12 + jsonBytes;
  const count = bytes.readUInt32LE(o);
  o += 4;
  const table: ChunkTable = { bytes, members: head.members.map((m) => m.uuid) };
  const memberCount = table.members.length;
  // One spec object per kind of chunk: a pool has a handful of kinds and a hundred thousand chunks.
  const specs = new Map<number, LayoutSpec>();
  const chunks = new Map<number, ChunkInfo>();
  for (let i = 0; i < count; i++) {
    const id = bytes.readUInt32LE(o);
    const code = bytes.readUInt8(o + 4);
    const copies = bytes.readUInt8(o + 5);
    const width = bytes.readUInt16LE(o + 6);
    const name = LAYOUT_CODES[code];
    if (!name) throw new Error(`chunk ${id} has an unknown layout code`);
    const key = (code << 24) | (copies << 16) | width;
    let spec = specs.get(key);
    if (!spec) specs.set(key, (spec = Object.freeze({ name, width, copies })));
    const at = o + 8;
    o = at + width * 6;
    if (o > bytes.length) throw new Error(`chunk ${id} runs past the end of the checkpoint`);
    // Checked here, so that reading the slabs later cannot fail (bytes, not
    // readUInt16LE: 1.4 million of these on a big pool).
    for (let p = at; p < o; p += 6) {
      if ((bytes[p]! | (bytes[p + 1]! << 8)) >= memberCount) throw new Error(`chunk ${id} names a member index that does not exist`);
    }
    chunks.set(id, new StoredChunk(id, spec, table, at));
  }
  return { ...head, chunks, stale: new Map(head.stale.map(([uuid, rows]) => [uuid, new Set(rows)])) };
}

/** The chunk map of a decoded checkpoint: its bytes, and the member UUIDs its indices name. */
interface ChunkTable {
  readonly bytes: Buffer;
  readonly members: readonly string[];
}

/**
 * A chunk as decoded from a checkpoint: its slabs stay in the checkpoint's
 * bytes (6 bytes each) and become objects only when read. Decoded eagerly, a
 * 141,000-chunk map is 1.4 million slab objects and ~90 MiB of heap, which
 * import spent most of a second building and garbage-collecting, only for
 * the pool to read each chunk's slabs once to build its own view of them.
 *
 * `slabs` is an own enumerable accessor (one shared descriptor, so every
 * chunk keeps one hidden class, ~100 bytes each): spreading a chunk
 * (`{ ...chunk, spec }`), JSON and deep equality see it like a plain
 * ChunkInfo's. Each read returns fresh objects; nothing holds on to them.
 */
class StoredChunk implements ChunkInfo {
  declare readonly slabs: ReadonlyArray<{ readonly member: string; readonly slab: number }>;
  readonly #table: ChunkTable;
  readonly #at: number;

  constructor(
    readonly id: number,
    readonly spec: LayoutSpec,
    table: ChunkTable,
    at: number,
  ) {
    this.#table = table;
    this.#at = at;
    Object.defineProperty(this, 'slabs', SLABS);
  }

  static slabsOf(chunk: StoredChunk): Array<{ member: string; slab: number }> {
    const { bytes, members } = chunk.#table;
    const out = new Array<{ member: string; slab: number }>(chunk.spec.width);
    for (let c = 0, p = chunk.#at; c < out.length; c++, p += 6) out[c] = { member: members[bytes.readUInt16LE(p)]!, slab: bytes.readUInt32LE(p + 2) };
    return out;
  }

  /**
   * Writes the chunk's slabs as encodeCheckpoint does, straight from the
   * stored bytes; `remap` gives, per table, each stored member index's index
   * in the state being encoded.
   */
  static writeSlabs(chunk: StoredChunk, out: Buffer, o: number, remap: (table: ChunkTable) => Int32Array): number {
    const { bytes, members } = chunk.#table;
    const indices = remap(chunk.#table);
    const end = chunk.#at + chunk.spec.width * 6;
    for (let p = chunk.#at; p < end; p += 6, o += 6) {
      const index = indices[bytes.readUInt16LE(p)]!;
      if (index < 0) throw new Error(`chunk ${chunk.id} is on member ${members[bytes.readUInt16LE(p)]}, which the state no longer lists`);
      out.writeUInt16LE(index, o);
      out.writeUInt32LE(bytes.readUInt32LE(p + 2), o + 2);
    }
    return o;
  }
}

const SLABS: PropertyDescriptor = {
  get(this: StoredChunk) {
    return StoredChunk.slabsOf(this);
  },
  enumerable: true,
};
