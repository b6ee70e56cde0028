/**
 * Facts about the installed package, found by walking up from this module to
 * Spindle's package.json (the depth differs between the source tree and dist/).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageInfo {
  readonly root: string;
  readonly version: string;
}

let cached: PackageInfo | undefined;

export function packageInfo(): PackageInfo {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'spindle' && typeof pkg.version === 'string') {
        cached = { root: dir, version: pkg.version };
        return cached;
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find Spindle\'s package.json above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}
