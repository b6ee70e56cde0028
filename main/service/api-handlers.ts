/**
 * The application API: one handler per contract request, over the engine.
 * Parameters arrive already validated (EngineHost runs parseRequest first).
 *
 * Errors: what the engine and the registry refuse for a reason people can
 * act on (PoolError, a member that cannot be opened, an unknown pool…)
 * becomes RequestFailedError, which the host sends as FAILED with the
 * message unchanged. Anything else is a bug and goes out as INTERNAL.
 */
import { BlockDeviceError } from '../nbd/block-device.js';
import { JobError } from '../engine/job-types.js';
import { LayoutNameError } from '../engine/layouts.js';
import { GeometryError } from '../engine/on-disk-format.js';
import { MemberUriError } from '../engine/member-uri.js';
import { MetadataError } from '../engine/metadata-store.js';
import { PoolError } from '../engine/pool.js';
import { CONTRACT_VERSION, type Replies, type RequestName, type RequestParams } from '../../preload/api.js';
import { CorruptionRefusedError } from './corrupt-block.js';
import { createDemoPool } from './demo-pool.js';
import { DiskHelperError } from './disk-helper-client.js';
import { MemberNotFoundError } from './find-member.js';
import { PoolActions } from './pool-actions.js';
import { RegistryError, type PoolRegistry } from './pool-registry.js';
import { RequestFailedError } from './request-failed-error.js';
import { ExportError } from './volume-exports.js';

export interface HostContext {
  readonly version: string;
  readonly startedAt: Date;
  /** Monotonic start, for uptime that survives clock changes. */
  readonly startedAtMonotonicMs: number;
  readonly pools: PoolRegistry;
  requestShutdown(): void;
}

export type Handlers = {
  [N in RequestName]: (params: RequestParams<N>) => Promise<Replies[N]> | Replies[N];
};

export { RequestFailedError };

export function uptimeMs(ctx: HostContext): number {
  return Math.round(performance.now() - ctx.startedAtMonotonicMs);
}

/** Errors whose message is the answer: refusals, not bugs. */
const REFUSALS = [
  PoolError,
  JobError,
  GeometryError,
  DiskHelperError,
  RegistryError,
  MemberUriError,
  MetadataError,
  MemberNotFoundError,
  CorruptionRefusedError,
  ExportError,
  LayoutNameError,
  BlockDeviceError,
];

async function refusalsFail<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof RequestFailedError) throw error;
    if (REFUSALS.some((type) => error instanceof type)) throw new RequestFailedError((error as Error).message);
    throw error;
  }
}

export function createHandlers(ctx: HostContext): Handlers {
  const { pools } = ctx;
  const actions = new PoolActions(pools);
  return {
    version: () => ({
      version: ctx.version,
      contractVersion: CONTRACT_VERSION,
      pid: process.pid,
      uptimeMs: uptimeMs(ctx),
      startedAt: ctx.startedAt.toISOString(),
      nodeVersion: process.versions.node,
    }),
    shutdown: () => {
      // Reply first, then stop: the caller learns that the request was taken.
      setImmediate(() => ctx.requestShutdown());
      return { stopping: true as const };
    },
    'pool-create': (p) => refusalsFail(() => pools.create(p)),
    'pool-import': (p) => refusalsFail(() => pools.import(p)),
    'pool-export': (p) => refusalsFail(async () => {
      await pools.exportPool(p.pool);
      return { pool: p.pool, exported: true as const };
    }),
    'pool-list': () => refusalsFail(async () => ({ pools: await pools.list() })),
    'pool-status': (p) => refusalsFail(() => pools.status(p.pool)),
    'volume-create': (p) => refusalsFail(() => pools.createVolume(p)),
    'volume-delete': (p) => refusalsFail(async () => {
      await pools.deleteVolume(p);
      return { pool: p.pool, name: p.name, deleted: true as const };
    }),
    'volume-grow': (p) => refusalsFail(() => pools.growVolume(p)),
    'volume-export': (p) => refusalsFail(() => pools.exportVolume(p)),
    'volume-unexport': (p) => refusalsFail(async () => ({ pool: p.pool, name: p.name, wasExported: await pools.unexportVolume(p) })),
    'volume-status': (p) => refusalsFail(() => pools.volumeStatus(p)),
    'member-fail': (p) => refusalsFail(async () => ({ pool: p.pool, member: await pools.failMember(p) })),
    'member-restore': (p) => refusalsFail(() => pools.restoreMember(p)),
    'volume-corrupt': (p) => refusalsFail(() => pools.corrupt(p)),
    'demo-create': () => refusalsFail(() => createDemoPool(pools)),
    'drives-list': () => refusalsFail(async () => ({ drives: await pools.drives.list(await pools.openAndUnavailable()) })),
    'pool-add-member': (p) => refusalsFail(() => pools.addMembers({ pool: p.pool, members: p.members, role: 'data', force: p.force })),
    'pool-remove-member': (p) => refusalsFail(() => actions.start(p.pool, { kind: 'remove', member: p.member })),
    'pool-set-spare': (p) => refusalsFail(() => actions.setSpare(p.pool, p.member, p.spare)),
    'pool-set-policy': (p) => refusalsFail(() => pools.setPolicy(p.pool, p.policy)),
    plan: (p) => refusalsFail(() => actions.plan(p.pool, p.action)),
    'job-start': (p) => refusalsFail(() => actions.start(p.pool, p.action)),
    'job-list': (p) => refusalsFail(async () => ({ jobs: await actions.list(p.pool) })),
    'job-pause': (p) => refusalsFail(() => actions.pause(p.id)),
    'job-resume': (p) => refusalsFail(() => actions.resume(p.id)),
    'job-cancel': (p) => refusalsFail(() => actions.cancel(p.id)),
  };
}
