import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  computeP,
  computeQ,
  gfInverse,
  gfMul,
  gfPow,
  MAX_PARITY_DATA_UNITS,
  reconstruct,
  updateParity,
  type ParityRow,
  type RowUnit,
} from './parity.js';

// An independent model of the math: shift-and-add multiplication, no tables.
function mulRef(a: number, b: number): number {
  let r = 0;
  for (; b; b >>= 1) {
    if (b & 1) r ^= a;
    a <<= 1;
    if (a & 0x100) a ^= 0x11d;
  }
  return r;
}
function powRef(i: number): number {
  let x = 1;
  for (let t = 0; t < i; t++) x = mulRef(x, 2);
  return x;
}
function pRef(data: readonly Buffer[]): Buffer {
  const out = Buffer.alloc(data[0]!.length);
  for (const d of data) for (let j = 0; j < out.length; j++) out[j]! ^= d[j]!;
  return out;
}
/** mulRef tabulated once, so the reference keeps up with 64 KiB units. */
const productsRef = Uint8Array.from({ length: 65536 }, (_, ab) => mulRef(ab >> 8, ab & 0xff));
function qRef(data: readonly Buffer[]): Buffer {
  const out = Buffer.alloc(data[0]!.length);
  data.forEach((d, i) => {
    const row = powRef(i) << 8;
    for (let j = 0; j < out.length; j++) out[j]! ^= productsRef[row | d[j]!]!;
  });
  return out;
}

/** A buffer of `length` bytes starting `shift` bytes into a fresh allocation (shift ≠ 0: misaligned). */
function placed(content: Uint8Array, shift: number): Buffer {
  const b = Buffer.alloc(content.length + 8).subarray(shift, shift + content.length);
  b.set(content);
  return b;
}

type Fill = 'random' | 'zero' | 'ones';
/** A row of `units` data units of `length` bytes, each unit random, all-zero or all-0xff, each maybe misaligned. */
function rowOf(units: fc.Arbitrary<number>, length: fc.Arbitrary<number>, alignedOnly = false) {
  return fc
    .tuple(units, length)
    .chain(([k, len]) =>
      fc.array(
        fc.tuple(
          fc.constantFrom<Fill>('random', 'random', 'zero', 'ones'),
          fc.uint8Array({ minLength: len, maxLength: len }),
          alignedOnly ? fc.constant(0) : fc.constantFrom(0, 0, 0, 1, 3, 4),
        ),
        { minLength: k, maxLength: k },
      ),
    )
    .map((units) =>
      units.map(([fill, bytes, shift]) =>
        placed(fill === 'random' ? bytes : new Uint8Array(bytes.length).fill(fill === 'ones' ? 0xff : 0), shift),
      ),
    );
}

const shortLength = fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 41, max: 300 }));
/** Every set of units a raid5 (withQ false) or raid6 row of k data units can lose and rebuild. */
function allowedLosses(k: number, withQ: boolean): RowUnit[][] {
  const units: RowUnit[] = [...Array.from({ length: k }, (_, i) => i), 'p', ...(withQ ? (['q'] as const) : [])];
  const sets: RowUnit[][] = units.map((u) => [u]);
  if (withQ) for (let i = 0; i < units.length; i++) for (let j = i + 1; j < units.length; j++) sets.push([units[i]!, units[j]!]);
  return sets;
}

describe('GF(2^8) with 0x11d and g = 2', () => {
  it('matches shift-and-add multiplication for every pair', () => {
    for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) if (gfMul(a, b) !== mulRef(a, b)) expect(gfMul(a, b)).toBe(mulRef(a, b));
  });

  it('has g of order 255, g^8 = 0x1d, and inverses', () => {
    expect(gfPow(0)).toBe(1);
    expect(gfPow(8)).toBe(0x1d);
    expect(gfPow(255)).toBe(1);
    expect(gfPow(-1)).toBe(gfPow(254));
    expect(new Set(Array.from({ length: 255 }, (_, i) => gfPow(i))).size).toBe(255);
    for (let a = 1; a < 256; a++) expect(gfMul(a, gfInverse(a))).toBe(1);
    expect(() => gfInverse(0)).toThrow(RangeError);
  });
});

