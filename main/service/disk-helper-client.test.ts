/**
 * The real disk helper (native-helpers/helper-main.ts) driven through its
 * client: protocol validation, every refusal, serving loop devices over NBD,
 * exclusivity, hotplug, socket permissions.
 *
 * Loop devices need root; those tests skip with the reason when not root.
 * Every loop device and mount made here is undone in afterAll, pass or fail.
 */
import { spawn } from 'node:child_process';
import fs, { promises as fsp } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NbdClient } from '../nbd/client.js';
import { cleanupAll, run, tempDir, waitFor } from '../nbd/test-support.js';
import { DiskHelperClient, DiskHelperError, helperLaunch, type DiskEvent, type ServedDiskLost } from './disk-helper-client.js';

const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
const rootSkip = isRoot ? null : 'needs root for loop devices (losetup) and mounts';

const loops: string[] = [];
const mounts: string[] = [];
const helpers: DiskHelperClient[] = [];

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** A sparse image file bound to a loop device; returns the device and the image's real path. */
async function loopDevice(dir: string, name: string, size = 32 * MiB): Promise<{ dev: string; image: string }> {
  const image = join(await fsp.realpath(dir), name);
  await fsp.writeFile(image, '');
  await fsp.truncate(image, size);
  const dev = await must('losetup', ['-f', '--show', image]);
  loops.push(dev);
  return { dev, image };
}

async function detach(dev: string): Promise<void> {
  await run('losetup', ['-d', dev]);
  loops.splice(loops.indexOf(dev), 1);
}

async function startHelper(env: Record<string, string> = {}): Promise<DiskHelperClient> {
  const runtime = await tempDir('spindle-helper-test-');
  const helper = await DiskHelperClient.start(helperLaunch('source', { env: { SPINDLE_HELPER_RUNTIME_DIR: join(runtime, 'rt'), SPINDLE_HELPER_POLL_MS: '100', ...env } }));
  helpers.push(helper);
  return helper;
}

async function refusalOf(promise: Promise<unknown>): Promise<DiskHelperError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DiskHelperError);
    return error as DiskHelperError;
  }
  throw new Error('the helper accepted a request it should have refused');
}

/** Connects to a Unix socket as another user id; resolves with the first 8 bytes or the error code. */
function connectAs(uid: number, socket: string): Promise<string> {
  const script = `const s=require('net').connect(${JSON.stringify(socket)});s.once('data',d=>{process.stdout.write(d.subarray(0,8).toString('latin1'));s.destroy()});s.on('error',e=>{process.stdout.write(e.code);})`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { uid, gid: uid, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    child.on('error', reject);
    child.on('exit', () => resolve(out));
  });
}

afterAll(async () => {
  await Promise.all(helpers.map((h) => h.close()));
  for (const m of mounts.splice(0)) await run('umount', ['-l', m]);
  for (const dev of loops.splice(0)) await run('losetup', ['-d', dev]);
  await cleanupAll();
}, 60_000);

describe('the disk helper protocol', () => {
  let helper: DiskHelperClient;
  beforeAll(async () => {
    helper = await startHelper();
  });

  it('announces its socket, in a 0700 directory of the user, the socket 0600', async () => {
    expect(helper.socket).toMatch(/disks\.sock$/);
    const dir = await fsp.stat(join(helper.socket, '..'));
    expect(dir.mode & 0o777).toBe(0o700);
    expect(dir.uid).toBe(process.getuid!());
    const sock = await fsp.stat(helper.socket);
    expect(sock.isSocket()).toBe(true);
    expect(sock.mode & 0o777).toBe(0o600);
  });

  it.each([
    ['a line that is not JSON', 'serve /dev/sda', /one JSON object per line/],
    ['an unknown operation', '{"id":1,"op":"format","disk":"x"}', /unknown "op"/],
    ['an unknown field (a path smuggled in)', '{"id":1,"op":"serve","disk":"x","path":"/dev/sda"}', /unknown field "path"/],
    ['an empty disk name', '{"id":1,"op":"smart","disk":""}', /must not be empty/],
    ['a confirmation that is not a boolean', '{"id":1,"op":"serve","disk":"x","confirmExistingData":"yes"}', /true or false/],
  ])('refuses %s as BAD_REQUEST', async (_what, line, message) => {
    const error = await refusalOf(helper.sendRaw(line, 1));
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message).toMatch(message);
  });

  it.each([
    ['a /dev path', '/dev/vda'],
    ['a relative path', '../../dev/vda'],
    ['an identity the inventory does not have', 'serial:NO-SUCH-DISK'],
  ])('refuses %s: not in the inventory', async (_what, name) => {
    const error = await refusalOf(helper.serve(name));
    expect(error.code).toBe('NOT_IN_INVENTORY');
    expect(error.message).toMatch(/not a disk in the inventory/);
    expect((await refusalOf(helper.smart(name))).code).toBe('NOT_IN_INVENTORY');
  });

  it('lists the system disk with the reason it is never served', async (ctx) => {
    const disks = await helper.list();
    const system = disks.find((d) => d.isSystemDisk);
    if (!system) return ctx.skip('no disk here holds / (a container whose root lsblk does not list)');
    expect(system.refusal).toMatch(/holds the running system/);
    if (system.id) expect((await refusalOf(helper.serve(system.id, { confirmExistingData: true }))).code).toBe('REFUSED_SYSTEM_DISK');
  });

  it('starting through pkexec where polkit cannot authorize fails with one clear line', async () => {
    expect(helperLaunch('pkexec')).toEqual({ command: 'pkexec', args: ['/opt/Spindle/resources/helper/spindle-disk-helper'] });
    const error = await refusalOf(DiskHelperClient.start(helperLaunch('pkexec', { helperPath: '/nonexistent/spindle-disk-helper' })));
    expect(error.code).toBe('HELPER_EXITED');
    // Without a polkit daemon (these machines) pkexec exits 127; without pkexec the spawn fails.
    expect(error.message).toMatch(/^(not authorized to run the disk helper, or pkexec could not ask \(exit 127\)|cannot start the disk helper \(pkexec\))/);
    expect(error.message).not.toContain('\n');
  });

  it('stopping a disk that is not served is refused', async () => {
    expect((await refusalOf(helper.stop('loop:/nowhere.img'))).code).toBe('NOT_SERVED');
  });
});

