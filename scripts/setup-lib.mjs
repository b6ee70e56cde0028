// What `npm start` and `npm test` need on a machine, installed when missing.
// Plain Node with builtins only: it runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Debian packages and a file or command that proves each is installed.
 * Tests use them as real peers and faulty disks (nbdkit and its filters),
 * clients (libnbd-bin: nbdinfo, nbdcopy, nbdfuse), qemu's tools, the browser
 * for UI tests (chromium, under xvfb where a window is needed), fio for
 * benchmarks, smartctl for drive health, FUSE + ext4 tools to put a file
 * system on a volume, and the checkers of the packaging files (xmllint with
 * polkit's DTD for the policy, desktop-file-validate for the desktop entry)
 * and pkexec, which starts the disk helper; btrfs-progs for bench/jobs.ts,
 * which compares a rebuild with `btrfs replace` on loop devices. And what
 * npm's node-gyp needs to build the CRC32C addon (native/crc32c) at `npm ci`:
 * g++ (it brings gcc; gyp links with g++), make, the C library's headers
 * (not pulled in by an install without recommends), and python3 (any on
 * PATH will do, e.g. pyenv's). Without them the addon is skipped (it is an
 * optional dependency) and checksums fall back to @node-rs/crc32, slower.
 */
export const SYSTEM_PACKAGES = [
  { pkg: 'nbdkit', command: 'nbdkit' },
  { pkg: 'libnbd-bin', command: 'nbdinfo' },
  { pkg: 'python3-libnbd', file: '/usr/lib/python3/dist-packages/nbd.py' },
  { pkg: 'qemu-utils', command: 'qemu-io' },
  { pkg: 'nbd-server', command: 'nbd-server' },
  { pkg: 'chromium', command: 'chromium' },
  { pkg: 'xvfb', command: 'xvfb-run' },
  { pkg: 'xauth', command: 'xauth' },
  { pkg: 'fio', command: 'fio' },
  { pkg: 'btrfs-progs', command: 'mkfs.btrfs' },
  { pkg: 'smartmontools', command: 'smartctl' },
  { pkg: 'fuse3', command: 'fusermount3' },
  { pkg: 'e2fsprogs', command: 'mkfs.ext4' },
  { pkg: 'libxml2-utils', command: 'xmllint' },
  { pkg: 'desktop-file-utils', command: 'desktop-file-validate' },
  { pkg: 'polkitd', file: '/usr/share/polkit-1/policyconfig-1.dtd' },
  { pkg: 'pkexec', command: 'pkexec' },
  { pkg: 'g++', command: 'g++' },
  { pkg: 'make', command: 'make' },
  { pkg: 'libc6-dev', file: '/usr/include/stdio.h' },
  { pkg: 'python3', command: 'python3' },
];

const EXTRA_PATH = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export function findCommand(name) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...EXTRA_PATH];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

export function missingSystemPackages() {
  return SYSTEM_PACKAGES.filter(({ command, file }) => (command ? !findCommand(command) : !existsSync(file))).map((p) => p.pkg);
}

function run(command, args, options = {}) {
  const r = spawnSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

export function ensureSystemPackages({ log = console.error } = {}) {
  const missing = missingSystemPackages();
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `missing system packages: ${missing.join(' ')}. Install them with: sudo apt-get install -y ${missing.join(' ')}`,
    );
  }
  log(`Installing system packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (run('apt-get', ['update', '-q'], { env }) !== 0) throw new Error('apt-get update failed');
  if (run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env }) !== 0) {
    throw new Error(`apt-get install ${missing.join(' ')} failed`);
  }
  const still = missingSystemPackages();
  if (still.length > 0) throw new Error(`still missing after apt-get install: ${still.join(' ')}`);
}

/** npm packages: `npm ci` when node_modules is missing or older than the lock file. */
export function ensureNodeModules({ log = console.error } = {}) {
  // A node_modules that links to another checkout's (a git worktree sharing
  // packages) is that checkout's to install: `npm ci` through the link would
  // empty it under the other checkout's feet.
  if (existsSync(join(root, 'node_modules')) && lstatSync(join(root, 'node_modules')).isSymbolicLink()) {
    log('node_modules is a link to another checkout; not reinstalling through it (run npm ci where it points, or replace the link)');
    return;
  }
  const marker = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  log('Installing npm packages (npm ci)…');
  // The Electron binary cannot be downloaded on every machine; the app falls
  // back to browser mode without it, so never let its download fail the install.
  const env = { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' };
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  if (run(npm, ['ci', '--no-audit', '--no-fund'], { env }) !== 0) throw new Error('npm ci failed');
}

export function ensureAll(options) {
  // System packages first: npm ci builds the CRC32C addon with them.
  ensureSystemPackages(options);
  ensureNodeModules(options);
}
