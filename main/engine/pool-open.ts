/**
 * Creating a pool on new members, and importing one from the members found.
 * The metadata store (metadata-store.ts) owns labels and history; this file
 * turns its bytes into a PoolState and a running Pool.
 */
import { randomUUID } from 'node:crypto';
import { MetadataError, MetadataStore } from './metadata-store.js';
import { memberGeometry, type MemberGeometry } from './on-disk-format.js';
import { DEFAULT_SLAB_SIZE, Pool, PoolError, type MemberLayoutInfo, type MemberSource, type PoolMetadata } from './pool.js';
import { applyRecord, decodeCheckpoint, decodeRecord, emptyPoolState, encodeCheckpoint, type MemberInfo } from './pool-state.js';
import type { BlockDevice } from '../nbd/block-device.js';

const POOL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface CreatePoolOptions {
  readonly name: string;
  readonly members: readonly MemberSource[];
  readonly spares?: readonly MemberSource[];
  readonly slabSize?: number;
  /** Metadata reservation per member (tests use small members); default scales with member size. */
  readonly metadataBytes?: number;
  /** Take members labelled for another pool (their data is lost). */
  readonly force?: boolean;
}

function layoutOf(uuid: string, g: MemberGeometry): MemberLayoutInfo {
  return { uuid, dataOffset: g.dataOffset, slabCount: g.slabCount, intentOffset: g.intentOffset, intentBytes: g.intentBytes, journalOffset: g.journalOffset, journalBytes: g.journalBytes };
}

function adapt(store: MetadataStore): PoolMetadata {
  return {
    append: async (record) => {
      await store.append(record);
    },
    checkpoint: (state) => store.checkpoint(state),
    get logFillRatio() {
      return store.logFillRatio;
    },
    memberFailed: (uuid) => store.memberFailed(uuid),
    memberOnline: async (uuid, device) => {
      await store.setMemberOnline(uuid, device);
      const status = store.members().find((m) => m.uuid === uuid)!;
      return layoutOf(uuid, status.geometry);
    },
    addMember: async (uuid, device, options) => {
      await store.addMembers([{ uuid, device }], { force: options.force, metadataBytes: options.metadataBytes });
      const status = store.members().find((m) => m.uuid === uuid)!;
      return layoutOf(uuid, status.geometry);
    },
    removeMember: (uuid) => store.removeMember(uuid),
    close: () => store.close(),
  };
}

/** Turns a metadata error into the pool's, keeping the message (they are written for people). */
function translate(error: unknown): never {
  if (error instanceof MetadataError) {
    const code = error.code === 'DUPLICATE_DEVICE' || error.code === 'DUPLICATE_MEMBER' ? 'DUPLICATE_MEMBER' : 'FAILED';
    throw Object.assign(new PoolError(code, error.message), { metadataCode: error.code });
  }
  throw error;
}

export async function createPool(options: CreatePoolOptions): Promise<Pool> {
  if (!POOL_NAME.test(options.name)) {
    throw new PoolError('BAD_NAME', `invalid pool name "${options.name}": use letters, digits, '.', '_' and '-' (at most 64, not starting with a symbol)`);
  }
  const sources = [...options.members, ...(options.spares ?? [])];
  if (options.members.length === 0) throw new PoolError('TOO_FEW_MEMBERS', 'a pool needs at least one member');
  const uris = new Set<string>();
  for (const s of sources) {
    if (uris.has(s.uri)) throw new PoolError('DUPLICATE_MEMBER', `member ${s.uri} is given twice`);
    uris.add(s.uri);
  }
  const slabSize = options.slabSize ?? DEFAULT_SLAB_SIZE;
  const poolUuid = randomUUID();
  const members: MemberInfo[] = [];
  for (const [i, s] of sources.entries()) {
    let slabCount: number;
    try {
      slabCount = memberGeometry(s.device.size, slabSize, { metadataBytes: options.metadataBytes }).slabCount;
    } catch (error) {
      throw new PoolError('FAILED', `member ${s.uri}: ${(error as Error).message}`);
    }
    members.push({ uuid: randomUUID(), uri: s.uri, slabCount, role: i < options.members.length ? 'data' : 'spare', state: 'online' });
  }
  const state = emptyPoolState(options.name, poolUuid, slabSize, members);
  const store = await MetadataStore.format({
    poolUuid,
    slabSize,
    members: members.map((m, i) => ({ uuid: m.uuid, device: sources[i]!.device })),
    initialState: encodeCheckpoint(state),
    force: options.force,
    metadataBytes: options.metadataBytes,
  }).catch(translate);
  const layouts: MemberLayoutInfo[] = store.members().map((m) => layoutOf(m.uuid, m.geometry));
  const devices = new Map(members.map((m, i) => [m.uuid, sources[i]!.device]));
  return new Pool(state, adapt(store), layouts, devices);
}

export interface ImportReport {
  readonly pool: Pool;
  /** Members the pool lists that were not among the devices given. */
  readonly missing: ReadonlyArray<{ uuid: string; uri: string }>;
  /** Devices given that are not members of this pool, with the reason. */
  readonly unrecognized: ReadonlyArray<{ uri: string; reason: string }>;
}

export interface ImportPoolOptions {
  /** Start the jobs found in the log again (default true); false leaves them queued until pool.jobs.resumeAll(). */
  readonly resumeJobs?: boolean;
}

/** Imports the pool on `sources` (any subset of its members). */
export async function importPool(sources: readonly MemberSource[], options: ImportPoolOptions = {}): Promise<ImportReport> {
  const devices: BlockDevice[] = sources.map((s) => s.device);
  const result = await MetadataStore.import(devices).catch(translate);
  let state = decodeCheckpoint(result.state);
  for (const record of result.records) state = applyRecord(state, decodeRecord(record));
  const byUuid = new Map<string, BlockDevice>();
  const layouts: MemberLayoutInfo[] = [];
  for (const m of result.members) {
    byUuid.set(m.uuid, devices[m.deviceIndex]!);
    layouts.push(layoutOf(m.uuid, m.geometry));
  }
  const missing = state.members.filter((m) => m.state !== 'removed' && !byUuid.has(m.uuid));
  // A missing member keeps its place; its offsets are read again when it returns.
  for (const m of missing) layouts.push({ uuid: m.uuid, dataOffset: 0, slabCount: m.slabCount, intentOffset: 0, intentBytes: 0, journalOffset: 0, journalBytes: 0 });
  const pool = new Pool(state, adapt(result.store), layouts, byUuid);
  await pool.reconcile();
  // Jobs the log names go on from their last checkpoint (paused ones stay paused).
  if (options.resumeJobs !== false) pool.jobs.resumeAll();
  return {
    pool,
    missing: missing.map((m) => ({ uuid: m.uuid, uri: m.uri })),
    unrecognized: result.unrecognized.map((u) => ({ uri: sources[u.deviceIndex]!.uri, reason: u.reason })),
  };
}
