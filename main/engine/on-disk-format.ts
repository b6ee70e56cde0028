/**
 * Every on-disk structure of a Spindle member, in one place.
 *
 * A member (one disk of a pool) looks like this; offsets in bytes from the
 * start of the device, all areas aligned to 4 KiB:
 *
 *   0        4 KiB                                         metadataBytes
 *   ┌────────┬─────────────┬─────────────┬─────────┬────────┬─────────┬────────┬────────┬─────┬─────────┬────────┐
 *   │ super- │ checkpoint  │ checkpoint  │ log     │ write- │ row     │ slab 0 │ slab 1 │ ... │ padding │ super- │
 *   │ block A│ slot A      │ slot B      │ ring    │ intent │ journal │        │        │     │         │ block B│
 *   └────────┴─────────────┴─────────────┴─────────┴────────┴─────────┴────────┴────────┴─────┴─────────┴────────┘
 *   │◄──────────────── metadata reservation = dataOffset ──────────────────►│            last 4 KiB ►│
 *
 * - Superblocks A and B (superblock_phys below) are two copies of the
 *   member's label: pool and member UUIDs, generation, the member's whole
 *   geometry (so no offset is ever recomputed from a formula that might
 *   change), and, on metadata replicas, which checkpoint slot is current,
 *   where the log starts and how far it may reach. Every member carries both,
 *   replica or not.
 * - Checkpoint slots A and B hold the pool state (an opaque buffer from the
 *   pool layer) behind a checkpoint_phys header; one is current, the other is
 *   idle and receives the next checkpoint. Only metadata replicas use them.
 * - The log ring holds log_record_phys records appended after the current
 *   checkpoint, chained by hash. Only metadata replicas use it.
 * - The write-intent area is reserved here for the write-intent bitmap
 *   (another module owns its contents). Format does not initialise it: its
 *   owner must recognise its own structures (magic, pool UUID, CRC) and treat
 *   anything else as "no intent recorded".
 * - The row journal (row-journal.ts owns its contents) holds, for a write to
 *   a parity row one of whose data columns is gone, the content parity alone
 *   keeps of that column, written before the row is touched: a crash in the
 *   middle of the row's writes can then not change what the gone column reads
 *   as (the RAID-5 write hole). Members labelled before it existed, and
 *   members whose reservation is too small for one journal slot, have none
 *   (journalBytes 0).
 * - Slabs (slab-geometry.ts has their inner shape) fill the rest; what does
 *   not make a whole slab is padding before superblock B.
 *
 * Sizes (tuning constants, and why):
 * - metadataBytes = clamp(memberSize / 1024 rounded down to 1 MiB, 8 MiB,
 *   512 MiB). 0.1 % of the member, the same overhead as a slab's CRC table.
 *   A member of size S holds about S / 256 MiB slabs, ~16 bytes each in a
 *   checkpoint, i.e. S / 16 Mi bytes of state; its slot (3/8 of S / 1024) is
 *   ~6,000 times that, so a member can hold the checkpoint of a pool of
 *   thousands of members its size. 8 MiB keeps a 3 MiB slot on small disks
 *   (~190,000 slab entries); 512 MiB caps the cost on big disks, whose 192 MiB
 *   slots hold ~12 million entries (a 1.5-million-slab pool needs ~24 MiB and
 *   fits from 64 GiB members up). The store prefers replicas with big slots.
 * - Within the reservation (after superblock A): intent = 1/16 (at least two
 *   4 KiB blocks), row journal = 1/16 up to 8 MiB (0 when that is less than
 *   its two header blocks and one 68 KiB slot), each slot = 3/8, log = the
 *   rest (~1/8). Checkpoints need the room: they are the
 *   whole state; the log only needs to hold what happens between two of them
 *   (every append takes at least one 4 KiB block, so 1 MiB holds ~250
 *   appends on the smallest members, 88 MiB ~22,000 on the largest). Eight
 *   MiB of journal is ~120 slots: as many degraded row writes in flight
 *   between two flushes, per member holding parity.
 * - dataOffset = metadataBytes, a multiple of 1 MiB, so slabs start aligned
 *   for any disk's physical block and any RAID controller's stripe.
 *
 * Rules for these structures (as OpenZFS's *_phys_t):
 * - Little-endian. u64 fields are read as JavaScript numbers and a value above
 *   2^53 - 1 makes the structure invalid (no real member comes near).
 * - Fields are only ever appended. Each structure records the bytes it covers
 *   (headerBytes), its CRC32C covers exactly those bytes (with the CRC field
 *   itself read as zero), so a newer writer's longer header still verifies in
 *   an older reader, which ignores the tail. FORMAT_VERSION changes only for
 *   an incompatible change; readers refuse versions they do not know.
 * - Magic numbers are 8 ASCII bytes ("SPNDLVLN": SPiNDLe VLun) so they show
 *   in a hex dump.
 *
 * The write order that makes all this crash safe is in metadata-store.ts.
 *
 * Index of every other on-disk structure, each documented field by field,
 * with units, beside the code that reads and writes it:
 *
 *   structure              where on the member           documented in
 *   superblock_phys        first and last 4 KiB           this file
 *   checkpoint_phys        checkpoint slots A, B          this file
 *   log_record_phys        log ring                       this file
 *   pool checkpoint state  inside a checkpoint_phys       pool-state.ts ("SPCK", v1: JSON head
 *                                                         + binary chunk map, little-endian)
 *   pool log record        inside a log_record_phys       pool-state.ts (PoolRecord, JSON; jobs
 *                                                         add job-start, job-update, job-end,
 *                                                         chunk-move and volume-rechunk records)
 *   job checkpoint         in the pool state (JSON head)  pool-state.ts (JobInfo: the slab move
 *                                                         under way and its copied rows, a
 *                                                         migrate's new chunks, a cursor)
 *   write-intent record    intent area, two slots         write-intent.ts ("SPNDLWIL", v1)
 *   row journal            journal area: two header       row-journal.ts ("SPNDLRJH" header,
 *                          blocks, then slots             "SPNDLRJR" record, v1)
 *   slab                   slabs                          slab-geometry.ts (data blocks, then
 *                                                         one u32 CRC32C per 4 KiB block,
 *                                                         0 = never written)
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32c, crcFieldHolds } from './metadata-crc.js';

export const FORMAT_VERSION = 1;

/** Bytes of one superblock, one checkpoint header, and the log's write unit. */
export const METADATA_BLOCK = 4096;
/** Slabs start on this boundary (see the theory comment). */
export const DATA_ALIGNMENT = 1024 * 1024;
export const METADATA_MIN_BYTES = 8 * 1024 * 1024;
export const METADATA_MAX_BYTES = 512 * 1024 * 1024;
/** Smallest metadata reservation accepted as an explicit override (tests, tiny members). */
export const METADATA_OVERRIDE_MIN_BYTES = 64 * 1024;
/** Overrides must keep slabs aligned at least to this. */
export const METADATA_OVERRIDE_ALIGNMENT = 64 * 1024;
/** The write-intent area is never smaller than two blocks (its owner alternates between two records). */
export const INTENT_MIN_BYTES = 2 * 4096;
/** The row journal: two header blocks and at least one slot (a 4 KiB record header and one 64 KiB stripe unit), else none. */
export const JOURNAL_MIN_BYTES = 2 * 4096 + 4096 + 64 * 1024;
export const JOURNAL_MAX_BYTES = 8 * 1024 * 1024;