describe('computeP / computeQ', () => {
  it('give the known answers of a tiny row', () => {
    const data = [Buffer.from([0x01, 0x80, 0xff]), Buffer.from([0x01, 0x80, 0xff]), Buffer.from([0x00, 0x01, 0x02])];
    const p = Buffer.alloc(3);
    const q = Buffer.alloc(3);
    computeP(data, p);
    computeQ(data, q);
    expect([...p]).toEqual([0x00, 0x01, 0x02]);
    // Q byte 1: 1·0x80 ⊕ 2·0x80 ⊕ 4·0x01 = 0x80 ⊕ 0x1d ⊕ 0x04
    expect([...q]).toEqual([0x01 ^ 0x02, 0x80 ^ 0x1d ^ 0x04, 0xff ^ mulRef(2, 0xff) ^ mulRef(4, 0x02)]);
  });

  it('equal the reference for random rows of any width, length and alignment', () => {
    fc.assert(
      fc.property(rowOf(fc.integer({ min: 1, max: 11 }), shortLength), fc.constantFrom(0, 1, 4), (data, shift) => {
        const p = placed(new Uint8Array(data[0]!.length).fill(0xaa), shift);
        const q = placed(new Uint8Array(data[0]!.length).fill(0x55), shift);
        computeP(data, p);
        computeQ(data, q);
        expect(p.equals(pRef(data))).toBe(true);
        expect(q.equals(qRef(data))).toBe(true);
      }),
    );
  });

  it('equal the reference on full 64 KiB units (the word kernels end to end)', () => {
    fc.assert(
      fc.property(rowOf(fc.integer({ min: 1, max: 10 }), fc.constant(65536), true), (data) => {
        const p = Buffer.alloc(65536);
        const q = Buffer.alloc(65536);
        computeP(data, p);
        computeQ(data, q);
        expect(p.equals(pRef(data))).toBe(true);
        expect(q.equals(qRef(data))).toBe(true);
      }),
      // Shrinking 64 KiB arrays takes minutes; the short-unit properties above shrink failures instead.
      { numRuns: 8, endOnFailure: true },
    );
  });

  it('use g^i for i up to 254 (a row of 255 data units)', () => {
    const data = Array.from({ length: MAX_PARITY_DATA_UNITS }, (_, i) => Buffer.from([i, 0x80, 255 - i, 1, 2, 3, 4, 5, 6]));
    const q = Buffer.alloc(9);
    computeQ(data, q);
    expect(q.equals(qRef(data))).toBe(true);
    expect(() => computeQ([...data, data[0]!], Buffer.alloc(9))).toThrow(/at most 255 data units/);
  });

  it('refuse units of different lengths and outputs that alias inputs', () => {
    const a = Buffer.alloc(16);
    const b = Buffer.alloc(16);
    expect(() => computeP([a, Buffer.alloc(8)], b)).toThrow(/every unit must be 16 bytes, got one of 8/);
    expect(() => computeP([a, b], b)).toThrow(/overlaps/);
    expect(() => computeQ([a, b], a.subarray(0, 16))).toThrow(/overlaps/);
    expect(() => computeP([], a)).toThrow(/at least one data unit/);
  });
});

