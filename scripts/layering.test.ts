// Proves the layering rule (.dependency-cruiser.cjs) catches violations of
// DESIGN.md's table, by cruising small trees made for the purpose.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const depcruise = join(root, 'node_modules', '.bin', 'depcruise');
const config = join(root, '.dependency-cruiser.cjs');
let dir: string | undefined;

async function tree(files: Record<string, string>): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'spindle-layering-'));
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return dir;
}

function cruise(cwd: string, ...folders: string[]) {
  const r = spawnSync(depcruise, ['--config', config, ...folders], { cwd, encoding: 'utf8' });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('layering rule', () => {
  it('passes on the real tree', () => {
    const r = cruise(root, 'main', 'preload', 'renderer');
    expect(r.output).toMatch(/no dependency violations/);
    expect(r.code).toBe(0);
  });

  it('catches the engine importing the service layer', async () => {
    const cwd = await tree({
      'main/service/thing.ts': 'export const thing = 1;\n',
      'main/engine/bad.ts': "import { thing } from '../service/thing.js';\nexport const bad = thing;\n",
    });
    const r = cruise(cwd, 'main');
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/engine-sees-only-nbd/);
    expect(r.output).toMatch(/main\/engine\/bad\.ts → main\/service\/thing\.ts/);
  });

  it('catches the NBD layer importing the engine', async () => {
    const cwd = await tree({
      'main/engine/pool.ts': 'export const pool = 1;\n',
      'main/nbd/bad.ts': "import { pool } from '../engine/pool.js';\nexport const bad = pool;\n",
    });
    const r = cruise(cwd, 'main');
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/nbd-is-the-bottom/);
  });

  it('catches the renderer reaching into main or Node', async () => {
    const cwd = await tree({
      'main/engine/pool.ts': 'export const pool = 1;\n',
      'renderer/bad.ts': "import { pool } from '../main/engine/pool';\nimport { readFileSync } from 'node:fs';\nexport const bad = [pool, readFileSync];\n",
    });
    const r = cruise(cwd, 'main', 'renderer');
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/renderer-sees-only-the-contract/);
    expect(r.output).toMatch(/renderer-has-no-node/);
  });

  it('catches electron or React imported below their layers', async () => {
    const cwd = await tree({
      'main/service/bad.ts': "import { app } from 'electron';\nimport { useState } from 'react';\nexport const bad = [app, useState];\n",
    });
    const r = cruise(cwd, 'main');
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/electron-only-in-main-electron/);
    expect(r.output).toMatch(/no-ui-below-the-renderer/);
  });
});
