#!/usr/bin/env node
// `npm run package`: builds the app and packs it for Linux with electron-builder
// (AppImage and deb, configured in electron-builder.yml). Packing needs the
// Electron binary, which cannot be downloaded on every machine: without it
// this prints one line saying so and exits 0 (nothing was built, nothing failed).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { build } from './build.mjs';
import { findElectronBinary } from './electron-binary.mjs';
import { root } from './setup-lib.mjs';

/** Why packing cannot run here, or null when it can. */
export function packagingSkipReason() {
  const electron = findElectronBinary();
  if ('reason' in electron) return `${electron.reason}; electron-builder needs it to pack the app`;
  return null;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const reason = packagingSkipReason();
  if (reason) {
    console.log(`package: skipped: ${reason}`);
    process.exit(0);
  }
  const built = build();
  if (!built.ok) {
    console.error(`package: build failed (${built.step})`);
    process.exit(1);
  }
  const electron = findElectronBinary();
  const r = spawnSync(
    join(root, 'node_modules', '.bin', 'electron-builder'),
    ['--linux', '--config', 'electron-builder.yml', `-c.electronDist=${dirname(electron.path)}`],
    { cwd: root, stdio: 'inherit' },
  );
  process.exit(r.status ?? 1);
}