describe('reconstruct', () => {
  function check(data: Buffer[], withQ: boolean, lost: readonly RowUnit[], garbage: number): void {
    const p = Buffer.alloc(data[0]!.length);
    const q = Buffer.alloc(data[0]!.length);
    computeP(data, p);
    computeQ(data, q);
    const want = { data: data.map((d) => Buffer.from(d)), p: Buffer.from(p), q: Buffer.from(q) };
    const row: ParityRow = withQ ? { data, p, q } : { data, p };
    for (const unit of lost) (unit === 'p' ? p : unit === 'q' ? q : data[unit]!).fill(garbage);
    reconstruct(row, lost);
    data.forEach((d, i) => expect(d.equals(want.data[i]!), `data unit ${i}`).toBe(true));
    expect(p.equals(want.p), 'P').toBe(true);
    if (withQ) expect(q.equals(want.q), 'Q').toBe(true);
  }

  it('rebuilds any one lost unit of a raid5 row (width 3..12)', () => {
    fc.assert(
      fc.property(
        rowOf(fc.integer({ min: 2, max: 11 }), shortLength).chain((data) =>
          fc.tuple(fc.constant(data), fc.constantFrom(...allowedLosses(data.length, false)), fc.integer({ min: 0, max: 255 })),
        ),
        ([data, lost, garbage]) => check(data, false, lost, garbage),
      ),
    );
  });

  it('rebuilds any one or two lost units of a raid6 row (width 4..12)', () => {
    fc.assert(
      fc.property(
        rowOf(fc.integer({ min: 2, max: 10 }), shortLength).chain((data) =>
          fc.tuple(fc.constant(data), fc.constantFrom(...allowedLosses(data.length, true)), fc.integer({ min: 0, max: 255 })),
        ),
        ([data, lost, garbage]) => check(data, true, lost, garbage),
      ),
      { numRuns: 300 },
    );
  });

  it('rebuilds every pair of a 6+2 row of 64 KiB units', () => {
    const data = Array.from({ length: 6 }, (_, i) => Buffer.from(Array.from({ length: 65536 }, (_, j) => (j * 31 + i * 97 + (j >> 9)) & 0xff)));
    for (const lost of allowedLosses(6, true)) check(data, true, lost, 0x5a);
  });

  it('rebuilds a data unit from Q alone when P is not given', () => {
    const data = [Buffer.from('abcdefghij'), Buffer.from('klmnopqrst'), Buffer.from('0123456789')];
    const q = Buffer.alloc(10);
    computeQ(data, q);
    const lost = Buffer.from(data[2]!);
    data[2]!.fill(0);
    reconstruct({ data, q }, [2]);
    expect(data[2]!.equals(lost)).toBe(true);
  });

  it('refuses what the parity cannot determine, and malformed requests, before writing anything', () => {
    const data = [Buffer.alloc(8, 1), Buffer.alloc(8, 2), Buffer.alloc(8, 3)];
    const p = Buffer.alloc(8, 9);
    const q = Buffer.alloc(8, 9);
    expect(() => reconstruct({ data, p }, [0, 1])).toThrow(/cannot rebuild 2 data unit\(s\) from 1 surviving parity/);
    expect(() => reconstruct({ data, p }, [0, 'p'])).toThrow(/from 0 surviving parity/);
    expect(() => reconstruct({ data, p, q }, [0, 1, 2])).toThrow(/cannot rebuild 3/);
    expect(() => reconstruct({ data, p, q }, [0, 'p', 'q'])).toThrow(/cannot rebuild 1 data unit\(s\) from 0/);
    expect(() => reconstruct({ data, p }, ['q'])).toThrow(/no Q buffer/);
    expect(() => reconstruct({ data }, ['p'])).toThrow(/no P buffer/);
    expect(() => reconstruct({ data, p, q }, [1, 1])).toThrow(/named twice/);
    expect(() => reconstruct({ data, p, q }, [3])).toThrow(/not in 0..2/);
    expect(() => reconstruct({ data, p: Buffer.alloc(4), q }, [0])).toThrow(/must be 8 bytes/);
    expect(() => reconstruct({ data, p: data[1]!, q }, [1])).toThrow(/overlaps/);
    expect([...data[0]!, ...data[1]!, ...p, ...q]).toEqual([...Buffer.alloc(8, 1), ...Buffer.alloc(8, 2), ...Buffer.alloc(16, 9)]);
  });
});

describe('updateParity', () => {
  it('equals recomputing P and Q from scratch after any one data unit changes', () => {
    fc.assert(
      fc.property(
        rowOf(fc.integer({ min: 1, max: 10 }), shortLength).chain((data) =>
          fc.tuple(
            fc.constant(data),
            fc.integer({ min: 0, max: data.length - 1 }),
            fc.uint8Array({ minLength: data[0]!.length, maxLength: data[0]!.length }),
            fc.constantFrom(0, 1, 4),
            fc.constantFrom(0, 3),
            fc.boolean(),
          ),
        ),
        ([data, index, fresh, shift, newShift, withQ]) => {
          const p = placed(pRef(data), shift);
          const q = placed(qRef(data), shift);
          const newData = placed(fresh, newShift);
          updateParity(p, withQ ? q : undefined, index, data[index]!, newData);
          const after = data.map((d, i) => (i === index ? newData : d));
          expect(p.equals(pRef(after))).toBe(true);
          expect(q.equals(withQ ? qRef(after) : qRef(data))).toBe(true);
        },
      ),
    );
  });

  it('folds in g^i for every index a row can have, on the word path', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MAX_PARITY_DATA_UNITS - 1 }),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        (index, oldBytes, newBytes) => {
          const p = Buffer.alloc(64, 0x33);
          const q = Buffer.alloc(64, 0xcc);
          updateParity(p, q, index, Buffer.from(oldBytes), Buffer.from(newBytes));
          const c = powRef(index);
          for (let j = 0; j < 64; j++) {
            const d = oldBytes[j]! ^ newBytes[j]!;
            if (p[j] !== (0x33 ^ d) || q[j] !== (0xcc ^ mulRef(c, d))) expect([j, p[j], q[j]]).toEqual([j, 0x33 ^ d, 0xcc ^ mulRef(c, d)]);
          }
        },
      ),
    );
  });

  it('refuses a bad index, mismatched lengths and aliasing', () => {
    const b = () => Buffer.alloc(8);
    expect(() => updateParity(b(), b(), 255, b(), b())).toThrow(/index 255 is out of range/);
    expect(() => updateParity(b(), undefined, -1, b(), b())).toThrow(/out of range/);
    expect(() => updateParity(b(), b(), 0, Buffer.alloc(7), b())).toThrow(/must be 8 bytes/);
    const p = b();
    expect(() => updateParity(p, undefined, 0, p, b())).toThrow(/overlaps/);
  });
});
