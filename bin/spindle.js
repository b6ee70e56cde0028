#!/usr/bin/env node
// The `spindle` command. It runs the built CLI; `npm run build` (or `npm start`
// / `npm test`) produces it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../dist/main/service/cli-main.js', import.meta.url));
if (!existsSync(entry)) {
  process.stderr.write('spindle: not built yet; run `npm run build` in the Spindle folder first\n');
  process.exit(1);
}
await import(entry);
