#!/usr/bin/env node
// `npm run lint`: eslint, then the layering rules of shared/DESIGN.md
// (dependency-cruiser). Exits non-zero on any finding.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './setup-lib.mjs';

export const LAYERED_FOLDERS = ['main', 'preload', 'renderer', 'native-helpers', 'e2e', 'bench'];

export function lint({ quiet = false } = {}) {
  const bin = (name) => join(root, 'node_modules', '.bin', name);
  const stdio = quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit';
  const folders = LAYERED_FOLDERS.filter((f) => spawnSync('test', ['-d', join(root, f)]).status === 0);
  const steps = [
    ['eslint', bin('eslint'), ['--max-warnings', '0', '.']],
    ['layering', bin('depcruise'), ['--config', '.dependency-cruiser.cjs', ...folders]],
  ];
  const failed = [];
  for (const [name, command, args] of steps) {
    const r = spawnSync(command, args, { cwd: root, stdio, encoding: 'utf8' });
    if (r.status !== 0) {
      if (quiet) process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`);
      failed.push(name);
    }
  }
  return { ok: failed.length === 0, failed };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = lint();
  if (!result.ok) {
    console.error(`lint: ${result.failed.join(' and ')} failed`);
    process.exit(1);
  }
}
