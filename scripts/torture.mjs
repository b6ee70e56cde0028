#!/usr/bin/env node
// `npm run torture [-- RUNS]`: the long kill -9 campaign of jobs
// (main/engine/jobs-crash.test.ts with many more runs than `npm test`'s 22).
// SPINDLE_CRASH_SEED repeats a campaign.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './setup-lib.mjs';

const runs = process.argv[2] ?? process.env.SPINDLE_CRASH_RUNS ?? '300';
if (!/^\d+$/.test(runs) || Number(runs) < 1) {
  console.error(`usage: npm run torture [-- RUNS]   (RUNS: a positive number, got "${runs}")`);
  process.exit(2);
}
const r = spawnSync(join(root, 'node_modules', '.bin', 'vitest'), ['run', 'main/engine/jobs-crash.test.ts'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, SPINDLE_CRASH_RUNS: runs },
});
process.exit(r.status ?? 1);
