/**
 * The whole stack a user would build: our server → nbdfuse → loop device →
 * ext4 → files, then fsck through NBD. Needs root, /dev/fuse and a free
 * loop device; without them the test is skipped with the reason.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { FileBlockDevice } from './file-device.js';
import { NbdServer } from './server.js';
import { cleanupAll, exists, patternBuffer, run, startPeer, tempDir, waitFor, type Peer } from './test-support.js';

const MiB = 1024 * 1024;
const undo: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  // Tear down in reverse order; every step is attempted even if one fails.
  while (undo.length > 0) await undo.pop()!().catch(() => {});
  await cleanupAll();
});

async function prerequisites(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not running as root (mount and losetup need it)';
  if (!(await exists('/dev/fuse'))) return '/dev/fuse is missing';
  const free = await run('losetup', ['-f']);
  if (free.code !== 0) return `no free loop device: ${free.stderr.trim()}`;
  for (const tool of ['nbdfuse', 'mkfs.ext4', 'fsck.ext4', 'fusermount3']) {
    if ((await run('which', [tool])).code !== 0) return `${tool} is not installed`;
  }
  return undefined;
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

it('ext4 made through nbdfuse and a loop device on our export is clean and keeps its files', async (ctx) => {
  const missing = await prerequisites();
  if (missing) ctx.skip(missing);

  const dir = await tempDir();
  const image = path.join(dir, 'disk.img');
  await fsp.writeFile(image, '');
  await fsp.truncate(image, 64 * MiB);
  const device = await FileBlockDevice.open(image);
  const logs: string[] = [];
  const server = new NbdServer({ log: (l) => logs.push(l) });
  server.addExport('', device);
  const sock = path.join(dir, 'nbd.sock');
  await server.listenUnix(sock);
  undo.push(() => device.close());
  undo.push(() => server.close());

  const fuseDir = path.join(dir, 'fuse');
  const mnt = path.join(dir, 'mnt');
  await fsp.mkdir(fuseDir);
  await fsp.mkdir(mnt);
  const fuse: Peer = startPeer('nbdfuse', [fuseDir, `nbd+unix:///?socket=${sock}`]);
  undo.push(async () => {
    await run('fusermount3', ['-u', fuseDir]);
    await fuse.stop();
  });
  const nbdFile = path.join(fuseDir, 'nbd');
  await waitFor(() => exists(nbdFile), 'nbdfuse to expose DIR/nbd');

  const loop = (await must('losetup', ['-f', '--show', nbdFile])).trim();
  let attached = true;
  undo.push(async () => {
    if (attached) await run('losetup', ['-d', loop]);
  });
  await must('mkfs.ext4', ['-q', '-F', loop]);
  await must('mount', [loop, mnt]);
  let mounted = true;
  undo.push(async () => {
    if (mounted) await run('umount', ['-l', mnt]);
  });

  const files = Array.from({ length: 8 }, (_, i) => ({ name: `file-${i}`, data: patternBuffer(256 * 1024 + i * 999, i + 1) }));
  for (const f of files) await fsp.writeFile(path.join(mnt, f.name), f.data);
  await must('sync', []);
  await must('umount', [mnt]);
  mounted = false;
  await must('losetup', ['-d', loop]);
  attached = false;

  // fsck reads the file system back through nbdfuse and our server.
  const fsck = await run('fsck.ext4', ['-n', '-f', nbdFile]);
  expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
  // 11 inodes a fresh ext4 uses (root, lost+found, reserved) plus our 8 files.
  const used = Number(/(\d+)\/\d+ files/.exec(fsck.stdout)?.[1]);
  expect(used).toBeGreaterThanOrEqual(19);

  // And the files are all there, byte for byte.
  const loop2 = (await must('losetup', ['-f', '--show', '-r', nbdFile])).trim();
  undo.push(() => run('losetup', ['-d', loop2]));
  await must('mount', ['-o', 'ro', loop2, mnt]);
  undo.push(() => run('umount', ['-l', mnt]));
  for (const f of files) expect((await fsp.readFile(path.join(mnt, f.name))).equals(f.data)).toBe(true);
  await must('umount', [mnt]);

  expect(logs.filter((l) => /invalid|failed|error/i.test(l))).toEqual([]);
}, 120_000);
