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
import { LayoutNameError } from '../engine/layouts.js';
import { MemberUriError } from '../engine/member-uri.js';
import { MetadataError } from '../engine/metadata-store.js';
import { PoolError } from '../engine/pool.js';
import { CONTRACT_VERSION, type Replies, type RequestName, type RequestParams } from '../../preload/api.js';
import { CorruptionRefusedError } from './corrupt-block.js';
import { createDemoPool } from './demo-pool.js';
import { MemberNotFoundError } from './find-member.js';
import { RegistryError, type PoolRegistry } from './pool-registry.js';
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

/** Thrown by a handler for a request that is valid but cannot be done. */
export class RequestFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestFailedError';
  }
}

export function uptimeMs(ctx: HostContext): number {
  return Math.round(performance.now() - ctx.startedAtMonotonicMs);
}

/** Errors whose message is the answer: refusals, not bugs. */
const REFUSALS = [
  PoolError,
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
    if (REFUSALS.some((type) => error instanceof type)) throw new RequestFailedError((error as Error).message);
    throw error;
  }
}

export function createHandlers(ctx: HostContext): Handlers {
  const { pools } = ctx;
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
    // Contract additions of issue 8 that the engine host does not do yet: replace each line when its job lands.
    'drives-list': () => notAvailableYet('drives-list (the drive inventory comes with the helper)'),
    'pool-add-member': () => notAvailableYet('pool-add-member'),
    'pool-remove-member': () => notAvailableYet('pool-remove-member (evacuate)'),
    'pool-set-spare': () => notAvailableYet('pool-set-spare'),
    'pool-set-policy': () => notAvailableYet('pool-set-policy'),
    plan: () => notAvailableYet('plan'),
    'job-start': () => notAvailableYet('job-start'),
    'job-list': () => notAvailableYet('job-list'),
    'job-pause': () => notAvailableYet('job-pause'),
    'job-resume': () => notAvailableYet('job-resume'),
    'job-cancel': () => notAvailableYet('job-cancel'),
  };
}

function notAvailableYet(what: string): never {
  throw new RequestFailedError(`not available yet: ${what}`);
}
