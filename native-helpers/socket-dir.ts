/**
 * Where the helper's NBD socket lives, and who may reach it.
 *
 * Only the user who started the app may connect. Unix sockets are checked
 * against the permissions of their path, so the socket sits in a directory
 * owned by that user with mode 0700, and is itself 0600 and theirs.
 *
 * Running as root through pkexec, the helper works under /run (root's, so no
 * user can plant links there): it removes any directory a previous helper
 * left, creates a fresh one that stays root's until the socket is in place,
 * hands the socket over with lchown (which never follows a link), and only
 * then gives the directory to the user. Unprivileged (development, tests) it
 * uses SPINDLE_HELPER_RUNTIME_DIR or the user's runtime directory, which are
 * the user's own anyway.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** Root-owned parent of the per-user directories when the helper runs elevated. */
export const PRIVILEGED_BASE = '/run/spindle-helper';

/** The primary group of `uid` from /etc/passwd (pkexec passes only the uid). */
function primaryGid(uid: number): number {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const fields = line.split(':');
    if (fields.length >= 4 && Number(fields[2]) === uid && fields[2] !== '') return Number(fields[3]);
  }
  return uid;
}

/**
 * The user the helper works for: the one pkexec names in PKEXEC_UID when it
 * elevated us, else whoever runs us.
 */
export function helperOwner(env: NodeJS.ProcessEnv = process.env): Owner & { elevated: boolean } {
  const self = process.getuid?.() ?? 0;
  const pkexecUid = env.PKEXEC_UID;
  if (self === 0 && pkexecUid !== undefined) {
    const uid = Number(pkexecUid);
    if (!Number.isSafeInteger(uid) || uid < 0 || !/^\d+$/.test(pkexecUid)) throw new Error(`PKEXEC_UID "${pkexecUid}" is not a user id`);
    return { uid, gid: primaryGid(uid), elevated: true };
  }
  return { uid: self, gid: process.getgid?.() ?? 0, elevated: false };
}

export interface SocketDir {
  readonly dir: string;
  readonly socket: string;
  /** Hands the listening socket, then the directory, to the owner (root only; a no-op otherwise). */
  handOver(): Promise<void>;
  remove(): Promise<void>;
}

/** Creates the socket directory (0700) for `owner`; the socket itself is created by the NBD server. */
export async function prepareSocketDir(owner: Owner & { elevated: boolean }, env: NodeJS.ProcessEnv = process.env): Promise<SocketDir> {
  const root = (process.getuid?.() ?? -1) === 0;
  let dir: string;
  if (owner.elevated) {
    await fsp.mkdir(PRIVILEGED_BASE, { recursive: true, mode: 0o755 });
    const base = await fsp.lstat(PRIVILEGED_BASE);
    if (!base.isDirectory() || base.uid !== 0 || (base.mode & 0o022) !== 0) throw new Error(`${PRIVILEGED_BASE} is not a root-owned directory`);
    dir = join(PRIVILEGED_BASE, String(owner.uid));
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.mkdir(dir, { mode: 0o700 });
  } else {
    dir = env.SPINDLE_HELPER_RUNTIME_DIR ?? join(env.XDG_RUNTIME_DIR ?? tmpdir(), `spindle-helper-${owner.uid}`);
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await fsp.lstat(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
    if (st.uid !== owner.uid) throw new Error(`${dir} belongs to uid ${st.uid}, not to uid ${owner.uid}`);
    await fsp.chmod(dir, 0o700);
  }
  const socket = join(dir, 'disks.sock');
  return {
    dir,
    socket,
    async handOver() {
      if (!root || !owner.elevated) return;
      await fsp.lchown(socket, owner.uid, owner.gid);
      await fsp.chown(dir, owner.uid, owner.gid);
    },
    async remove() {
      await fsp.rm(socket, { force: true });
      if (owner.elevated) await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}
