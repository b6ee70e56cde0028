/**
 * RAID-5/6 parity over equal-length Buffers, byte-compatible with Linux md
 * and ZFS raidz2:
 *
 *     P = D_0 ⊕ D_1 ⊕ … ⊕ D_{k-1}
 *     Q = g^0·D_0 ⊕ g^1·D_1 ⊕ … ⊕ g^{k-1}·D_{k-1}
 *
 * bytewise in GF(2^8) with the polynomial x^8+x^4+x^3+x^2+1 (0x11d) and the
 * generator g = 2; i counts data units in logical order (raid6.ts). g has
 * order 255, so a row may hold at most 255 data units.
 *
 * Guarantees: every function computes exactly the bytes the formulas say, for
 * any length and any alignment; outputs never alias inputs (checked, throws).
 * `reconstruct` rebuilds any set of units that the surviving parity can
 * determine: one unit of a raid5 row, any two units of a raid6 row.
 *
 * Speed (the reason for the shape of this file): everything hot works on
 * machine words. XOR runs on BigUint64Array views, which V8 (Node 20) lowers
 * to plain 64-bit ops for ^ and ran 1.5–2× faster than Uint32Array here. BigInt
 * shifts and multiplies are *not* lowered (≈10× slower), so Q works on
 * Uint32Array words: Horner's rule Q = (((D_{k-1})·g ⊕ D_{k-2})·g ⊕ …) ⊕ D_0
 * needs only "multiply 4 packed bytes by g", a mask-shift-xor (as in md's
 * raid6 int.uc). Multiplying by an arbitrary constant (degraded reads) goes
 * byte by byte through a full 256×256 product table, which measured faster
 * than bit-serial word arithmetic or 16-bit tables in V8. Kernels read up to
 * four inputs per pass over the output, to cut passes without blowing up the
 * number of hand-written loops, and each loop is its own small function (see
 * "word kernels": inline, they deoptimized 2-3×). Words need 8-byte aligned buffers (Node's
 * Buffer.alloc is); misaligned inputs and tails shorter than a word take the
 * byte path: correct, several times slower.
 */

/** Most data units a Q-protected row can hold: g^i must differ for every i. */
export const MAX_PARITY_DATA_UNITS = 255;

// --- GF(2^8) tables -------------------------------------------------------

const GF_POLY = 0x11d;
/** EXP[i] = g^i for i in 0..509 (doubled so EXP[LOG a + LOG b] needs no mod). */
const GF_EXP = new Uint8Array(510);
/** LOG[a] = i with g^i = a, for a ≠ 0. */
const GF_LOG = new Uint8Array(256);
/** MUL[(a << 8) | b] = a·b: 64 KiB, and one constant's 256-byte row stays in L1. */
const GF_MUL = new Uint8Array(65536);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    GF_EXP[i] = x;
    GF_EXP[i + 255] = x;
    GF_LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= GF_POLY;
  }
  for (let a = 1; a < 256; a++) {
    for (let b = 1; b < 256; b++) GF_MUL[(a << 8) | b] = GF_EXP[GF_LOG[a]! + GF_LOG[b]!]!;
  }
}

/** a·b in GF(2^8). */
export function gfMul(a: number, b: number): number {
  return GF_MUL[((a & 0xff) << 8) | (b & 0xff)]!;
}

/** g^i for any integer i ≥ 0 (also negative: g^-i = g^(255-i)). */
export function gfPow(i: number): number {
  return GF_EXP[((i % 255) + 255) % 255]!;
}

/** a^-1 for a ≠ 0. */
export function gfInverse(a: number): number {
  if (a === 0) throw new RangeError('0 has no inverse in GF(2^8)');
  return GF_EXP[255 - GF_LOG[a]!]!;
}

// --- word views and alignment ---------------------------------------------

/** Bytes at the start of every buffer that the 8-byte word kernels may handle: 0 if any buffer is misaligned. */
function wordBytes(buffers: readonly Buffer[], length: number): number {
  for (const b of buffers) if ((b.byteOffset & 7) !== 0) return 0;
  return length & ~7;
}

const u64 = (b: Buffer, bytes: number) => new BigUint64Array(b.buffer, b.byteOffset, bytes >>> 3);
const u32 = (b: Buffer, bytes: number) => new Uint32Array(b.buffer, b.byteOffset, bytes >>> 2);

/** A zero buffer at least `length` long, shared, for units that must count as zero in a sum. */
let zeros = Buffer.alloc(0);
function zeroUnit(length: number): Buffer {
  if (zeros.length < length) zeros = Buffer.alloc(length);
  return zeros.subarray(0, length);
}

