/**
 * The pool and volume API end to end through the real control socket: an
 * engine host and its pool registry in this process, pools on sparse image
 * files, volumes exported over NBD and checked with qemu-io (run
 * asynchronously: the NBD server answering it lives on this event loop).
 */
import { readdir, readFile, rename, rm, truncate, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuIo } from '../nbd/test-support.js';
import type { EventName, Events, MemberStatus, RequestName } from '../../preload/api.js';
import { ControlClient } from './control-client.js';
import { EngineHost } from './engine-host.js';
import { PoolRegistry } from './pool-registry.js';
import { ensurePrivateDir } from './runtime-paths.js';

const MiB = 1024 * 1024;
const MEMBER_BYTES = 64 * MiB;
const SLAB = 8 * MiB + 64 * 1024;

let dir: string;
let images: string[];
let uris: string[];
let socketPath: string;
let pools: PoolRegistry;
let host: EngineHost;
let client: ControlClient;
let events: Array<{ event: EventName; data: unknown }> = [];

async function startHost(): Promise<void> {
  pools = new PoolRegistry({ stateDir: join(dir, 'state'), runtimeDir: join(dir, 'run') });
  host = new EngineHost({ socketPath, version: '0.0.0-test', pools });
  await host.listen();
  client = await ControlClient.connect(socketPath);
  client.onAnyEvent((event, data) => events.push({ event, data }));
}

async function stopHost(): Promise<void> {
  client.close();
  await host.close();
  await pools.close();
}

/** A request whose params the test builds freely (bad ones included). */
function call(method: RequestName | string, params: unknown): Promise<unknown> {
  return client.requestUnchecked(method, params);
}

async function expectFailure(method: string, params: unknown, code: string, message: RegExp): Promise<void> {
  await expect(call(method, params)).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
}

function seen<E extends EventName>(event: E, match: (data: Events[E]) => boolean): Promise<Events[E]> {
  return expect
    .poll(() => events.find((e) => e.event === event && match(e.data as Events[E]))?.data as Events[E] | undefined, { timeout: 10_000 })
    .toBeDefined()
    .then(() => events.find((e) => e.event === event && match(e.data as Events[E]))!.data as Events[E]);
}


beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spindle-pool-api-'));
  await ensurePrivateDir(join(dir, 'run'));
  await ensurePrivateDir(join(dir, 'state'));
  socketPath = join(dir, 'run', 'control.sock');
  images = [0, 1, 2, 3].map((i) => join(dir, `disk${i}.img`));
  for (const image of images) {
    await writeFile(image, '');
    await truncate(image, MEMBER_BYTES);
  }
  uris = images.map((image) => `file:${image}`);
  await startHost();
});

