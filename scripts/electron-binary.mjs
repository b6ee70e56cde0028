// Finds the Electron binary without triggering electron's lazy download
// (requiring the `electron` package tries to download when it is missing).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './setup-lib.mjs';

/** @returns {{ path: string } | { reason: string }} */
export function findElectronBinary() {
  const pkg = join(root, 'node_modules', 'electron');
  if (!existsSync(pkg)) return { reason: 'the electron npm package is not installed' };
  const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
  const pathFile = join(pkg, 'path.txt');
  const relative = existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : 'electron';
  const binary = override ? join(override, relative) : join(pkg, 'dist', relative);
  if (!existsSync(binary)) {
    return { reason: `no Electron binary at ${binary} (its download is unavailable on this machine)` };
  }
  return { path: binary };
}
