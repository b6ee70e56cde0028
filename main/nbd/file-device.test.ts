import fs, { promises as fsp } from 'node:fs';
import { crc32c } from '@node-rs/crc32';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DisconnectedError } from './block-device.js';
import { FileBlockDevice, type AlignedWrites, type ChecksummedReads } from './file-device.js';
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

  describe('checksummed reads (readIntoCrc32c, crc32cBlocks)', () => {
    // A stand-in in JavaScript for the engine's native reads (spindle-crc32c, tested in
    // main/engine/checksum.test.ts): what is tested here is the device around them.
    const crcOf = (b: Uint8Array): number => crc32c(b) >>> 0;
    const blocksInto = (data: Uint8Array, blockBytes: number, crcs: Uint32Array): void => {
      for (let i = 0; i * blockBytes < data.length; i++) crcs[i] = crcOf(data.subarray(i * blockBytes, (i + 1) * blockBytes));
    };
    const pread = (fd: number, target: Uint8Array, position: number): Promise<number> =>
      new Promise((resolve, reject) => fs.read(fd, target, 0, target.length, position, (err, n) => (err ? reject(err) : resolve(n))));
    let calls = 0;
    const stand: ChecksummedReads = {
      async preadBlocks(fd, target, position, blockBytes, crcs) {
        calls++;
        const n = await pread(fd, target, position);
        blocksInto(target.subarray(0, n - (n % blockBytes)), blockBytes, crcs);
        return n;
      },
      async checksumFileBlocks(fd, position, length, blockBytes, crcs) {
        calls++;
        const scratch = Buffer.alloc(length);
        const n = await pread(fd, scratch, position);
        blocksInto(scratch.subarray(0, n - (n % blockBytes)), blockBytes, crcs);
        return n;
      },
      crc32cBlocks: blocksInto,
    };

    it('are offered only when the opener gives native reads', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'img');
      await makeImage(file, 65536);
      const plain = await FileBlockDevice.open(file);
      expect(plain.readIntoCrc32c).toBeUndefined();
      expect(plain.crc32cBlocks).toBeUndefined();
      await plain.close();
    });

    it('give the bytes and their CRCs; past the end of a file that shrank, zeroes and zeroes\' CRCs', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'img');
      const orig = await makeImage(file, 65536);
      const d = await FileBlockDevice.open(file, { checksummedReads: stand });
      const target = Buffer.alloc(16384);
      const crcs = new Uint32Array(4);
      await d.readIntoCrc32c!(8192, target, 4096, crcs);
      expect(target.equals(orig.subarray(8192, 24576))).toBe(true);
      expect([...crcs]).toEqual([0, 1, 2, 3].map((i) => crcOf(orig.subarray(8192 + i * 4096, 8192 + (i + 1) * 4096))));
      // The file now ends 1000 bytes into the second block of the range.
      await fsp.truncate(file, 8192 + 4096 + 1000);
      const expected = Buffer.alloc(16384);
      orig.copy(expected, 0, 8192, 8192 + 4096 + 1000);
      await d.readIntoCrc32c!(8192, target, 4096, crcs);
      expect(target.equals(expected)).toBe(true);
      const want = [0, 1, 2, 3].map((i) => crcOf(expected.subarray(i * 4096, (i + 1) * 4096)));
      expect([...crcs]).toEqual(want);
      const only = new Uint32Array(4);
      await d.crc32cBlocks!(8192, 16384, 4096, only);
      expect([...only]).toEqual(want);
      await d.close();
    });

    it('refuse a range outside the file or not in whole blocks (EINVAL), and reads after close', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'img');
      await makeImage(file, 65536);
      const d = await FileBlockDevice.open(file, { checksummedReads: stand });
      calls = 0;
      await expect(d.readIntoCrc32c!(61440, Buffer.alloc(8192), 4096, new Uint32Array(2))).rejects.toMatchObject({ errno: 'EINVAL' });
      await expect(d.crc32cBlocks!(0, 6000, 4096, new Uint32Array(2))).rejects.toMatchObject({ errno: 'EINVAL' });
      await expect(d.crc32cBlocks!(0, 8192, 4096, new Uint32Array(1))).rejects.toMatchObject({ errno: 'EINVAL' });
      expect(calls).toBe(0);
      await d.close();
      await expect(d.crc32cBlocks!(0, 4096, 4096, new Uint32Array(1))).rejects.toBeInstanceOf(DisconnectedError);
    });

    it('turn a failed native read into the device\'s errors', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'img');
      await makeImage(file, 65536);
      const failing = (code: string): ChecksummedReads => ({
        ...stand,
        checksumFileBlocks: () => Promise.reject(Object.assign(new Error(`${code}: it failed`), { code })),
      });
      const io = await FileBlockDevice.open(file, { checksummedReads: failing('EIO') });
      await expect(io.crc32cBlocks!(0, 4096, 4096, new Uint32Array(1))).rejects.toMatchObject({ errno: 'EIO' });
      await io.close();
      const gone = await FileBlockDevice.open(file, { checksummedReads: failing('EBADF') });
      await expect(gone.crc32cBlocks!(0, 4096, 4096, new Uint32Array(1))).rejects.toBeInstanceOf(DisconnectedError);
      await gone.close();
    });
  });
  describe('uncached writes (writeUncached)', () => {
    // A stand-in for the engine's native write (spindle-crc32c's pwriteAligned, tested in
    // main/engine/checksum.test.ts), which takes any buffer on the O_DIRECT descriptor:
    // this one bounces through a plain descriptor of its own, and counts its calls.
    function standIn(file: string, fail?: string): AlignedWrites & { calls: number[] } {
      const calls: number[] = [];
      return {
        calls,
        async pwriteAligned(fd, data, position) {
          calls.push(fd);
          if (fail) throw Object.assign(new Error(`${fail}: it failed`), { code: fail });
          const fh = await fsp.open(file, 'r+');
          try {
            await fh.write(data, 0, data.length, position);
          } finally {
            await fh.close();
          }
          return data.length;
        },
      };
    }

    it('are offered only when the opener gives aligned writes, and not read-only', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'img');
      await makeImage(file, 65536);
      const plain = await FileBlockDevice.open(file);
      expect(plain.writeUncached).toBeUndefined();
      await plain.close();
      const readOnly = await FileBlockDevice.open(file, { readOnly: true, alignedWrites: standIn(file) });
      expect(readOnly.writeUncached).toBeUndefined();
      await readOnly.close();
    });

    it('write whole 4 KiB blocks on a descriptor of their own (O_DIRECT) that reads see at once; other ranges go through write()', async (ctx) => {
      const dir = await tempDir();
      const file = path.join(dir, 'img');
      const orig = await makeImage(file, 1 << 20);
      const probe = await fsp.open(file, fs.constants.O_WRONLY | fs.constants.O_DIRECT).catch((error: Error) => error);
      if (probe instanceof Error) return ctx.skip(`${dir} takes no O_DIRECT (${probe.message})`);
      await probe.close();
      const stand = standIn(file);
      const d = await FileBlockDevice.open(file, { alignedWrites: stand });
      const blocks = Buffer.alloc(3 * 4096, 0xab);
      await d.writeUncached!(8192, blocks);
      expect(stand.calls.length).toBe(1);
      // Not the device's own descriptor: a second one, opened for these writes.
      const ownFd = (d as unknown as { fd: number }).fd;
      expect(stand.calls[0]).not.toBe(ownFd);
      expect((await d.read(8192, blocks.length)).equals(blocks)).toBe(true);
      // Not whole blocks: through the page cache, the stand-in untouched.
      await d.writeUncached!(100, Buffer.from('edge'));
      await d.writeUncached!(4096, Buffer.alloc(1000, 1));
      expect(stand.calls.length).toBe(1);
      await d.flush();
      await d.close();
      const now = await fsp.readFile(file);
      expect(now.subarray(8192, 8192 + blocks.length).equals(blocks)).toBe(true);
      expect(now.subarray(100, 104).toString()).toBe('edge');
      expect(now.subarray(4096, 5096).equals(Buffer.alloc(1000, 1))).toBe(true);
      expect(now.subarray(5096, 8192).equals(orig.subarray(5096, 8192))).toBe(true);
      await expect(d.writeUncached!(0, Buffer.alloc(4096))).rejects.toBeInstanceOf(DisconnectedError);
    });

    it('uncached checksummed reads of whole blocks use the same descriptor when the reads take one (direct), and fall back when it refuses', async (ctx) => {
      const dir = await tempDir();
      const file = path.join(dir, 'img');
      const orig = await makeImage(file, 65536);
      const probe = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT).catch((error: Error) => error);
      if (probe instanceof Error) return ctx.skip(`${dir} takes no O_DIRECT (${probe.message})`);
      await probe.close();
      const fds: number[] = [];
      let refuse = false;
      const reads: ChecksummedReads = {
        direct: true,
        async preadBlocks(fd, target, position, blockBytes, crcs) {
          fds.push(fd);
          if (refuse) throw Object.assign(new Error('EINVAL: it failed'), { code: 'EINVAL' });
          const fh = await fsp.open(file, 'r');
          try {
            const { bytesRead } = await fh.read(target, 0, target.length, position);
            for (let i = 0; i * blockBytes < bytesRead; i++) crcs[i] = crc32c(target.subarray(i * blockBytes, (i + 1) * blockBytes)) >>> 0;
            return bytesRead;
          } finally {
            await fh.close();
          }
        },
        checksumFileBlocks: () => Promise.reject(new Error('not used here')),
        crc32cBlocks: () => {},
      };
      const d = await FileBlockDevice.open(file, { checksummedReads: reads });
      const ownFd = (d as unknown as { fd: number }).fd;
      const target = Buffer.alloc(8192);
      const crcs = new Uint32Array(2);
      await d.readIntoCrc32c!(4096, target, 4096, crcs);
      await d.readIntoCrc32c!(4096, target, 4096, crcs, { uncached: true });
      expect(target.equals(orig.subarray(4096, 12288))).toBe(true);
      // Cached as asked, then the O_DIRECT descriptor.
      expect(fds[0]).toBe(ownFd);
      expect(fds[1]).not.toBe(ownFd);
      // Not whole 4 KiB blocks: the usual descriptor.
      await d.readIntoCrc32c!(4096, Buffer.alloc(2048), 1024, new Uint32Array(2), { uncached: true });
      expect(fds[2]).toBe(ownFd);
      // Refused: once more on the usual descriptor, and from then on only there.
      refuse = true;
      await expect(d.readIntoCrc32c!(0, target, 4096, crcs, { uncached: true })).rejects.toThrow();
      expect(fds.slice(3)).toEqual([fds[1], ownFd]);
      refuse = false;
      await d.readIntoCrc32c!(0, target, 4096, crcs, { uncached: true });
      expect(fds[5]).toBe(ownFd);
      expect(target.equals(orig.subarray(0, 8192))).toBe(true);
      await d.close();
    });

    it('fall back to write() for good when the descriptor refuses them (EINVAL); other errors are the device\'s', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'img');
      await makeImage(file, 65536);
      const refusing = standIn(file, 'EINVAL');
      const d = await FileBlockDevice.open(file, { alignedWrites: refusing });
      await d.writeUncached!(4096, Buffer.alloc(4096, 9));
      await d.writeUncached!(8192, Buffer.alloc(4096, 8));
      expect(refusing.calls.length).toBe(1);
      expect((await d.read(4096, 8192)).equals(Buffer.concat([Buffer.alloc(4096, 9), Buffer.alloc(4096, 8)]))).toBe(true);
      await d.close();
      const io = await FileBlockDevice.open(file, { alignedWrites: standIn(file, 'EIO') });
      await expect(io.writeUncached!(0, Buffer.alloc(4096))).rejects.toMatchObject({ errno: 'EIO' });
      await expect(io.writeUncached!(65536, Buffer.alloc(4096))).rejects.toMatchObject({ errno: 'EINVAL' });
      await io.close();
    });
  });
});
