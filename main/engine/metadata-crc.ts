/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every
 * metadata structure on a member (superblocks, checkpoints, log records).
 *
 * Table-driven JavaScript, slice-by-8: metadata is small (a checkpoint is at
 * most tens of MiB and is written rarely), so this is fast enough there and
 * keeps the metadata path free of native code. The data path (CRC32C per
 * 4 KiB block of user data) uses a native implementation elsewhere; both
 * compute the same function, so either can verify what the other wrote.
 */

const POLYNOMIAL = 0x82f63b78;

/** TABLES[k][b]: the CRC contribution of byte b followed by k zero bytes. */
const TABLES: readonly Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    tables[0]![b] = c >>> 0;
  }
  for (let b = 0; b < 256; b++) {
    let c = tables[0]![b]!;
    for (let t = 1; t < 8; t++) {
      c = tables[0]![c & 0xff]! ^ (c >>> 8);
      tables[t]![b] = c >>> 0;
    }
  }
  return tables;
})();

/**
 * CRC32C of `data`. Pass the previous result as `crc` to continue a checksum
 * over several buffers: crc32c(b, crc32c(a)) === crc32c(concat(a, b)).
 */
export function crc32c(data: Uint8Array, crc = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array,
  ];
  let c = ~crc >>> 0;
  let i = 0;
  const n = data.length;
  const fast = n - (n % 8);
  while (i < fast) {
    const lo = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
    i += 8;
  }
  while (i < n) c = t0[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * Whether the u32 CRC32C stored at `crcOffset` of `block` is the CRC of
 * block[0, coveredBytes) read with that field as zero (how every checksummed
 * header here is sealed).
 */
export function crcFieldHolds(block: Buffer, coveredBytes: number, crcOffset: number): boolean {
  const stored = block.readUInt32LE(crcOffset);
  const copy = Buffer.from(block.subarray(0, coveredBytes));
  copy.writeUInt32LE(0, crcOffset);
  return crc32c(copy) === stored;
}
