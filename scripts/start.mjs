#!/usr/bin/env node
// `npm start`: installs what is missing, builds, and opens Spindle: in an
// Electron window where the Electron binary exists, else in browser mode on
// 127.0.0.1 with a per-run token (the URL is printed).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { build } from './build.mjs';
import { findElectronBinary } from './electron-binary.mjs';
import { ensureAll, root } from './setup-lib.mjs';

const args = process.argv.slice(2);
const skipSetup = args.includes('--no-setup');

try {
  if (!skipSetup) ensureAll();
} catch (error) {
  console.error(`npm start: ${error.message}`);
  process.exit(1);
}
const built = build({ quiet: true });
if (!built.ok) {
  console.error(`npm start: the build failed at ${built.step}`);
  process.exit(1);
}

const electron = findElectronBinary();
let child;
if ('path' in electron) {
  child = spawn(electron.path, [root], { stdio: 'inherit' });
} else {
  console.log(`Electron is not available (${electron.reason}); serving the same UI in browser mode.`);
  child = spawn(process.execPath, [join(root, 'bin', 'spindle.js'), 'browser', '--demo-on-first-start', ...args.filter((a) => a !== '--no-setup')], {
    stdio: 'inherit',
  });
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
