/**
 * The pool, volume, fault and demo commands of the real `spindle` (run from
 * source, as a user runs it): a pool of four sparse image files, a volume of
 * every layout, one exported and checked with qemu-io through a member
 * failure, a restore and an engine host restart; then the demo pool.
 */
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuIo } from '../nbd/test-support.js';
import { cliIn, hostStopped as stopped } from './cli-test-support.js';
import type { PoolStatus, VolumeStatus } from '../../preload/api.js';

const MiB = 1024 * 1024;
let dir: string;
let env: NodeJS.ProcessEnv;
const { spindle, spindleAsync, json, stopHost } = cliIn(() => ({ dir, env }), 60_000);






beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spindle-cli-pools-'));
  env = { ...process.env, SPINDLE_RUNTIME_DIR: join(dir, 'run'), SPINDLE_STATE_DIR: join(dir, 'state') };
  for (let i = 0; i < 4; i++) {
    await writeFile(join(dir, `d${i}.img`), '');
    await truncate(join(dir, `d${i}.img`), 96 * MiB);
  }
});

afterAll(async () => {
  await stopHost().catch(() => {});
  await rm(dir, { recursive: true, force: true });
}, 60_000);

// Generous timeouts: each command is a fresh Node process, and the machine is shared.
describe('spindle pool, volume, fail, restore, corrupt, demo', { timeout: 180_000 }, () => {
  let uri: string;

  it('creates a pool from four image files given as plain paths', () => {
    const status = json<PoolStatus>('pool', 'create', 'tank', 'd0.img', 'd1.img', 'd2.img', 'd3.img', '--slab-size', '8256K');
    expect(status).toMatchObject({ name: 'tank', health: 'online', slabSize: 8 * MiB + 64 * 1024, memberCount: 4 });
    expect(status.members.map((m) => m.uri)).toEqual([0, 1, 2, 3].map((i) => `file:${join(dir, `d${i}.img`)}`));
  });

  it('creates a volume of every layout, and deletes one', async () => {
    const layouts = ['raid0', 'raid1', 'raid1x3', 'raid10', 'raid5', 'raid6'];
    // Side by side: the engine host takes them one at a time anyway, and six Node start-ups overlap.
    const created = await Promise.all(layouts.map((layout) => spindleAsync('volume', 'create', `tank/${layout}`, '--size', '8M', '--layout', layout, '--json')));
    for (const [i, layout] of layouts.entries()) {
      expect(created[i]!.code, created[i]!.stderr).toBe(0);
      expect(JSON.parse(created[i]!.stdout)).toMatchObject({ name: layout, layout, size: 8 * MiB, state: 'online' });
    }
    const status = json<PoolStatus>('pool', 'status', 'tank');
    expect(status.volumes.map((v) => [v.name, v.width, v.copies]).sort()).toEqual([
      ['raid0', 4, 1],
      ['raid1', 2, 2],
      ['raid10', 4, 2],
      ['raid1x3', 3, 3],
      ['raid5', 4, 1],
      ['raid6', 4, 1],
    ]);
    // raid0 survives no failure; without it the pool is degraded, not failed, when a member goes.
    expect(json('volume', 'delete', 'tank/raid0')).toEqual({ pool: 'tank', name: 'raid0', deleted: true });
    const map = json<VolumeStatus>('volume', 'status', 'tank/raid6');
    expect(map).toMatchObject({ name: 'raid6', chunkCount: 1, state: 'online' });
    expect(map.chunks[0]!.columns.map((c) => c.role).sort()).toEqual(['data', 'data', 'parity-p', 'parity-q']);
  });

  it('exports a volume that qemu-io writes and verifies, through a failure and a restore', async () => {
    uri = json<{ export: { uri: string } }>('volume', 'export', 'tank/raid6').export.uri;
    expect(uri).toBe(`nbd+unix:///tank/raid6?socket=${join(dir, 'run', 'nbd.sock')}`);
    await qemuIo(uri, 'write -P 0xab 0 1M', 'read -P 0xab 0 1M');

    const failed = json<{ member: { uuid: string; state: string } }>('fail', 'tank', 'd1.img');
    expect(failed.member.state).toBe('failed');
    const degraded = json<PoolStatus>('pool', 'status', 'tank');
    expect(degraded.health).toBe('degraded');
    expect(degraded.members[1]).toMatchObject({ state: 'failed', uri: `file:${join(dir, 'd1.img')}` });
    expect(degraded.volumes.find((v) => v.name === 'raid6')!.state).toBe('degraded');
    expect(spindle('pool', 'status', 'tank').stdout).toMatch(/^pool tank: degraded \(member .*d1\.img is failed\)/);
    await qemuIo(uri, 'read -P 0xab 0 1M', 'write -P 0xcd 2M 1M');

    const restored = json<{ member: { state: string }; rowsRebuilt: number }>('restore', 'tank', failed.member.uuid.slice(0, 8));
    expect(restored.member.state).toBe('online');
    expect(restored.rowsRebuilt).toBeGreaterThan(0);
    expect(json<PoolStatus>('pool', 'status', 'tank').health).toBe('online');
    await qemuIo(uri, 'read -P 0xab 0 1M', 'read -P 0xcd 2M 1M');
  });

  it('grows a volume', () => {
    expect(json('volume', 'grow', 'tank/raid1', '--size', '16M')).toMatchObject({ size: 16 * MiB });
  });

  it('closes the pool cleanly on SIGTERM; a new engine host re-imports it, exports included, with the data', async () => {
    const pid = Number(await readFile(join(dir, 'run', 'engine-host.pid'), 'utf8'));
    process.kill(pid, 'SIGTERM');
    await stopped(dir);
    const log = await readFile(join(dir, 'state', 'engine-host.log'), 'utf8');
    expect(log).toMatch(/received SIGTERM\n[\s\S]*engine host stopped: pools flushed and closed\n/);
    const status = json<PoolStatus>('pool', 'status', 'tank'); // starts a new engine host
    expect(status).toMatchObject({ health: 'online', volumeCount: 5 });
    expect(status.volumes.find((v) => v.name === 'raid6')!.export!.uri).toBe(uri);
    await qemuIo(uri, 'read -P 0xab 0 1M', 'read -P 0xcd 2M 1M');
    // A clean stop leaves nothing in flight for the import to reconcile.
    expect(await readFile(join(dir, 'state', 'engine-host.log'), 'utf8')).not.toMatch(/reconciled/);
  });

  it('exports the pool and imports it again', () => {
    expect(json('volume', 'unexport', 'tank/raid6')).toMatchObject({ wasExported: true });
    expect(json('pool', 'export', 'tank')).toEqual({ pool: 'tank', exported: true });
    expect(json('pool', 'import', 'd0.img', 'd1.img', 'd2.img', 'd3.img')).toMatchObject({ name: 'tank', health: 'online', volumeCount: 5 });
  });

  it('makes the demo pool once, and reports it the second time', () => {
    const first = json<{ created: boolean; pool: PoolStatus; images: string[] }>('demo');
    expect(first.created).toBe(true);
    expect(first.images).toHaveLength(6);
    expect(first.pool).toMatchObject({ name: 'demo', demo: true, health: 'online', memberCount: 6 });
    expect(first.pool.members.filter((m) => m.role === 'spare')).toHaveLength(1);
    expect(new Set(first.pool.members.map((m) => m.slabCount)).size).toBeGreaterThan(1);
    expect(first.pool.volumes.map((v) => v.layout).sort()).toEqual(['raid1', 'raid5']);
    const second = spindle('demo');
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^the demo pool already exists\npool demo: online/);
    const list = spindle('pool', 'list');
    expect(list.stdout).toMatch(/^NAME\s+HEALTH\s+MEMBERS\s+VOLUMES\s+UUID\ntank\s+online\s+4\s+5\s+\S+\ndemo \(demo\)\s+online\s+6\s+2\s+\S+\n$/);
  });

  it('corrupts a demo volume, and refuses to corrupt any other pool', () => {
    expect(json('corrupt', 'demo/photos', '0')).toMatchObject({ pool: 'demo', volume: 'photos', offset: 0, bytes: 16 });
    const r = spindle('corrupt', 'tank/raid6', '0');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^spindle: pool tank is not a demo or test pool/);
  });

  it('exits 2 with one line on stderr and nothing on stdout for each usage error', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['pool'], /^spindle: spindle pool needs a command: use create, import/],
      [['pool', 'create', 'x'], /^error: missing required argument 'members'/],
      [['pool', 'create', 'x', 'a.img', '--slab-size', 'huge'], /^spindle: --slab-size: invalid size "huge"/],
      [['volume', 'create', 'tank/v', '--size', '8M', '--layout', 'raid7'], /Allowed choices are raid0, raid1, raid1x3, raid10, raid5, raid6/],
      [['volume', 'create', 'tank/v', '--size', '1000', '--layout', 'raid5', '--json'], /^spindle: invalid parameters for "volume-create": size: size must be a multiple of 512 bytes$/],
      [['volume', 'grow', 'tank', '--size', '1G'], /^spindle: "tank" is not POOL\/VOLUME$/],
      [['volume', 'export', 'tank/raid1', '--tcp-port', '99999'], /^spindle: invalid port "99999"/],
    ];
    const results = await Promise.all(cases.map(([args]) => spindleAsync(...args)));
    for (const [i, [args, message]] of cases.entries()) {
      const r = results[i]!;
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(message);
    }
  });
});