// --- argument checks ------------------------------------------------------

function checkLengths(what: string, length: number, buffers: readonly (Buffer | undefined)[]): void {
  for (const b of buffers) {
    if (b !== undefined && b.length !== length) {
      throw new RangeError(`${what}: every unit must be ${length} bytes, got one of ${b.length}`);
    }
  }
}

function overlaps(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;
}

/** Throws if a unit written (slots[o] for o in outputs) shares any byte with another slot's unit. */
function checkNoAlias(what: string, slots: readonly (Buffer | undefined)[], outputs: readonly number[]): void {
  for (const o of outputs) {
    const out = slots[o]!;
    slots.forEach((other, s) => {
      if (s !== o && other !== undefined && overlaps(out, other)) {
        throw new RangeError(`${what}: an output unit overlaps another unit`);
      }
    });
  }
}

function checkDataCount(what: string, count: number, withQ: boolean): void {
  if (count < 1) throw new RangeError(`${what}: a row needs at least one data unit`);
  if (withQ && count > MAX_PARITY_DATA_UNITS) {
    throw new RangeError(`${what}: Q covers at most ${MAX_PARITY_DATA_UNITS} data units, got ${count}`);
  }
}

// --- word kernels ------------------------------------------------------------
//
// One loop per function: V8 optimizes each on its own with monomorphic typed
// arrays, instead of on-stack-replacing one big function whose later branches
// have no type feedback yet (that deoptimized over and over when the loops
// were inline). `n` is the word count.

function xorSet2(o: BigUint64Array, a: BigUint64Array, b: BigUint64Array, n: number): void {
  for (let i = 0; i < n; i++) o[i] = a[i]! ^ b[i]!;
}
function xorSet3(o: BigUint64Array, a: BigUint64Array, b: BigUint64Array, c: BigUint64Array, n: number): void {
  for (let i = 0; i < n; i++) o[i] = a[i]! ^ b[i]! ^ c[i]!;
}
function xorSet4(o: BigUint64Array, a: BigUint64Array, b: BigUint64Array, c: BigUint64Array, d: BigUint64Array, n: number): void {
  for (let i = 0; i < n; i++) o[i] = a[i]! ^ b[i]! ^ c[i]! ^ d[i]!;
}
function xorAdd1(o: BigUint64Array, a: BigUint64Array, n: number): void {
  for (let i = 0; i < n; i++) o[i] = o[i]! ^ a[i]!;
}
function xorAdd2(o: BigUint64Array, a: BigUint64Array, b: BigUint64Array, n: number): void {
  for (let i = 0; i < n; i++) o[i] = o[i]! ^ a[i]! ^ b[i]!;
}
function xorAdd3(o: BigUint64Array, a: BigUint64Array, b: BigUint64Array, c: BigUint64Array, n: number): void {
  for (let i = 0; i < n; i++) o[i] = o[i]! ^ a[i]! ^ b[i]! ^ c[i]!;
}

// Horner steps, o = (…(o·g ⊕ a)·g ⊕ b…). "x·g" on four packed bytes: h = x &
// 0x80808080 marks the bytes whose top bit falls out; ((x & 0x7f7f7f7f) << 1)
// shifts each byte alone, and (h >>> 7) * 0x1d puts the reduction 0x1d into
// exactly those bytes (no carries: 0x1d < 0x100). Written out in each loop
// because V8 does not reliably inline a helper there.

