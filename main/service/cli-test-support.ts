/**
 * The real `spindle` executable for tests: one fresh Node process per
 * command, run from source (tsx) so the test sees this tree, in the test's
 * folder and with its state and runtime folders in the environment.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'vitest';

const entry = fileURLToPath(new URL('./cli-main.ts', import.meta.url));
/** tsx by location: the commands run in the test's folder, where the name would not resolve. */
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Cli {
  /** `spindle ARGS`, waited for. */
  spindle(...args: string[]): Run;
  /** The same without blocking: for commands run side by side. */
  spindleAsync(...args: string[]): Promise<Run>;
  /** `spindle ARGS` with a terminal for stdout (util-linux script), for the live views. */
  onTerminal(...args: string[]): Promise<Run>;
  /** `spindle ARGS --json`, which must succeed with one JSON document on stdout. */
  json<T = Record<string, unknown>>(...args: string[]): T;
  /** Stops the engine host the commands started, and waits until its pid file is gone. */
  stopHost(): Promise<void>;
}

/** `where` is asked on each call: tests make their folder in beforeAll. */
export function cliIn(where: () => { dir: string; env: NodeJS.ProcessEnv }, timeoutMs = 90_000): Cli {
  const collect = (command: string, args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const { dir, env } = where();
      const child = spawn(command, args, { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  const cli: Cli = {
    spindle(...args) {
      const { dir, env } = where();
      const r = spawnSync(process.execPath, ['--import', tsx, entry, ...args], { env, cwd: dir, encoding: 'utf8', timeout: timeoutMs });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    spindleAsync: (...args) => collect(process.execPath, ['--import', tsx, entry, ...args]),
    onTerminal(...args) {
      const command = [process.execPath, '--import', tsx, entry, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
      return collect('script', ['-qec', `stty cols 160 2>/dev/null; ${command}`, '/dev/null']);
    },
    json<T>(...args: string[]): T {
      const r = cli.spindle(...args, '--json');
      expect(r.code, `spindle ${args.join(' ')}: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout) as T;
    },
    async stopHost() {
      cli.spindle('stop');
      await hostStopped(where().dir);
    },
  };
  return cli;
}

/** Waits until the engine host of `dir` has stopped: it removes its pid file as it goes. */
export async function hostStopped(dir: string): Promise<void> {
  await expect.poll(async () => (await readFile(join(dir, 'run', 'engine-host.pid')).catch(() => undefined)) === undefined, { timeout: 20_000 }).toBe(true);
}
