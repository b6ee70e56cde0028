import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliIn } from './cli-test-support.js';

// Long-running commands (nbd serve, daemon) are spawned from the entry directly.
const entry = fileURLToPath(new URL('./cli-main.ts', import.meta.url));
let dir: string;
let env: NodeJS.ProcessEnv;
const { spindle, stopHost } = cliIn(() => ({ dir, env }));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spindle-cli-'));
  env = { ...process.env, SPINDLE_RUNTIME_DIR: join(dir, 'run'), SPINDLE_STATE_DIR: join(dir, 'state') };
});

afterAll(async () => {
  await stopHost().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

describe('spindle CLI', () => {
  it('starts an engine host on first use and reports it as JSON', () => {
    const first = spindle('version', '--json');
    expect(first.code, first.stderr).toBe(0);
    const info = JSON.parse(first.stdout);
    expect(info).toMatchObject({ version: expect.any(String), contractVersion: 1, pid: expect.any(Number) });
    const second = JSON.parse(spindle('version', '--json').stdout);
    expect(second.pid).toBe(info.pid);
    expect(second.uptimeMs).toBeGreaterThanOrEqual(info.uptimeMs);
  });

  it('prints a one-line human summary without --json', () => {
    const r = spindle('version');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toMatch(/^spindle \S+ — engine host pid \d+, up \d+/);
  });

  it('refuses a second engine host on the same socket with a clear error', () => {
    const r = spindle('daemon');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^spindle: an engine host is already running on .*control\.sock$/);
  });

  it.each([
    [['bogus'], /unknown command 'bogus'/],
    [['version', '--colour'], /unknown option '--colour'/],
    [['browser', '--port', 'abc'], /invalid port "abc"/],
    [['browser', '--port', '70000'], /invalid port "70000"/],
  ])('exits 2 with one line for usage error %j', (args, message) => {
    const r = spindle(...args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('stops the engine host, and says so when none runs', async () => {
    const stop = spindle('stop', '--json');
    expect(stop.code).toBe(0);
    expect(JSON.parse(stop.stdout)).toEqual({ running: true, stopping: true });
    await expect.poll(() => JSON.parse(spindle('stop', '--json').stdout), { timeout: 10_000 }).toEqual({ running: false });
  });

  it('serves an image file over NBD with `nbd serve`, readable by nbdinfo, until SIGTERM', async () => {
    const image = join(dir, 'disk.img');
    await writeFile(image, Buffer.alloc(1024 * 1024, 7));
    const socket = join(dir, 'disk.sock');
    const child = spawn(process.execPath, ['--import', 'tsx', entry, 'nbd', 'serve', image, '--socket', socket, '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    await expect.poll(() => stdout, { timeout: 15_000 }).toMatch(/"uri"/);
    expect(JSON.parse(stdout)).toMatchObject({ uri: `nbd+unix:///?socket=${socket}`, socket });
    const info = spawnSync('nbdinfo', ['--json', `nbd+unix:///?socket=${socket}`], { encoding: 'utf8' });
    expect(info.status, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout).exports[0]['export-size']).toBe(1024 * 1024);
    child.kill('SIGTERM');
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(0);
  });

  it('refuses `nbd serve` without exactly one of --socket and --port, or of a missing file', () => {
    expect(spindle('nbd', 'serve', join(dir, 'disk.img')).code).toBe(2);
    expect(spindle('nbd', 'serve', join(dir, 'disk.img'), '--socket', join(dir, 's'), '--port', '0').code).toBe(2);
    const missing = spindle('nbd', 'serve', join(dir, 'nope.img'), '--socket', join(dir, 's2'));
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^spindle: cannot serve .*nope\.img/);
  });

  it('runs the engine host in the foreground with `daemon` and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, 'daemon'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    await expect.poll(() => stderr, { timeout: 15_000 }).toMatch(/listening/);
    expect(JSON.parse(spindle('version', '--json').stdout).pid).toBe(child.pid);
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(stderr).toMatch(/stopping/);
  });
});
