import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DisconnectedError } from './block-device.js';
import { FileBlockDevice } from './file-device.js';
import { cleanupAll, makeImage, tempDir } from './test-support.js';

afterEach(cleanupAll);

describe('FileBlockDevice', () => {
  it('reads and writes the image file in place', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'img');
    const orig = await makeImage(file, 1 << 20);
    const d = await FileBlockDevice.open(file);
    expect(d.size).toBe(1 << 20);
    expect((await d.read(4096, 8192)).equals(orig.subarray(4096, 12288))).toBe(true);
    await d.write(100, Buffer.from('hello'), { fua: true });
    await d.flush();
    await d.close();
    const now = await fsp.readFile(file);
    expect(now.subarray(100, 105).toString()).toBe('hello');
    expect(now.subarray(0, 100).equals(orig.subarray(0, 100))).toBe(true);
  });

  it('writeZeroes and trim leave zeroes; fastZero fails at once with ENOTSUP', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'img');
    await makeImage(file, 3 << 20);
    const d = await FileBlockDevice.open(file);
    await d.writeZeroes(1000, (2 << 20) + 5);
    await d.trim(0, 10);
    const r = await d.read(0, 3 << 20);
    expect(r.subarray(0, 10).equals(Buffer.alloc(10))).toBe(true);
    expect(r.subarray(1000, 1000 + (2 << 20) + 5).equals(Buffer.alloc((2 << 20) + 5))).toBe(true);
    await expect(d.writeZeroes(0, 4096, { fastZero: true })).rejects.toMatchObject({ errno: 'ENOTSUP' });
    await d.close();
  });

  it('read-only devices refuse writes with EPERM and advertise no trim or zero', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'img');
    await makeImage(file, 65536);
    const d = await FileBlockDevice.open(file, { readOnly: true });
    expect(d.capabilities).toMatchObject({ readOnly: true, canTrim: false, canWriteZeroes: false });
    await expect(d.write(0, Buffer.alloc(1))).rejects.toMatchObject({ errno: 'EPERM' });
    await d.close();
  });

  it('a file that shrank underneath reads as zeroes past its new end', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'img');
    const orig = await makeImage(file, 65536);
    const d = await FileBlockDevice.open(file);
    await fsp.truncate(file, 10_000);
    const r = await d.read(8192, 8192);
    expect(r.subarray(0, 10_000 - 8192).equals(orig.subarray(8192, 10_000))).toBe(true);
    expect(r.subarray(10_000 - 8192).equals(Buffer.alloc(8192 - (10_000 - 8192)))).toBe(true);
    await d.close();
  });

  it('gives clear errors for a missing file and a directory', async () => {
    const dir = await tempDir();
    await expect(FileBlockDevice.open(path.join(dir, 'nope'))).rejects.toThrow(/not found/);
    await expect(FileBlockDevice.open(dir)).rejects.toThrow(/is a directory/);
  });

  it('close waits for requests in flight, then refuses new ones', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'img');
    await makeImage(file, 8 << 20);
    const d = await FileBlockDevice.open(file);
    const reads = Array.from({ length: 8 }, (_, i) => d.read(i << 20, 1 << 20));
    await d.close();
    for (const r of await Promise.all(reads)) expect(r.length).toBe(1 << 20);
    await expect(d.read(0, 1)).rejects.toBeInstanceOf(DisconnectedError);
  });
});