/** "SPNDLVLN": superblock. */
export const SUPERBLOCK_MAGIC = Buffer.from('SPNDLVLN', 'latin1');
/** "SPNDLCKP": checkpoint slot header. */
export const CHECKPOINT_MAGIC = Buffer.from('SPNDLCKP', 'latin1');
/** "SPNDLREC": log record header. */
export const LOG_RECORD_MAGIC = Buffer.from('SPNDLREC', 'latin1');
/** "SPNDLPRB": a probe block format writes briefly to tell two handles of one disk apart. */
export const PROBE_MAGIC = Buffer.from('SPNDLPRB', 'latin1');

/** Bytes of a history hash (SHA-256, truncated: collisions by accident are out of reach at 2^64). */
export const HASH_BYTES = 16;

// ------------------------------------------------------------------ geometry

export interface MemberGeometry {
  /** Device size the member was formatted for. */
  readonly memberSize: number;
  readonly slabSize: number;
  readonly slabCount: number;
  /** Bytes reserved at the start for superblock A and the metadata areas; equals dataOffset. */
  readonly metadataBytes: number;
  /** Offset of slab 0. */
  readonly dataOffset: number;
  readonly superblockAOffset: number;
  readonly superblockBOffset: number;
  readonly checkpointSlotAOffset: number;
  readonly checkpointSlotBOffset: number;
  /** Bytes of each slot, header included. */
  readonly checkpointSlotBytes: number;
  readonly logOffset: number;
  readonly logBytes: number;
  readonly intentOffset: number;
  readonly intentBytes: number;
  /** The row journal; 0 bytes when the member has none (see the theory comment). */
  readonly journalOffset: number;
  readonly journalBytes: number;
  /** Bytes between the last slab and superblock B. */
  readonly paddingBytes: number;
}

export interface GeometryOptions {
  /**
   * Explicit metadata reservation (a multiple of 64 KiB, at least 64 KiB)
   * instead of the default formula: for tests, which want a small log, and
   * for tuning. It is recorded in the superblock like everything else.
   */
  readonly metadataBytes?: number;
}

export class GeometryError extends Error {
  constructor(
    readonly code: 'MEMBER_TOO_SMALL' | 'INVALID_ARGUMENT',
    message: string,
    /** For MEMBER_TOO_SMALL: the smallest member size that would work. */
    readonly minimumMemberSize?: number,
  ) {
    super(message);
    this.name = 'GeometryError';
  }
}

/** The default metadata reservation for a member of `memberSize` bytes. */
export function defaultMetadataBytes(memberSize: number): number {
  const proportional = alignDown(Math.floor(memberSize / 1024), DATA_ALIGNMENT);
  return Math.min(METADATA_MAX_BYTES, Math.max(METADATA_MIN_BYTES, proportional));
}

/**
 * Where everything lives on a member of `memberSize` bytes with slabs of
 * `slabSize` bytes. Throws GeometryError('MEMBER_TOO_SMALL') with the minimum
 * size when not even one slab fits beside the metadata.
 */
