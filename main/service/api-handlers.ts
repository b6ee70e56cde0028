/**
 * The application API: one handler per contract request, over the engine.
 * Parameters arrive already validated (EngineHost runs parseRequest first).
 */
import { CONTRACT_VERSION, type Replies, type RequestName, type RequestParams } from '../../preload/api.js';

export interface HostContext {
  readonly version: string;
  readonly startedAt: Date;
  /** Monotonic start, for uptime that survives clock changes. */
  readonly startedAtMonotonicMs: number;
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

export function createHandlers(ctx: HostContext): Handlers {
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
  };
}
