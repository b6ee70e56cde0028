/**
 * Runs the app the way a user does (`npm start`'s script, browser mode here),
 * in private runtime and state folders, and stops everything it started.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface RunningApp {
  readonly url: string;
  readonly origin: string;
  readonly env: NodeJS.ProcessEnv;
  readonly output: () => string;
  stop(): Promise<void>;
}

export async function startApp(): Promise<RunningApp> {
  const dir = await mkdtemp(join(tmpdir(), 'spindle-e2e-'));
  // Jobs capped at 24 MiB/s: the demo's rebuild then lasts long enough to watch its progress, rate and ETA move.
  const env = { ...process.env, SPINDLE_RUNTIME_DIR: join(dir, 'run'), SPINDLE_STATE_DIR: join(dir, 'state'), SPINDLE_JOB_MAX_RATE: '24M' };
  const child: ChildProcess = spawn(process.execPath, [join(root, 'scripts', 'start.mjs'), '--no-setup'], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start printed no URL within 120 s:\n${output}`)), 120_000);
    const check = (): void => {
      const match = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited (${code}) before serving:\n${output}`));
    });
  });
  return {
    url,
    origin: new URL(url).origin,
    env,
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      // The engine host outlives the UI by design; stop it and wait for it to go.
      spawnSync(process.execPath, [join(root, 'bin', 'spindle.js'), 'stop'], { env, encoding: 'utf8' });
      const pidFile = join(dir, 'run', 'engine-host.pid');
      for (let i = 0; i < 200 && existsSync(pidFile); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      if (!process.env.KEEP_E2E) await rm(dir, { recursive: true, force: true });
    },
  };
}
