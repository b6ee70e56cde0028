/**
 * The row journal: closes the RAID-5/6 write hole of degraded rows.
 *
 * When a data column of a parity row is gone (its member failed, missing, or
 * still catching up), what it holds lives only in the row's parity:
 * D2 = P ⊕ D0 ⊕ D1. A write to the row changes data columns and parity on
 * different disks; a crash between them leaves P and D0 from different
 * moments, and D2 then reads as neither its old nor its new content — and
 * silently, since D2's checksums were on the gone member. The write-intent
 * log cannot help: reconciling recomputes parity from the data, and D2 is
 * not there to recompute from.
 *
 * So before such a write touches its row, the content each gone data unit is
 * to have over the written block span (its new bytes where the write covers
 * it, else what parity gives now) is written here, durably, on every member
 * holding the row's parity that takes writes. After a crash, import replays
 * every live group before reconciling (ChunkIo.replayJournal): parity is
 * recomputed from the data columns as they are (old or new, block by block:
 * either is a valid outcome of an unacknowledged write) and the journalled
 * content of the gone ones, which then read exactly as journalled.
 *
 * Guarantees and invariants:
 * - A group (the records of one row write, one per gone data unit) is
 *   written, each record with FUA, before any column of its row is written.
 *   A group missing a record at import never reached its row and is skipped.
 * - A record is retired only by a pool flush that began after its row write
 *   finished (the row's columns are durable then). The retirement is durable
 *   (a journal header written with FUA) before pool.flush lets the
 *   write-intent log forget the row's region: a live record always has its
 *   region in the on-disk write-intent record, so import reads the journal
 *   only when that record names regions.
 * - Records belong to one open of the pool: each open writes every member's
 *   journal header with a new random salt (after replaying the old live
 *   records, made durable by a flush), and a record counts only under the
 *   salt of its member's newest header. A member first used later in the
 *   session (added, returned) gets its header before its first record. So a
 *   record is never replayed twice, nor after its row moved on.
 * - Replaying a live record is correct: since it was written, its row was
 *   either not written, or written with a newer record (replayed after it, in
 *   sequence order), or written with the gone column back (the column is then
 *   used, not the record).
 *
 * On disk, in each member's journal area (on-disk-format.ts): header A
 * (4 KiB), header B (4 KiB), then slots of a 4 KiB record header and 64 KiB
 * of data. Little-endian.
 *
 *   journal header (the valid one with the higher sequence wins; A and B are written alternately)
 *     off  size  field
 *       0     8  magic "SPNDLRJH" (SPiNDLe Row Journal Header)
 *       8     4  formatVersion (1)
 *      12     4  slotCount
 *      16     8  sequence (u64: header writes of this member, the newest wins)
 *      24    16  poolUuid (raw)
 *      40     4  crc32c of [0, 56 + 8 × slotCount), this field as 0
 *      44     4  reserved (0)
 *      48     8  salt (random below 2^48; the records of this open carry it)
 *      56   8×n  retired[slot] (u64): a record of this salt in that slot with this sequence or lower is retired
 *
 *   record header (the first 4 KiB of a slot; `blocks` × 4 KiB of data follow it)
 *     off  size  field
 *       0     8  magic "SPNDLRJR" (SPiNDLe Row Journal Record)
 *       8     4  formatVersion (1)
 *      12     4  crc32c of [0, 88), this field as 0
 *      16    16  poolUuid (raw)
 *      32     8  salt (the header's, when written)
 *      40     8  sequence (u64, unique in one open of the pool, from 1)
 *      48     8  groupSequence (sequence of the group's first record)
 *      56     4  groupSize (records in the group)
 *      60     4  chunkId
 *      64     4  row (in the chunk)
 *      68     4  unit (data unit index in the row)
 *      72     4  firstBlock (4 KiB block inside the unit)
 *      76     4  blocks
 *      80     4  dataCrc32c (of the data)
 *      84     4  reserved (0)
 *      88        end
 */
import { randomInt } from 'node:crypto';
import { BlockDeviceError, type BlockDevice } from '../nbd/block-device.js';
import { CHECKSUM_BLOCK } from './checksum-block.js';
import { crc32c } from './checksum.js';
import { STRIPE_UNIT } from './layout.js';
import { crcFieldHolds } from './metadata-crc.js';
import { poolRecordPrefixHolds, uuidToBytes, writePoolRecordPrefix } from './on-disk-format.js';