export function memberGeometry(memberSize: number, slabSize: number, options: GeometryOptions = {}): MemberGeometry {
  if (!Number.isSafeInteger(memberSize) || memberSize < 0) {
    throw new GeometryError('INVALID_ARGUMENT', `member size ${memberSize} is not a byte count`);
  }
  if (!Number.isSafeInteger(slabSize) || slabSize <= 0 || slabSize % METADATA_BLOCK !== 0) {
    throw new GeometryError('INVALID_ARGUMENT', `slab size ${slabSize} is not a positive multiple of ${METADATA_BLOCK} bytes`);
  }
  const override = options.metadataBytes;
  if (override !== undefined) {
    if (!Number.isSafeInteger(override) || override < METADATA_OVERRIDE_MIN_BYTES || override % METADATA_OVERRIDE_ALIGNMENT !== 0) {
      throw new GeometryError(
        'INVALID_ARGUMENT',
        `metadata reservation ${override} must be a multiple of ${METADATA_OVERRIDE_ALIGNMENT} bytes, at least ${METADATA_OVERRIDE_MIN_BYTES}`,
      );
    }
  }
  const metadataBytes = override ?? defaultMetadataBytes(memberSize);
  const usable = alignDown(memberSize, METADATA_BLOCK);
  const superblockBOffset = usable - METADATA_BLOCK;
  const slabSpace = superblockBOffset - metadataBytes;
  const slabCount = slabSpace > 0 ? Math.floor(slabSpace / slabSize) : 0;
  if (slabCount < 1) {
    const minimum = minimumMemberSize(slabSize, options);
    throw new GeometryError(
      'MEMBER_TOO_SMALL',
      `a member of ${memberSize} bytes is too small: it needs at least ${minimum} bytes ` +
        `(${metadataBytesFor(minimum, options)} bytes of metadata, one ${slabSize}-byte slab and a ${METADATA_BLOCK}-byte superblock copy)`,
      minimum,
    );
  }
  const area = metadataBytes - METADATA_BLOCK;
  const intentBytes = Math.max(INTENT_MIN_BYTES, alignDown(Math.floor(area / 16), METADATA_BLOCK));
  const checkpointSlotBytes = alignDown(Math.floor((area * 3) / 8), METADATA_BLOCK);
  const journalShare = Math.min(JOURNAL_MAX_BYTES, alignDown(Math.floor(area / 16), METADATA_BLOCK));
  const journalBytes = journalShare >= JOURNAL_MIN_BYTES ? journalShare : 0;
  const logBytes = area - intentBytes - journalBytes - 2 * checkpointSlotBytes;
  const checkpointSlotAOffset = METADATA_BLOCK;
  const checkpointSlotBOffset = checkpointSlotAOffset + checkpointSlotBytes;
  const logOffset = checkpointSlotBOffset + checkpointSlotBytes;
  const intentOffset = logOffset + logBytes;
  const journalOffset = intentOffset + intentBytes;
  return {
    memberSize,
    slabSize,
    slabCount,
    metadataBytes,
    dataOffset: metadataBytes,
    superblockAOffset: 0,
    superblockBOffset,
    checkpointSlotAOffset,
    checkpointSlotBOffset,
    checkpointSlotBytes,
    logOffset,
    logBytes,
    intentOffset,
    intentBytes,
    journalOffset,
    journalBytes,
    paddingBytes: superblockBOffset - (metadataBytes + slabCount * slabSize),
  };
}

/** The smallest member (a multiple of 4 KiB) that holds the metadata and one slab. */
export function minimumMemberSize(slabSize: number, options: GeometryOptions = {}): number {
  // The reservation grows with the member, so iterate to the fixed point
  // (two or three rounds: it grows by 1 MiB per GiB).
  let size = metadataBytesFor(0, options) + slabSize + METADATA_BLOCK;
  for (;;) {
    const needed = metadataBytesFor(size, options) + slabSize + METADATA_BLOCK;
    if (needed <= size) return size;
    size = needed;
  }
}

function metadataBytesFor(memberSize: number, options: GeometryOptions): number {
  return options.metadataBytes ?? defaultMetadataBytes(memberSize);
}

/** Bytes of state a checkpoint slot of this geometry holds. */
export function checkpointCapacity(geometry: MemberGeometry): number {
  return geometry.checkpointSlotBytes - CHECKPOINT_HEADER_BYTES;
}

// ------------------------------------------------------------------ superblock_phys

/*
 * superblock_phys: one 4 KiB block at offset 0 (A) and at superblockBOffset
 * (B), the rest of the block zero. Offsets are from the start of the device
 * unless the name says "relative to the log".
 *
 *   off  size  field                          unit / meaning
 *     0     8  magic                          "SPNDLVLN"
 *     8     4  formatVersion                  1
 *    12     4  headerBytes                    bytes covered by the CRC (256 now; 232 and 240,
 *                                             from before logHorizonBytes and the journal
 *                                             fields were appended, still accepted)
 *    16     4  headerCrc32c                   CRC32C of [0, headerBytes), this field as 0
 *    20     4  flags                          bit 0: this member is a metadata replica
 *    24    16  poolUuid                       raw bytes
 *    40    16  memberUuid                     raw bytes
 *    56     8  generation                     pool generation this label is current with
 *    64     8  memberSizeBytes                device size at format
 *    72     8  slabSizeBytes
 *    80     8  slabCount                      slabs on this member
 *    88     8  dataOffsetBytes                offset of slab 0 (= metadata reservation)
 *    96     8  superblockBOffsetBytes
 *   104     8  checkpointSlotAOffsetBytes
 *   112     8  checkpointSlotBOffsetBytes
 *   120     8  checkpointSlotBytes            bytes of each slot, header included
 *   128     8  logOffsetBytes
 *   136     8  logBytes
 *   144     8  intentOffsetBytes
 *   152     8  intentBytes
 *   160     4  replicaTarget                  metadata replicas the pool keeps (count)
 *   164     4  checkpointSlot                 0 = A, 1 = B, 0xFFFFFFFF = none (not a replica)
 *   168     8  checkpointGeneration           generation of the checkpoint in that slot
 *   176     8  checkpointStateBytes           bytes of state after the slot's header
 *   184     4  checkpointStateCrc32c
 *   188     4  reserved                       0
 *   192    16  checkpointHash                 history hash at checkpointGeneration
 *   208     8  logHeadOffsetBytes             relative to the log: first record after the checkpoint
 *   216     8  logTailOffsetBytes             relative to the log: where the writer was (a hint;
 *                                             readers follow the hash chain from the head)
 *   224     8  logSalt                        random, new each time this member's log restarts
 *                                             (every checkpoint); its records carry it
 *   232     8  logHorizonBytes                bytes of the log ring, counted from the head (wrap
 *                                             included, as the writer counts its log use), that
 *                                             the writer may fill before it writes this label
 *                                             again with a larger value: no record of this log's
 *                                             incarnation lies beyond it, so import reads only
 *                                             that much of the ring (metadata-store.ts). 0 (or a
 *                                             232-byte header): unknown, read the whole ring
 *   240     8  journalOffsetBytes             the row journal (absent in shorter headers:
 *   248     8  journalBytes                   no journal, as 0 bytes says too)
 *   256        end
 */
