import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32c } from './metadata-crc.js';
import {
  CHECKPOINT_HEADER_BYTES,
  EventKind,
  GeometryError,
  LOG_RECORD_HEADER_BYTES,
  MAX_SESSIONS_REMEMBERED,
  METADATA_BLOCK,
  SUPERBLOCK_V1_BYTES,
  checkpointCapacity,
  decodeCheckpointHeader,
  decodeLogRecordHeader,
  decodeSuperblock,
  encodeCheckpointHeader,
  encodeLogBatch,
  encodeSuperblock,
  genesisHash,
  historyHash,
  logRecordBytes,
  memberGeometry,
  minimumMemberSize,
  uuidFromBytes,
  uuidToBytes,
  type MemberGeometry,
  type Superblock,
} from './on-disk-format.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
const SLAB = 256 * MiB;

describe('crc32c', () => {
  it('matches the published check values', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it('continues across buffers and agrees with the bytewise definition at every length', () => {
    const data = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7 + 3) & 0xff));
    for (let n = 0; n <= 40; n++) {
      const part = data.subarray(0, n);
      expect(crc32c(part)).toBe(bytewiseCrc32c(part));
      expect(crc32c(data.subarray(n), crc32c(part))).toBe(crc32c(data));
    }
  });
});

describe('member geometry', () => {
  it('lays out a 1 GiB, a 16 GiB and a 16 TiB member with 256 MiB slabs', () => {
    const small = memberGeometry(1 * GiB, SLAB);
    expect(small).toMatchObject({ metadataBytes: 8 * MiB, dataOffset: 8 * MiB, slabCount: 3, superblockBOffset: GiB - 4 * KiB });
    expect(small.checkpointSlotBytes).toBe(3068 * KiB);
    expect(small.logBytes).toBe(1036 * KiB);
    expect(small.intentBytes).toBe(508 * KiB);
    expect(small.journalBytes).toBe(508 * KiB);

    const medium = memberGeometry(16 * GiB, SLAB);
    expect(medium).toMatchObject({ metadataBytes: 16 * MiB, slabCount: 63 });

    const big = memberGeometry(16 * TiB, SLAB);
    expect(big).toMatchObject({ metadataBytes: 512 * MiB, slabCount: 65533 });
    expect(big.checkpointSlotBytes).toBeGreaterThan(190 * MiB);
    expect(big.logBytes).toBeGreaterThan(80 * MiB);
    expect(big.journalBytes).toBe(8 * MiB);
    for (const g of [small, medium, big]) expectContiguous(g);
  });

  it('gives a 64 GiB member a slot for a 1.5-million-slab checkpoint (16 bytes a slab)', () => {
    expect(checkpointCapacity(memberGeometry(64 * GiB, SLAB))).toBeGreaterThanOrEqual(1_500_000 * 16);
    expect(checkpointCapacity(memberGeometry(16 * GiB, SLAB))).toBeLessThan(1_500_000 * 16);
  });

  it('refuses a member too small for the metadata and one slab, naming the minimum', () => {
    const minimum = minimumMemberSize(SLAB);
    expect(minimum).toBe(8 * MiB + SLAB + 4 * KiB);
    expect(memberGeometry(minimum, SLAB).slabCount).toBe(1);
    let caught: unknown;
    try {
      memberGeometry(minimum - 4 * KiB, SLAB);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(GeometryError);
    expect((caught as GeometryError).code).toBe('MEMBER_TOO_SMALL');
    expect((caught as GeometryError).minimumMemberSize).toBe(minimum);
    expect((caught as GeometryError).message).toContain(String(minimum));
  });

  it('finds the minimum where the metadata grows with the member (huge slabs)', () => {
    const slab = 16 * GiB;
    const minimum = minimumMemberSize(slab);
    expect(memberGeometry(minimum, slab).slabCount).toBe(1);
    expect(() => memberGeometry(minimum - 4 * KiB, slab)).toThrow(GeometryError);
  });

  it('honours an explicit metadata reservation and rejects bad ones', () => {
    const g = memberGeometry(1 * MiB, 64 * KiB, { metadataBytes: 128 * KiB });
    expect(g).toMatchObject({ dataOffset: 128 * KiB, slabCount: 13 });
    expectContiguous(g);
    const tiny = memberGeometry(1 * MiB, 64 * KiB, { metadataBytes: 64 * KiB });
    expect(tiny.intentBytes).toBe(8 * KiB); // two blocks for the write-intent log, even here
    expect(tiny.logBytes).toBeGreaterThanOrEqual(8 * KiB);
    expectContiguous(tiny);
    expect(() => memberGeometry(1 * MiB, 64 * KiB, { metadataBytes: 100 * KiB })).toThrow(/multiple of/);
    expect(() => memberGeometry(1 * GiB, 1000)).toThrow(/slab size/);
  });
});

describe('superblock_phys', () => {
  it('round-trips every field', () => {
    const sb = sampleSuperblock();
    const block = encodeSuperblock(sb);
    expect(block.length).toBe(METADATA_BLOCK);
    expect(block.subarray(0, 8).toString('latin1')).toBe('SPNDLVLN');
    const decoded = decodeSuperblock(block);
    expect(decoded.ok).toBe(true);
    if (decoded.ok) expect(decoded.value).toEqual(sb);
  });

  it('round-trips a member that is not a replica', () => {
    const sb: Superblock = { ...sampleSuperblock(), isMetadataReplica: false, checkpoint: undefined, logHeadOffset: 0, logTailOffset: 0, logSalt: 0 };
    const decoded = decodeSuperblock(encodeSuperblock(sb));
    expect(decoded.ok && decoded.value).toEqual(sb);
  });

  it('detects every single-bit flip in the checksummed header', () => {
    const block = encodeSuperblock(sampleSuperblock());
    for (let bit = 0; bit < SUPERBLOCK_V1_BYTES * 8; bit++) {
      const copy = Buffer.from(block);
      copy[bit >> 3]! ^= 1 << (bit & 7);
      expect(decodeSuperblock(copy).ok, `bit ${bit}`).toBe(false);
    }
  });

  it('refuses unknown versions and inconsistent geometry even with a good CRC', () => {
    const block = encodeSuperblock(sampleSuperblock());
    block.writeUInt32LE(2, 8);
    resealSuperblock(block);
    expect(decodeSuperblock(block)).toMatchObject({ ok: false, reason: 'unsupported format version 2' });

    const overlapping = encodeSuperblock(sampleSuperblock());
    overlapping.writeBigUInt64LE(BigInt(METADATA_BLOCK), 128); // log over the slots
    resealSuperblock(overlapping);
    expect(decodeSuperblock(overlapping)).toMatchObject({ ok: false });
  });

  it('reads a label from before the row journal as a member without one', () => {
    const sb = sampleSuperblock();
    const block = encodeSuperblock(sb);
    expect((decodeSuperblock(block) as { value: Superblock }).value.geometry.journalBytes).toBe(sb.geometry.journalBytes);
    block.writeUInt32LE(240, 12); // the header length written before the journal fields were appended
    block.fill(0, 240, 256);
    resealSuperblock(block);
    const old = decodeSuperblock(block);
    expect(old.ok).toBe(true);
    expect((old as { value: Superblock }).value.geometry).toMatchObject({ journalOffset: 0, journalBytes: 0 });
  });

  it('accepts fields appended by a newer writer (longer header, same version)', () => {
    const block = encodeSuperblock(sampleSuperblock());
    block.writeUInt32LE(SUPERBLOCK_V1_BYTES + 16, 12);
    block.writeBigUInt64LE(0x1234n, SUPERBLOCK_V1_BYTES);
    resealSuperblock(block);
    expect(decodeSuperblock(block).ok).toBe(true);
    block[SUPERBLOCK_V1_BYTES + 1]! ^= 1; // the appended field is covered by the CRC too
    expect(decodeSuperblock(block).ok).toBe(false);
  });
});

describe('checkpoint_phys', () => {
  it('round-trips with a full session table and detects bit flips', () => {
    const sessions = Array.from({ length: MAX_SESSIONS_REMEMBERED }, (_, i) => ({ generation: i * 10 + 1, hash: hashOf(`s${i}`) }));
    const header = {
      poolUuid: randomUUID(),
      generation: 1281,
      stateBytes: 12345,
      stateCrc32c: 0xdeadbeef,
      prevHash: hashOf('p'),
      hash: hashOf('h'),
      sessions,
    };
    const block = encodeCheckpointHeader(header);
    expect(block.length).toBe(CHECKPOINT_HEADER_BYTES);
    const decoded = decodeCheckpointHeader(block);
    expect(decoded.ok && decoded.value).toEqual(header);
    for (const byte of [0, 20, 45, 60, 100, 96 + 24 * 127 + 20]) {
      const copy = Buffer.from(block);
      copy[byte]! ^= 0x10;
      expect(decodeCheckpointHeader(copy).ok, `byte ${byte}`).toBe(false);
    }
    expect(() => encodeCheckpointHeader({ ...header, sessions: [...sessions, sessions[0]!] })).toThrow(RangeError);
  });
});

describe('log_record_phys', () => {
  it('packs a batch on 8-byte boundaries, padded to whole blocks, and decodes each header', () => {
    const pool = randomUUID();
    const payloads = [Buffer.from('a'), Buffer.alloc(5000, 7), Buffer.alloc(0)];
    const records = payloads.map((payload, i) => ({ kind: EventKind.RECORD, generation: 10 + i, prevHash: hashOf(`p${i}`), payload }));
    const batch = encodeLogBatch(pool, 9, 0xabcdef123456, records);
    expect(batch.length).toBe(2 * METADATA_BLOCK);
    let at = 0;
    records.forEach((r, i) => {
      const d = decodeLogRecordHeader(batch, at);
      expect(d.ok).toBe(true);
      if (!d.ok) return;
      expect(d.value).toMatchObject({
        headerBytes: LOG_RECORD_HEADER_BYTES,
        kind: EventKind.RECORD,
        generation: 10 + i,
        checkpointGeneration: 9,
        batchFirstGeneration: 10,
        payloadBytes: payloads[i]!.length,
        payloadCrc32c: crc32c(payloads[i]!),
        poolUuid: pool,
        logSalt: 0xabcdef123456,
      });
      expect(d.value.prevHash).toEqual(r.prevHash);
      expect(batch.subarray(at + LOG_RECORD_HEADER_BYTES, at + LOG_RECORD_HEADER_BYTES + payloads[i]!.length)).toEqual(payloads[i]);
      at += logRecordBytes(payloads[i]!.length);
    });
    expect(batch.subarray(at).every((b) => b === 0)).toBe(true);
    const flipped = Buffer.from(batch);
    flipped[20]! ^= 1;
    expect(decodeLogRecordHeader(flipped, 0).ok).toBe(false);
  });
});

describe('history hashes', () => {
  it('depend on every input, and genesis on the pool', () => {
    const base = historyHash(hashOf('p'), 5, EventKind.RECORD, Buffer.from('x'));
    expect(base.length).toBe(16);
    expect(historyHash(hashOf('p'), 5, EventKind.RECORD, Buffer.from('x'))).toEqual(base);
    expect(historyHash(hashOf('q'), 5, EventKind.RECORD, Buffer.from('x'))).not.toEqual(base);
    expect(historyHash(hashOf('p'), 6, EventKind.RECORD, Buffer.from('x'))).not.toEqual(base);
    expect(historyHash(hashOf('p'), 5, EventKind.SESSION, Buffer.from('x'))).not.toEqual(base);
    expect(historyHash(hashOf('p'), 5, EventKind.RECORD, Buffer.from('y'))).not.toEqual(base);
    expect(genesisHash(randomUUID())).not.toEqual(genesisHash(randomUUID()));
  });

  it('stores UUIDs as 16 raw bytes', () => {
    const uuid = randomUUID();
    expect(uuidToBytes(uuid).length).toBe(16);
    expect(uuidFromBytes(uuidToBytes(uuid))).toBe(uuid);
    expect(() => uuidToBytes('not-a-uuid')).toThrow(RangeError);
  });
});

// ------------------------------------------------------------------ helpers

function sampleSuperblock(): Superblock {
  const geometry = memberGeometry(16 * GiB + 12345, SLAB);
  return {
    poolUuid: randomUUID(),
    memberUuid: randomUUID(),
    generation: 987654321,
    isMetadataReplica: true,
    replicaTarget: 3,
    geometry,
    checkpoint: { slot: 1, generation: 987654000, stateBytes: 4_000_000, stateCrc32c: 0x12345678, hash: hashOf('c') },
    logHeadOffset: 8192,
    logTailOffset: 65536,
    logSalt: 0x123456789abc,
  };
}

function expectContiguous(g: MemberGeometry): void {
  expect(g.checkpointSlotAOffset).toBe(METADATA_BLOCK);
  expect(g.checkpointSlotBOffset).toBe(g.checkpointSlotAOffset + g.checkpointSlotBytes);
  expect(g.logOffset).toBe(g.checkpointSlotBOffset + g.checkpointSlotBytes);
  expect(g.intentOffset).toBe(g.logOffset + g.logBytes);
  expect(g.journalOffset).toBe(g.intentOffset + g.intentBytes);
  expect(g.dataOffset).toBe(g.journalOffset + g.journalBytes);
  expect(g.dataOffset + g.slabCount * g.slabSize + g.paddingBytes).toBe(g.superblockBOffset);
  expect(g.paddingBytes).toBeLessThan(g.slabSize);
  for (const v of [g.checkpointSlotBytes, g.logBytes, g.intentBytes, g.journalBytes, g.superblockBOffset]) expect(v % METADATA_BLOCK).toBe(0);
}

function resealSuperblock(block: Buffer): void {
  const headerBytes = block.readUInt32LE(12);
  block.writeUInt32LE(0, 16);
  block.writeUInt32LE(crc32c(block.subarray(0, headerBytes)), 16);
}

function hashOf(text: string): Buffer {
  return historyHash(Buffer.alloc(16), 1, EventKind.RECORD, Buffer.from(text));
}

function bytewiseCrc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}
