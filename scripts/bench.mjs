#!/usr/bin/env node
// `npm run bench -- NAME [args]`: runs bench/NAME.ts from source (through tsx),
// so a benchmark always measures the code in the tree, not a stale build.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [name, ...rest] = process.argv.slice(2);
const available = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.startsWith('_'))
  .map((f) => f.slice(0, -3));
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME   (NAME: ${available.join(', ') || 'none yet'})`);
  process.exit(2);
}
const file = join(root, 'bench', `${name}.ts`);
if (!existsSync(file)) process.exit(2);
const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...rest], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