afterAll(async () => {
  await stopHost().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

describe('the pool API over the control socket', () => {
  it.each([
    ['pool-create', { name: 'x', members: ['disk.img'] }],
    ['pool-import', { members: [] }],
    ['pool-export', {}],
    ['pool-list', { verbose: true }],
    ['pool-status', { pool: '../etc' }],
    ['volume-create', { pool: 'x', name: 'v', size: 100, layout: 'raid5' }],
    ['volume-delete', { pool: 'x', name: '' }],
    ['volume-grow', { pool: 'x', name: 'v', size: -512 }],
    ['volume-export', { pool: 'x', name: 'v', tcpPort: 'any' }],
    ['volume-unexport', { pool: 'x' }],
    ['volume-status', { pool: 'x', name: 'v', firstChunk: 0.5 }],
    ['member-fail', { pool: 'x' }],
    ['member-restore', { pool: 'x', member: 7 }],
    ['volume-corrupt', { pool: 'x', name: 'v', offset: '0' }],
    ['demo-create', { name: 'x' }],
  ])('refuses bad parameters for %s with INVALID_PARAMS', async (method, params) => {
    await expectFailure(method, params, 'INVALID_PARAMS', new RegExp(`^invalid parameters for "${method}": \\S+`));
  });

  it.each([
    ['pool-export', { pool: 'nope' }],
    ['pool-status', { pool: 'nope' }],
    ['volume-create', { pool: 'nope', name: 'v', size: MiB, layout: 'raid1' }],
    ['volume-delete', { pool: 'nope', name: 'v' }],
    ['volume-grow', { pool: 'nope', name: 'v', size: MiB }],
    ['volume-export', { pool: 'nope', name: 'v' }],
    ['volume-unexport', { pool: 'nope', name: 'v' }],
    ['volume-status', { pool: 'nope', name: 'v' }],
    ['member-fail', { pool: 'nope', member: 'abcd' }],
    ['member-restore', { pool: 'nope', member: 'abcd' }],
    ['volume-corrupt', { pool: 'nope', name: 'v', offset: 0 }],
  ])('takes good parameters for %s and says clearly that the pool does not exist', async (method, params) => {
    await expectFailure(method, params, 'FAILED', /^no pool named "nope" \(there are no pools\)$/);
  });

  it('refuses members it cannot open, naming them', async () => {
    await expectFailure('pool-create', { name: 'tank', members: [`file:${join(dir, 'missing.img')}`] }, 'FAILED', /missing\.img/);
    await expectFailure('pool-import', { members: [uris[0]] }, 'FAILED', /./);
  });

  it('creates a demo pool from four image files, saves it, and tells every client', async () => {
    const status = (await call('pool-create', { name: 'tank', members: uris, slabSize: SLAB, demo: true })) as Events['pool-list-changed']['pools'][number] & {
      members: MemberStatus[];
      freeSpace: Record<string, number>;
    };
    expect(status).toMatchObject({ name: 'tank', health: 'online', demo: true, memberCount: 4, volumeCount: 0 });
    expect(status.members.map((m) => m.uri)).toEqual(uris);
    expect(status.members.every((m) => m.state === 'online' && m.role === 'data' && m.slabCount === m.freeSlabs && m.slabCount >= 6)).toBe(true);
    expect(Object.keys(status.freeSpace)).toEqual(['raid0', 'raid1', 'raid1x3', 'raid10', 'raid5', 'raid6']);
    expect(status.freeSpace.raid0).toBeGreaterThan(status.freeSpace.raid1);
    await seen('pool-list-changed', (d) => d.pools.some((p) => p.name === 'tank'));
    const saved = JSON.parse(await readFile(join(dir, 'state', 'pools.json'), 'utf8'));
    expect(saved).toMatchObject({ version: 1, pools: [{ name: 'tank', members: uris, demo: true, exports: [] }] });
    expect(await call('pool-list', {})).toMatchObject({ pools: [{ name: 'tank', health: 'online' }] });
  });

  it('refuses a second pool of that name, and members that are already in a pool', async () => {
    await expectFailure('pool-create', { name: 'tank', members: [`file:${join(dir, 'other.img')}`] }, 'FAILED', /a pool named tank already exists/);
    await expectFailure('pool-create', { name: 'other', members: [uris[1]] }, 'FAILED', /disk1\.img is already a member of pool tank/);
  });

  it('creates volumes and maps their chunks to members, slabs and roles', async () => {
    await call('volume-create', { pool: 'tank', name: 'mirror', size: 8 * MiB, layout: 'raid1' });
    const created = await call('volume-create', { pool: 'tank', name: 'parity', size: 16 * MiB, layout: 'raid5' });
    expect(created).toEqual({ pool: 'tank', name: 'parity', size: 16 * MiB, layout: 'raid5', width: 4, copies: 1, state: 'online' });
    await expectFailure('volume-create', { pool: 'tank', name: 'parity', size: MiB, layout: 'raid0' }, 'FAILED', /already has a volume "parity"/);
    await expectFailure('volume-create', { pool: 'tank', name: 'huge', size: 1024 * MiB, layout: 'raid0' }, 'FAILED', /not enough free space/);
    const mirror = await call('volume-status', { pool: 'tank', name: 'mirror' });
    expect(mirror).toMatchObject({ layout: 'raid1', chunkCount: 1, firstChunk: 0, chunks: [{ columns: [{ role: 'data' }, { role: 'copy' }] }] });
    const parity = (await call('volume-status', { pool: 'tank', name: 'parity' })) as { chunks: Array<{ columns: Array<{ role: string; member: string; state: string }> }> };
    expect(parity.chunks[0]!.columns.map((c) => c.role)).toEqual(['data', 'data', 'data', 'parity-p']);
    expect(new Set(parity.chunks[0]!.columns.map((c) => c.member)).size).toBe(4);
    expect(parity.chunks[0]!.columns.every((c) => c.state === 'online')).toBe(true);
  });

  let parityUri: string;

  it('exports a volume on the Unix socket and on TCP; qemu-io writes and verifies through both', async () => {
    const exported = (await call('volume-export', { pool: 'tank', name: 'parity', tcpPort: 0 })) as { export: { uri: string; tcpUri: string; exportName: string } };
    expect(exported.export.exportName).toBe('tank/parity');
    expect(exported.export.uri).toBe(`nbd+unix:///tank/parity?socket=${join(dir, 'run', 'nbd.sock')}`);
    expect(exported.export.tcpUri).toMatch(/^nbd:\/\/127\.0\.0\.1:\d+\/tank\/parity$/);
    parityUri = exported.export.uri;
    await qemuIo(parityUri, 'write -P 0xab 0 1M', 'read -P 0xab 0 1M');
    await qemuIo(exported.export.tcpUri, 'read -P 0xab 0 1M');
    // Exporting again is harmless and says where it is.
    expect(await call('volume-export', { pool: 'tank', name: 'parity' })).toMatchObject({ export: { uri: parityUri } });
  });

  it('fails a member: events, a degraded pool, data still verified; restore rebuilds it', async () => {
    const status = (await call('pool-status', { pool: 'tank' })) as { members: MemberStatus[] };
    const victim = status.members[1]!;
    events = [];
    const failed = (await call('member-fail', { pool: 'tank', member: victim.uuid.slice(0, 6) })) as { member: MemberStatus };
    expect(failed.member).toMatchObject({ uuid: victim.uuid, state: 'failed', reason: 'failed on request' });
    await seen('member-state', (d) => d.member.uuid === victim.uuid && d.member.state === 'failed');
    await seen('volume-state', (d) => d.volume === 'parity' && d.state === 'degraded');
    expect(await call('pool-status', { pool: 'tank' })).toMatchObject({ health: 'degraded', problem: expect.stringMatching(/disk1\.img is failed/) });
    const map = (await call('volume-status', { pool: 'tank', name: 'parity' })) as { state: string; chunks: Array<{ columns: Array<{ member: string; state: string }> }> };
    expect(map.state).toBe('degraded');
    expect(map.chunks[0]!.columns.find((c) => c.member === victim.uuid)!.state).toBe('failed');
    await qemuIo(parityUri, 'read -P 0xab 0 1M', 'write -P 0xcd 1M 1M', 'read -P 0xcd 1M 1M');

    const restored = (await call('member-restore', { pool: 'tank', member: uris[1] })) as { member: MemberStatus; rowsRebuilt: number };
    expect(restored.member.state).toBe('online');
    expect(restored.rowsRebuilt).toBeGreaterThan(0);
    await seen('member-state', (d) => d.member.uuid === victim.uuid && d.member.state === 'online');
    expect(await call('pool-status', { pool: 'tank' })).toMatchObject({ health: 'online' });
    await qemuIo(parityUri, 'read -P 0xab 0 1M', 'read -P 0xcd 1M 1M');
    await expectFailure('member-restore', { pool: 'tank', member: victim.uuid }, 'FAILED', /is already online/);
    await expectFailure('member-fail', { pool: 'tank', member: 'ffffffff' }, 'FAILED', /pool tank has no member "ffffffff"/);
  });

  it('corrupts one copy behind the engine; reads still verify and the member is blamed', async () => {
    events = [];
    const done = (await call('volume-corrupt', { pool: 'tank', name: 'parity', offset: 4096 })) as { member: string; bytes: number };
    expect(done.bytes).toBeGreaterThan(0);
    await qemuIo(parityUri, 'read -P 0xab 0 1M');
    const errors = await seen('member-errors', (d) => d.member === done.member);
    expect(errors).toMatchObject({ pool: 'tank', errors: { checksum: expect.any(Number) } });
    expect(errors.errors.checksum).toBeGreaterThan(0);
    await expectFailure('volume-corrupt', { pool: 'tank', name: 'parity', offset: 12 * MiB }, 'FAILED', /has never been written/);
    await expectFailure('volume-corrupt', { pool: 'tank', name: 'parity', offset: 16 * MiB }, 'FAILED', /past the end/);
  });

  it('grows an exported volume and serves the new size at the same address', async () => {
    expect(await call('volume-grow', { pool: 'tank', name: 'parity', size: 32 * MiB })).toMatchObject({ size: 32 * MiB, export: { uri: parityUri } });
    await qemuIo(parityUri, 'read -P 0xab 0 1M', 'write -P 0x11 31M 1M', 'read -P 0x11 31M 1M');
    await expectFailure('volume-grow', { pool: 'tank', name: 'parity', size: 16 * MiB }, 'FAILED', /can only grow/);
    const whole = (await call('volume-status', { pool: 'tank', name: 'parity' })) as { chunkCount: number; chunks: Array<{ id: number }> };
    expect(whole).toMatchObject({ chunkCount: 2, firstChunk: 0 });
    expect(whole).not.toHaveProperty('nextChunk');
    const page = await call('volume-status', { pool: 'tank', name: 'parity', firstChunk: 1 });
    expect(page).toMatchObject({ chunkCount: 2, firstChunk: 1, chunks: [{ id: whole.chunks[1]!.id }] });
    await expectFailure('volume-status', { pool: 'tank', name: 'parity', firstChunk: 2 }, 'FAILED', /has 2 chunks; firstChunk 2 is past them/);
  });

  it('refuses to delete an exported volume, and deletes it once unexported', async () => {
    await call('volume-create', { pool: 'tank', name: 'scratch', size: MiB, layout: 'raid0' });
    await call('volume-export', { pool: 'tank', name: 'scratch' });
    await expectFailure('volume-delete', { pool: 'tank', name: 'scratch' }, 'FAILED', /is exported at .*; unexport it first/);
    expect(await call('volume-unexport', { pool: 'tank', name: 'scratch' })).toEqual({ pool: 'tank', name: 'scratch', wasExported: true });
    expect(await call('volume-unexport', { pool: 'tank', name: 'scratch' })).toMatchObject({ wasExported: false });
    expect(await call('volume-delete', { pool: 'tank', name: 'scratch' })).toEqual({ pool: 'tank', name: 'scratch', deleted: true });
    await expectFailure('volume-status', { pool: 'tank', name: 'scratch' }, 'FAILED', /has no volume "scratch"/);
  });

  it('exports a pool (closed and forgotten) and imports it again, without the demo flag unless asked', async () => {
    expect(await call('pool-export', { pool: 'tank' })).toEqual({ pool: 'tank', exported: true });
    expect(await call('pool-list', {})).toEqual({ pools: [] });
    await expect(qemuIo(parityUri, 'read 0 4k')).rejects.toThrow();
    const imported = await call('pool-import', { members: uris });
    expect(imported).toMatchObject({ name: 'tank', health: 'online', demo: false, volumeCount: 2, unrecognized: [] });
    await expectFailure('volume-corrupt', { pool: 'tank', name: 'parity', offset: 0 }, 'FAILED', /not a demo or test pool/);
    await expectFailure('pool-import', { members: uris }, 'FAILED', /already a member of pool tank/);
    await call('volume-export', { pool: 'tank', name: 'parity' });
  });

  it('re-imports its pools and re-exports their volumes when the engine host starts again', async () => {
    await stopHost();
    await startHost();
    expect(await call('pool-list', {})).toMatchObject({ pools: [{ name: 'tank', health: 'online' }] });
    expect(await call('volume-status', { pool: 'tank', name: 'parity' })).toMatchObject({ export: { uri: parityUri } });
    await qemuIo(parityUri, 'read -P 0xab 0 1M', 'read -P 0xcd 1M 1M', 'read -P 0x11 31M 1M');
  });

  it('reports a pool whose members are gone as unavailable, and takes it back on import', async () => {
    await stopHost();
    const aside = join(dir, 'aside');
    await ensurePrivateDir(aside);
    for (const image of images) await rename(image, join(aside, image.split('/').pop()!));
    await startHost();
    const list = (await call('pool-list', {})) as { pools: Array<{ health: string; problem: string }> };
    expect(list.pools).toMatchObject([{ name: 'tank', health: 'unavailable', problem: expect.stringMatching(/none of its 4 member\(s\) could be opened/) }]);
    await expectFailure('pool-status', { pool: 'tank' }, 'FAILED', /pool tank is unavailable: none of its 4 member/);
    for (const image of images) await rename(join(aside, image.split('/').pop()!), image);
    expect(await call('pool-import', { members: uris })).toMatchObject({ name: 'tank', health: 'online' });
    expect(await call('volume-status', { pool: 'tank', name: 'parity' })).toMatchObject({ export: { uri: parityUri } });
    await qemuIo(parityUri, 'read -P 0xab 0 1M');
  });

  it('moves an unreadable pools.json aside and starts with no pools', async () => {
    await stopHost();
    await writeFile(join(dir, 'state', 'pools.json'), '{"version": 1, "pools": [');
    await startHost();
    expect(await call('pool-list', {})).toEqual({ pools: [] });
    expect((await readdir(join(dir, 'state'))).some((f) => f.startsWith('pools.json.unreadable-'))).toBe(true);
  });
});