const SB = {
  magic: 0,
  formatVersion: 8,
  headerBytes: 12,
  headerCrc32c: 16,
  flags: 20,
  poolUuid: 24,
  memberUuid: 40,
  generation: 56,
  memberSizeBytes: 64,
  slabSizeBytes: 72,
  slabCount: 80,
  dataOffsetBytes: 88,
  superblockBOffsetBytes: 96,
  checkpointSlotAOffsetBytes: 104,
  checkpointSlotBOffsetBytes: 112,
  checkpointSlotBytes: 120,
  logOffsetBytes: 128,
  logBytes: 136,
  intentOffsetBytes: 144,
  intentBytes: 152,
  replicaTarget: 160,
  checkpointSlot: 164,
  checkpointGeneration: 168,
  checkpointStateBytes: 176,
  checkpointStateCrc32c: 184,
  checkpointHash: 192,
  logHeadOffsetBytes: 208,
  logTailOffsetBytes: 216,
  logSalt: 224,
  logHorizonBytes: 232,
  journalOffsetBytes: 240,
  journalBytes: 248,
  end: 256,
} as const;
/** The superblock header as first written (before logHorizonBytes); still the shortest accepted. */
export const SUPERBLOCK_V1_BYTES = SB.logHorizonBytes;
/** The superblock header this version writes. */
export const SUPERBLOCK_BYTES = SB.end;
const FLAG_METADATA_REPLICA = 1;
const NO_SLOT = 0xffffffff;

export interface SuperblockCheckpoint {
  readonly slot: 0 | 1;
  readonly generation: number;
  readonly stateBytes: number;
  readonly stateCrc32c: number;
  readonly hash: Buffer;
}

export interface Superblock {
  readonly poolUuid: string;
  readonly memberUuid: string;
  readonly generation: number;
  readonly isMetadataReplica: boolean;
  readonly replicaTarget: number;
  readonly geometry: MemberGeometry;
  /** The current checkpoint; undefined on members that are not metadata replicas. */
  readonly checkpoint: SuperblockCheckpoint | undefined;
  /** Relative to geometry.logOffset. */
  readonly logHeadOffset: number;
  readonly logTailOffset: number;
  /** Random, below 2^48 (0 on non-replicas): tells this log's records from any left over by an earlier one. */
  readonly logSalt: number;
  /**
   * Replicas: how much of the log ring, from the head, this log's records may
   * occupy (see the field table); undefined when the label does not say
   * (written before the field existed, or not a replica).
   */
  readonly logHorizonBytes?: number;
}