describe('serving loop devices', () => {
  let helper: DiskHelperClient;
  let dir: string;
  const id = (image: string) => `loop:${image}`;

  beforeAll(async () => {
    if (rootSkip) return;
    dir = await tempDir('spindle-helper-loops-');
    helper = await startHelper();
  });
  beforeEach((ctx) => {
    if (rootSkip) ctx.skip(rootSkip);
  });

  it('lists loop devices with their sizes and identity', async () => {
    const { dev, image } = await loopDevice(dir, 'list.img', 48 * MiB);
    const disk = (await helper.list()).find((d) => d.path === dev);
    expect(disk).toMatchObject({ id: id(image), type: 'loop', size: 48 * MiB, backingFile: image, served: false, refusal: null, signatures: [] });
  });

  it('serves a disk over NBD, exclusively; writes reach the disk', async () => {
    const { dev, image } = await loopDevice(dir, 'serve.img');
    const served = await helper.serve(id(image));
    expect(served).toMatchObject({ disk: id(image), path: dev, size: 32 * MiB, socket: helper.socket });
    expect(served.uri).toBe(`nbd+unix:///${basename(dev)}?socket=${helper.socket}`);
    const client = await NbdClient.connect(served.uri);
    expect(client.size).toBe(32 * MiB);
    await client.write(MiB, Buffer.alloc(4096, 0x5c));
    await client.flush();
    expect((await client.read(MiB, 4096)).equals(Buffer.alloc(4096, 0x5c))).toBe(true);
    const onDisk = Buffer.alloc(4096);
    const fh = await fsp.open(image, 'r');
    await fh.read(onDisk, 0, 4096, MiB);
    await fh.close();
    expect(onDisk.equals(Buffer.alloc(4096, 0x5c))).toBe(true);
    // The helper holds the disk exclusively: nobody else can claim it (mount, mkfs, another helper).
    expect(() => fs.openSync(dev, fs.constants.O_RDWR | fs.constants.O_EXCL)).toThrow(/EBUSY/);
    expect((await helper.served()).map((s) => s.disk)).toContain(id(image));
    await client.close();
  });

  it('refuses to serve a disk twice', async () => {
    const { image } = await loopDevice(dir, 'twice.img');
    await helper.serve(id(image));
    const error = await refusalOf(helper.serve(id(image)));
    expect(error.code).toBe('ALREADY_SERVED');
    expect(error.message).toMatch(/already served/);
  });

  it('refuses a disk with a mounted file system, with or without confirmation', async () => {
    const { dev, image } = await loopDevice(dir, 'mounted.img');
    await must('mkfs.ext4', ['-q', dev]);
    const mnt = join(dir, 'mnt');
    await fsp.mkdir(mnt);
    await must('mount', [dev, mnt]);
    mounts.push(mnt);
    const error = await refusalOf(helper.serve(id(image), { confirmExistingData: true }));
    expect(error.code).toBe('REFUSED_MOUNTED');
    expect(error.message).toContain(mnt);
  });

  it('refuses a disk holding data unless the caller confirms; serves it with confirmation', async () => {
    const { dev, image } = await loopDevice(dir, 'data.img');
    await must('mkfs.ext4', ['-q', dev]);
    const disk = (await helper.list()).find((d) => d.path === dev);
    expect(disk?.signatures).toContain('ext4');
    const error = await refusalOf(helper.serve(id(image)));
    expect(error.code).toBe('NEEDS_CONFIRMATION');
    expect(error.message).toMatch(/holds existing data \(ext4\).*confirm/);
    expect((await helper.serve(id(image), { confirmExistingData: true })).disk).toBe(id(image));
  });

  it('refuses a disk another program holds exclusively', async () => {
    const { dev, image } = await loopDevice(dir, 'busy.img');
    const fd = fs.openSync(dev, fs.constants.O_RDWR | fs.constants.O_EXCL);
    try {
      const error = await refusalOf(helper.serve(id(image)));
      expect(error.code).toBe('REFUSED_BUSY');
      expect(error.message).toMatch(/in use/);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('refuses a disk named through a symlink, a `..` path or its /dev path', async () => {
    const { dev, image } = await loopDevice(dir, 'named.img');
    const link = join(dir, 'link-to-disk');
    await fsp.symlink(dev, link);
    const imageLink = join(dir, 'link-to-image.img');
    await fsp.symlink(image, imageLink);
    for (const name of [link, dev, `loop:${dir}/../${basename(dir)}/named.img`, `loop:${imageLink}`, `loop:named.img`]) {
      const error = await refusalOf(helper.serve(name));
      expect(error.code, name).toBe('NOT_IN_INVENTORY');
    }
    expect((await refusalOf(helper.serve(dev))).message).toContain(`"${id(image)}"`);
  });

  it('reads SMART plainly as absent for a loop device', async () => {
    const { image } = await loopDevice(dir, 'smart.img');
    const report = await helper.smart(id(image));
    expect(report).toMatchObject({ available: false, verdict: 'unknown' });
    expect(report.reason).toMatch(/Unable to detect device type/);
  });

  it('stop closes the disk\'s NBD connections and releases the disk', async () => {
    const { dev, image } = await loopDevice(dir, 'stop.img');
    const served = await helper.serve(id(image));
    const client = await NbdClient.connect(served.uri);
    await helper.stop(id(image));
    await expect(client.read(0, 4096)).rejects.toThrow();
    fs.closeSync(fs.openSync(dev, fs.constants.O_RDWR | fs.constants.O_EXCL));
    expect((await refusalOf(helper.stop(id(image)))).code).toBe('NOT_SERVED');
    await client.close().catch(() => {});
  });

  it('reports disks added and removed (hotplug)', async () => {
    const added: DiskEvent[] = [];
    const removed: DiskEvent[] = [];
    helper.on('disk-added', (e: DiskEvent) => added.push(e));
    helper.on('disk-removed', (e: DiskEvent) => removed.push(e));
    const { dev, image } = await loopDevice(dir, 'hotplug.img');
    await waitFor(() => added.find((e) => e.disk.id === id(image)), 'disk-added');
    expect(added.find((e) => e.disk.id === id(image))?.disk).toMatchObject({ path: dev, size: 32 * MiB });
    await detach(dev);
    await waitFor(() => removed.find((e) => e.disk.id === id(image)), 'disk-removed');
  });

  it('a served disk whose media goes away stops being served and its connections fail cleanly', async () => {
    const { dev, image } = await loopDevice(dir, 'vanish.img');
    const served = await helper.serve(id(image));
    const client = await NbdClient.connect(served.uri);
    await client.read(0, 4096);
    const lost: ServedDiskLost[] = [];
    helper.on('served-disk-lost', (e: ServedDiskLost) => lost.push(e));
    // Media removed from a reader reads as a device of size 0; a loop device does the same when its file shrinks.
    await fsp.truncate(image, 0);
    await must('losetup', ['-c', dev]);
    const event = await waitFor(() => lost.find((e) => e.disk === id(image)), 'served-disk-lost');
    expect(event.reason).toMatch(/size changed/);
    await expect(client.read(0, 4096)).rejects.toThrow();
    expect((await helper.served()).map((s) => s.disk)).not.toContain(id(image));
    await client.close().catch(() => {});
  });

  it('the socket refuses other users: a connection as uid 65534 gets EACCES', async () => {
    expect(await connectAs(65534, helper.socket)).toBe('EACCES');
  });
});

describe('started as through pkexec (PKEXEC_UID set, running as root)', () => {
  it('gives the socket and its directory to that user alone', async (ctx) => {
    if (rootSkip) return ctx.skip(rootSkip);
    const helper = await startHelper({ PKEXEC_UID: '65534' });
    expect(helper.elevated).toBe(true);
    expect(helper.socket).toBe('/run/spindle-helper/65534/disks.sock');
    const dir = await fsp.lstat('/run/spindle-helper/65534');
    expect({ uid: dir.uid, mode: dir.mode & 0o777 }).toEqual({ uid: 65534, mode: 0o700 });
    const sock = await fsp.lstat(helper.socket);
    expect({ uid: sock.uid, mode: sock.mode & 0o777 }).toEqual({ uid: 65534, mode: 0o600 });
    expect(await connectAs(65534, helper.socket)).toBe('NBDMAGIC');
    expect(await connectAs(65533, helper.socket)).toBe('EACCES');
    await helper.close();
    await expect(fsp.lstat('/run/spindle-helper/65534')).rejects.toThrow(/ENOENT/);
  });
});
