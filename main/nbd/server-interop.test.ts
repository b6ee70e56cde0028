/**
 * Our server driven by real NBD clients: nbdinfo, nbdcopy, qemu-img, qemu-io.
 * Each test starts its own server on a Unix socket in a temp folder.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlockDevice } from './block-device.js';
import { FileBlockDevice } from './file-device.js';
import { MemoryBlockDevice } from './memory-device.js';
import { NbdServer } from './server.js';
import { cleanupAll, makeImage, patternBuffer, run, tempDir, waitFor } from './test-support.js';

const MiB = 1024 * 1024;
let servers: NbdServer[] = [];
let devices: BlockDevice[] = [];

afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(devices.map((d) => d.close()));
  servers = [];
  devices = [];
  await cleanupAll();
});

interface Started {
  readonly server: NbdServer;
  readonly sock: string;
  readonly dir: string;
  readonly logs: string[];
  uri(name?: string): string;
}

async function start(exports: Record<string, { device: BlockDevice; description?: string; readOnly?: boolean }>): Promise<Started> {
  const dir = await tempDir();
  const logs: string[] = [];
  const server = new NbdServer({ log: (l) => logs.push(l) });
  servers.push(server);
  for (const [name, e] of Object.entries(exports)) {
    devices.push(e.device);
    server.addExport(name, e.device, { description: e.description, readOnly: e.readOnly });
  }
  const sock = path.join(dir, 'nbd.sock');
  await server.listenUnix(sock);
  return { server, sock, dir, logs, uri: (name = '') => `nbd+unix:///${encodeURIComponent(name)}?socket=${sock}` };
}

async function fileExport(dir: string, size: number, seed = 1): Promise<{ file: string; data: Buffer; device: FileBlockDevice }> {
  const file = path.join(dir, `img-${seed}`);
  const data = await makeImage(file, size, seed);
  return { file, data, device: await FileBlockDevice.open(file) };
}

function expectOk(r: { code: number; stdout: string; stderr: string }): void {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

describe('nbdinfo', () => {
  it('--list shows every export with its description', async () => {
    const s = await start({
      '': { device: new MemoryBlockDevice(MiB), description: 'the default' },
      second: { device: new MemoryBlockDevice(2 * MiB), description: 'another disk' },
    });
    const r = await run('nbdinfo', ['--list', '--json', s.uri()]);
    expectOk(r);
    const j = JSON.parse(r.stdout);
    const byName = Object.fromEntries(j.exports.map((e: { 'export-name': string }) => [e['export-name'], e]));
    expect(Object.keys(byName).sort()).toEqual(['', 'second']);
    expect(byName[''].description).toBe('the default');
    expect(byName.second.description).toBe('another disk');
    expect(byName.second['export-size']).toBe(2 * MiB);
  });

  it('--json reports size, block sizes and exactly the capabilities the device has', async () => {
    const s = await start({ disk: { device: new MemoryBlockDevice(8 * MiB, { minimumBlockSize: 512 }) } });
    const r = await run('nbdinfo', ['--json', s.uri('disk')]);
    expectOk(r);
    const e = JSON.parse(r.stdout).exports[0];
    expect(JSON.parse(r.stdout).structured).toBe(true);
    expect(e).toMatchObject({
      'export-name': 'disk',
      'export-size': 8 * MiB,
      is_read_only: false,
      can_flush: true,
      can_fua: true,
      can_trim: true,
      can_zero: true,
      can_fast_zero: true,
      can_cache: true,
      can_multi_conn: true,
      can_df: true,
      block_size_minimum: 512,
      block_size_preferred: 4096,
      block_size_maximum: 32 * MiB,
    });
    expect(e.contexts).toContain('base:allocation');
  });

  it('--json on a read-only file export advertises read-only without trim or zero', async () => {
    const dir = await tempDir();
    const { device } = await fileExport(dir, MiB);
    const s = await start({ '': { device, readOnly: true } });
    const r = await run('nbdinfo', ['--json', s.uri()]);
    expectOk(r);
    expect(JSON.parse(r.stdout).exports[0]).toMatchObject({ is_read_only: true, can_trim: false, can_zero: false, can_fast_zero: false });
  });

  it('--map shows holes and data of a sparse device', async () => {
    const dev = new MemoryBlockDevice(4 * MiB);
    await dev.write(MiB, Buffer.alloc(MiB, 1));
    const s = await start({ '': { device: dev } });
    const r = await run('nbdinfo', ['--map', '--json', s.uri()]);
    expectOk(r);
    expect(JSON.parse(r.stdout)).toEqual([
      { offset: 0, length: MiB, type: 3, description: 'hole,zero' },
      { offset: MiB, length: MiB, type: 0, description: 'data' },
      { offset: 2 * MiB, length: 2 * MiB, type: 3, description: 'hole,zero' },
    ]);
  });

  it('--map on a device without blockStatus shows one allocated extent', async () => {
    const dir = await tempDir();
    const { device } = await fileExport(dir, 3 * MiB);
    const s = await start({ '': { device } });
    const r = await run('nbdinfo', ['--map', '--json', s.uri()]);
    expectOk(r);
    expect(JSON.parse(r.stdout)).toEqual([{ offset: 0, length: 3 * MiB, type: 0, description: 'data' }]);
  });

  it('an unknown export is refused with NBD_REP_ERR_UNKNOWN', async () => {
    const s = await start({ a: { device: new MemoryBlockDevice(MiB) } });
    const r = await run('nbdinfo', ['--json', s.uri('nope')]);
    expect(r.code).not.toBe(0);
    // libnbd reports NBD_REP_ERR_UNKNOWN as ENOENT.
    expect(r.stderr).toMatch(/No such file or directory for export: nope/);
  });
});

describe('nbdcopy', () => {
  it('copies a file into the export and back, byte for byte', async () => {
    const dir = await tempDir();
    const src = path.join(dir, 'src');
    const data = await makeImage(src, 24 * MiB, 7);
    const s = await start({ '': { device: new MemoryBlockDevice(24 * MiB) } });
    expectOk(await run('nbdcopy', ['--flush', src, s.uri()]));
    const back = path.join(dir, 'back');
    expectOk(await run('nbdcopy', [s.uri(), back]));
    expect((await fsp.readFile(back)).equals(data)).toBe(true);
  });

  it('copies between two exports of the same server over several connections', async () => {
    const dir = await tempDir();
    const a = await fileExport(dir, 16 * MiB, 3);
    const b = await fileExport(dir, 16 * MiB, 4);
    const s = await start({ a: { device: a.device }, b: { device: b.device } });
    expectOk(await run('nbdcopy', ['--connections=4', '--flush', s.uri('a'), s.uri('b')]));
    expect((await fsp.readFile(b.file)).equals(a.data)).toBe(true);
  });

  it('preserves holes: zero ranges of a sparse export read back as zeroes', async () => {
    const dev = new MemoryBlockDevice(8 * MiB);
    const chunk = patternBuffer(MiB, 9);
    await dev.write(3 * MiB, chunk);
    const s = await start({ '': { device: dev } });
    const dir = await tempDir();
    const out = path.join(dir, 'out');
    expectOk(await run('nbdcopy', ['--no-extents', s.uri(), out]));
    const got = await fsp.readFile(out);
    const want = Buffer.alloc(8 * MiB);
    chunk.copy(want, 3 * MiB);
    expect(got.equals(want)).toBe(true);
  });
});

describe('qemu-img', () => {
  it('info reports the virtual size', async () => {
    const s = await start({ '': { device: new MemoryBlockDevice(64 * MiB) } });
    const r = await run('qemu-img', ['info', '--output=json', s.uri()]);
    expectOk(r);
    expect(JSON.parse(r.stdout)['virtual-size']).toBe(64 * MiB);
  });

  it('compare finds the export identical to its file, and notices one changed byte', async () => {
    const dir = await tempDir();
    const { file, device } = await fileExport(dir, 8 * MiB, 5);
    const copy = path.join(dir, 'copy');
    await fsp.copyFile(file, copy);
    const s = await start({ '': { device } });
    expectOk(await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', s.uri(), copy]));
    await device.write(5 * MiB + 3, Buffer.from([0xee ^ (await device.read(5 * MiB + 3, 1))[0]]));
    const r = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', s.uri(), copy]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Content mismatch at offset 5242880/);
  });

  it('convert copies the export to qcow2 and back to a new export', async () => {
    const dir = await tempDir();
    const { data, device } = await fileExport(dir, 8 * MiB, 6);
    const target = new MemoryBlockDevice(8 * MiB);
    const s = await start({ src: { device }, dst: { device: target } });
    const qcow = path.join(dir, 'x.qcow2');
    expectOk(await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', s.uri('src'), qcow]));
    expectOk(await run('qemu-img', ['convert', '-n', '-f', 'qcow2', '-O', 'raw', qcow, s.uri('dst')]));
    expect((await target.read(0, 8 * MiB)).equals(data)).toBe(true);
  });
});

describe('qemu-io', () => {
  const qemuIo = (uri: string, ...cmds: string[]) => run('qemu-io', ['-f', 'raw', uri, ...cmds.flatMap((c) => ['-c', c])]);
  const noMismatch = (r: { code: number; stdout: string; stderr: string }) => {
    expectOk(r);
    expect(r.stdout + r.stderr).not.toMatch(/Pattern verification failed|error|failed/i);
  };

  it('writes a pattern and reads it back', async () => {
    const s = await start({ '': { device: new MemoryBlockDevice(16 * MiB) } });
    noMismatch(await qemuIo(s.uri(), 'write -P 0xab 0 1M', 'read -P 0xab 0 1M', 'write -P 0x5c 3M 64k', 'read -P 0x5c 3M 64k'));
    // The same check must fail on a wrong pattern, or it proves nothing.
    const wrong = await qemuIo(s.uri(), 'read -P 0xcd 0 1M');
    expect(wrong.stdout + wrong.stderr).toMatch(/Pattern verification failed/);
  });

  it('write -z and discard read back as zeroes', async () => {
    const s = await start({ '': { device: new MemoryBlockDevice(16 * MiB) } });
    noMismatch(
      await qemuIo(s.uri(), 'write -P 0x11 0 4M', 'write -z 1M 1M', 'read -P 0 1M 1M', 'discard 2M 1M', 'read -P 0 2M 1M', 'read -P 0x11 0 1M', 'read -P 0x11 3M 1M', 'flush'),
    );
  });

  it('many concurrent aio writes land where they should', async () => {
    const dir = await tempDir();
    const { device } = await fileExport(dir, 16 * MiB, 8);
    const s = await start({ '': { device } });
    const writes = Array.from({ length: 32 }, (_, i) => `aio_write -P ${i + 1} ${i * 256}k 256k`);
    const reads = Array.from({ length: 32 }, (_, i) => `read -P ${i + 1} ${i * 256}k 256k`);
    noMismatch(await qemuIo(s.uri(), ...writes, 'aio_flush', ...reads));
  });

  it('FUA writes and flush succeed on a file export', async () => {
    const dir = await tempDir();
    const { file, device } = await fileExport(dir, 4 * MiB, 2);
    const s = await start({ '': { device } });
    noMismatch(await qemuIo(s.uri(), 'write -f -P 0x77 0 64k', 'flush'));
    const onDisk = await fsp.readFile(file);
    expect(onDisk.subarray(0, 65536).equals(Buffer.alloc(65536, 0x77))).toBe(true);
  });
});

describe('server bookkeeping with real clients', () => {
  it('every connection is gone once the clients exit', async () => {
    const s = await start({ '': { device: new MemoryBlockDevice(MiB) } });
    await Promise.all([run('nbdinfo', [s.uri()]), run('nbdinfo', ['--map', s.uri()]), run('qemu-img', ['info', s.uri()])]);
    await waitFor(() => s.server.connectionCount === 0, 'connections to close');
  });
});