export function encodeSuperblock(sb: Superblock): Buffer {
  const b = Buffer.alloc(METADATA_BLOCK);
  const g = sb.geometry;
  SUPERBLOCK_MAGIC.copy(b, SB.magic);
  b.writeUInt32LE(FORMAT_VERSION, SB.formatVersion);
  b.writeUInt32LE(SUPERBLOCK_BYTES, SB.headerBytes);
  b.writeUInt32LE(sb.isMetadataReplica ? FLAG_METADATA_REPLICA : 0, SB.flags);
  uuidToBytes(sb.poolUuid).copy(b, SB.poolUuid);
  uuidToBytes(sb.memberUuid).copy(b, SB.memberUuid);
  writeU64(b, SB.generation, sb.generation);
  writeU64(b, SB.memberSizeBytes, g.memberSize);
  writeU64(b, SB.slabSizeBytes, g.slabSize);
  writeU64(b, SB.slabCount, g.slabCount);
  writeU64(b, SB.dataOffsetBytes, g.dataOffset);
  writeU64(b, SB.superblockBOffsetBytes, g.superblockBOffset);
  writeU64(b, SB.checkpointSlotAOffsetBytes, g.checkpointSlotAOffset);
  writeU64(b, SB.checkpointSlotBOffsetBytes, g.checkpointSlotBOffset);
  writeU64(b, SB.checkpointSlotBytes, g.checkpointSlotBytes);
  writeU64(b, SB.logOffsetBytes, g.logOffset);
  writeU64(b, SB.logBytes, g.logBytes);
  writeU64(b, SB.intentOffsetBytes, g.intentOffset);
  writeU64(b, SB.intentBytes, g.intentBytes);
  b.writeUInt32LE(sb.replicaTarget, SB.replicaTarget);
  const ckpt = sb.checkpoint;
  b.writeUInt32LE(ckpt ? ckpt.slot : NO_SLOT, SB.checkpointSlot);
  if (ckpt) {
    writeU64(b, SB.checkpointGeneration, ckpt.generation);
    writeU64(b, SB.checkpointStateBytes, ckpt.stateBytes);
    b.writeUInt32LE(ckpt.stateCrc32c, SB.checkpointStateCrc32c);
    checkHash(ckpt.hash).copy(b, SB.checkpointHash);
  }
  writeU64(b, SB.logHeadOffsetBytes, sb.logHeadOffset);
  writeU64(b, SB.logTailOffsetBytes, sb.logTailOffset);
  writeU64(b, SB.logSalt, sb.logSalt);
  writeU64(b, SB.logHorizonBytes, sb.logHorizonBytes ?? 0);
  writeU64(b, SB.journalOffsetBytes, g.journalOffset);
  writeU64(b, SB.journalBytes, g.journalBytes);
  b.writeUInt32LE(crc32c(b.subarray(0, SUPERBLOCK_BYTES)), SB.headerCrc32c);
  return b;
}

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Decodes and verifies a superblock block; `reason` says why one is not valid. */
export function decodeSuperblock(block: Buffer): Decoded<Superblock> {
  if (block.length < SUPERBLOCK_V1_BYTES) return bad('short block');
  if (!block.subarray(0, 8).equals(SUPERBLOCK_MAGIC)) return bad('no superblock magic');
  const version = block.readUInt32LE(SB.formatVersion);
  if (version !== FORMAT_VERSION) return bad(`unsupported format version ${version}`);
  const headerBytes = block.readUInt32LE(SB.headerBytes);
  if (headerBytes < SUPERBLOCK_V1_BYTES || headerBytes > Math.min(block.length, METADATA_BLOCK)) {
    return bad(`header length ${headerBytes} out of range`);
  }
  if (!crcFieldHolds(block, headerBytes, SB.headerCrc32c)) return bad('superblock checksum mismatch');
  try {
    const geometry: MemberGeometry = {
      memberSize: readU64(block, SB.memberSizeBytes),
      slabSize: readU64(block, SB.slabSizeBytes),
      slabCount: readU64(block, SB.slabCount),
      metadataBytes: readU64(block, SB.dataOffsetBytes),
      dataOffset: readU64(block, SB.dataOffsetBytes),
      superblockAOffset: 0,
      superblockBOffset: readU64(block, SB.superblockBOffsetBytes),
      checkpointSlotAOffset: readU64(block, SB.checkpointSlotAOffsetBytes),
      checkpointSlotBOffset: readU64(block, SB.checkpointSlotBOffsetBytes),
      checkpointSlotBytes: readU64(block, SB.checkpointSlotBytes),
      logOffset: readU64(block, SB.logOffsetBytes),
      logBytes: readU64(block, SB.logBytes),
      intentOffset: readU64(block, SB.intentOffsetBytes),
      intentBytes: readU64(block, SB.intentBytes),
      // Labels from before the journal have none.
      journalOffset: headerBytes >= SB.end ? readU64(block, SB.journalOffsetBytes) : 0,
      journalBytes: headerBytes >= SB.end ? readU64(block, SB.journalBytes) : 0,
      paddingBytes: 0,
    };
    const withPadding = {
      ...geometry,
      paddingBytes: geometry.superblockBOffset - (geometry.dataOffset + geometry.slabCount * geometry.slabSize),
    };
    const problem = geometryProblem(withPadding);
    if (problem) return bad(`inconsistent geometry: ${problem}`);
    const slot = block.readUInt32LE(SB.checkpointSlot);
    const flags = block.readUInt32LE(SB.flags);
    const isMetadataReplica = (flags & FLAG_METADATA_REPLICA) !== 0;
    if (slot !== NO_SLOT && slot !== 0 && slot !== 1) return bad(`bad checkpoint slot ${slot}`);
    if (isMetadataReplica !== (slot !== NO_SLOT)) return bad('replica flag and checkpoint slot disagree');
    const checkpoint: SuperblockCheckpoint | undefined =
      slot === NO_SLOT
        ? undefined
        : {
            slot: slot as 0 | 1,
            generation: readU64(block, SB.checkpointGeneration),
            stateBytes: readU64(block, SB.checkpointStateBytes),
            stateCrc32c: block.readUInt32LE(SB.checkpointStateCrc32c),
            hash: Buffer.from(block.subarray(SB.checkpointHash, SB.checkpointHash + HASH_BYTES)),
          };
    if (checkpoint && checkpoint.stateBytes > checkpointCapacity(withPadding)) return bad('checkpoint larger than its slot');
    const logHeadOffset = readU64(block, SB.logHeadOffsetBytes);
    const logTailOffset = readU64(block, SB.logTailOffsetBytes);
    if (logHeadOffset > withPadding.logBytes || logTailOffset > withPadding.logBytes) return bad('log position outside the log');
    // Absent in a v1-sized header; 0 means "not known" too.
    const horizon = headerBytes >= SB.journalOffsetBytes ? readU64(block, SB.logHorizonBytes) : 0;
    if (horizon > withPadding.logBytes) return bad('log horizon beyond the log');
    return {
      ok: true,
      value: {
        poolUuid: uuidFromBytes(block.subarray(SB.poolUuid, SB.poolUuid + 16)),
        memberUuid: uuidFromBytes(block.subarray(SB.memberUuid, SB.memberUuid + 16)),
        generation: readU64(block, SB.generation),
        isMetadataReplica,
        replicaTarget: block.readUInt32LE(SB.replicaTarget),
        geometry: withPadding,
        checkpoint,
        logHeadOffset,
        logTailOffset,
        logSalt: readU64(block, SB.logSalt),
        logHorizonBytes: horizon > 0 ? horizon : undefined,
      },
    };
  } catch (error) {
    return bad(error instanceof Error ? error.message : String(error));
  }
}

/** Why a decoded geometry cannot be real (areas overlap or leave the device), or undefined. */
function geometryProblem(g: MemberGeometry): string | undefined {
  const aligned = [g.dataOffset, g.superblockBOffset, g.checkpointSlotAOffset, g.checkpointSlotBOffset, g.checkpointSlotBytes, g.logOffset, g.logBytes, g.intentOffset, g.intentBytes, g.journalOffset, g.journalBytes, g.slabSize];
  if (aligned.some((v) => v % METADATA_BLOCK !== 0)) return 'an area is not 4 KiB aligned';
  if (g.slabSize === 0 || g.slabCount === 0) return 'no slabs';
  if (g.checkpointSlotAOffset < METADATA_BLOCK) return 'slot A overlaps superblock A';
  if (g.checkpointSlotBytes <= CHECKPOINT_HEADER_BYTES) return 'checkpoint slots too small';
  if (g.checkpointSlotBOffset < g.checkpointSlotAOffset + g.checkpointSlotBytes) return 'slots overlap';
  if (g.logOffset < g.checkpointSlotBOffset + g.checkpointSlotBytes) return 'log overlaps slot B';
  if (g.logBytes < METADATA_BLOCK) return 'log too small';
  if (g.intentOffset < g.logOffset + g.logBytes) return 'intent area overlaps the log';
  if (g.dataOffset < g.intentOffset + g.intentBytes) return 'slabs overlap the metadata';
  if (g.journalBytes > 0 && g.journalOffset < g.intentOffset + g.intentBytes) return 'row journal overlaps the intent area';
  if (g.journalBytes > 0 && g.dataOffset < g.journalOffset + g.journalBytes) return 'slabs overlap the row journal';
  if (g.paddingBytes < 0) return 'slabs overlap superblock B';
  if (g.superblockBOffset + METADATA_BLOCK > g.memberSize) return 'superblock B beyond the member';
  return undefined;
}

