import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { constants as fsConstants, readFileSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32c as nodeRs } from '@node-rs/crc32';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  alignedWrites,
  CHECKSUM_BLOCK,
  checksummedReads,
  crc32c,
  crc32cAddon,
  crc32cBlocks,
  crc32cBlocksNodeRs,
  crc32cBlocksScratch,
  crc32cNodeRs,
  CRC32C_IMPLEMENTATION,
} from './checksum.js';

// Bitwise CRC32C (reflected, polynomial 0x82f63b78): slow and obviously right, to check the native one against.
function crc32cRef(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe('crc32c', () => {
  it.each<[string, Uint8Array, number]>([
    ['"123456789"', Buffer.from('123456789'), 0xe3069283],
    ['32 bytes of zeros (RFC 3720)', new Uint8Array(32), 0x8a9136aa],
    ['32 bytes of 0xff (RFC 3720)', new Uint8Array(32).fill(0xff), 0x62a8ab43],
    ['32 ascending bytes (RFC 3720)', Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
    ['32 descending bytes (RFC 3720)', Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
    ['nothing', new Uint8Array(0), 0],
  ])('of %s is the known value', (_name, data, crc) => {
    expect(crc32c(data)).toBe(crc);
    expect(crc32cRef(data)).toBe(crc);
  });

  it('equals the bitwise definition for random data', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (data) => crc32c(data) === crc32cRef(data)));
  });

  it('changes when any single bit of a block flips', () => {
    const block = Buffer.from(Array.from({ length: CHECKSUM_BLOCK }, (_, i) => (i * 131 + 7) & 0xff));
    const good = crc32c(block);
    fc.assert(
      fc.property(fc.nat({ max: CHECKSUM_BLOCK * 8 - 1 }), (bit) => {
        const bad = Buffer.from(block);
        bad[bit >> 3]! ^= 1 << (bit & 7);
        return crc32c(bad) !== good;
      }),
    );
  });
});

describe('crc32cBlocks', () => {
  it('gives one CRC per 4 KiB block, equal to crc32c of that block, at any alignment', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 7 }), fc.nat(), (blocks, shift, seed) => {
        const data = Buffer.alloc(blocks * CHECKSUM_BLOCK + 8).subarray(shift, shift + blocks * CHECKSUM_BLOCK);
        for (let i = 0; i < data.length; i++) data[i] = (seed + i * 2654435761) >>> 24;
        const crcs = crc32cBlocks(data);
        expect(crcs).toHaveLength(blocks);
        crcs.forEach((crc, b) => expect(crc).toBe(crc32cRef(data.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK))));
      }),
      { numRuns: 30 },
    );
  });

  it('writes into the given array and returns it', () => {
    const data = Buffer.alloc(2 * CHECKSUM_BLOCK);
    data[CHECKSUM_BLOCK] = 1;
    const out = new Uint32Array(5).fill(7);
    expect(crc32cBlocks(data, out)).toBe(out);
    expect([...out]).toEqual([crc32cRef(data.subarray(0, CHECKSUM_BLOCK)), crc32cRef(data.subarray(CHECKSUM_BLOCK)), 7, 7, 7]);
    expect(out[0]).not.toBe(out[1]);
  });

  it('refuses a length that is not whole blocks, and an output too small', () => {
    expect(() => crc32cBlocks(Buffer.alloc(CHECKSUM_BLOCK + 512))).toThrow(/length 4608 is not a multiple of 4096/);
    expect(() => crc32cBlocks(Buffer.alloc(3 * CHECKSUM_BLOCK), new Uint32Array(2))).toThrow(/out holds 2 CRCs, 3 needed/);
  });
});

describe('crc32cBlocksScratch', () => {
  it('gives the blocks\' CRCs in a shared array, and refuses a length that is not the given block count', () => {
    const data = Buffer.alloc(300 * CHECKSUM_BLOCK);
    for (let i = 0; i < data.length; i += 97) data[i] = i & 0xff;
    const crcs = crc32cBlocksScratch(data, 300);
    expect(crcs.length).toBeGreaterThanOrEqual(300);
    for (const b of [0, 1, 150, 299]) expect(crcs[b]).toBe(crc32cRef(data.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK)));
    expect(crc32cBlocksScratch(data.subarray(0, CHECKSUM_BLOCK), 1)).toBe(crcs);
    expect(() => crc32cBlocksScratch(data.subarray(0, 2 * CHECKSUM_BLOCK), 3)).toThrow(/8192 bytes are not 3 blocks/);
  });
});

