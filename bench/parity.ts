/**
 * Parity and checksum speed: `npm run bench -- parity`.
 *
 * A 4+2 raid6 row of 64 KiB units (the STRIPE_UNIT), one core, everything
 * warm in cache. Each figure is MB/s of data units processed (4 × 64 KiB per
 * row) and its ratio to a plain Buffer.copy of the same bytes measured in the
 * same run, so runs on different machines compare. Also measured here, to
 * keep the choices in parity.ts and checksum.ts honest: XOR on Uint32Array
 * words (the alternative to BigUint64Array), and every CRC32C checksum.ts
 * could use: our spindle-crc32c addon (one call for all of a span's 4 KiB
 * blocks; its portable table path too), @node-rs/crc32 a call per block (the
 * fallback), a JS slice-by-8; per 4 KiB block and over one 1 MiB buffer, in
 * GiB/s and as a ratio to @node-rs/crc32. Under 30 s.
 */
import {
  CHECKSUM_BLOCK,
  crc32c,
  crc32cAddon,
  crc32cBlocks,
  crc32cBlocksNodeRs,
  crc32cNodeRs,
  CRC32C_IMPLEMENTATION,
} from '../main/engine/checksum.js';
import { computeP, computeQ, reconstruct, updateParity } from '../main/engine/parity.js';

const UNIT = 64 * 1024;
const DATA_UNITS = 4;
const SECONDS_PER_FIGURE = 1;

function randomUnit(seed: number): Buffer {
  const b = Buffer.alloc(UNIT);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < UNIT; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Bytes per second of `fn`, which handles `bytes` bytes per call; warms up first. */
function rate(bytes: number, fn: () => void): number {
  const warmUntil = performance.now() + 200;
  while (performance.now() < warmUntil) fn();
  let calls = 0;
  const start = performance.now();
  let elapsedMs = 0;
  do {
    for (let i = 0; i < 16; i++) fn();
    calls += 16;
    elapsedMs = performance.now() - start;
  } while (elapsedMs < SECONDS_PER_FIGURE * 1000);
  return (calls * bytes) / (elapsedMs / 1000);
}

const data = Array.from({ length: DATA_UNITS }, (_, i) => randomUnit(i + 1));
const p = Buffer.alloc(UNIT);
const q = Buffer.alloc(UNIT);
const rowBytes = DATA_UNITS * UNIT;

const copyTarget = Buffer.alloc(UNIT);
const memcpy = rate(rowBytes, () => {
  for (const d of data) d.copy(copyTarget);
});

const rows: [string, number][] = [];
const add = (name: string, bytesPerSecond: number) => rows.push([name, bytesPerSecond]);

add('P (XOR, BigUint64Array words)', rate(rowBytes, () => computeP(data, p)));
add('P with Uint32Array words (the alternative)', rate(rowBytes, () => xorUint32(data, p)));
add('Q (Σ g^i·D_i)', rate(rowBytes, () => computeQ(data, q)));
add(
  'P + Q',
  rate(rowBytes, () => {
    computeP(data, p);
    computeQ(data, q);
  }),
);
computeP(data, p);
computeQ(data, q);
const saved = data.map((d) => Buffer.from(d));
add('rebuild 1 data unit from P (raid5 degraded)', rate(rowBytes, () => reconstruct({ data, p }, [1])));
add('rebuild 1 data unit + P, via Q', rate(rowBytes, () => reconstruct({ data, p, q }, [1, 'p'])));
add('rebuild 2 data units (P and Q)', rate(rowBytes, () => reconstruct({ data, p, q }, [1, 2])));
if (!data.every((d, i) => d.equals(saved[i]!))) throw new Error('reconstruct returned wrong bytes');
const fresh = randomUnit(99);
// A read-modify-write of one unit: its bytes are the work, so count one unit per call.
add('updateParity, raid6, unit 1 (RMW)', rate(UNIT, () => updateParity(p, q, 1, data[1]!, fresh)));
add('updateParity, raid6, unit 3 (RMW)', rate(UNIT, () => updateParity(p, q, 3, data[3]!, fresh)));
add('updateParity, raid5 (RMW)', rate(UNIT, () => updateParity(p, undefined, 1, data[1]!, fresh)));

const crcData = Buffer.concat(data);
const crcs = new Uint32Array(crcData.length / CHECKSUM_BLOCK);
const sliceBy8 = makeSliceBy8();
for (let b = 0; b < 4; b++) {
  const block = crcData.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK);
  if (sliceBy8(block) !== crc32c(block)) throw new Error('JS slice-by-8 disagrees with the native CRC32C');
}
const mib = Buffer.concat([crcData, crcData, crcData, crcData]);
if (crc32cNodeRs(mib) !== crc32c(mib)) throw new Error('the CRC32Cs disagree over 1 MiB');