// ------------------------------------------------------------------ checkpoint_phys

/*
 * checkpoint_phys: the first 4 KiB of a checkpoint slot; the state follows at
 * slot offset + 4 KiB.
 *
 *   off  size  field                  unit / meaning
 *     0     8  magic                  "SPNDLCKP"
 *     8     4  formatVersion          1
 *    12     4  headerBytes            bytes covered by the CRC, session table included
 *    16     4  headerCrc32c           CRC32C of [0, headerBytes), this field as 0
 *    20     4  stateCrc32c            CRC32C of the state
 *    24    16  poolUuid
 *    40     8  generation             the checkpoint's own generation (it is an event in the history)
 *    48     8  stateBytes
 *    56    16  prevHash               history hash of generation - 1
 *    72    16  hash                   historyHash(prevHash, generation, CHECKPOINT, state)
 *    88     4  sessionCount           entries in the session table (at most 128)
 *    92     4  sessionTableOffset     bytes from the header start (96 in v1; fields appended later go before it)
 *    96        session table: sessionCount × { generation u64, hash[16] }, oldest first:
 *              the most recent writing sessions' first generations and their hashes,
 *              which lets import tell an ancestor from a diverged replica (metadata-store.ts)
 */
const CK = {
  magic: 0,
  formatVersion: 8,
  headerBytes: 12,
  headerCrc32c: 16,
  stateCrc32c: 20,
  poolUuid: 24,
  generation: 40,
  stateBytes: 48,
  prevHash: 56,
  hash: 72,
  sessionCount: 88,
  sessionTableOffset: 92,
  end: 96,
} as const;
export const CHECKPOINT_HEADER_BYTES = METADATA_BLOCK;
export const SESSION_ENTRY_BYTES = 8 + HASH_BYTES;
/** Sessions a checkpoint remembers: 128 × 24 bytes fit the header block with room to grow. */
export const MAX_SESSIONS_REMEMBERED = 128;

/** The first generation of one writing session and the history hash there. */
export interface SessionStart {
  readonly generation: number;
  readonly hash: Buffer;
}

export interface CheckpointHeader {
  readonly poolUuid: string;
  readonly generation: number;
  readonly stateBytes: number;
  readonly stateCrc32c: number;
  readonly prevHash: Buffer;
  readonly hash: Buffer;
  readonly sessions: readonly SessionStart[];
}

export function encodeCheckpointHeader(h: CheckpointHeader): Buffer {
  if (h.sessions.length > MAX_SESSIONS_REMEMBERED) throw new RangeError(`at most ${MAX_SESSIONS_REMEMBERED} sessions fit a checkpoint`);
  const b = Buffer.alloc(CHECKPOINT_HEADER_BYTES);
  const headerBytes = CK.end + h.sessions.length * SESSION_ENTRY_BYTES;
  CHECKPOINT_MAGIC.copy(b, CK.magic);
  b.writeUInt32LE(FORMAT_VERSION, CK.formatVersion);
  b.writeUInt32LE(headerBytes, CK.headerBytes);
  b.writeUInt32LE(h.stateCrc32c, CK.stateCrc32c);
  uuidToBytes(h.poolUuid).copy(b, CK.poolUuid);
  writeU64(b, CK.generation, h.generation);
  writeU64(b, CK.stateBytes, h.stateBytes);
  checkHash(h.prevHash).copy(b, CK.prevHash);
  checkHash(h.hash).copy(b, CK.hash);
  b.writeUInt32LE(h.sessions.length, CK.sessionCount);
  b.writeUInt32LE(CK.end, CK.sessionTableOffset);
  h.sessions.forEach((s, i) => {
    const at = CK.end + i * SESSION_ENTRY_BYTES;
    writeU64(b, at, s.generation);
    checkHash(s.hash).copy(b, at + 8);
  });
  b.writeUInt32LE(crc32c(b.subarray(0, headerBytes)), CK.headerCrc32c);
  return b;
}

export function decodeCheckpointHeader(block: Buffer): Decoded<CheckpointHeader> {
  if (block.length < CK.end) return bad('short block');
  if (!block.subarray(0, 8).equals(CHECKPOINT_MAGIC)) return bad('no checkpoint magic');
  const version = block.readUInt32LE(CK.formatVersion);
  if (version !== FORMAT_VERSION) return bad(`unsupported format version ${version}`);
  const headerBytes = block.readUInt32LE(CK.headerBytes);
  if (headerBytes < CK.end || headerBytes > Math.min(block.length, CHECKPOINT_HEADER_BYTES)) return bad('header length out of range');
  if (!crcFieldHolds(block, headerBytes, CK.headerCrc32c)) return bad('checkpoint header checksum mismatch');
  const count = block.readUInt32LE(CK.sessionCount);
  const tableOffset = block.readUInt32LE(CK.sessionTableOffset);
  if (tableOffset < CK.end || tableOffset + count * SESSION_ENTRY_BYTES > headerBytes) return bad('session table out of range');
  try {
    const sessions: SessionStart[] = [];
    for (let i = 0; i < count; i++) {
      const at = tableOffset + i * SESSION_ENTRY_BYTES;
      sessions.push({ generation: readU64(block, at), hash: Buffer.from(block.subarray(at + 8, at + 8 + HASH_BYTES)) });
    }
    return {
      ok: true,
      value: {
        poolUuid: uuidFromBytes(block.subarray(CK.poolUuid, CK.poolUuid + 16)),
        generation: readU64(block, CK.generation),
        stateBytes: readU64(block, CK.stateBytes),
        stateCrc32c: block.readUInt32LE(CK.stateCrc32c),
        prevHash: Buffer.from(block.subarray(CK.prevHash, CK.prevHash + HASH_BYTES)),
        hash: Buffer.from(block.subarray(CK.hash, CK.hash + HASH_BYTES)),
        sessions,
      },
    };
  } catch (error) {
    return bad(error instanceof Error ? error.message : String(error));
  }
}

