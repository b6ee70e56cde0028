import { _electron as electron, expect, test } from '@playwright/test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findElectronBinary } from '../scripts/electron-binary.mjs';
import { root } from './spindle-app.js';

const binary = findElectronBinary();

test('the Electron window opens and shows the live engine status', async () => {
  // Never pass without launching: where the binary is missing, say why and skip.
  test.skip(!('path' in binary), `Electron cannot launch here: ${'reason' in binary ? binary.reason : ''}`);
  if (!('path' in binary)) return;
  const dir = await mkdtemp(join(tmpdir(), 'spindle-electron-'));
  const app = await electron.launch({
    executablePath: binary.path,
    args: [root, '--no-sandbox'],
    env: { ...process.env, SPINDLE_RUNTIME_DIR: join(dir, 'run'), SPINDLE_STATE_DIR: join(dir, 'state') },
  });
  try {
    const window = await app.firstWindow();
    await expect(window.getByRole('status', { name: 'Engine connection' })).toHaveText('Connected');
    await expect(window.getByTestId('engine-version')).toHaveText(/^\d+\.\d+\.\d+/);
    const isolated = await window.evaluate(() => typeof (globalThis as { require?: unknown }).require === 'undefined');
    expect(isolated).toBe(true);
  } finally {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
});