function hornerStep1(o: Uint32Array, a: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = o[i]!;
    const h = x & 0x80808080;
    o[i] = ((x & 0x7f7f7f7f) << 1) ^ ((h >>> 7) * 0x1d) ^ a[i]!;
  }
}
function hornerStep2(o: Uint32Array, a: Uint32Array, b: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    let x = o[i]!;
    let h = x & 0x80808080;
    x = ((x & 0x7f7f7f7f) << 1) ^ ((h >>> 7) * 0x1d) ^ a[i]!;
    h = x & 0x80808080;
    o[i] = ((x & 0x7f7f7f7f) << 1) ^ ((h >>> 7) * 0x1d) ^ b[i]!;
  }
}
function hornerStep3(o: Uint32Array, a: Uint32Array, b: Uint32Array, c: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    let x = o[i]!;
    let h = x & 0x80808080;
    x = ((x & 0x7f7f7f7f) << 1) ^ ((h >>> 7) * 0x1d) ^ a[i]!;
    h = x & 0x80808080;
    x = ((x & 0x7f7f7f7f) << 1) ^ ((h >>> 7) * 0x1d) ^ b[i]!;
    h = x & 0x80808080;
    o[i] = ((x & 0x7f7f7f7f) << 1) ^ ((h >>> 7) * 0x1d) ^ c[i]!;
  }
}
function hornerStep4(o: Uint32Array, a: Uint32Array, b: Uint32Array, c: Uint32Array, d: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    let x = o[i]!;
    let h = x & 0x80808080;
    x = ((x & 0x7f7f7f7f) << 1) ^ ((h >>> 7) * 0x1d) ^ a[i]!;
    h = x & 0x80808080;
    x = ((x & 0x7f7f7f7f) << 1) ^ ((h >>> 7) * 0x1d) ^ b[i]!;
    h = x & 0x80808080;
    x = ((x & 0x7f7f7f7f) << 1) ^ ((h >>> 7) * 0x1d) ^ c[i]!;
    h = x & 0x80808080;
    o[i] = ((x & 0x7f7f7f7f) << 1) ^ ((h >>> 7) * 0x1d) ^ d[i]!;
  }
}

/** p ^= old ⊕ new, over 64-bit words. */
function deltaP(p: BigUint64Array, old: BigUint64Array, now: BigUint64Array, n: number): void {
  for (let i = 0; i < n; i++) p[i] = p[i]! ^ old[i]! ^ now[i]!;
}
/** δ = old ⊕ new; p ^= δ; q ^= g^doublings · δ (as that many word doublings). */
function deltaPQ(p: Uint32Array, q: Uint32Array, old: Uint32Array, now: Uint32Array, doublings: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const d = old[i]! ^ now[i]!;
    p[i] = p[i]! ^ d;
    let x = d;
    for (let t = 0; t < doublings; t++) {
      const h = x & 0x80808080;
      x = ((x & 0x7f7f7f7f) << 1) ^ ((h >>> 7) * 0x1d);
    }
    q[i] = q[i]! ^ x;
  }
}

// --- sums over whole units ------------------------------------------------------

/** out = XOR of sources (at least one). */
function xorSum(out: Buffer, sources: readonly Buffer[]): void {
  const length = out.length;
  const words = wordBytes([out, ...sources], length);
  if (words > 0) {
    const o = u64(out, words);
    const n = o.length;
    const v = sources.map((s) => u64(s, words));
    // The first pass writes out from up to four sources; later passes fold up to three more into it.
    let next = Math.min(4, v.length);
    if (next === 1) o.set(v[0]!);
    else if (next === 2) xorSet2(o, v[0]!, v[1]!, n);
    else if (next === 3) xorSet3(o, v[0]!, v[1]!, v[2]!, n);
    else xorSet4(o, v[0]!, v[1]!, v[2]!, v[3]!, n);
    while (next < v.length) {
      const take = Math.min(3, v.length - next);
      if (take === 1) xorAdd1(o, v[next]!, n);
      else if (take === 2) xorAdd2(o, v[next]!, v[next + 1]!, n);
      else xorAdd3(o, v[next]!, v[next + 1]!, v[next + 2]!, n);
      next += take;
    }
  }
  if (words < length) xorSumBytes(out, sources, words);
}

/**
 * out = Σ g^i · sources[i]; `undefined` sources count as zero (the units a
 * reconstruction is solving for).
 */
function syndrome(out: Buffer, sources: readonly (Buffer | undefined)[]): void {
  const length = out.length;
  const zero = zeroUnit(length);
  const units = sources.map((s) => s ?? zero);
  const words = wordBytes([out, ...units], length);
  if (words > 0) {
    const o = u32(out, words);
    const n = o.length;
    // Horner runs from the top unit down, up to four units per pass.
    const v = units.map((s) => u32(s, words));
    let top = v.length - 1;
    o.set(v[top]!);
    while (top > 0) {
      const take = Math.min(4, top);
      if (take === 4) hornerStep4(o, v[top - 1]!, v[top - 2]!, v[top - 3]!, v[top - 4]!, n);
      else if (take === 3) hornerStep3(o, v[top - 1]!, v[top - 2]!, v[top - 3]!, n);
      else if (take === 2) hornerStep2(o, v[top - 1]!, v[top - 2]!, n);
      else hornerStep1(o, v[top - 1]!, n);
      top -= take;
    }
  }
  if (words < length) syndromeBytes(out, units, words);
}

// --- public API -------------------------------------------------------------

