/**
 * Where the engine host keeps its sockets (runtime directory) and its state
 * (data directory). Both can be overridden, which tests do with temp folders:
 *   SPINDLE_RUNTIME_DIR → control socket, pid file
 *   SPINDLE_STATE_DIR   → pools to import, logs
 * and SPINDLE_JOB_MAX_RATE (bytes per second, K/M/G suffixes) holds every
 * job below a fixed rate, on top of the latency governor: for people who
 * want jobs gentler still, and for tests that must watch a job run.
 */
import { lstat, mkdir, chmod } from 'node:fs/promises';
import { homedir, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseSize } from '../engine/units.js';

type Env = Readonly<Record<string, string | undefined>>;

export function runtimeDir(env: Env = process.env): string {
  if (env.SPINDLE_RUNTIME_DIR) return env.SPINDLE_RUNTIME_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'spindle');
  // No session runtime directory (root shells, containers): a per-user folder
  // in /tmp, made private by ensurePrivateDir.
  return join(tmpdir(), `spindle-${userInfo().uid}`);
}

export function stateDir(env: Env = process.env): string {
  if (env.SPINDLE_STATE_DIR) return env.SPINDLE_STATE_DIR;
  const dataHome = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(dataHome, 'spindle');
}

/** SPINDLE_JOB_MAX_RATE in bytes per second; undefined when unset; an error naming it when it is not a size. */
export function jobMaxRate(env: Env = process.env): number | undefined {
  const text = env.SPINDLE_JOB_MAX_RATE;
  if (text === undefined || text === '') return undefined;
  let rate: number;
  try {
    rate = parseSize(text);
  } catch (error) {
    throw new Error(`SPINDLE_JOB_MAX_RATE: ${(error as Error).message}`);
  }
  if (rate <= 0) throw new Error(`SPINDLE_JOB_MAX_RATE must be more than 0 bytes per second`);
  return rate;
}

export function controlSocketPath(env: Env = process.env): string {
  return join(runtimeDir(env), 'control.sock');
}

export function pidFilePath(env: Env = process.env): string {
  return join(runtimeDir(env), 'engine-host.pid');
}

/**
 * Creates `dir` (mode 0700) if needed and checks that it is a real directory
 * owned by us and closed to others: the control socket inside it is the only
 * authentication the engine host has.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  if (!info.isDirectory()) throw new Error(`${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new Error(`${dir} belongs to user ${info.uid}, not to us (${uid}); refusing to put the control socket there`);
  }
  if ((info.mode & 0o077) !== 0) await chmod(dir, 0o700);
}
