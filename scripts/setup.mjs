#!/usr/bin/env node
// `npm run setup`: installs what Spindle needs on this machine (idempotent).
import { ensureAll, missingSystemPackages } from './setup-lib.mjs';

try {
  ensureAll();
  const missing = missingSystemPackages();
  console.error(missing.length === 0 ? 'setup: everything Spindle needs is installed' : `setup: missing ${missing.join(' ')}`);
} catch (error) {
  console.error(`setup: ${error.message}`);
  process.exit(1);
}