// Per 4 KiB block: the span of 64 blocks (256 KiB) is warm in cache, so this is the CRC's cost alone.
const per4k: [string, number][] = [['@node-rs/crc32, a call per block (the fallback)', rate(crcData.length, () => crc32cBlocksNodeRs(crcData, CHECKSUM_BLOCK, crcs))]];
const perMiB: [string, number][] = [['@node-rs/crc32', rate(mib.length, () => crc32cNodeRs(mib))]];
const addon = crc32cAddon;
if (addon) {
  per4k.push([`spindle-crc32c crc32cBlocks, one call (${addon.implementation})`, rate(crcData.length, () => addon.crc32cBlocks(crcData, CHECKSUM_BLOCK, crcs))]);
  per4k.push(['spindle-crc32c crc32c, a call per block', rate(crcData.length, () => {
    for (let b = 0; b < crcs.length; b++) crcs[b] = addon.crc32c(crcData.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK));
  })]);
  per4k.push(['spindle-crc32c crc32cBlocks, portable table path', rate(crcData.length, () => addon.crc32cBlocksPortable(crcData, CHECKSUM_BLOCK, crcs))]);
  perMiB.push([`spindle-crc32c crc32c (${addon.implementation})`, rate(mib.length, () => addon.crc32c(mib))]);
  perMiB.push(['spindle-crc32c crc32c, portable table path', rate(mib.length, () => addon.crc32cPortable(mib))]);
}
per4k.push(['checksum.ts crc32cBlocks (what the engine runs)', rate(crcData.length, () => crc32cBlocks(crcData, crcs))]);
per4k.push([
  'JS slice-by-8, a call per block',
  rate(crcData.length, () => {
    for (let b = 0; b < crcs.length; b++) crcs[b] = sliceBy8(crcData.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK));
  }),
]);
perMiB.push(['JS slice-by-8', rate(mib.length, () => sliceBy8(mib))]);

console.log(`parity and checksums: ${DATA_UNITS}+2 row of ${UNIT / 1024} KiB units, Node ${process.version}`);
console.log(`${'memcpy (Buffer.copy)'.padEnd(52)} ${(memcpy / 1e6).toFixed(0).padStart(7)} MB/s   1.000 × memcpy`);
for (const [name, bytesPerSecond] of rows) {
  const ratio = (bytesPerSecond / memcpy).toFixed(3);
  console.log(`${name.padEnd(52)} ${(bytesPerSecond / 1e6).toFixed(0).padStart(7)} MB/s   ${ratio} × memcpy`);
}
console.log(`\nCRC32C, one core, data in cache; the engine runs ${CRC32C_IMPLEMENTATION}`);
for (const [title, list] of [
  [`per ${CHECKSUM_BLOCK / 1024} KiB block, over ${crcData.length / 1024} KiB`, per4k],
  ['over one 1 MiB buffer', perMiB],
] as const) {
  console.log(`  ${title}`);
  const base = list[0]![1];
  for (const [name, bytesPerSecond] of list) {
    console.log(`    ${name.padEnd(70)} ${(bytesPerSecond / 2 ** 30).toFixed(2).padStart(6)} GiB/s   ${(bytesPerSecond / base).toFixed(2).padStart(5)} × @node-rs/crc32`);
  }
}

/** P on Uint32Array views, four inputs per pass: what computeP would be without BigUint64Array. */
function xorUint32(units: readonly Buffer[], out: Buffer): void {
  const o = new Uint32Array(out.buffer, out.byteOffset, out.length >>> 2);
  const [a, b, c, d] = units.map((u) => new Uint32Array(u.buffer, u.byteOffset, u.length >>> 2)) as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  for (let i = 0; i < o.length; i++) o[i] = a[i]! ^ b[i]! ^ c[i]! ^ d[i]!;
}

/** Table-driven CRC32C, eight bytes per step (Intel's slice-by-8). */
function makeSliceBy8(): (bytes: Uint8Array) => number {
  const t = Array.from({ length: 8 }, () => new Int32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[0]![n] = c;
  }
  for (let n = 0; n < 256; n++) for (let s = 1; s < 8; s++) t[s]![n] = (t[s - 1]![n]! >>> 8) ^ t[0]![t[s - 1]![n]! & 0xff]!;
  const [t0, t1, t2, t3, t4, t5, t6, t7] = t as [Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array];
  return (bytes) => {
    let c = -1;
    let i = 0;
    const end = bytes.length & ~7;
    for (; i < end; i += 8) {
      const a = c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
      c =
        t7[a & 0xff]! ^
        t6[(a >>> 8) & 0xff]! ^
        t5[(a >>> 16) & 0xff]! ^
        t4[a >>> 24]! ^
        t3[bytes[i + 4]!]! ^
        t2[bytes[i + 5]!]! ^
        t1[bytes[i + 6]!]! ^
        t0[bytes[i + 7]!]!;
    }
    for (; i < bytes.length; i++) c = t0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
    return ~c >>> 0;
  };
}