// ------------------------------------------------------------------ log_record_phys

/*
 * log_record_phys: records are appended to the log ring in batches (one
 * write + flush each). Inside a batch records follow each other on 8-byte
 * boundaries; a batch is zero-padded to a whole 4 KiB block, so an append
 * never rewrites a block holding an earlier, acknowledged record (a torn
 * rewrite could otherwise destroy it). A batch that does not fit before the
 * end of the ring starts again at relative offset 0.
 *
 *   off  size  field                  unit / meaning
 *     0     8  magic                  "SPNDLREC"
 *     8     2  headerBytes            88 in v1; the payload starts here
 *    10     1  kind                   1 = pool record, 2 = session start
 *    11     1  reserved               0
 *    12     4  payloadBytes
 *    16     8  generation
 *    24     8  checkpointGeneration   the checkpoint this record follows (the log's epoch):
 *                                     records of older epochs left in the ring are ignored
 *    32     8  batchFirstGeneration   first generation of the batch this record was written in
 *    40     4  payloadCrc32c
 *    44     4  headerCrc32c           CRC32C of [0, headerBytes), this field as 0
 *    48    16  poolUuid
 *    64    16  prevHash               history hash of generation - 1
 *    80     8  logSalt                the log's salt from the superblock: records an
 *                                     earlier incarnation of the log left behind are ignored
 *    88        payload, then zeroes to the next 8-byte boundary
 *
 * A session-start payload is 16 random bytes (the session id) and the start
 * time (u64, milliseconds since 1970).
 */
const LR = {
  magic: 0,
  headerBytes: 8,
  kind: 10,
  payloadBytes: 12,
  generation: 16,
  checkpointGeneration: 24,
  batchFirstGeneration: 32,
  payloadCrc32c: 40,
  headerCrc32c: 44,
  poolUuid: 48,
  prevHash: 64,
  logSalt: 80,
  end: 88,
} as const;
export const LOG_RECORD_HEADER_BYTES = LR.end;
export const LOG_RECORD_ALIGNMENT = 8;

/** Kinds of history events; CHECKPOINT only ever appears inside hashes, never in the log. */
export const EventKind = { RECORD: 1, SESSION: 2, CHECKPOINT: 3 } as const;
export type LogRecordKind = typeof EventKind.RECORD | typeof EventKind.SESSION;

export interface LogRecord {
  readonly kind: LogRecordKind;
  readonly generation: number;
  readonly prevHash: Buffer;
  readonly payload: Buffer;
}

export interface LogRecordHeader {
  readonly headerBytes: number;
  readonly kind: number;
  readonly payloadBytes: number;
  readonly generation: number;
  readonly checkpointGeneration: number;
  readonly batchFirstGeneration: number;
  readonly payloadCrc32c: number;
  readonly poolUuid: string;
  readonly prevHash: Buffer;
  readonly logSalt: number;
}

/** Bytes a record of `payloadBytes` takes in the log, padding included. */
export function logRecordBytes(payloadBytes: number): number {
  return alignUp(LOG_RECORD_HEADER_BYTES + payloadBytes, LOG_RECORD_ALIGNMENT);
}

/** Bytes a batch takes in the log: its records, padded to whole blocks. */
export function logBatchBytes(payloadSizes: readonly number[]): number {
  return alignUp(
    payloadSizes.reduce((sum, n) => sum + logRecordBytes(n), 0),
    METADATA_BLOCK,
  );
}

/** Encodes records (consecutive generations) as one batch, ready to write at a block boundary. */
export function encodeLogBatch(
  poolUuid: string,
  checkpointGeneration: number,
  logSalt: number,
  records: readonly LogRecord[],
): Buffer {
  const out = Buffer.alloc(logBatchBytes(records.map((r) => r.payload.length)));
  const pool = uuidToBytes(poolUuid);
  const first = records[0]?.generation ?? 0;
  let at = 0;
  for (const r of records) {
    out.set(LOG_RECORD_MAGIC, at + LR.magic);
    out.writeUInt16LE(LOG_RECORD_HEADER_BYTES, at + LR.headerBytes);
    out.writeUInt8(r.kind, at + LR.kind);
    out.writeUInt32LE(r.payload.length, at + LR.payloadBytes);
    writeU64(out, at + LR.generation, r.generation);
    writeU64(out, at + LR.checkpointGeneration, checkpointGeneration);
    writeU64(out, at + LR.batchFirstGeneration, first);
    out.writeUInt32LE(crc32c(r.payload), at + LR.payloadCrc32c);
    out.set(pool, at + LR.poolUuid);
    out.set(checkHash(r.prevHash), at + LR.prevHash);
    writeU64(out, at + LR.logSalt, logSalt);
    out.writeUInt32LE(crc32c(out.subarray(at, at + LOG_RECORD_HEADER_BYTES)), at + LR.headerCrc32c);
    out.set(r.payload, at + LOG_RECORD_HEADER_BYTES);
    at += logRecordBytes(r.payload.length);
  }
  return out;
}

