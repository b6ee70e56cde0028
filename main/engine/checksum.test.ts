import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHECKSUM_BLOCK, crc32c, crc32cBlocks } from './checksum.js';

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
