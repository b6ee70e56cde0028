#!/usr/bin/env node
// `npm run build`: type-checks and compiles every layer (tsc -b, incremental),
// then bundles the renderer with vite.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './setup-lib.mjs';

export function build({ quiet = false } = {}) {
  const bin = (name) => join(root, 'node_modules', '.bin', name);
  const stdio = quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit';
  const steps = [
    ['tsc -b', bin('tsc'), ['-b']],
    ['vite build', bin('vite'), ['build', '--logLevel', 'warn']],
  ];
  for (const [name, command, args] of steps) {
    const r = spawnSync(command, args, { cwd: root, stdio, encoding: 'utf8' });
    if (r.status !== 0) {
      if (quiet) process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`);
      return { ok: false, step: name };
    }
  }
  return { ok: true };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = build();
  if (!result.ok) {
    console.error(`build: ${result.step} failed`);
    process.exit(1);
  }
}