/** Reproducible bytes (xorshift32), at `offset` into a larger buffer so views start unaligned. */
function randomBytes(length: number, seed: number, offset = 0): Uint8Array {
  const backing = new Uint8Array(length + offset);
  let x = seed | 1;
  for (let i = 0; i < backing.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    backing[i] = x & 0xff;
  }
  return backing.subarray(offset, offset + length);
}

const LENGTHS = [0, 1, 7, 8, 9, 255, 767, 768, 769, 4095, 4096, 4097, 12287, 12288, 12289, 65536 + 3, 3 * 12288 + 5 * 768 + 13, 1 << 20];

function blocksOf(fn: (data: Uint8Array, blockBytes: number, out: Uint32Array) => void, data: Uint8Array, blockBytes: number): number[] {
  const out = new Uint32Array(data.length / blockBytes + 2).fill(0xdeadbeef);
  fn(data, blockBytes, out);
  expect([...out.subarray(out.length - 2)], 'only the blocks\' entries are written').toEqual([0xdeadbeef, 0xdeadbeef]);
  return [...out.subarray(0, out.length - 2)];
}

describe('the spindle-crc32c addon', () => {
  it('is built and loaded (else: npm rebuild spindle-crc32c), and the engine uses it where it has the CRC instruction', () => {
    expect(crc32cAddon, 'spindle-crc32c did not load').toBeDefined();
    if (crc32cAddon!.hardware) {
      expect(CRC32C_IMPLEMENTATION).toMatch(/^spindle-crc32c \(sse4\.2/);
      expect(crc32c).toBe(crc32cAddon!.crc32c);
    } else {
      // Its portable path is slower than @node-rs/crc32's instructions.
      expect(CRC32C_IMPLEMENTATION).toMatch(/^@node-rs\/crc32 \(spindle-crc32c is on its portable/);
      expect(crc32c).toBe(crc32cNodeRs);
    }
  });

  it('uses the CRC32C instruction where the CPU has SSE4.2', (ctx) => {
    if (process.arch !== 'x64') return ctx.skip(`not x86-64 (${process.arch}): the portable path is expected`);
    const sse42 = /^flags\s*:.*\bsse4_2\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
    expect(crc32cAddon!.hardware).toBe(sse42);
    expect(crc32cAddon!.implementation).toMatch(sse42 ? /sse4\.2/ : /portable/);
  });

  const variants = () => {
    const a = crc32cAddon!;
    return [
      { name: 'addon (active path)', crc: a.crc32c, blocks: a.crc32cBlocks },
      { name: 'addon, portable table path', crc: a.crc32cPortable, blocks: a.crc32cBlocksPortable },
      { name: '@node-rs/crc32 fallback', crc: crc32cNodeRs, blocks: crc32cBlocksNodeRs },
    ];
  };

  it.each(['addon (active path)', 'addon, portable table path', '@node-rs/crc32 fallback'])('%s: known vectors', (name) => {
    const { crc } = variants().find((v) => v.name === name)!;
    expect(crc(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc(new Uint8Array(0))).toBe(0);
  });

  it.each(['addon (active path)', 'addon, portable table path'])('%s: equals @node-rs/crc32 and the bitwise definition at many lengths and alignments', (name) => {
    const { crc } = variants().find((v) => v.name === name)!;
    for (const [k, length] of LENGTHS.entries()) {
      const data = randomBytes(length, 0x9e3779b9 + k, k % 8);
      const want = crc32cRef(data);
      expect(crc(data), `length ${length}`).toBe(want);
      expect(nodeRs(data) >>> 0, `length ${length}`).toBe(want);
      expect(crc(Buffer.from(data.buffer, data.byteOffset, data.length)), `length ${length}, as a Buffer`).toBe(want);
    }
  });

  it.each(['addon (active path)', 'addon, portable table path', '@node-rs/crc32 fallback'])('%s: a seed continues a previous result', (name) => {
    const { crc } = variants().find((v) => v.name === name)!;
    const data = randomBytes(50_000, 7);
    for (const cut of [0, 1, 9, 4096, 12289, 49_999, 50_000]) {
      expect(crc(data.subarray(cut), crc(data.subarray(0, cut))), `cut at ${cut}`).toBe(crc32cRef(data));
    }
    expect(crc(data, undefined)).toBe(crc(data, 0));
  });

  it('takes the seed modulo 2^32, as the @node-rs/crc32 fallback does', () => {
    const data = randomBytes(1000, 3);
    for (const seed of [0, 1, 0xe3069283, 0xffffffff, -1, -123456, 2 ** 32 + 7, 2 ** 40 + 3, 123.9, NaN, Infinity]) {
      const want = crc32cNodeRs(data, seed);
      for (const { name, crc } of variants()) expect(crc(data, seed), `${name}, seed ${seed}`).toBe(want);
    }
  });

  it.each(['addon (active path)', 'addon, portable table path', '@node-rs/crc32 fallback'])('%s: crc32cBlocks equals crc32c of each block, for any block count and alignment', (name) => {
    const { crc, blocks } = variants().find((v) => v.name === name)!;
    for (const count of [0, 1, 2, 3, 4, 5, 6, 7, 256]) {
      for (const shift of [0, 1, 3, 4]) {
        const data = randomBytes(count * CHECKSUM_BLOCK, count * 31 + shift, shift);
        const want = Array.from({ length: count }, (_, b) => crc(data.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK)));
        expect(blocksOf(blocks, data, CHECKSUM_BLOCK), `${count} blocks at offset ${shift}`).toEqual(want);
      }
    }
  });

  it.each(['addon (active path)', 'addon, portable table path'])('%s: crc32cBlocks takes any block size', (name) => {
    const { blocks } = variants().find((v) => v.name === name)!;
    for (const size of [1, 7, 8, 9, 512, 1000, 65536 + 3]) {
      for (const count of [1, 2, 3, 4, 5]) {
        const data = randomBytes(size * count, size + count, count % 8);
        const want = Array.from({ length: count }, (_, b) => crc32cRef(data.subarray(b * size, (b + 1) * size)));
        expect(blocksOf(blocks, data, size), `${count} blocks of ${size}`).toEqual(want);
      }
    }
  });

  it('finds a single flipped bit in any of many blocks', () => {
    const data = Buffer.from(randomBytes(64 * CHECKSUM_BLOCK, 11));
    const good = crc32cBlocks(data).slice();
    fc.assert(
      fc.property(fc.nat({ max: data.length * 8 - 1 }), (bit) => {
        const bad = Buffer.from(data);
        bad[bit >> 3]! ^= 1 << (bit & 7);
        const crcs = crc32cBlocks(bad);
        return crcs.every((c, b) => (c === good[b]) === (b !== bit >> 15));
      }),
      { numRuns: 200 },
    );
  });

  it.each(['addon (active path)', 'addon, portable table path'])('%s: refuses bad arguments with clear errors', (name) => {
    const { crc, blocks } = variants().find((v) => v.name === name)!;
    const call = (fn: unknown, ...args: unknown[]) => () => (fn as (...a: unknown[]) => unknown)(...args);
    const data = new Uint8Array(2 * CHECKSUM_BLOCK);
    const out = new Uint32Array(2);
    expect(call(crc)).toThrow(new TypeError('crc32c: data must be a Uint8Array (or a Buffer)'));
    expect(call(crc, 'text')).toThrow(TypeError);
    expect(call(crc, new Uint16Array(4))).toThrow(/data must be a Uint8Array/);
    expect(call(crc, data.buffer)).toThrow(/data must be a Uint8Array/);
    expect(call(crc, new DataView(data.buffer))).toThrow(/data must be a Uint8Array/);
    expect(call(crc, data, '5')).toThrow(new TypeError('crc32c: seed must be a number (a previous crc32c result) or undefined'));
    expect(call(crc, data, null)).toThrow(TypeError);
    expect(call(blocks)).toThrow(new TypeError('crc32cBlocks: data must be a Uint8Array (or a Buffer)'));
    expect(call(blocks, [1, 2], CHECKSUM_BLOCK, out)).toThrow(TypeError);
    expect(call(blocks, data)).toThrow(new TypeError('crc32cBlocks: blockBytes must be a number'));
    expect(call(blocks, data, '4096', out)).toThrow(TypeError);
    for (const size of [0, -4096, 1.5, NaN, Infinity, 2 ** 53]) {
      expect(call(blocks, data, size, out), `blockBytes ${size}`).toThrow(RangeError);
    }
    expect(call(blocks, data, 0, out)).toThrow(/blockBytes must be a positive integer, not 0/);
    expect(call(blocks, data, CHECKSUM_BLOCK)).toThrow(new TypeError('crc32cBlocks: out must be a Uint32Array'));
    expect(call(blocks, data, CHECKSUM_BLOCK, new Int32Array(2))).toThrow(/out must be a Uint32Array/);
    expect(call(blocks, data, CHECKSUM_BLOCK, [0, 0])).toThrow(/out must be a Uint32Array/);
    expect(call(blocks, data, 3000, out)).toThrow(new RangeError('crc32cBlocks: length 8192 is not a multiple of 3000'));
    expect(call(blocks, data, CHECKSUM_BLOCK, new Uint32Array(1))).toThrow(new RangeError('crc32cBlocks: out holds 1 CRCs, 2 needed'));
    // Nothing was written by the calls that threw, and good calls still work.
    expect([...out]).toEqual([0, 0]);
    blocks(data, CHECKSUM_BLOCK, out);
    expect([...out]).toEqual([crc32cRef(data.subarray(0, CHECKSUM_BLOCK)), crc32cRef(data.subarray(CHECKSUM_BLOCK))]);
  });

  it('the @node-rs/crc32 fallback refuses what the addon refuses, with the same messages', () => {
    const data = new Uint8Array(2 * CHECKSUM_BLOCK);
    expect(() => crc32cBlocksNodeRs(data, 3000, new Uint32Array(2))).toThrow(new RangeError('crc32cBlocks: length 8192 is not a multiple of 3000'));
    expect(() => crc32cBlocksNodeRs(data, CHECKSUM_BLOCK, new Uint32Array(1))).toThrow(new RangeError('crc32cBlocks: out holds 1 CRCs, 2 needed'));
  });

  it('loads again in another worker thread (Node-API, context-aware)', async () => {
    const { Worker } = await import('node:worker_threads');
    const script = `
      const { parentPort } = require('node:worker_threads');
      const a = require('spindle-crc32c');
      parentPort.postMessage(a.crc32c(Buffer.from('123456789')));
    `;
    const worker = new Worker(script, { eval: true });
    const result = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(result).toBe(0xe3069283);
  });
});

describe('the addon\'s checksummed file reads (preadBlocks, checksumFileBlocks)', () => {
  const reads = crc32cAddon?.hardware && crc32cAddon.preadBlocks ? crc32cAddon : undefined;
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** An image of random bytes, 1 MiB and a bit (several of the native side's 128 KiB pieces, and a short last block). */
  async function image(): Promise<{ fd: number; bytes: Buffer; close: () => Promise<void> }> {
    dir = await mkdtemp(path.join(tmpdir(), 'spindle-crc-'));
    const file = path.join(dir, 'img');
    const bytes = cryptoRandomBytes(1024 * 1024 + 3 * CHECKSUM_BLOCK + 1000);
    await writeFile(file, bytes);
    const fh = await open(file, 'r');
    return { fd: fh.fd, bytes, close: () => fh.close() };
  }

  it('read the bytes and give each block\'s CRC, across pieces and at any position', async (ctx) => {
    if (!reads) return ctx.skip(`the addon's hardware path is not here (${CRC32C_IMPLEMENTATION})`);
    const { fd, bytes, close } = await image();
    try {
      for (const [position, length] of [[0, 1024 * 1024], [8192 + 17, 200 * CHECKSUM_BLOCK], [4096, CHECKSUM_BLOCK]] as const) {
        const target = Buffer.alloc(length, 0xee);
        const crcs = new Uint32Array(length / CHECKSUM_BLOCK);
        expect(await reads.preadBlocks!(fd, target, position, CHECKSUM_BLOCK, crcs)).toBe(length);
        expect(target.equals(bytes.subarray(position, position + length))).toBe(true);
        expect([...crcs]).toEqual([...crc32cBlocks(bytes.subarray(position, position + length))]);
        const only = new Uint32Array(length / CHECKSUM_BLOCK);
        expect(await reads.checksumFileBlocks!(fd, position, length, CHECKSUM_BLOCK, only)).toBe(length);
        expect([...only]).toEqual([...crcs]);
      }
    } finally {
      await close();
    }
  });

  it('stop at the end of the file, with CRCs for the whole blocks read and none after', async (ctx) => {
    if (!reads) return ctx.skip(`the addon's hardware path is not here (${CRC32C_IMPLEMENTATION})`);
    const { fd, bytes, close } = await image();
    try {
      // From 2 blocks before the last whole one: 3 whole blocks, then 1000 bytes, then the end.
      const position = bytes.length - 3 * CHECKSUM_BLOCK - 1000;
      const crcs = new Uint32Array(5).fill(7);
      const target = Buffer.alloc(5 * CHECKSUM_BLOCK);
      expect(await reads.preadBlocks!(fd, target, position, CHECKSUM_BLOCK, crcs)).toBe(3 * CHECKSUM_BLOCK + 1000);
      expect([...crcs.subarray(0, 3)]).toEqual([...crc32cBlocks(bytes.subarray(position, position + 3 * CHECKSUM_BLOCK))]);
      expect([...crcs.subarray(3)]).toEqual([7, 7]);
      const only = new Uint32Array(5).fill(7);
      expect(await reads.checksumFileBlocks!(fd, position, 5 * CHECKSUM_BLOCK, CHECKSUM_BLOCK, only)).toBe(3 * CHECKSUM_BLOCK + 1000);
      expect([...only]).toEqual([...crcs]);
    } finally {
      await close();
    }
  });

  it('reject a failed read with the errno\'s code, and refuse bad arguments at once', async (ctx) => {
    if (!reads) return ctx.skip(`the addon's hardware path is not here (${CRC32C_IMPLEMENTATION})`);
    const { fd, close } = await image();
    await close(); // fd is now closed: pread fails with EBADF
    await expect(reads.checksumFileBlocks!(fd, 0, CHECKSUM_BLOCK, CHECKSUM_BLOCK, new Uint32Array(1))).rejects.toMatchObject({ code: 'EBADF' });
    const crcs = new Uint32Array(2);
    expect(() => reads.preadBlocks!(-1, Buffer.alloc(8192), 0, CHECKSUM_BLOCK, crcs)).toThrow(RangeError);
    expect(() => reads.preadBlocks!(0, 'no' as unknown as Buffer, 0, CHECKSUM_BLOCK, crcs)).toThrow(new TypeError('preadBlocks: target must be a Uint8Array (or a Buffer)'));
    expect(() => reads.preadBlocks!(0, Buffer.alloc(8192), 0.5, CHECKSUM_BLOCK, crcs)).toThrow(RangeError);
    expect(() => reads.preadBlocks!(0, Buffer.alloc(8192), 0, 3000, crcs)).toThrow(new RangeError('preadBlocks: length 8192 is not a multiple of 3000'));
    expect(() => reads.preadBlocks!(0, Buffer.alloc(8192), 0, CHECKSUM_BLOCK, new Uint32Array(1))).toThrow(new RangeError('preadBlocks: out holds 1 CRCs, 2 needed'));
    expect(() => reads.checksumFileBlocks!(0, 0, 8192, 1 << 20, crcs)).toThrow(RangeError);
    expect(() => reads.checksumFileBlocks!(0, 0, 8192, CHECKSUM_BLOCK, [] as unknown as Uint32Array)).toThrow(new TypeError('checksumFileBlocks: out must be a Uint32Array'));
  });

  it('read an O_DIRECT descriptor into any buffer (through aligned scratch), with the same bytes and CRCs', async (ctx) => {
    if (!reads) return ctx.skip(`the addon's hardware path is not here (${CRC32C_IMPLEMENTATION})`);
    const { bytes, close } = await image();
    await close();
    const fh = await open(path.join(dir!, 'img'), fsConstants.O_RDONLY | fsConstants.O_DIRECT).catch((error: Error) => error);
    if (fh instanceof Error) return ctx.skip(`${tmpdir()} takes no O_DIRECT (${fh.message})`);
    try {
      // More than one 1 MiB direct piece, into a buffer at an odd address; then up to the end of the file.
      const length = 1024 * 1024 + 2 * CHECKSUM_BLOCK;
      const target = Buffer.alloc(length + 1, 0xee).subarray(1);
      const crcs = new Uint32Array(length / CHECKSUM_BLOCK);
      expect(await reads.preadBlocks!(fh.fd, target, CHECKSUM_BLOCK, CHECKSUM_BLOCK, crcs)).toBe(length);
      expect(target.equals(bytes.subarray(CHECKSUM_BLOCK, CHECKSUM_BLOCK + length))).toBe(true);
      expect([...crcs]).toEqual([...crc32cBlocks(bytes.subarray(CHECKSUM_BLOCK, CHECKSUM_BLOCK + length))]);
      const only = new Uint32Array(length / CHECKSUM_BLOCK);
      expect(await reads.checksumFileBlocks!(fh.fd, CHECKSUM_BLOCK, length, CHECKSUM_BLOCK, only)).toBe(length);
      expect([...only]).toEqual([...crcs]);
      const last = bytes.length - (bytes.length % CHECKSUM_BLOCK) - CHECKSUM_BLOCK;
      const tail = Buffer.alloc(3 * CHECKSUM_BLOCK);
      expect(await reads.preadBlocks!(fh.fd, tail, last, CHECKSUM_BLOCK, new Uint32Array(3))).toBe(bytes.length - last);
      expect(tail.subarray(0, bytes.length - last).equals(bytes.subarray(last))).toBe(true);
      // A position O_DIRECT cannot take (not even 512-byte aligned): the kernel's EINVAL.
      await expect(reads.preadBlocks!(fh.fd, Buffer.alloc(CHECKSUM_BLOCK), 100, CHECKSUM_BLOCK, new Uint32Array(1))).rejects.toMatchObject({ code: 'EINVAL' });
    } finally {
      await fh.close();
    }
  });

  it('are what the engine hands image-file members (checksummedReads)', (ctx) => {
    if (!reads) return ctx.skip(`the addon's hardware path is not here (${CRC32C_IMPLEMENTATION})`);
    expect(checksummedReads?.preadBlocks).toBe(reads.preadBlocks);
    expect(checksummedReads?.checksumFileBlocks).toBe(reads.checksumFileBlocks);
  });
});

describe('the addon\'s aligned writes (pwriteAligned)', () => {
  const writes = crc32cAddon?.pwriteAligned ? crc32cAddon : undefined;
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('write any buffer through an O_DIRECT descriptor, across pieces, at a 4 KiB position', async (ctx) => {
    if (!writes) return ctx.skip(`the addon did not load (${CRC32C_IMPLEMENTATION})`);
    dir = await mkdtemp(path.join(tmpdir(), 'spindle-pwrite-'));
    const file = path.join(dir, 'img');
    await writeFile(file, Buffer.alloc(4 * 1024 * 1024));
    let fh;
    try {
      fh = await open(file, fsConstants.O_RDWR | fsConstants.O_DIRECT);
    } catch (error) {
      return ctx.skip(`${tmpdir()} takes no O_DIRECT (${(error as Error).message})`);
    }
    try {
      // 2 MiB and 3 blocks from an odd offset of a larger buffer: not aligned in memory, more than one 1 MiB piece.
      const data = cryptoRandomBytes(2 * 1024 * 1024 + 3 * CHECKSUM_BLOCK + 1).subarray(1);
      expect(await writes.pwriteAligned!(fh.fd, data, 3 * CHECKSUM_BLOCK)).toBe(data.length);
      const back = readFileSync(file);
      expect(back.subarray(3 * CHECKSUM_BLOCK, 3 * CHECKSUM_BLOCK + data.length).equals(data)).toBe(true);
      expect(back.subarray(0, 3 * CHECKSUM_BLOCK).every((b) => b === 0)).toBe(true);
    } finally {
      await fh.close();
    }
  });

  it('reject a failed write with the errno\'s code, and refuse what a direct write cannot take at once', async (ctx) => {
    if (!writes) return ctx.skip(`the addon did not load (${CRC32C_IMPLEMENTATION})`);
    dir = await mkdtemp(path.join(tmpdir(), 'spindle-pwrite-'));
    const fh = await open(path.join(dir, 'img'), 'w');
    const fd = fh.fd;
    await fh.close(); // fd is now closed: pwrite fails with EBADF
    await expect(writes.pwriteAligned!(fd, Buffer.alloc(CHECKSUM_BLOCK), 0)).rejects.toMatchObject({ code: 'EBADF' });
    expect(() => writes.pwriteAligned!(fd, Buffer.alloc(1000), 0)).toThrow(new RangeError('pwriteAligned: position 0 and length 1000 must be multiples of 4096'));
    expect(() => writes.pwriteAligned!(fd, Buffer.alloc(CHECKSUM_BLOCK), 512)).toThrow(RangeError);
    expect(() => writes.pwriteAligned!(fd, 'no' as unknown as Buffer, 0)).toThrow(new TypeError('pwriteAligned: data must be a Uint8Array (or a Buffer)'));
    expect(() => writes.pwriteAligned!(-1, Buffer.alloc(CHECKSUM_BLOCK), 0)).toThrow(RangeError);
  });

  it('are what the engine hands image-file members (alignedWrites)', (ctx) => {
    if (!writes) return ctx.skip(`the addon did not load (${CRC32C_IMPLEMENTATION})`);
    expect(alignedWrites?.pwriteAligned).toBe(writes.pwriteAligned);
  });
});