const BLOCK = 4096;
const HEADER_MAGIC = Buffer.from('SPNDLRJH', 'latin1');
const RECORD_MAGIC = Buffer.from('SPNDLRJR', 'latin1');
const VERSION = 1;
const HEADERS_BYTES = 2 * BLOCK;
const SLOT_BYTES = BLOCK + STRIPE_UNIT;
const HEADER_FIXED = 56;
const RECORD_BYTES = 88;
/** Slots whose retired sequences fit one header block. */
const MAX_SLOTS = Math.floor((BLOCK - HEADER_FIXED) / 8);

export interface JournalArea {
  readonly device: BlockDevice;
  /** Byte offset and size of the member's journal area (0 bytes: none). */
  readonly offset: number;
  readonly bytes: number;
}

/** Slots a journal area of `bytes` holds. */
export function journalSlots(bytes: number): number {
  if (bytes < HEADERS_BYTES + SLOT_BYTES) return 0;
  return Math.min(MAX_SLOTS, Math.floor((bytes - HEADERS_BYTES) / SLOT_BYTES));
}

/** What one row write journals: the content of each gone data unit over one block span. */
export interface JournalWrite {
  readonly chunkId: number;
  readonly row: number;
  /** First 4 KiB block inside the unit, and the span's data for every gone unit (same length). */
  readonly firstBlock: number;
  readonly units: ReadonlyArray<{ readonly unit: number; readonly data: Buffer }>;
  /** Members (uuids) to hold the group: those with the row's parity that take writes. */
  readonly targets: readonly string[];
}

/** A live group found at import: one row write whose columns may be torn. */
export interface JournalGroup {
  readonly sequence: number;
  readonly chunkId: number;
  readonly row: number;
  readonly firstBlock: number;
  readonly blocks: number;
  readonly units: ReadonlyMap<number, Buffer>;
}

interface Held {
  readonly slot: number;
  readonly sequence: number;
  /** Flush epoch in which the row write finished; undefined while it runs. */
  doneEpoch?: number;
}

class MemberJournal {
  readonly free: number[];
  readonly held = new Map<number, Held>();
  readonly retired: number[];
  headerSequence = 0;
  /** Resolves when this open's header is on the member (written before its first record). */
  ready: Promise<void> | undefined;
  headerWrites: Promise<void> = Promise.resolve();

  constructor(
    readonly uuid: string,
    readonly area: JournalArea,
    readonly slots: number,
  ) {
    this.free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
    this.retired = new Array<number>(slots).fill(0);
  }

  slotOffset(slot: number): number {
    return this.area.offset + HEADERS_BYTES + slot * SLOT_BYTES;
  }
}

/** What a caller gets back from write(): give it to done() when the row write has finished. */
export interface JournalTicket {
  readonly entries: ReadonlyArray<{ readonly journal: MemberJournal; readonly held: Held }>;
}

