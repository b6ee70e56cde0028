/**
 * `spindle daemon`: runs the engine host in the foreground until SIGTERM,
 * SIGINT or a `shutdown` request. One engine host per runtime directory: a
 * second one refuses to start while the first answers, and replaces a stale
 * socket left by one that died.
 *
 * Start: the control socket listens first (so clients connect at once), then
 * the saved pools are imported; pool requests wait for that. Stop: the
 * control socket closes, then the pools are flushed and closed with their
 * exports (pool-registry.ts), then the pid file goes.
 */
import { writeFile, unlink } from 'node:fs/promises';
import { ControlClient } from './control-client.js';
import { EngineHost } from './engine-host.js';
import { packageInfo } from './package-info.js';
import { PoolRegistry } from './pool-registry.js';
import { controlSocketPath, ensurePrivateDir, jobMaxRate, pidFilePath, runtimeDir, stateDir } from './runtime-paths.js';

export interface DaemonHandle {
  readonly host: EngineHost;
  readonly pools: PoolRegistry;
  readonly socketPath: string;
  /** Resolves when the daemon has stopped. */
  readonly stopped: Promise<void>;
  stop(): Promise<void>;
}

export class AlreadyRunningError extends Error {
  constructor(socketPath: string) {
    super(`an engine host is already running on ${socketPath}`);
    this.name = 'AlreadyRunningError';
  }
}

export async function startDaemon(log: (line: string) => void = (line) => console.error(line)): Promise<DaemonHandle> {
  const socketPath = controlSocketPath();
  const maxRate = jobMaxRate();
  await ensurePrivateDir(runtimeDir());
  await ensurePrivateDir(stateDir());
  await removeStaleSocket(socketPath);

  let stopping: Promise<void> | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log('engine host stopping');
      await host.close();
      await pools.close();
      log('engine host stopped: pools flushed and closed');
      await unlink(pidFilePath()).catch(() => {});
      resolveStopped();
    })();
    return stopping;
  };
  const pools = new PoolRegistry({ stateDir: stateDir(), runtimeDir: runtimeDir(), log, ...(maxRate !== undefined ? { jobMaxRate: maxRate } : {}) });
  const host = new EngineHost({
    socketPath,
    version: packageInfo().version,
    pools,
    log,
    onShutdownRequested: () => void stop(),
  });
  await host.listen();
  await writeFile(pidFilePath(), `${process.pid}\n`, { mode: 0o600 });
  // In the background: a pool that cannot be imported is reported by the registry, never fatal.
  void pools.start().catch((error: unknown) => log(`importing the saved pools failed: ${(error as Error).message}`));
  return { host, pools, socketPath, stopped, stop };
}

/** Runs the daemon until a signal or a shutdown request; for the CLI. */
export async function runDaemon(): Promise<void> {
  const daemon = await startDaemon();
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`engine host received ${signal}`);
    void daemon.stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await daemon.stopped;
}

async function removeStaleSocket(socketPath: string): Promise<void> {
  try {
    const client = await ControlClient.connect(socketPath, 2000);
    client.close();
    throw new AlreadyRunningError(socketPath);
  } catch (error) {
    if (error instanceof AlreadyRunningError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED') await unlink(socketPath).catch(() => {});
    else if (code !== 'ENOENT') throw error;
  }
}