/** out = P = XOR of the data units. */
export function computeP(data: readonly Buffer[], out: Buffer): void {
  checkDataCount('computeP', data.length, false);
  checkLengths('computeP', out.length, data);
  checkNoAlias('computeP', [...data, out], [data.length]);
  xorSum(out, data);
}

/** out = Q = Σ g^i · D_i. */
export function computeQ(data: readonly Buffer[], out: Buffer): void {
  checkDataCount('computeQ', data.length, true);
  checkLengths('computeQ', out.length, data);
  checkNoAlias('computeQ', [...data, out], [data.length]);
  syndrome(out, data);
}

/** A unit of a parity row: a data unit by its logical index, or the P or Q unit. */
export type RowUnit = number | 'p' | 'q';

/**
 * One row's units, for reconstruct. `data` lists every data unit in logical
 * order. `p` / `q` are given when the caller has that unit's buffer (with
 * good contents, or as the destination for rebuilding it) and left out when
 * the unit is lost and not wanted: left-out parity is neither read nor written.
 */
export interface ParityRow {
  readonly data: readonly Buffer[];
  readonly p?: Buffer;
  readonly q?: Buffer;
}

/**
 * Rebuilds the units named in `missing`, writing into their buffers in
 * `row` (whose contents are ignored); every other unit given must hold its
 * true contents. Works when the missing data units are no more than the
 * parity units given and not missing: one lost unit of a raid5 row; any two of
 * a raid6 row (data+data, data+P, data+Q, P+Q). A degraded read that lost a
 * data unit and Q needs only P: pass the row without `q` and missing [x].
 * Throws RangeError (rebuilding nothing) for an unsolvable or malformed request.
 */
export function reconstruct(row: ParityRow, missing: readonly RowUnit[]): void {
  const { data, p, q } = row;
  const k = data.length;
  checkDataCount('reconstruct', k, q !== undefined);
  const length = data[0]!.length;
  checkLengths('reconstruct', length, [...data, p, q]);

  const lostData: number[] = [];
  let lostP = false;
  let lostQ = false;
  for (const unit of missing) {
    if (unit === 'p') {
      if (p === undefined) throw new RangeError('reconstruct: P is missing but the row gives no P buffer to rebuild into');
      if (lostP) throw new RangeError('reconstruct: P is named twice');
      lostP = true;
    } else if (unit === 'q') {
      if (q === undefined) throw new RangeError('reconstruct: Q is missing but the row gives no Q buffer to rebuild into');
      if (lostQ) throw new RangeError('reconstruct: Q is named twice');
      lostQ = true;
    } else {
      if (!Number.isInteger(unit) || unit < 0 || unit >= k) {
        throw new RangeError(`reconstruct: data unit ${unit} is not in 0..${k - 1}`);
      }
      if (lostData.includes(unit)) throw new RangeError(`reconstruct: data unit ${unit} is named twice`);
      lostData.push(unit);
    }
  }
  const haveP = p !== undefined && !lostP;
  const haveQ = q !== undefined && !lostQ;
  const parityLeft = (haveP ? 1 : 0) + (haveQ ? 1 : 0);
  if (lostData.length > parityLeft) {
    throw new RangeError(
      `reconstruct: cannot rebuild ${lostData.length} data unit(s) from ${parityLeft} surviving parity unit(s)`,
    );
  }
  checkNoAlias('reconstruct', [...data, p, q], [...lostData, ...(lostP ? [k] : []), ...(lostQ ? [k + 1] : [])]);
  lostData.sort((a, b) => a - b);

  if (lostData.length === 1) {
    const x = lostData[0]!;
    if (haveP) {
      // D_x = P ⊕ Σ_{i≠x} D_i
      xorSum(data[x]!, [p!, ...data.filter((_, i) => i !== x)]);
    } else {
      // D_x = g^-x · (Q ⊕ Σ_{i≠x} g^i D_i)
      const dx = data[x]!;
      syndrome(dx, data.map((d, i) => (i === x ? undefined : d)));
      mulXorInPlace(dx, q!, gfPow(-x));
    }
  } else if (lostData.length === 2) {
    const [x, y] = lostData as [number, number];
    const dx = data[x]!;
    const dy = data[y]!;
    // u = P ⊕ Pxy = D_x ⊕ D_y;  v = Q ⊕ Qxy = g^x D_x ⊕ g^y D_y  (Anvin, "The mathematics of RAID-6")
    xorSum(dx, [p!, ...data.filter((_, i) => i !== x && i !== y)]);
    syndrome(dy, data.map((d, i) => (i === x || i === y ? undefined : d)));
    xorInto(dy, q!);
    // D_x = A·u ⊕ B·v with A = g^(y-x)/(g^(y-x) ⊕ 1), B = g^-x/(g^(y-x) ⊕ 1);  D_y = u ⊕ D_x
    const inv = gfInverse(gfPow(y - x) ^ 1);
    solveTwo(dx, dy, gfMul(gfPow(y - x), inv), gfMul(gfPow(-x), inv));
  }
  if (lostP) xorSum(p!, data);
  if (lostQ) syndrome(q!, data);
}