export class RowJournal {
  private readonly journals = new Map<string, MemberJournal>();
  private readonly salt = randomInt(2 ** 47) + 1;
  private nextSequence = 1;
  private epoch = 0;
  private waiters: Array<() => void> = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly poolUuid: string,
    /** The member's journal area now (it may have none, or be away). */
    private readonly areaOf: (uuid: string) => JournalArea | undefined,
    /** A pool flush: it retires finished records (flushStarting / flushed). */
    private readonly requestFlush: () => Promise<void>,
    /** A journal write failed: the pool fails that member. */
    private readonly onTargetError: (uuid: string, error: unknown) => Promise<void>,
  ) {}

  /** Whether `records` records of one group fit each of `targets` (a member with no journal, or too few slots, does not). */
  canHold(targets: readonly string[], records: number): boolean {
    return targets.length > 0 && targets.every((uuid) => (this.journal(uuid)?.slots ?? 0) >= records);
  }

  /**
   * Writes one group durably on every target (each record with FUA) and
   * returns its ticket; waits for slots (forcing a flush) when a target has
   * too few free. Fails with EIO when no target took it.
   */
  async write(w: JournalWrite): Promise<JournalTicket> {
    let journals = w.targets.map((uuid) => this.journal(uuid)).filter((j): j is MemberJournal => j !== undefined && j.slots >= w.units.length);
    const started = await Promise.all(
      journals.map((j) =>
        this.prepare(j).then(
          () => true,
          async (error: unknown) => {
            await this.onTargetError(j.uuid, error);
            return false;
          },
        ),
      ),
    );
    journals = journals.filter((_, i) => started[i]);
    if (journals.length === 0) throw new BlockDeviceError('EIO', `chunk ${w.chunkId} row ${w.row}: no member can hold its row journal`);
    while (!journals.every((j) => j.free.length >= w.units.length)) await this.makeRoom();
    const groupSequence = this.nextSequence;
    this.nextSequence += w.units.length;
    const entries: Array<{ journal: MemberJournal; held: Held }> = [];
    const records = w.units.map(({ unit, data }, i) => encodeRecord(this.poolUuid, this.salt, groupSequence + i, groupSequence, w, unit, data));
    for (const journal of journals) {
      for (let i = 0; i < w.units.length; i++) {
        const held: Held = { slot: journal.free.pop()!, sequence: groupSequence + i };
        journal.held.set(held.slot, held);
        entries.push({ journal, held });
      }
    }
    const took = await Promise.all(
      journals.map(async (journal) => {
        const mine = entries.filter((e) => e.journal === journal);
        try {
          await Promise.all(mine.map((e, i) => journal.area.device.write(journal.slotOffset(e.held.slot), records[i]!, { fua: true })));
          return true;
        } catch (error) {
          for (const e of mine) this.release(journal, e.held);
          await this.onTargetError(journal.uuid, error);
          return false;
        }
      }),
    );
    if (!took.some(Boolean)) throw new BlockDeviceError('EIO', `chunk ${w.chunkId} row ${w.row}: its row journal could not be written`);
    return { entries: entries.filter((e) => took[journals.indexOf(e.journal)]) };
  }

  /** The row write of `ticket` has finished (or failed): the next flush that starts retires it. */
  done(ticket: JournalTicket): void {
    for (const { held } of ticket.entries) held.doneEpoch = this.epoch;
    this.wake();
  }

  /** Call when a pool flush starts; pass the epoch to flushed() once every member is flushed. */
  flushStarting(): number {
    return ++this.epoch;
  }

  /** Retires the records whose row writes finished before flush `epoch` began: durable before this resolves. */
  async flushed(epoch: number): Promise<void> {
    await Promise.all(
      [...this.journals.values()].map(async (journal) => {
        const retiring = [...journal.held.values()].filter((h) => h.doneEpoch !== undefined && h.doneEpoch < epoch);
        if (retiring.length === 0) return;
        for (const h of retiring) journal.retired[h.slot] = Math.max(journal.retired[h.slot]!, h.sequence);
        // A member gone since holds nothing anyone reads: a return starts its journal anew.
        if (this.areaOf(journal.uuid)?.device === journal.area.device) {
          try {
            await this.writeHeader(journal);
          } catch (error) {
            await this.onTargetError(journal.uuid, error);
          }
        }
        for (const h of retiring) this.release(journal, h);
      }),
    );
    this.wake();
  }

  /**
   * Starts this open's journal on these members (this open's salt, and every
   * record written before now retired): import calls it for every member
   * after replaying the live groups and flushing their rows, the pool for a
   * member added or back from a failure.
   */
  async start(uuids: Iterable<string>): Promise<void> {
    await Promise.all(
      [...uuids].map((uuid) => {
        this.journals.delete(uuid);
        const journal = this.journal(uuid);
        if (!journal) return undefined;
        // Records this open wrote there before (a member back from a failure) are dead too.
        journal.retired.fill(this.nextSequence - 1);
        return this.prepare(journal).catch((error: unknown) => this.onTargetError(uuid, error));
      }),
    );
  }

  /** Forgets a member's journal (it left, or its area changed); a return writes the header anew. */
  forget(uuid: string): void {
    this.journals.delete(uuid);
  }

  /** Records (across `areas`) that were live when the pool last stopped, as complete groups in sequence order. */
  static async readLive(poolUuid: string, areas: ReadonlyArray<readonly [string, JournalArea]>): Promise<JournalGroup[]> {
    const records = new Map<number, DecodedRecord & { readonly data: Buffer }>();
    await Promise.all(
      areas.map(async ([, area]) => {
        const slots = journalSlots(area.bytes);
        if (slots === 0) return;
        const header = await readHeader(poolUuid, area, slots);
        if (!header) return; // never started: nothing live
        await Promise.all(
          Array.from({ length: slots }, async (_, slot) => {
            const at = area.offset + HEADERS_BYTES + slot * SLOT_BYTES;
            let head: Buffer;
            try {
              head = await area.device.read(at, BLOCK);
            } catch {
              return;
            }
            const record = decodeRecordHeader(poolUuid, head);
            if (!record || record.salt !== header.salt || record.sequence <= header.retired[slot]!) return;
            if (records.has(record.sequence)) return; // the same record on another parity member
            let data: Buffer;
            try {
              data = await area.device.read(at + BLOCK, record.blocks * CHECKSUM_BLOCK);
            } catch {
              return;
            }
            if (crc32c(data) !== record.dataCrc) return; // torn: its group never reached the row
            records.set(record.sequence, { ...record, data });
          }),
        );
      }),
    );
    const groups = new Map<number, Array<DecodedRecord & { readonly data: Buffer }>>();
    for (const r of records.values()) {
      let list = groups.get(r.groupSequence);
      if (!list) groups.set(r.groupSequence, (list = []));
      list.push(r);
    }
    const complete: JournalGroup[] = [];
    for (const [sequence, list] of groups) {
      const first = list[0]!;
      if (list.length !== first.groupSize) continue;
      if (list.some((r) => r.chunkId !== first.chunkId || r.row !== first.row || r.firstBlock !== first.firstBlock || r.blocks !== first.blocks)) continue;
      complete.push({ sequence, chunkId: first.chunkId, row: first.row, firstBlock: first.firstBlock, blocks: first.blocks, units: new Map(list.map((r) => [r.unit, r.data])) });
    }
    return complete.sort((a, b) => a.sequence - b.sequence);
  }

  // ------------------------------------------------------------------ helpers

  private journal(uuid: string): MemberJournal | undefined {
    const area = this.areaOf(uuid);
    const existing = this.journals.get(uuid);
    if (existing && area && existing.area.device === area.device && existing.area.offset === area.offset) return existing;
    if (!area) return undefined;
    const slots = journalSlots(area.bytes);
    if (slots === 0) return undefined;
    const journal = new MemberJournal(uuid, area, slots);
    this.journals.set(uuid, journal);
    return journal;
  }

  /**
   * This open's header on the member, once. Its sequence goes on from the
   * header already there (the newer of A and B wins), or an older open's
   * header could outrank it and its records be taken for dead.
   */
  private prepare(journal: MemberJournal): Promise<void> {
    journal.ready ??= (async () => {
      const current = await readHeader(this.poolUuid, journal.area, journal.slots, true);
      journal.headerSequence = Math.max(journal.headerSequence, current?.sequence ?? 0);
      await this.writeHeader(journal);
    })().catch((error: unknown) => {
      journal.ready = undefined;
      throw error;
    });
    return journal.ready;
  }

  /** Header writes of one member go out one at a time, alternating A and B. */
  private writeHeader(journal: MemberJournal): Promise<void> {
    const run = journal.headerWrites.then(async () => {
      const sequence = ++journal.headerSequence;
      const block = encodeHeader(this.poolUuid, this.salt, sequence, journal.retired);
      await journal.area.device.write(journal.area.offset + (sequence % 2) * BLOCK, block, { fua: true });
    });
    journal.headerWrites = run.catch(() => {});
    return run;
  }

  /** A flush retires what has finished; when nothing has yet, wait for a row write to finish and flush again. */
  private async makeRoom(): Promise<void> {
    const anyDone = [...this.journals.values()].some((j) => [...j.held.values()].some((h) => h.doneEpoch !== undefined));
    if (!anyDone) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.flushing ??= this.requestFlush().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  private release(journal: MemberJournal, held: Held): void {
    if (journal.held.get(held.slot) !== held) return;
    journal.held.delete(held.slot);
    journal.free.push(held.slot);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

// ------------------------------------------------------------------ encoding

interface DecodedRecord {
  readonly salt: number;
  readonly sequence: number;
  readonly groupSequence: number;
  readonly groupSize: number;
  readonly chunkId: number;
  readonly row: number;
  readonly unit: number;
  readonly firstBlock: number;
  readonly blocks: number;
  readonly dataCrc: number;
  readonly data?: Buffer;
}

function encodeHeader(poolUuid: string, salt: number, sequence: number, retired: readonly number[]): Buffer {
  const out = Buffer.alloc(BLOCK);
  writePoolRecordPrefix(out, HEADER_MAGIC, VERSION, retired.length, sequence, poolUuid);
  out.writeBigUInt64LE(BigInt(salt), 48);
  retired.forEach((s, i) => out.writeBigUInt64LE(BigInt(s), HEADER_FIXED + i * 8));
  out.writeUInt32LE(crc32c(out.subarray(0, HEADER_FIXED + retired.length * 8)), 40);
  return out;
}

function decodeHeader(poolUuid: string, raw: Buffer, slots: number): { sequence: number; salt: number; retired: number[] } | undefined {
  if (!poolRecordPrefixHolds(raw, HEADER_MAGIC, VERSION, poolUuid) || raw.readUInt32LE(12) !== slots) return undefined;
  if (!crcFieldHolds(raw, HEADER_FIXED + slots * 8, 40)) return undefined;
  const retired = Array.from({ length: slots }, (_, i) => Number(raw.readBigUInt64LE(HEADER_FIXED + i * 8)));
  return { sequence: Number(raw.readBigUInt64LE(16)), salt: Number(raw.readBigUInt64LE(48)), retired };
}

/** The newer valid header of A and B; with `strict`, a read error is thrown rather than taken for "no header". */
async function readHeader(poolUuid: string, area: JournalArea, slots: number, strict = false): Promise<{ sequence: number; salt: number; retired: number[] } | undefined> {
  let best: { sequence: number; salt: number; retired: number[] } | undefined;
  for (let i = 0; i < 2; i++) {
    let raw: Buffer;
    try {
      raw = await area.device.read(area.offset + i * BLOCK, BLOCK);
    } catch (error) {
      if (strict) throw error;
      continue;
    }
    const header = decodeHeader(poolUuid, raw, slots);
    if (header && (!best || header.sequence > best.sequence)) best = header;
  }
  return best;
}

function encodeRecord(poolUuid: string, salt: number, sequence: number, groupSequence: number, w: JournalWrite, unit: number, data: Buffer): Buffer {
  if (data.length % CHECKSUM_BLOCK !== 0 || data.length > STRIPE_UNIT) throw new RangeError(`row journal: ${data.length} bytes do not make a journal record`);
  const out = Buffer.alloc(BLOCK + data.length);
  RECORD_MAGIC.copy(out, 0);
  out.writeUInt32LE(VERSION, 8);
  uuidToBytes(poolUuid).copy(out, 16);
  out.writeBigUInt64LE(BigInt(salt), 32);
  out.writeBigUInt64LE(BigInt(sequence), 40);
  out.writeBigUInt64LE(BigInt(groupSequence), 48);
  out.writeUInt32LE(w.units.length, 56);
  out.writeUInt32LE(w.chunkId, 60);
  out.writeUInt32LE(w.row, 64);
  out.writeUInt32LE(unit, 68);
  out.writeUInt32LE(w.firstBlock, 72);
  out.writeUInt32LE(data.length / CHECKSUM_BLOCK, 76);
  out.writeUInt32LE(crc32c(data), 80);
  out.writeUInt32LE(crc32c(out.subarray(0, RECORD_BYTES)), 12);
  data.copy(out, BLOCK);
  return out;
}

function decodeRecordHeader(poolUuid: string, raw: Buffer): DecodedRecord | undefined {
  if (!raw.subarray(0, 8).equals(RECORD_MAGIC) || raw.readUInt32LE(8) !== VERSION) return undefined;
  if (!raw.subarray(16, 32).equals(uuidToBytes(poolUuid))) return undefined;
  if (!crcFieldHolds(raw, RECORD_BYTES, 12)) return undefined;
  const blocks = raw.readUInt32LE(76);
  const firstBlock = raw.readUInt32LE(72);
  if (blocks === 0 || firstBlock + blocks > STRIPE_UNIT / CHECKSUM_BLOCK) return undefined;
  return {
    salt: Number(raw.readBigUInt64LE(32)),
    sequence: Number(raw.readBigUInt64LE(40)),
    groupSequence: Number(raw.readBigUInt64LE(48)),
    groupSize: raw.readUInt32LE(56),
    chunkId: raw.readUInt32LE(60),
    row: raw.readUInt32LE(64),
    unit: raw.readUInt32LE(68),
    firstBlock,
    blocks,
    dataCrc: raw.readUInt32LE(80),
  };
}
