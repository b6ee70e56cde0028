/**
 * The first start opens on the demo pool, once: through a real engine host
 * and its control socket, with the demo disks served over NBD.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient } from './control-client.js';
import { EngineHost } from './engine-host.js';
import { openDemoOnFirstStart } from './first-start.js';
import { PoolRegistry } from './pool-registry.js';
import { ensurePrivateDir } from './runtime-paths.js';

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => {});
  cleanup = [];
});

async function startHost(dir: string): Promise<{ client: ControlClient; stateDir: string; stop: () => Promise<void> }> {
  const stateDir = join(dir, 'state');
  const runtimeDir = join(dir, 'run');
  await ensurePrivateDir(runtimeDir);
  const pools = new PoolRegistry({ stateDir, runtimeDir });
  const host = new EngineHost({ socketPath: join(runtimeDir, 'control.sock'), version: '0.0.0-test', pools });
  await host.listen();
  const client = await ControlClient.connect(join(runtimeDir, 'control.sock'));
  const stop = async (): Promise<void> => {
    client.close();
    await host.close();
    await pools.close();
  };
  cleanup.push(stop);
  return { client, stateDir, stop };
}

describe('first start', () => {
  it('creates the demo pool (members over NBD) the first time, and never again once remembered', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spindle-first-start-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    let host = await startHost(dir);
    const log: string[] = [];
    expect(await openDemoOnFirstStart(host.client, (l) => log.push(l), host.stateDir)).toBe(true);
    expect(log).toEqual([]);
    const status = await host.client.request('pool-status', { pool: 'demo' });
    expect(status.members.every((m) => m.uri.startsWith('nbd+unix:///disk'))).toBe(true);
    expect((await stat(join(host.stateDir, 'first-start-done'))).isFile()).toBe(true);

    // Restart: the saved demo pool comes back over NBD, and is not made again.
    await host.stop();
    cleanup.pop();
    host = await startHost(dir);
    expect(await openDemoOnFirstStart(host.client, () => {}, host.stateDir)).toBe(false);
    const again = await host.client.request('pool-status', { pool: 'demo' });
    expect(again.health).toBe('online');
    expect(again.volumes.map((v) => v.name).sort()).toEqual(['archive', 'photos']);

    // Exported by the user: the next start does not bring it back.
    await host.client.request('pool-export', { pool: 'demo' });
    expect(await openDemoOnFirstStart(host.client, () => {}, host.stateDir)).toBe(false);
    expect((await host.client.request('pool-list', {})).pools).toEqual([]);
  });

  it('does not add the demo to a state directory that already has pools', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spindle-first-start-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const host = await startHost(dir);
    await host.client.request('demo-create', {});
    await host.client.request('pool-export', { pool: 'demo' });
    const image = join(dir, 'own.img');
    const { truncate, writeFile } = await import('node:fs/promises');
    await writeFile(image, '');
    await truncate(image, 64 * 1024 * 1024);
    await host.client.request('pool-create', { name: 'mine', members: [`file:${image}`], slabSize: 8 * 1024 * 1024 + 64 * 1024 });
    expect(await openDemoOnFirstStart(host.client, () => {}, host.stateDir)).toBe(false);
    expect((await host.client.request('pool-list', {})).pools.map((p) => p.name)).toEqual(['mine']);
  });
});