/** Decodes and verifies the header of a record at `offset` (the payload is checked separately). */
export function decodeLogRecordHeader(buf: Buffer, offset: number): Decoded<LogRecordHeader> {
  if (offset < 0 || offset + LOG_RECORD_HEADER_BYTES > buf.length) return bad('header beyond the log');
  if (buf.compare(LOG_RECORD_MAGIC, 0, 8, offset, offset + 8) !== 0) return bad('no record magic');
  const headerBytes = buf.readUInt16LE(offset + LR.headerBytes);
  if (headerBytes < LOG_RECORD_HEADER_BYTES || offset + headerBytes > buf.length) return bad('header length out of range');
  if (!crcFieldHolds(buf.subarray(offset, offset + headerBytes), headerBytes, LR.headerCrc32c)) return bad('record header checksum mismatch');
  try {
    return {
      ok: true,
      value: {
        headerBytes,
        kind: buf.readUInt8(offset + LR.kind),
        payloadBytes: buf.readUInt32LE(offset + LR.payloadBytes),
        generation: readU64(buf, offset + LR.generation),
        checkpointGeneration: readU64(buf, offset + LR.checkpointGeneration),
        batchFirstGeneration: readU64(buf, offset + LR.batchFirstGeneration),
        payloadCrc32c: buf.readUInt32LE(offset + LR.payloadCrc32c),
        poolUuid: uuidFromBytes(buf.subarray(offset + LR.poolUuid, offset + LR.poolUuid + 16)),
        prevHash: Buffer.from(buf.subarray(offset + LR.prevHash, offset + LR.prevHash + HASH_BYTES)),
        logSalt: readU64(buf, offset + LR.logSalt),
      },
    };
  } catch (error) {
    return bad(error instanceof Error ? error.message : String(error));
  }
}

// ------------------------------------------------------------------ history hashes

/**
 * The hash chain: every event (pool record, session start, checkpoint) has a
 * generation and hash = SHA-256(prevHash ‖ u64 generation ‖ u8 kind ‖
 * payload), first 16 bytes. Two replicas with the same hash at a generation
 * have the same history up to it.
 */
export function historyHash(prevHash: Buffer, generation: number, kind: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(9);
  writeU64(head, 0, generation);
  head.writeUInt8(kind, 8);
  return createHash('sha256').update(checkHash(prevHash)).update(head).update(payload).digest().subarray(0, HASH_BYTES);
}

/** The prevHash of generation 1: distinct per pool, so two pools' chains never meet. */
export function genesisHash(poolUuid: string): Buffer {
  return createHash('sha256').update('spindle-genesis\0').update(uuidToBytes(poolUuid)).digest().subarray(0, HASH_BYTES);
}

// ------------------------------------------------------------------ probe block

/*
 * probe_phys: written at offset 0 of every new member during format (and
 * restored right after) to find two handles of one disk: 8 bytes "SPNDLPRB",
 * 16 random bytes of nonce, u32 index of the member in the request.
 */
export function encodeProbe(nonce: Buffer, index: number): Buffer {
  const b = Buffer.alloc(METADATA_BLOCK);
  PROBE_MAGIC.copy(b, 0);
  nonce.copy(b, 8, 0, 16);
  b.writeUInt32LE(index, 24);
  return b;
}

/** The index a probe block names, if it is a probe with this nonce. */
export function decodeProbe(block: Buffer, nonce: Buffer): number | undefined {
  if (block.length < 28 || !block.subarray(0, 8).equals(PROBE_MAGIC) || !block.subarray(8, 24).equals(nonce.subarray(0, 16))) return undefined;
  return block.readUInt32LE(24);
}

// ------------------------------------------------------------------ helpers

/** A fresh log salt (48 random bits: a safe integer, and never 0). */
export function newLogSalt(): number {
  return randomBytes(6).readUIntLE(0, 6) || 1;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(text: string): boolean {
  return UUID_PATTERN.test(text);
}

/**
 * The 44 bytes that begin both the write-intent record (write-intent.ts) and
 * the row journal's header (row-journal.ts):
 *
 *   off  size  field
 *     0     8  magic
 *     8     4  formatVersion
 *    12     4  count (of what follows; each format says of what)
 *    16     8  sequence (u64)
 *    24    16  poolUuid (raw)
 *    40     4  crc32c, which the caller fills in once the rest is written
 */
export function writePoolRecordPrefix(out: Buffer, magic: Buffer, version: number, count: number, sequence: number, poolUuid: string): void {
  magic.copy(out, 0);
  out.writeUInt32LE(version, 8);
  out.writeUInt32LE(count, 12);
  out.writeBigUInt64LE(BigInt(sequence), 16);
  uuidToBytes(poolUuid).copy(out, 24);
}

/** Whether `raw` begins with writePoolRecordPrefix's bytes for this magic, version and pool (the CRC is the caller's to check). */
export function poolRecordPrefixHolds(raw: Buffer, magic: Buffer, version: number, poolUuid: string): boolean {
  return raw.length >= 44 && raw.subarray(0, 8).equals(magic) && raw.readUInt32LE(8) === version && raw.subarray(24, 40).equals(uuidToBytes(poolUuid));
}

/** A textual UUID as the 16 raw bytes stored on disk. */
export function uuidToBytes(uuid: string): Buffer {
  if (!isUuid(uuid)) throw new RangeError(`not a UUID: ${JSON.stringify(uuid)}`);
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

export function uuidFromBytes(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.subarray(0, 16)).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

export function alignDown(value: number, alignment: number): number {
  return Math.floor(value / alignment) * alignment;
}

function writeU64(b: Buffer, offset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a u64 byte count or generation: ${value}`);
  b.writeBigUInt64LE(BigInt(value), offset);
}

function readU64(b: Buffer, offset: number): number {
  const value = b.readBigUInt64LE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`u64 at ${offset} is beyond 2^53`);
  return Number(value);
}

function checkHash(hash: Buffer): Buffer {
  if (hash.length !== HASH_BYTES) throw new RangeError(`a history hash is ${HASH_BYTES} bytes, got ${hash.length}`);
  return hash;
}

function bad<T>(reason: string): Decoded<T> {
  return { ok: false, reason };
}