/**
 * Folds the change of data unit `dataIndex` from `oldData` to `newData` into
 * the row's parity, for a read-modify-write: P ^= old ⊕ new, Q ^= g^i·(old ⊕ new).
 * `q` is undefined for raid5 rows.
 */
export function updateParity(
  p: Buffer,
  q: Buffer | undefined,
  dataIndex: number,
  oldData: Buffer,
  newData: Buffer,
): void {
  const length = p.length;
  checkLengths('updateParity', length, [q, oldData, newData]);
  if (!Number.isInteger(dataIndex) || dataIndex < 0 || dataIndex >= (q ? MAX_PARITY_DATA_UNITS : Infinity)) {
    throw new RangeError(`updateParity: data unit index ${dataIndex} is out of range`);
  }
  checkNoAlias('updateParity', [p, q, oldData, newData], q ? [0, 1] : [0]);
  const all = q ? [p, q, oldData, newData] : [p, oldData, newData];
  const words = wordBytes(all, length);
  let j = 0;
  if (words > 0 && !q) {
    deltaP(u64(p, words), u64(oldData, words), u64(newData, words), words >>> 3);
    j = words;
  } else if (words > 0 && q && dataIndex < DOUBLINGS_BEAT_TABLE) {
    deltaPQ(u32(p, words), u32(q, words), u32(oldData, words), u32(newData, words), dataIndex, words >>> 2);
    j = words;
  }
  if (j < length) deltaBytes(p, q, gfPow(dataIndex), oldData, newData, j);
}

/** Up to this data index, i word doublings beat one table lookup per byte (measured 1.3–2× at i = 4..7, Node 20). */
const DOUBLINGS_BEAT_TABLE = 8;

// --- byte kernels: tails, misaligned units, multiplying by a constant --------

/** out[j] = XOR of sources[j], for j from `from` on. */
function xorSumBytes(out: Buffer, sources: readonly Buffer[], from: number): void {
  for (let j = from; j < out.length; j++) {
    let x = 0;
    for (const s of sources) x ^= s[j]!;
    out[j] = x;
  }
}

/** out[j] = Σ g^i · units[i][j], for j from `from` on. */
function syndromeBytes(out: Buffer, units: readonly Buffer[], from: number): void {
  for (let j = from; j < out.length; j++) {
    let x = 0;
    for (let s = units.length - 1; s >= 0; s--) x = GF_MUL[0x200 | x]! ^ units[s]![j]!;
    out[j] = x;
  }
}

/** δ = old ⊕ new; p ^= δ; q ^= c·δ (q optional), for bytes from `from` on. */
function deltaBytes(p: Buffer, q: Buffer | undefined, c: number, old: Buffer, now: Buffer, from: number): void {
  const row = c << 8;
  for (let j = from; j < p.length; j++) {
    const d = old[j]! ^ now[j]!;
    p[j]! ^= d;
    if (q) q[j]! ^= GF_MUL[row | d]!;
  }
}

/** out ^= src. */
function xorInto(out: Buffer, src: Buffer): void {
  const length = out.length;
  const words = wordBytes([out, src], length);
  if (words > 0) xorAdd1(u64(out, words), u64(src, words), words >>> 3);
  for (let j = words; j < length; j++) out[j]! ^= src[j]!;
}

/** out = c · (out ⊕ src). */
function mulXorInPlace(out: Buffer, src: Buffer, c: number): void {
  const row = c << 8;
  for (let j = 0; j < out.length; j++) out[j] = GF_MUL[row | (out[j]! ^ src[j]!)]!;
}

/** Given u in x and v in y: x = a·u ⊕ b·v, y = u ⊕ x. */
function solveTwo(x: Buffer, y: Buffer, a: number, b: number): void {
  const rowA = a << 8;
  const rowB = b << 8;
  for (let j = 0; j < x.length; j++) {
    const u = x[j]!;
    const dx = GF_MUL[rowA | u]! ^ GF_MUL[rowB | y[j]!]!;
    x[j] = dx;
    y[j] = u ^ dx;
  }
}
