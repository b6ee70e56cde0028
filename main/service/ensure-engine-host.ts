/**
 * Connects to the engine host, starting one in the background when none
 * answers. The CLI, browser mode and (outside Electron) every other client go
 * through here, so there is only one engine host per runtime directory.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from './control-client.js';
import { controlSocketPath, ensurePrivateDir, stateDir } from './runtime-paths.js';

const START_TIMEOUT_MS = 15_000;

export async function connectToEngineHost(): Promise<ControlClient> {
  return ControlClient.connect(controlSocketPath());
}

export async function ensureEngineHost(): Promise<ControlClient> {
  try {
    return await connectToEngineHost();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw error;
  }
  await startEngineHostProcess();
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      return await connectToEngineHost();
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`the engine host did not start within ${START_TIMEOUT_MS / 1000} s; see ${engineHostLogPath()}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

export function engineHostLogPath(): string {
  return join(stateDir(), 'engine-host.log');
}

/** The CLI entry next to this module; `.ts` when running from source under tsx. */
function cliEntry(): { file: string; execArgv: string[] } {
  const self = fileURLToPath(import.meta.url);
  const fromSource = self.endsWith('.ts');
  const file = join(self, '..', fromSource ? 'cli-main.ts' : 'cli-main.js');
  // Resolved here, not by name: the spawned host starts in the caller's folder, where tsx may not resolve.
  return { file, execArgv: fromSource ? ['--import', import.meta.resolve('tsx')] : [] };
}

async function startEngineHostProcess(): Promise<void> {
  await ensurePrivateDir(stateDir());
  const logFd = openSync(engineHostLogPath(), 'a', 0o600);
  const { file, execArgv } = cliEntry();
  try {
    const child = spawn(process.execPath, [...execArgv, file, 'daemon'], {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: process.env,
    });
    child.unref();
  } finally {
    closeSync(logFd);
  }
}
