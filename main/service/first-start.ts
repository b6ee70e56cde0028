/**
 * The app's first start opens on the demo pool: `npm start` (browser mode)
 * and the Electron window call this once the engine host answers. "First"
 * is remembered by a marker file in the state directory, so a user who
 * exports or deletes the demo pool does not get it back on the next start.
 * A failure is reported and the app opens anyway (with no pools).
 */
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControlClient } from './control-client.js';
import { stateDir } from './runtime-paths.js';

const MARKER = 'first-start-done';

/** Creates the demo pool when this state directory has never been opened by the app and holds no pool. Returns whether it did. */
export async function openDemoOnFirstStart(client: ControlClient, log: (line: string) => void, dir = stateDir()): Promise<boolean> {
  const marker = join(dir, MARKER);
  if (await access(marker).then(() => true, () => false)) return false;
  let created = false;
  try {
    const { pools } = await client.request('pool-list', {});
    if (pools.length === 0) {
      await client.request('demo-create', {});
      created = true;
    }
  } catch (error) {
    log(`could not create the demo pool: ${(error as Error).message}`);
    return false; // try again at the next start
  }
  await writeFile(marker, `${new Date().toISOString()}\n`, { mode: 0o600 }).catch(() => {});
  return created;
}
