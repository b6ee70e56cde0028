/**
 * I/O on one chunk: the same code for every layout, driven by the layout's
 * row table (layout.ts). This is where "serve a valid copy at once" happens.
 *
 * Guarantees (the caller holds the row lock of every row it touches):
 * - A read returns bytes that match their stored CRC32C, or were rebuilt from
 *   copies/parity whose own checksums held — else it fails with EIO. It never
 *   returns bytes it could not verify, except a parity rebuild for a block
 *   whose own checksum table is on a failed member (nothing to compare with;
 *   raid6 then checks the rebuild against the second parity).
 * - A bad copy found by a read (checksum mismatch, read error) is reported
 *   through `repairNeeded`; the repair rewrites it later under the row lock.
 * - A write reaches every usable column of the row. A column whose member
 *   fails is reported (`memberFailed`, which the pool records durably before
 *   we go on); a column of a member that is not online is reported as stale
 *   (`memberSkipped`, also durable) so a returning member resyncs it. The
 *   write succeeds only if the row's data stays readable: every data unit
 *   still has a written copy, or parity covers the missing columns.
 *
 * Units: offsets inside a row are logical data bytes of that row, 4 KiB
 * aligned; "block" is a 4 KiB block index inside a slab's data area.
 */
import { BlockDeviceError, DisconnectedError, type BlockDevice, type BulkReadOptions } from '../nbd/block-device.js';
import { CHECKSUM_BLOCK } from './checksum-block.js';
import { crc32c, crc32cBlocks, crc32cBlocksScratch } from './checksum.js';
import { STRIPE_UNIT, type Layout, type LayoutSpec, type RowMap } from './layout.js';
import type { Member } from './member.js';
import type { JournalGroup, JournalWrite } from './row-journal.js';
import { computeRowParity, rebuildRow } from './row-parity.js';
import { checksumMatches, encodeChecksum, UNWRITTEN, type ChecksumCache, type SlabTable } from './slab-checksums.js';
import type { SlabGeometry } from './slab-geometry.js';
import { jobBuffers } from './job-buffers.js';

const BLOCKS_PER_UNIT = STRIPE_UNIT / CHECKSUM_BLOCK;

export interface ChunkColumn {
  readonly member: Member;
  readonly slab: number;
}

export interface ChunkContext {
  readonly layout: Layout;
  readonly geometry: SlabGeometry;
  readonly checksums: ChecksumCache;
  /** A member's I/O failed for good: mark it failed (durably) before the caller goes on. */
  memberFailed(member: Member, error: unknown): Promise<void>;
  /** A write skipped a member that is not online: remember the row as stale on it (durably). */
  memberSkipped(member: Member, chunkId: number, row: number): Promise<void>;
  /** A bad copy was found in this row; rewrite it later. */
  repairNeeded(chunkId: number, row: number): void;
  /** Counts one error against a member (and tells whoever watches the counters). */
  errorCounted(member: Member, kind: keyof Member['errors']): void;
  /**
   * Parity rows with a gone data column: durably records what the gone units
   * are to hold before the row is written (row-journal.ts). Resolves to what
   * to call when the row write has finished, or undefined when the pool has
   * nowhere to journal (members labelled before the journal existed).
   */
  journalRow?(write: JournalWrite): Promise<(() => void) | undefined>;
}

/** What reading one column's blocks gave: per-block verified data, or nothing usable. */
interface ColumnRead {
  readonly data: Buffer;
  /** ok[i]: block i matched its checksum (or is unwritten, reading as zeroes). */
  readonly ok: boolean[];
  readonly table: SlabTable;
  /** Slab block index of data[0]. */
  readonly firstBlock: number;
}

/** A change to one column's blocks and checksums (chunk-io's writes and trims are made of these). */
export type ColumnChange = (member: Member, slab: number, table: SlabTable) => Promise<void>;

/**
 * A slab move in progress on one column (slab-move.ts): rows it `covers`
 * are already copied to the new place, so every change to them must reach
 * it too. `change` applies one there; it never throws (a failure of the
 * new place ends the move, not the write).
 */
export interface ColumnShadow {
  covers(row: number): boolean;
  /** Makes the change on the new place when it covers any of `rows` (a change to several rows of the column at once). */
  change(rows: readonly number[], change: ColumnChange): Promise<void>;
  /** After a crash: reconciles the row itself when the new place stands in for a lost column (else undefined). */
  resync?(row: number): Promise<number> | undefined;
}

/** Told of every write and trim of a row, after it is done and under the row's lock (job-migrate.ts mirrors them). */
export interface RowObserver {
  wrote(row: number, start: number, data: Buffer, fua: boolean): Promise<void>;
  trimmed(row: number, start: number, length: number): Promise<void>;
}

/** A block found bad (checksum mismatch, unreadable, parity disagreeing) and what was done about it. */
export interface BadBlock {
  readonly chunk: number;
  readonly row: number;
  /** 4 KiB block inside the row's stripe unit. */
  readonly block: number;
  /** The member the bad copy is on. */
  readonly member: string;
  readonly problem: 'checksum' | 'unreadable' | 'parity';
  /** Where the good data came from: `copy:<member uuid>` or `parity`; undefined when nothing valid was left (the block is lost). */
  readonly from?: string;
}

export interface CopyResult {
  /** Bytes written to the new place (unwritten blocks are not written). */
  readonly bytesWritten: number;
  /** Bad blocks found on the way (the copy carries good data for them). */
  readonly bad: readonly BadBlock[];
  /** Blocks no valid data was found for: they read as EIO on the new place, as they did before. */
  readonly lost: number;
}

export interface ScrubResult {
  readonly bytesRead: number;
  readonly bad: readonly BadBlock[];
  /** Blocks rewritten by the repair of the rows with bad blocks. */
  readonly repaired: number;
  /** Bytes that could not be checked (columns on members not online). */
  readonly unchecked: number;
}

/**
 * Table entry for a block whose data was lost in a move: the CRC32C of a
 * zero block with its low bit flipped, so the zeroes written there never
 * verify and reads fail with EIO instead of returning them.
 */
const LOST_BLOCK_ENTRY = encodeChecksum((crc32c(Buffer.alloc(CHECKSUM_BLOCK)) ^ 1) >>> 0);

export class ChunkIo {
  readonly dataUnits: number;
  readonly rowBytes: number;
  readonly rows: number;
  readonly faultTolerance: number;
  /** Slab moves in progress, by column (slab-move.ts). */
  shadows: Array<ColumnShadow | undefined> | undefined;
  /** Watches writes and trims (job-migrate.ts). */
  rowObserver: RowObserver | undefined;
  /**
   * A job fills this chunk (a migrate's new chunks, job-migrate.ts): writes
   * without FUA go around the page cache where the device can, as slab
   * moves' copies do (writeCopy).
   */
  bulkFill = false;

  constructor(
    readonly id: number,
    readonly spec: LayoutSpec,
    readonly columns: readonly ChunkColumn[],
    private readonly ctx: ChunkContext,
  ) {
    if (columns.length !== spec.width) throw new Error(`chunk ${id}: ${columns.length} columns for width ${spec.width}`);
    this.dataUnits = ctx.layout.dataUnits(spec);
    this.rowBytes = this.dataUnits * STRIPE_UNIT;
    this.rows = ctx.geometry.dataBytes / STRIPE_UNIT;
    this.faultTolerance = ctx.layout.faultTolerance(spec);
  }

  /** Logical bytes this chunk holds. */
  get capacity(): number {
    return this.rows * this.rowBytes;
  }

  // ---------------------------------------------------------------- reading

  /** Reads `length` bytes at `start` of row `row` (both 4 KiB aligned). */
  async readRow(row: number, start: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readRowInto(row, start, out);
    return out;
  }

  /** Reads target.length bytes at `start` of row `row` (both 4 KiB aligned) into `target`. */
  readRowInto(row: number, start: number, target: Buffer): Promise<void> {
    const map = this.ctx.layout.row(this.spec, row);
    const end = start + target.length;
    const unitOf = Math.floor(start / STRIPE_UNIT);
    if (end <= (unitOf + 1) * STRIPE_UNIT) {
      // One unit (the common case for small requests): no piece list, no Promise.all.
      return this.readInUnit(map, row, unitOf, start - unitOf * STRIPE_UNIT, end - unitOf * STRIPE_UNIT, target);
    }
    return Promise.all(
      this.unitPieces(start, target.length).map(({ unit, from, to, at }) => this.readUnitInto(map, row, unit, from, to, target.subarray(at, at + (to - from)))),
    ).then(() => undefined);
  }

  /**
   * readUnitInto with as few promises as it takes: when the table is loaded
   * and the member reads into a buffer, one member request straight into
   * `target`, checked in place when it lands; anything unusual (no usable
   * copy, table not loaded or damaged, a read error, a checksum mismatch)
   * goes to readUnitInto / readUnit exactly as before.
   */
  private readInUnit(map: RowMap, row: number, unit: number, from: number, to: number, target: Buffer): Promise<void> {
    const column = this.firstUsableCopy(map.data[unit]!, row);
    if (column < 0) return this.readUnitInto(map, row, unit, from, to, target);
    const { member, slab } = this.columns[column]!;
    const device = member.device;
    const table = this.ctx.checksums.cached(member, slab);
    if (!table || table.damaged.size > 0 || !device?.readInto) return this.readUnitInto(map, row, unit, from, to, target);
    const firstBlock = row * BLOCKS_PER_UNIT + from / CHECKSUM_BLOCK;
    const count = (to - from) / CHECKSUM_BLOCK;
    const entries = table.entries;
    // Only the span from the first to the last written block is read; the rest reads as zeroes.
    const [lo, hi] = writtenSpan(entries, firstBlock, count);
    const careful = (): Promise<void> => this.readUnit(map, row, unit, from, to).then((data) => void data.copy(target));
    if (lo === -1) {
      verifyInPlace(entries, firstBlock, target, 0, count); // zeroes them all
      return Promise.resolve();
    }
    const span = lo === 0 && hi === count - 1 ? target : target.subarray(lo * CHECKSUM_BLOCK, (hi + 1) * CHECKSUM_BLOCK);
    let read: Promise<void>;
    try {
      read = device.readInto(member.slabOffset(slab, (firstBlock + lo) * CHECKSUM_BLOCK), span);
    } catch {
      return careful(); // readUnit reads again and deals with the error
    }
    return read.then(
      () => {
        member.bytesRead += span.length;
        return verifyInPlace(entries, firstBlock, target, 0, count) ? undefined : careful();
      },
      careful,
    );
  }

  /**
   * Reads target.length bytes from `start` of row `row` on, across as many
   * rows as it takes (4 KiB aligned; the caller holds every row's lock).
   * Each column's run of stripe units over those rows is one member request
   * (readv: each unit lands in its own place in `target`), so a 1 MiB read
   * costs a request per member, not one per 64 KiB unit. The units of a
   * mirror come from one copy per MIRROR_RUN_ROWS rows, alternating, so long
   * reads still spread over the copies. Units the fast path cannot vouch
   * for (read error, checksum mismatch, damaged table) are read again one by
   * one through readUnitInto, which repairs.
   */
  async readRowsInto(row: number, start: number, target: Buffer): Promise<void> {
    const segments = this.segments(row, start, target.length);
    const slow: UnitSegment[] = [];
    const byColumn = new Map<number, UnitSegment[]>();
    for (const seg of segments) {
      const column = this.firstUsableCopy(this.ctx.layout.row(this.spec, seg.row).data[seg.unit]!, seg.row);
      if (column < 0) {
        slow.push(seg);
        continue;
      }
      let list = byColumn.get(column);
      if (!list) byColumn.set(column, (list = []));
      list.push(seg);
    }
    await Promise.all(
      [...byColumn].map(async ([column, list]) => {
        const { member, slab } = this.columns[column]!;
        const table = this.ctx.checksums.cached(member, slab) ?? (await this.tableOrUndefined(member, slab));
        if (!table || table.damaged.size > 0) {
          slow.push(...list);
          return;
        }
        const wanted: UnitSegment[] = [];
        for (const seg of list) {
          if (allUnwritten(table.entries, seg.firstBlock, seg.blocks)) target.fill(0, seg.at, seg.at + seg.blocks * CHECKSUM_BLOCK);
          else wanted.push(seg);
        }
        for (const run of contiguousRuns(wanted)) {
          const parts = run.map((seg) => target.subarray(seg.at, seg.at + seg.blocks * CHECKSUM_BLOCK));
          const offset = member.slabOffset(slab, run[0]!.firstBlock * CHECKSUM_BLOCK);
          try {
            await readScatter(member.device!, offset, parts);
          } catch {
            slow.push(...run); // readUnitInto reads again and deals with the error
            continue;
          }
          for (const part of parts) member.bytesRead += part.length;
          for (const seg of run) {
            if (!verifyInPlace(table.entries, seg.firstBlock, target, seg.at, seg.blocks)) slow.push(seg);
          }
        }
      }),
    );
    await Promise.all(
      slow.map((seg) =>
        this.readUnitInto(this.ctx.layout.row(this.spec, seg.row), seg.row, seg.unit, seg.from, seg.to, target.subarray(seg.at, seg.at + (seg.to - seg.from))),
      ),
    );
  }

  /** The (row, unit) pieces of a span of rows, in row order. */
  private segments(row: number, start: number, length: number): UnitSegment[] {
    const out: UnitSegment[] = [];
    let at = 0;
    for (let r = row, s = start; at < length; r++, s = 0) {
      const n = Math.min(this.rowBytes - s, length - at);
      for (const piece of this.unitPieces(s, n)) {
        out.push({
          row: r,
          unit: piece.unit,
          from: piece.from,
          to: piece.to,
          at: at + piece.at,
          firstBlock: r * BLOCKS_PER_UNIT + piece.from / CHECKSUM_BLOCK,
          blocks: (piece.to - piece.from) / CHECKSUM_BLOCK,
        });
      }
      at += n;
    }
    return out;
  }

  /**
   * The verified bytes [from, to) of data unit `unit` into `target`. The
   * fast path reads one copy straight into the caller's buffer and checks
   * it in place; anything unusual (a checksum mismatch, a read error, a
   * damaged table, no usable copy) goes to readUnit, which takes its time.
   */
  private async readUnitInto(map: RowMap, row: number, unit: number, from: number, to: number, target: Buffer): Promise<void> {
    if (await this.tryReadUnitFast(map, row, unit, from, to, target)) return;
    const data = await this.readUnit(map, row, unit, from, to);
    data.copy(target);
  }

  private async tryReadUnitFast(map: RowMap, row: number, unit: number, from: number, to: number, target: Buffer): Promise<boolean> {
    const column = this.firstUsableCopy(map.data[unit]!, row);
    if (column < 0) return false;
    const { member, slab } = this.columns[column]!;
    const table = this.ctx.checksums.cached(member, slab) ?? (await this.tableOrUndefined(member, slab));
    if (!table || table.damaged.size > 0) return false;
    const firstBlock = row * BLOCKS_PER_UNIT + from / CHECKSUM_BLOCK;
    const count = (to - from) / CHECKSUM_BLOCK;
    const entries = table.entries;
    // Only the span from the first to the last written block is read; the rest reads as zeroes.
    const [lo, hi] = writtenSpan(entries, firstBlock, count);
    if (lo >= 0) {
      const span = target.subarray(lo * CHECKSUM_BLOCK, (hi + 1) * CHECKSUM_BLOCK);
      try {
        await readScatter(member.device!, member.slabOffset(slab, (firstBlock + lo) * CHECKSUM_BLOCK), [span]);
      } catch {
        return false; // readUnit reads again and deals with the error
      }
      member.bytesRead += span.length;
    }
    return verifyInPlace(entries, firstBlock, target, 0, count);
  }

  /** The copy of a mirrored unit reads try first (mirrorTurn), or the next usable one; -1 if none is usable. */
  private firstUsableCopy(copies: readonly number[], row: number): number {
    for (let i = 0; i < copies.length; i++) {
      const c = copies[(i + mirrorTurn(row)) % copies.length]!;
      if (this.columns[c]!.member.usable) return c;
    }
    return -1;
  }

  /** A table for the fast path; a failure to load it is left to the slow path to report. */
  private async tableOrUndefined(member: Member, slab: number): Promise<SlabTable | undefined> {
    try {
      return await this.ctx.checksums.table(member, slab, this.id);
    } catch {
      return undefined;
    }
  }

  /** The verified logical bytes [from, to) of data unit `unit` of a row. */
  private async readUnit(map: RowMap, row: number, unit: number, from: number, to: number): Promise<Buffer> {
    const firstBlock = row * BLOCKS_PER_UNIT + from / CHECKSUM_BLOCK;
    const count = (to - from) / CHECKSUM_BLOCK;
    const out = Buffer.allocUnsafe(to - from);
    const done = new Array<boolean>(count).fill(false);
    let badCopyFound = false;
    const copies = map.data[unit]!;
    const order = copies.map((_, i) => copies[(i + mirrorTurn(row)) % copies.length]!);
    for (const column of order) {
      if (done.every(Boolean)) break;
      const read = await this.readColumn(column, firstBlock, count, done);
      if (!read) continue;
      for (let i = 0; i < count; i++) {
        if (done[i]) continue;
        if (read.ok[i]) {
          read.data.copy(out, i * CHECKSUM_BLOCK, i * CHECKSUM_BLOCK, (i + 1) * CHECKSUM_BLOCK);
          done[i] = true;
        } else {
          badCopyFound = true;
        }
      }
    }
    if (!done.every(Boolean) && map.p !== undefined) {
      const rebuilt = await this.rebuildBlocks(map, row, unit, firstBlock, done);
      for (const [i, block] of rebuilt) {
        block.copy(out, i * CHECKSUM_BLOCK);
        done[i] = true;
      }
      badCopyFound = true;
    }
    if (badCopyFound) this.ctx.repairNeeded(this.id, row);
    if (!done.every(Boolean)) {
      throw new BlockDeviceError('EIO', `chunk ${this.id} row ${row}: no valid copy of ${done.filter((d) => !d).length} block(s) in data unit ${unit}`);
    }
    return out;
  }

  /**
   * Reads blocks [firstBlock, firstBlock+count) of one column and verifies
   * them. Blocks in `skip` are not needed. Returns undefined when the column
   * is unusable (member not online, or it failed now).
   */
  private async readColumn(
    column: number,
    firstBlock: number,
    count: number,
    skip?: readonly boolean[],
    countChecksums = true,
  ): Promise<ColumnRead | undefined> {
    const { member, slab } = this.columns[column]!;
    if (!member.usable) return undefined;
    let table: SlabTable;
    try {
      table = await this.ctx.checksums.table(member, slab, this.id);
    } catch (error) {
      await this.columnError(member, error);
      return undefined;
    }
    if (table.damaged.size > 0 && !table.repairQueued) {
      // Our table for this slab lost blocks (rot, or torn by a crash): every
      // row they cover gets repaired, which re-establishes their entries.
      table.repairQueued = true;
      for (const [first, end] of table.damagedRanges()) {
        for (let row = Math.floor(first / BLOCKS_PER_UNIT); row < Math.ceil(end / BLOCKS_PER_UNIT); row++) this.ctx.repairNeeded(this.id, row);
      }
    }
    const ok = new Array<boolean>(count).fill(false);
    const zeroes = (): Buffer => Buffer.alloc(count * CHECKSUM_BLOCK);
    // Only blocks that are needed and written are read from the device.
    let lo = -1;
    let hi = -1;
    // A block of a damaged table block is not "unwritten": it is read and stays unverified.
    const unwritten = (i: number): boolean => table.isUnwritten(firstBlock + i);
    for (let i = 0; i < count; i++) {
      if (skip?.[i]) continue;
      if (unwritten(i)) {
        ok[i] = true; // reads as zeroes
        continue;
      }
      if (lo === -1) lo = i;
      hi = i;
    }
    if (lo === -1) return { data: zeroes(), ok, table, firstBlock };
    let raw: Buffer;
    try {
      raw = await member.device!.read(member.slabOffset(slab, (firstBlock + lo) * CHECKSUM_BLOCK), (hi - lo + 1) * CHECKSUM_BLOCK);
      member.bytesRead += raw.length;
    } catch (error) {
      await this.columnError(member, error);
      // The written blocks stay unverified (not ok); unwritten ones are still zeroes.
      return member.usable ? { data: zeroes(), ok, table, firstBlock } : undefined;
    }
    // A read of the whole span is the data itself (big reads: no second buffer to fault in and copy).
    let data = raw;
    if (lo !== 0 || hi !== count - 1) {
      data = zeroes();
      raw.copy(data, lo * CHECKSUM_BLOCK);
    }
    // The span's CRCs in one call (block i at crcs[i - lo]), compared before anything else runs.
    const crcs = crc32cBlocksScratch(raw, hi - lo + 1);
    let mismatches = 0;
    for (let i = lo; i <= hi; i++) {
      const stored = table.entries[firstBlock + i]!;
      if (unwritten(i)) {
        // Read along with its neighbours, but what a trimmed block holds is not its content.
        data.fill(0, i * CHECKSUM_BLOCK, (i + 1) * CHECKSUM_BLOCK);
        continue;
      }
      if (skip?.[i] || stored === UNWRITTEN) continue; // damaged table: read, not verifiable
      if (checksumMatches(stored, crcs[i - lo]!)) ok[i] = true;
      else mismatches++;
    }
    // Counted once the shared CRCs are no longer needed (the count's listeners run now).
    if (countChecksums) for (let n = 0; n < mismatches; n++) this.ctx.errorCounted(member, 'checksum');
    return { data, ok, table, firstBlock };
  }

  /** Read or write error on a member: a lost device fails the member; an I/O error is counted. */
  private async columnError(member: Member, error: unknown): Promise<void> {
    if (error instanceof DisconnectedError) {
      await this.ctx.memberFailed(member, error);
    } else {
      this.ctx.errorCounted(member, 'read');
      if (!(error instanceof BlockDeviceError)) await this.ctx.memberFailed(member, error);
    }
  }

  /**
   * Rebuilds the blocks of data unit `unit` not yet in `done` from the row's
   * other columns and its parity. Returns [block index in unit range, data].
   */
  private async rebuildBlocks(map: RowMap, row: number, unit: number, firstBlock: number, done: readonly boolean[]): Promise<Array<[number, Buffer]>> {
    const missing = done.map((d, i) => (d ? -1 : i)).filter((i) => i >= 0);
    const lo = missing[0]!;
    const hi = missing[missing.length - 1]!;
    const span = hi - lo + 1;
    const reads = await this.readRowColumns(map, firstBlock + lo, span);
    const result: Array<[number, Buffer]> = [];
    for (const i of missing) {
      const b = i - lo;
      const block = this.rebuildBlock(map, reads, b, unit);
      if (block) result.push([i, block]);
    }
    return result;
  }

  /** Reads the same block span of every column of a row: by column, undefined when unusable. */
  private async readRowColumns(
    map: RowMap,
    firstBlock: number,
    count: number,
    include?: readonly boolean[],
    countChecksums = true,
  ): Promise<Array<ColumnRead | undefined>> {
    const reads = new Array<ColumnRead | undefined>(this.columns.length);
    const used = new Set<number>(
      [...map.data.flat(), ...(map.p !== undefined ? [map.p] : []), ...(map.q !== undefined ? [map.q] : [])].filter((c) => include?.[c] ?? true),
    );
    await Promise.all(
      [...used].map(async (column) => {
        reads[column] = await this.readColumn(column, firstBlock, count, undefined, countChecksums);
      }),
    );
    return reads;
  }

  /**
   * One block of data unit `target`, rebuilt from parity; verified against the
   * target's checksum when its table is readable. Undefined if impossible.
   */
  private rebuildBlock(map: RowMap, reads: ReadonlyArray<ColumnRead | undefined>, b: number, target: number): Buffer | undefined {
    const blockOf = (column: number | undefined): Buffer | null => {
      if (column === undefined) return null;
      const read = reads[column];
      if (!read || !read.ok[b]) return null;
      return read.data.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK);
    };
    const units = map.data.map((copies, k) => (k === target ? null : blockOf(copies[0])));
    const p = blockOf(map.p);
    const q = blockOf(map.q);
    const rebuilt = rebuildRow(units, p, q);
    if (!rebuilt) return undefined;
    const block = rebuilt[target]!;
    const targetRead = reads[map.data[target]![0]!];
    if (targetRead) {
      // The target member is readable: its checksum table says what is right.
      const stored = targetRead.table.entries[targetRead.firstBlock + b]!;
      const valid = stored === UNWRITTEN ? block.every((x) => x === 0) : checksumMatches(stored, crc32c(block));
      return valid ? Buffer.from(block) : undefined;
    }
    // No table to check against: rebuildRow already checked the rebuild
    // against the spare parity where the row had one (raid6, one missing).
    return Buffer.from(block);
  }

  // ---------------------------------------------------------------- writing

  /** Writes `data` at `start` of row `row` (both 4 KiB aligned). */
  async writeRow(row: number, start: number, data: Buffer, fua: boolean): Promise<void> {
    const map = this.ctx.layout.row(this.spec, row);
    if (map.p === undefined) await this.writeMirrored(map, row, start, data, fua);
    else await this.writeWithParity(map, row, start, data, fua);
    if (this.rowObserver) await this.rowObserver.wrote(row, start, data, fua);
  }

  /**
   * Writes `data` from `start` of row `row` on, across rows (4 KiB aligned;
   * the caller holds every row's lock and has begun each row's write). Each
   * column's run of units over those rows is one member request (writev),
   * with the same outcome, row by row, as writeRow: copies skipped or failed
   * are recorded stale, and a row fails with EIO when its data would not stay
   * readable. Parity layouts batch whole rows only; other pieces go through
   * writeRow.
   */
  async writeRows(row: number, start: number, data: Buffer, fua: boolean): Promise<void> {
    const parity = this.ctx.layout.row(this.spec, row).p !== undefined;
    if (!parity) {
      await this.writeMirroredRows(row, start, data, fua);
      if (this.rowObserver) await this.rowObserver.wrote(row, start, data, fua);
      return;
    }
    // Head and tail pieces of partial rows: read-modify-write, row by row.
    const headEnd = start === 0 ? 0 : Math.min(data.length, this.rowBytes - start);
    const whole = Math.floor((data.length - headEnd) / this.rowBytes);
    const tailAt = headEnd + whole * this.rowBytes;
    const work: Array<Promise<void>> = [];
    if (headEnd > 0) work.push(this.writeRow(row, start, data.subarray(0, headEnd), fua));
    if (whole > 0 && this.ctx.journalRow && this.columns.some((c) => !c.member.usable)) {
      // A gone column: each row's write is journalled first (writeWithParity), row by row.
      const first = row + (headEnd > 0 ? 1 : 0);
      for (let r = 0; r < whole; r++) work.push(this.writeRow(first + r, 0, data.subarray(headEnd + r * this.rowBytes, headEnd + (r + 1) * this.rowBytes), fua));
    } else if (whole > 0) {
      const first = row + (headEnd > 0 ? 1 : 0);
      const rows = data.subarray(headEnd, tailAt);
      // (The head and tail go through writeRow, which tells the observer itself.)
      work.push(this.writeParityRows(first, rows, fua).then(() => this.rowObserver?.wrote(first, 0, rows, fua)));
    }
    if (tailAt < data.length) work.push(this.writeRow(row + (headEnd > 0 ? 1 : 0) + whole, 0, data.subarray(tailAt), fua));
    await Promise.all(work);
  }

  private async writeMirroredRows(row: number, start: number, data: Buffer, fua: boolean): Promise<void> {
    const segments = this.segments(row, start, data.length);
    const items: ColumnItem[] = [];
    for (const seg of segments) {
      const bytes = data.subarray(seg.at, seg.at + seg.blocks * CHECKSUM_BLOCK);
      const crcs = crc32cBlocks(bytes); // once for every copy
      for (const column of this.ctx.layout.row(this.spec, seg.row).data[seg.unit]!) items.push({ column, row: seg.row, firstBlock: seg.firstBlock, bytes, crcs });
    }
    const written = await this.writeItems(items, fua);
    const lost = segments.filter((seg) => !this.ctx.layout.row(this.spec, seg.row).data[seg.unit]!.some((c) => written.has(itemKey(c, seg.row))));
    if (lost.length > 0) {
      const where = lost.map((seg) => `row ${seg.row} data unit ${seg.unit}`).join(', ');
      throw new BlockDeviceError('EIO', `chunk ${this.id}: no copy of ${where} could be written`);
    }
  }

  /** Whole rows of a parity layout: P (and Q) computed from the new data alone, no reads. */
  private async writeParityRows(row: number, data: Buffer, fua: boolean): Promise<void> {
    const rows = data.length / this.rowBytes;
    const items: ColumnItem[] = [];
    for (let r = 0; r < rows; r++) {
      const map = this.ctx.layout.row(this.spec, row + r);
      const base = r * this.rowBytes;
      const units = map.data.map((_, k) => data.subarray(base + k * STRIPE_UNIT, base + (k + 1) * STRIPE_UNIT));
      const { p, q } = computeRowParity(units, map.q !== undefined);
      const firstBlock = (row + r) * BLOCKS_PER_UNIT;
      map.data.forEach((copies, k) => items.push({ column: copies[0]!, row: row + r, firstBlock, bytes: units[k]!, crcs: crc32cBlocks(units[k]!) }));
      items.push({ column: map.p!, row: row + r, firstBlock, bytes: p, crcs: crc32cBlocks(p) });
      if (map.q !== undefined) items.push({ column: map.q, row: row + r, firstBlock, bytes: q!, crcs: crc32cBlocks(q!) });
    }
    const written = await this.writeItems(items, fua);
    for (let r = row; r < row + rows; r++) {
      const map = this.ctx.layout.row(this.spec, r);
      const failed = this.columns.filter((c, i) => this.isRowColumn(map, i) && (!written.has(itemKey(i, r)) || !c.member.writable)).length;
      if (failed > this.faultTolerance) {
        throw new BlockDeviceError('EIO', `chunk ${this.id} row ${r}: ${failed} columns unavailable, more than the layout's ${this.faultTolerance}`);
      }
    }
  }

  /**
   * Writes column items, one request per contiguous run on a column, and
   * updates their checksums. Returns the column:row keys that took the
   * write; a column that did not is recorded stale for those rows (as
   * changeColumn does for one row).
   */
  private async writeItems(items: readonly ColumnItem[], fua: boolean): Promise<Set<string>> {
    const byColumn = new Map<number, ColumnItem[]>();
    for (const item of items) {
      let list = byColumn.get(item.column);
      if (!list) byColumn.set(item.column, (list = []));
      list.push(item);
    }
    const written = new Set<string>();
    await Promise.all(
      [...byColumn].map(async ([column, list]) => {
        const runs = contiguousRuns(list.map((item) => ({ item, firstBlock: item.firstBlock, blocks: item.bytes.length / CHECKSUM_BLOCK })));
        await Promise.all(
          runs.map(async (run) => {
            const rows = run.map(({ item }) => item.row);
            const ok = await this.changeColumnRows(
              column,
              rows,
              // The member and slab given, not the column's: a slab move makes the same change on its new place.
              async (member, slab, table) => {
                await writeGather(member.device!, member.slabOffset(slab, run[0]!.firstBlock * CHECKSUM_BLOCK), run.map(({ item }) => item.bytes), fua);
                for (const { item } of run) {
                  member.bytesWritten += item.bytes.length;
                  for (let i = 0; i < item.crcs.length; i++) table.set(item.firstBlock + i, encodeChecksum(item.crcs[i]!));
                }
                if (fua) await table.writeBack(true);
              },
            );
            if (ok) for (const r of rows) written.add(itemKey(column, r));
          }),
        );
      }),
    );
    return written;
  }

  /** changeColumn for a run of rows: one change, and every row recorded stale if it did not take. */
  private changeColumnRows(column: number, rows: readonly number[], change: ColumnChange): Promise<boolean> {
    const shadow = this.shadows?.[column];
    if (shadow === undefined || !rows.some((r) => shadow.covers(r))) return this.changeOwnColumnRows(column, rows, change);
    // A slab move has copied some of these rows: the new place takes the change too (all of it: the rest is copied again later).
    return Promise.all([this.changeOwnColumnRows(column, rows, change), shadow.change(rows, change)]).then(([ok]) => ok);
  }

  private async changeOwnColumnRows(column: number, rows: readonly number[], change: ColumnChange): Promise<boolean> {
    const { member, slab } = this.columns[column]!;
    if (!member.writable) {
      for (const row of rows) await this.ctx.memberSkipped(member, this.id, row);
      return false;
    }
    try {
      await change(member, slab, await this.ctx.checksums.table(member, slab, this.id));
      return true;
    } catch (error) {
      this.ctx.errorCounted(member, 'write');
      await this.ctx.memberFailed(member, error);
      for (const row of rows) await this.ctx.memberSkipped(member, this.id, row);
      return false;
    }
  }

  /** raid0, raid1, raid10: every copy of every touched unit gets the bytes. */
  private async writeMirrored(map: RowMap, row: number, start: number, data: Buffer, fua: boolean): Promise<void> {
    const pieces = this.unitPieces(start, data.length);
    const lost: string[] = [];
    await Promise.all(
      pieces.map(async ({ unit, from, to, at }) => {
        const bytes = data.subarray(at, at + (to - from));
        const firstBlock = row * BLOCKS_PER_UNIT + from / CHECKSUM_BLOCK;
        // Every copy holds the same bytes: checksum them once.
        const crcs = crc32cBlocks(bytes);
        const results = await Promise.all(map.data[unit]!.map((column) => this.writeColumn(column, row, firstBlock, bytes, fua, crcs)));
        if (!results.some(Boolean)) lost.push(`data unit ${unit}`);
      }),
    );
    if (lost.length > 0) throw new BlockDeviceError('EIO', `chunk ${this.id} row ${row}: no copy of ${lost.join(', ')} could be written`);
  }

  /**
   * raid5, raid6: rebuild the logical span of every data unit the write
   * touches (new bytes where written, current bytes elsewhere), compute P/Q
   * over it, then write the new data and the parity. Works the same whether
   * or not a column is missing (a "reconstruct-write"); when a data column is
   * gone, what it is to hold is journalled first (row-journal.ts), so a crash
   * between the column writes cannot change it.
   */
  private async writeWithParity(map: RowMap, row: number, start: number, data: Buffer, fua: boolean): Promise<void> {
    const pieces = this.unitPieces(start, data.length);
    // The block span, inside a unit, that parity must be recomputed over.
    const spanFrom = Math.min(...pieces.map((p) => p.from));
    const spanTo = Math.max(...pieces.map((p) => p.to));
    // The units not wholly rewritten are read, all at once (one member each).
    const units = await Promise.all(
      Array.from({ length: this.dataUnits }, async (_, unit) => {
        const piece = pieces.find((p) => p.unit === unit);
        if (piece && piece.from === spanFrom && piece.to === spanTo) return data.subarray(piece.at, piece.at + (spanTo - spanFrom));
        const current = Buffer.allocUnsafe(spanTo - spanFrom);
        await this.readUnitInto(map, row, unit, spanFrom, spanTo, current);
        if (piece) data.copy(current, piece.from - spanFrom, piece.at, piece.at + (piece.to - piece.from));
        return current;
      }),
    );
    const { p, q } = computeRowParity(units, map.q !== undefined);
    const journalled = await this.journalGoneUnits(map, row, spanFrom, units);
    try {
      await this.writeParitySpan(map, row, spanFrom, pieces, data, p, q, fua);
    } finally {
      journalled?.();
    }
  }

  /** Journals the span of every data unit of the row whose column is gone (parity alone keeps it). */
  private async journalGoneUnits(map: RowMap, row: number, spanFrom: number, units: readonly Buffer[]): Promise<(() => void) | undefined> {
    if (!this.ctx.journalRow) return undefined;
    const gone = map.data.flatMap((copies, k) => (this.columns[copies[0]!]!.member.usable ? [] : [k]));
    if (gone.length === 0) return undefined;
    const targets = [map.p!, ...(map.q !== undefined ? [map.q] : [])].map((c) => this.columns[c]!.member).filter((m) => m.writable).map((m) => m.uuid);
    return this.ctx.journalRow({ chunkId: this.id, row, firstBlock: spanFrom / CHECKSUM_BLOCK, units: gone.map((k) => ({ unit: k, data: units[k]! })), targets });
  }

  private async writeParitySpan(
    map: RowMap,
    row: number,
    spanFrom: number,
    pieces: ReadonlyArray<{ unit: number; from: number; to: number; at: number }>,
    data: Buffer,
    p: Buffer,
    q: Buffer | undefined,
    fua: boolean,
  ): Promise<void> {
    const firstSpanBlock = row * BLOCKS_PER_UNIT + spanFrom / CHECKSUM_BLOCK;
    const writes: Array<Promise<boolean>> = [];
    for (const piece of pieces) {
      const column = map.data[piece.unit]![0]!;
      const firstBlock = row * BLOCKS_PER_UNIT + piece.from / CHECKSUM_BLOCK;
      writes.push(this.writeColumn(column, row, firstBlock, data.subarray(piece.at, piece.at + (piece.to - piece.from)), fua));
    }
    writes.push(this.writeColumn(map.p!, row, firstSpanBlock, p, fua));
    if (map.q !== undefined) writes.push(this.writeColumn(map.q, row, firstSpanBlock, q!, fua));
    const results = await Promise.all(writes);
    const failedColumns = this.columns.filter((c, i) => this.isRowColumn(map, i) && !c.member.writable).length;
    if (results.some((ok) => !ok) && failedColumns > this.faultTolerance) {
      throw new BlockDeviceError('EIO', `chunk ${this.id} row ${row}: ${failedColumns} columns unavailable, more than the layout's ${this.faultTolerance}`);
    }
  }

  private isRowColumn(map: RowMap, column: number): boolean {
    return map.p === column || map.q === column || map.data.some((copies) => copies.includes(column));
  }

  /**
   * Runs a change on one column of a row. Returns false if the column did not
   * take it: its member is not writable (the row is then stale on it), or the
   * change failed (the member is failed, and the row is stale on it).
   */
  private changeColumn(column: number, row: number, change: ColumnChange, errorKind?: 'write'): Promise<boolean> {
    const shadow = this.shadows?.[column];
    if (shadow === undefined || !shadow.covers(row)) return this.changeOwnColumn(column, row, change, errorKind);
    // A slab move has copied this row already: the new place takes the change too.
    return Promise.all([this.changeOwnColumn(column, row, change, errorKind), shadow.change([row], change)]).then(([ok]) => ok);
  }

  private async changeOwnColumn(column: number, row: number, change: ColumnChange, errorKind?: 'write'): Promise<boolean> {
    const { member, slab } = this.columns[column]!;
    if (!member.writable) {
      await this.ctx.memberSkipped(member, this.id, row);
      return false;
    }
    try {
      await change(member, slab, await this.ctx.checksums.table(member, slab, this.id));
      return true;
    } catch (error) {
      if (errorKind) this.ctx.errorCounted(member, errorKind);
      await this.ctx.memberFailed(member, error);
      await this.ctx.memberSkipped(member, this.id, row);
      return false;
    }
  }

  /** Writes blocks to one column and updates their checksums (see changeColumn for the result). */
  private writeColumn(column: number, row: number, firstBlock: number, bytes: Buffer, fua: boolean, crcs = crc32cBlocks(bytes)): Promise<boolean> {
    return this.changeColumn(
      column,
      row,
      async (member, slab, table) => {
        const offset = member.slabOffset(slab, firstBlock * CHECKSUM_BLOCK);
        await (this.bulkFill && !fua ? writeCopy(member.device!, offset, bytes) : member.device!.write(offset, bytes, { fua }));
        member.bytesWritten += bytes.length;
        for (let i = 0; i < crcs.length; i++) table.set(firstBlock + i, encodeChecksum(crcs[i]!));
        if (fua) await table.writeBack(true);
      },
      'write',
    );
  }

  /** Marks blocks unwritten on every copy (mirrors only; parity layouts write zeroes instead). */
  async trimRow(row: number, start: number, length: number): Promise<void> {
    await this.trimRowColumns(row, start, length);
    if (this.rowObserver) await this.rowObserver.trimmed(row, start, length);
  }

  private async trimRowColumns(row: number, start: number, length: number): Promise<void> {
    const map = this.ctx.layout.row(this.spec, row);
    if (map.p !== undefined) {
      await this.writeWithParity(map, row, start, Buffer.alloc(length), false);
      return;
    }
    const lost: string[] = [];
    await Promise.all(
      this.unitPieces(start, length).map(async ({ unit, from, to }) => {
        const firstBlock = row * BLOCKS_PER_UNIT + from / CHECKSUM_BLOCK;
        const results = await Promise.all(map.data[unit]!.map((column) => this.trimColumn(column, row, firstBlock, (to - from) / CHECKSUM_BLOCK)));
        if (!results.some(Boolean)) lost.push(`data unit ${unit}`);
      }),
    );
    if (lost.length > 0) throw new BlockDeviceError('EIO', `chunk ${this.id} row ${row}: no copy of ${lost.join(', ')} could be trimmed`);
  }

  private trimColumn(column: number, row: number, firstBlock: number, blocks: number): Promise<boolean> {
    return this.changeColumn(column, row, async (_member, _slab, table) => {
      for (let b = 0; b < blocks; b++) table.set(firstBlock + b, UNWRITTEN);
    });
  }

  // ---------------------------------------------------------------- repair

  /**
   * Verifies every column of a row and rewrites what is wrong: bad mirror
   * copies from a good one, bad data or parity from the rest of the row,
   * parity that disagrees with checksummed data (a torn write). Returns the
   * number of blocks rewritten. Skips columns of members that are not online.
   */
  async repairRow(row: number): Promise<number> {
    const map = this.ctx.layout.row(this.spec, row);
    const firstBlock = row * BLOCKS_PER_UNIT;
    // Every repair follows a read that found (and counted) the bad blocks: not counted twice.
    const reads = await this.readRowColumns(map, firstBlock, BLOCKS_PER_UNIT, undefined, false);
    let rewritten = 0;
    const rewrite = async (column: number, b: number, block: Buffer): Promise<void> => {
      if (await this.writeColumn(column, row, firstBlock + b, block, false)) rewritten++;
    };
    for (let b = 0; b < BLOCKS_PER_UNIT; b++) {
      const blockOf = (column: number): Buffer | null => {
        const read = reads[column];
        return read && read.ok[b] ? read.data.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK) : null;
      };
      if (map.p === undefined) {
        for (const copies of map.data) {
          const good = copies.map(blockOf).find((x) => x !== null);
          if (!good) continue; // nothing valid to copy from; reads of it keep failing with EIO
          for (const column of copies) {
            if (reads[column] && !reads[column]!.ok[b]) await rewrite(column, b, Buffer.from(good));
          }
        }
        continue;
      }
      const units = map.data.map((copies) => blockOf(copies[0]!));
      const p = blockOf(map.p);
      const q = map.q === undefined ? null : blockOf(map.q);
      const bad = [...map.data.map((c) => c[0]!), map.p, ...(map.q !== undefined ? [map.q] : [])].filter(
        (column) => reads[column] !== undefined && !reads[column]!.ok[b],
      );
      const rebuilt = rebuildRow(units, p, q);
      if (!rebuilt) continue;
      const parity = computeRowParity(rebuilt, map.q !== undefined);
      for (const column of bad) {
        const k = map.data.findIndex((copies) => copies[0] === column);
        const block = k >= 0 ? rebuilt[k]! : column === map.p ? parity.p : parity.q!;
        const read = reads[column]!;
        const stored = read.table.entries[firstBlock + b]!;
        // Data blocks must rebuild to what their checksum says; parity is derived, so it is simply rewritten.
        if (k >= 0 && stored !== UNWRITTEN && !checksumMatches(stored, crc32c(block))) continue;
        await rewrite(column, b, Buffer.from(block));
      }
      // All present and valid, but parity disagrees with the data: rewrite parity.
      if (bad.length === 0 && p && !p.equals(parity.p)) await rewrite(map.p, b, Buffer.from(parity.p));
      if (bad.length === 0 && q && map.q !== undefined && !q.equals(parity.q!)) await rewrite(map.q, b, Buffer.from(parity.q!));
    }
    return rewritten;
  }

  /**
   * After a crash, for a row the write-intent log names: makes the row
   * consistent without trusting that checksums were written with their data.
   * Mirrors: a copy that verifies wins, else (all unwritten) unwritten, else
   * the first readable copy's bytes with a new checksum. Parity layouts: a
   * data block that does not verify keeps its bytes and gets a new checksum;
   * P and Q are recomputed. Unacknowledged writes may land either way.
   * Returns the blocks rewritten.
   */
  async resyncRow(row: number): Promise<number> {
    const map = this.ctx.layout.row(this.spec, row);
    const firstBlock = row * BLOCKS_PER_UNIT;
    // A block torn by the crash is not corruption: its mismatch is not counted as a checksum error.
    const reads = await this.readRowColumns(map, firstBlock, BLOCKS_PER_UNIT, undefined, false);
    let rewritten = 0;
    const rewrite = async (column: number, b: number, block: Buffer): Promise<void> => {
      if (await this.writeColumn(column, row, firstBlock + b, block, false)) rewritten++;
    };
    const raw = (column: number, b: number): Buffer | undefined =>
      reads[column]?.data.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK);
    const entry = (column: number, b: number): number | undefined => reads[column]?.table.entries[firstBlock + b];
    for (let b = 0; b < BLOCKS_PER_UNIT; b++) {
      if (map.p === undefined) {
        for (const copies of map.data) {
          const readable = copies.filter((c) => reads[c] !== undefined);
          if (readable.length === 0) continue;
          const verified = readable.find((c) => entry(c, b) !== UNWRITTEN && reads[c]!.ok[b]);
          // "Unwritten" from a damaged (torn?) table block is not to be believed: its data is.
          const believed = (c: number): boolean => reads[c]!.table.isUnwritten(firstBlock + b);
          const source = verified ?? readable.find((c) => entry(c, b) === UNWRITTEN && believed(c)) ?? readable[0]!;
          if (entry(source, b) === UNWRITTEN && believed(source)) {
            for (const c of readable) reads[c]!.table.set(firstBlock + b, UNWRITTEN);
            continue;
          }
          const block = Buffer.from(raw(source, b)!);
          for (const c of readable) {
            if (c === source && reads[c]!.ok[b] && entry(c, b) !== UNWRITTEN) continue;
            await rewrite(c, b, block);
          }
        }
        continue;
      }
      // Parity layouts: logical data is what the data columns hold.
      const units: Array<Buffer | null> = [];
      for (const copies of map.data) {
        const c = copies[0]!;
        if (!reads[c]) {
          units.push(null);
          continue;
        }
        if (reads[c]!.table.isUnwritten(firstBlock + b)) {
          units.push(Buffer.alloc(CHECKSUM_BLOCK));
          continue;
        }
        const block = Buffer.from(raw(c, b)!);
        if (!reads[c]!.ok[b]) reads[c]!.table.set(firstBlock + b, encodeChecksum(crc32c(block)));
        units.push(block);
      }
      if (units.some((u) => u === null)) continue; // a data column is gone: parity is all that is left of it
      const parity = computeRowParity(units as Buffer[], map.q !== undefined);
      if (reads[map.p] && !raw(map.p, b)!.equals(parity.p)) await rewrite(map.p, b, parity.p);
      else if (reads[map.p] && !reads[map.p]!.ok[b]) await rewrite(map.p, b, parity.p);
      if (map.q !== undefined && reads[map.q]) {
        if (!raw(map.q, b)!.equals(parity.q!) || !reads[map.q]!.ok[b]) await rewrite(map.q, b, parity.q!);
      }
    }
    return rewritten;
  }

  /**
   * Import, before reconciling: makes the row's parity over a journalled span
   * agree with the journalled content of its gone data units and with what
   * its present data columns hold now, old or new (row-journal.ts). A column
   * that is back is used rather than its record. Returns false when the row
   * cannot be replayed: a data column is gone with no record for it.
   */
  async replayJournal(group: JournalGroup): Promise<boolean> {
    const map = this.ctx.layout.row(this.spec, group.row);
    if (map.p === undefined || group.row >= this.rows) return false;
    const firstBlock = group.row * BLOCKS_PER_UNIT + group.firstBlock;
    const units = await Promise.all(
      map.data.map(async (copies, k) => {
        const read = this.columns[copies[0]!]!.member.usable ? await this.readColumn(copies[0]!, firstBlock, group.blocks) : undefined;
        // What the column holds is the data, verified or not (a torn block gets its checksum in resyncRow).
        return read?.data ?? group.units.get(k);
      }),
    );
    if (units.some((u) => u === undefined || u.length !== group.blocks * CHECKSUM_BLOCK)) return false;
    const { p, q } = computeRowParity(units as Buffer[], map.q !== undefined);
    await this.writeColumn(map.p, group.row, firstBlock, p, false);
    if (map.q !== undefined) await this.writeColumn(map.q, group.row, firstBlock, q!, false);
    return true;
  }

  /**
   * Rewrites one column of a row from the rest of the row, whatever that
   * column holds now: for a member that missed writes while it was away
   * (its stale blocks still match their old checksums), and for a slab
   * being rebuilt on a new member. Unwritten blocks stay unwritten.
   * Throws EIO when the rest of the row cannot supply the data.
   */
  async rebuildColumnRow(row: number, column: number): Promise<void> {
    const map = this.ctx.layout.row(this.spec, row);
    const firstBlock = row * BLOCKS_PER_UNIT;
    const target = this.columns[column]!;
    if (!target.member.writable) throw new BlockDeviceError('EIO', `chunk ${this.id}: member ${target.member.label} is not online`);
    const table = await this.ctx.checksums.table(target.member, target.slab, this.id);
    const others = this.columns.map((_, c) => c !== column);
    const reads = await this.readRowColumns(map, firstBlock, BLOCKS_PER_UNIT, others);
    const content = Buffer.alloc(STRIPE_UNIT);
    const unwritten = new Array<boolean>(BLOCKS_PER_UNIT).fill(false);
    const dataIndex = map.data.findIndex((copies) => copies.includes(column));
    for (let b = 0; b < BLOCKS_PER_UNIT; b++) {
      const blockOf = (c: number | undefined): Buffer | null => {
        if (c === undefined || c === column) return null;
        const read = reads[c];
        return read && read.ok[b] ? read.data.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK) : null;
      };
      const isUnwritten = (c: number | undefined): boolean => c !== undefined && reads[c]?.table.entries[firstBlock + b] === UNWRITTEN;
      let block: Buffer | null = null;
      if (map.p === undefined) {
        const copies = map.data[dataIndex]!.filter((c) => c !== column);
        const source = copies.find((c) => blockOf(c) !== null);
        if (source !== undefined) {
          block = blockOf(source);
          unwritten[b] = isUnwritten(source);
        }
      } else {
        const units = map.data.map((copies) => (copies[0] === column ? null : blockOf(copies[0])));
        const rebuilt = rebuildRow(units, blockOf(map.p), map.q === undefined ? null : blockOf(map.q));
        if (rebuilt) {
          if (dataIndex >= 0) block = rebuilt[dataIndex]!;
          else {
            const parity = computeRowParity(rebuilt, map.q !== undefined);
            block = column === map.p ? parity.p : parity.q!;
          }
          unwritten[b] = dataIndex >= 0 && block.every((x) => x === 0) && isUnwritten(map.p);
        }
      }
      if (!block) throw new BlockDeviceError('EIO', `chunk ${this.id} row ${row}: nothing left to rebuild block ${b} of column ${column} from`);
      block.copy(content, b * CHECKSUM_BLOCK);
    }
    await target.member.device!.write(target.member.slabOffset(target.slab, firstBlock * CHECKSUM_BLOCK), content);
    target.member.bytesWritten += content.length;
    const crcs = crc32cBlocks(content); // the unit's CRCs in one call
    for (let b = 0; b < BLOCKS_PER_UNIT; b++) table.set(firstBlock + b, unwritten[b] ? UNWRITTEN : encodeChecksum(crcs[b]!));
  }

  // ---------------------------------------------------------------- moving and scrubbing

  /** The column now lives on `to` (slab-move.ts, once the move is committed). */
  setColumn(column: number, to: ChunkColumn): void {
    (this.columns as ChunkColumn[])[column] = to;
  }

  /**
   * Copies rows [first, first + count) of column `column` onto `to`, a slab
   * that is not (yet) part of the chunk, with their checksums: what the
   * column holds where it verifies, else what its copies or parity say it
   * should hold (checked against the column's own checksum when that is
   * readable). Unwritten blocks stay unwritten (and are not written). A block
   * nothing valid is left for is written as zeroes with a checksum that
   * cannot match (LOST_BLOCK_ENTRY), so it reads as EIO there, as it did
   * here. The caller holds the rows' locks. Throws when `to` fails.
   */
  async copyColumnRows(first: number, count: number, column: number, to: ChunkColumn): Promise<CopyResult> {
    const firstBlock = first * BLOCKS_PER_UNIT;
    const blocks = count * BLOCKS_PER_UNIT;
    const target = await this.ctx.checksums.table(to.member, to.slab, this.id);
    const entries = new Uint32Array(blocks);
    const need = new Array<boolean>(blocks).fill(true);
    const bad: BadBlock[] = [];
    const own = await this.readColumn(column, firstBlock, blocks);
    const source = this.columns[column]!.member;
    // The column's own read, unwritten blocks zero: bad blocks in it are overwritten below.
    let content = own?.data;
    if (own) {
      for (let i = 0; i < blocks; i++) {
        if (!own.ok[i]) continue;
        need[i] = false;
        if (!own.table.isUnwritten(firstBlock + i)) entries[i] = own.table.entries[firstBlock + i]!;
      }
    }
    let lost = 0;
    const needed = need.indexOf(true);
    if (needed >= 0) {
      // Rebuild the rest from the other columns, read once over the rows that need it.
      const lo = Math.floor(needed / BLOCKS_PER_UNIT);
      const hi = Math.floor(need.lastIndexOf(true) / BLOCKS_PER_UNIT);
      const spanFirst = (first + lo) * BLOCKS_PER_UNIT;
      const reads = new Array<ColumnRead | undefined>(this.columns.length);
      await Promise.all(
        this.columns.map(async (_, c) => {
          if (c !== column) reads[c] = await this.readColumn(c, spanFirst, (hi - lo + 1) * BLOCKS_PER_UNIT);
        }),
      );
      // A mirror with a copy that verifies over the whole span: that copy is the content.
      const mirror = this.ctx.layout.row(this.spec, first).p === undefined ? this.wholeCopy(column, reads, lo === 0 && hi === count - 1 && !own) : undefined;
      if (mirror !== undefined) {
        const read = reads[mirror]!;
        content = read.data;
        for (let i = 0; i < blocks; i++) {
          need[i] = false;
          if (!read.table.isUnwritten(firstBlock + i)) entries[i] = read.table.entries[firstBlock + i]!;
        }
      }
      content ??= Buffer.alloc(blocks * CHECKSUM_BLOCK);
      for (let r = lo; r <= hi; r++) {
        const row = first + r;
        const map = this.ctx.layout.row(this.spec, row);
        let otherBad = false;
        // Parity layouts, the whole row rebuilt at once when every other column verifies over it.
        const unit = map.p !== undefined ? this.columnUnitFromOthers(map, column, reads, r - lo) : undefined;
        for (let b = 0; b < BLOCKS_PER_UNIT; b++) {
          const i = r * BLOCKS_PER_UNIT + b;
          if (!need[i]) continue;
          const at = (r - lo) * BLOCKS_PER_UNIT + b;
          const found = unit
            ? this.blockOfUnit(map, column, reads, unit, spanFirst + at, b)
            : this.columnBlockFromOthers(map, column, reads, at, spanFirst + at);
          otherBad ||= found.otherBad;
          const stored = own?.table.entries[firstBlock + i];
          let block = found.block;
          // The column's own table, when readable, says what the block must be.
          if (block && own && stored !== undefined && stored !== UNWRITTEN && !found.unwritten && !checksumMatches(stored, crc32c(block))) block = undefined;
          if (own && stored !== UNWRITTEN) {
            bad.push({ chunk: this.id, row, block: b, member: source.uuid, problem: 'checksum', ...(block ? { from: found.from } : {}) });
          }
          if (!block) {
            content.fill(0, i * CHECKSUM_BLOCK, (i + 1) * CHECKSUM_BLOCK);
            entries[i] = LOST_BLOCK_ENTRY;
            lost++;
            continue;
          }
          if (found.unwritten) {
            content.fill(0, i * CHECKSUM_BLOCK, (i + 1) * CHECKSUM_BLOCK);
            continue;
          }
          block.copy(content, i * CHECKSUM_BLOCK);
          entries[i] = encodeChecksum(crc32c(block));
        }
        if (otherBad) this.ctx.repairNeeded(this.id, row);
      }
    }
    let lo = -1;
    let hi = -1;
    for (let i = 0; i < blocks; i++) {
      if (entries[i] === UNWRITTEN) continue;
      if (lo < 0) lo = i;
      hi = i;
    }
    let bytesWritten = 0;
    if (lo >= 0) {
      const bytes = content!.subarray(lo * CHECKSUM_BLOCK, (hi + 1) * CHECKSUM_BLOCK);
      await writeCopy(to.member.device!, to.member.slabOffset(to.slab, (firstBlock + lo) * CHECKSUM_BLOCK), bytes);
      to.member.bytesWritten += bytes.length;
      bytesWritten = bytes.length;
    }
    for (let i = 0; i < blocks; i++) target.set(firstBlock + i, entries[i]!);
    return { bytesWritten, bad, lost };
  }

  /** A mirror copy of `column` (another column of its data unit) whose read verifies throughout, if `allowed`. */
  private wholeCopy(column: number, reads: ReadonlyArray<ColumnRead | undefined>, allowed: boolean): number | undefined {
    if (!allowed) return undefined;
    // Mirror layouts map every row alike: row 0 says which columns copy this one.
    const copies = this.ctx.layout.row(this.spec, 0).data.find((c) => c.includes(column))!;
    return copies.find((c) => c !== column && reads[c] !== undefined && reads[c]!.ok.every(Boolean));
  }

  /**
   * Parity layouts: the whole stripe unit of `column` in span row `r`,
   * rebuilt at once, when every other column of the row verifies over it.
   */
  private columnUnitFromOthers(map: RowMap, column: number, reads: ReadonlyArray<ColumnRead | undefined>, r: number): Buffer | undefined {
    const rowColumns = [...map.data.map((c) => c[0]!), map.p!, ...(map.q !== undefined ? [map.q] : [])];
    const span = (c: number): Buffer | null => {
      const read = reads[c];
      if (c === column || !read) return null;
      for (let b = 0; b < BLOCKS_PER_UNIT; b++) if (!read.ok[r * BLOCKS_PER_UNIT + b]) return null;
      return read.data.subarray(r * STRIPE_UNIT, (r + 1) * STRIPE_UNIT);
    };
    const others = rowColumns.filter((c) => c !== column);
    if (others.some((c) => span(c) === null)) return undefined;
    const rebuilt = rebuildRow(
      map.data.map((copies) => span(copies[0]!)),
      span(map.p!),
      map.q === undefined ? null : span(map.q),
    );
    if (!rebuilt) return undefined;
    const dataIndex = map.data.findIndex((copies) => copies[0] === column);
    if (dataIndex >= 0) return rebuilt[dataIndex]!;
    const parity = computeRowParity(rebuilt, map.q !== undefined);
    return column === map.p ? parity.p : parity.q!;
  }

  /** Block `b` of a unit rebuilt by columnUnitFromOthers, in columnBlockFromOthers' terms. */
  private blockOfUnit(
    map: RowMap,
    column: number,
    reads: ReadonlyArray<ColumnRead | undefined>,
    unit: Buffer,
    slabBlock: number,
    b: number,
  ): { block?: Buffer; unwritten: boolean; from?: string; otherBad: boolean } {
    const block = unit.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK);
    const rowColumns = [...map.data.flat(), map.p!, ...(map.q !== undefined ? [map.q] : [])];
    const unwritten = block.every((x) => x === 0) && rowColumns.every((c) => c === column || reads[c] === undefined || reads[c]!.table.isUnwritten(slabBlock));
    return { block, unwritten, from: 'parity', otherBad: false };
  }

  /**
   * One block of `column`, from the row's other columns (read over the same
   * span): a verified copy, or a parity rebuild. `unwritten` when every
   * column it came from has the block unwritten (it reads as zeroes).
   */
  private columnBlockFromOthers(
    map: RowMap,
    column: number,
    reads: ReadonlyArray<ColumnRead | undefined>,
    at: number,
    slabBlock: number,
  ): { block?: Buffer; unwritten: boolean; from?: string; otherBad: boolean } {
    const blockOf = (c: number | undefined): Buffer | null => {
      if (c === undefined || c === column) return null;
      const read = reads[c];
      return read && read.ok[at] ? read.data.subarray(at * CHECKSUM_BLOCK, (at + 1) * CHECKSUM_BLOCK) : null;
    };
    const unwrittenAt = (c: number): boolean => reads[c]!.table.isUnwritten(slabBlock);
    const rowColumns = [...map.data.flat(), ...(map.p !== undefined ? [map.p] : []), ...(map.q !== undefined ? [map.q] : [])];
    const otherBad = rowColumns.some((c) => c !== column && reads[c] !== undefined && !reads[c]!.ok[at]);
    const dataIndex = map.data.findIndex((copies) => copies.includes(column));
    if (map.p === undefined) {
      const source = map.data[dataIndex]!.find((c) => blockOf(c) !== null);
      if (source === undefined) return { unwritten: false, otherBad };
      return { block: blockOf(source)!, unwritten: unwrittenAt(source), from: `copy:${this.columns[source]!.member.uuid}`, otherBad };
    }
    const units = map.data.map((copies) => blockOf(copies[0]));
    const rebuilt = rebuildRow(units, blockOf(map.p), map.q === undefined ? null : blockOf(map.q));
    if (!rebuilt) return { unwritten: false, otherBad };
    let block: Buffer;
    if (dataIndex >= 0) block = rebuilt[dataIndex]!;
    else {
      const parity = computeRowParity(rebuilt, map.q !== undefined);
      block = column === map.p ? parity.p : parity.q!;
    }
    const unwritten = block.every((x) => x === 0) && rowColumns.every((c) => c === column || reads[c] === undefined || unwrittenAt(c));
    return { block, unwritten, from: 'parity', otherBad };
  }

  /**
   * Reads rows [first, first + count) of every column, verifies every block
   * against its checksum and, on parity layouts, parity against the data;
   * rows with anything wrong are repaired (repairRow). The caller holds the
   * rows' locks. Each column is one read into a buffer of the jobs' pool
   * (scrubColumn), given back at the end.
   */
  async scrubRows(first: number, count: number): Promise<ScrubResult> {
    const firstBlock = first * BLOCKS_PER_UNIT;
    const blocks = count * BLOCKS_PER_UNIT;
    const buffers = this.columns.map(() => jobBuffers.take(blocks * CHECKSUM_BLOCK));
    try {
      // Mirrors need no bytes to check, only each block's CRC: where every
      // column's device can checksum without handing the bytes back, a first
      // pass does only that, and the rows are read for real only when it
      // finds anything short of all well (then counted and repaired there).
      const mirrored = this.ctx.layout.row(this.spec, first).p === undefined;
      if (mirrored && this.columns.every((c) => c.member.usable && c.member.device?.crc32cBlocks !== undefined)) {
        const checked = await Promise.allSettled(this.columns.map((_, c) => this.scrubColumn(c, firstBlock, blocks, buffers[c]!, { quiet: true, checksumsOnly: true })));
        if (checked.every((s) => s.status === 'fulfilled' && s.value !== undefined && !s.value.ok.includes(false))) {
          return { bytesRead: this.columns.length * blocks * CHECKSUM_BLOCK, bad: [], repaired: 0, unchecked: 0 };
        }
      }
      // Settled, not all: no buffer goes back to the pool while a read may still fill it.
      const settled = await Promise.allSettled(this.columns.map((_, c) => this.scrubColumn(c, firstBlock, blocks, buffers[c]!)));
      const reads = settled.map((s) => {
        if (s.status === 'rejected') throw s.reason;
        return s.value;
      });
      return await this.scrubVerified(first, count, reads);
    } finally {
      for (const b of buffers) jobBuffers.give(b);
    }
  }

  // ---------------------------------------------------------------- helpers

  /** Splits a row range into per-unit pieces: unit index, range inside the unit, offset in the caller's buffer. */
  private unitPieces(start: number, length: number): Array<{ unit: number; from: number; to: number; at: number }> {
    const pieces = [];
    let offset = start;
    const end = start + length;
    while (offset < end) {
      const unit = Math.floor(offset / STRIPE_UNIT);
      const from = offset - unit * STRIPE_UNIT;
      const to = Math.min(STRIPE_UNIT, end - unit * STRIPE_UNIT);
      pieces.push({ unit, from, to, at: offset - start });
      offset = unit * STRIPE_UNIT + to;
    }
    return pieces;
  }

  // ---- jobs

  /**
   * readColumn for a scrub: blocks [firstBlock, firstBlock + count) of one
   * column read into `target` (count blocks long) rather than a buffer of
   * its own, and verified. Unwritten blocks are zeroes in `target` and ok.
   * Same reports as readColumn (damaged tables queue their rows' repair,
   * checksum and read errors are counted, a lost member fails); undefined
   * when the column is unusable. `quiet`: a look before another read of the
   * same blocks (copyColumnRows) that counts their errors; nothing is
   * counted here, though a lost member still fails. `checksumsOnly`: only
   * `ok` is wanted (the device may checksum without handing bytes back), and
   * `target`'s content is left undefined. `uncached`: the device may read
   * around its page cache (a slab move's source, read once to be copied).
   */
  private async scrubColumn(column: number, firstBlock: number, count: number, target: Buffer, how: ScrubColumnOptions = {}): Promise<ColumnRead | undefined> {
    const { quiet = false, checksumsOnly = false } = how;
    const bulk = how.uncached ? UNCACHED : undefined;
    const { member, slab } = this.columns[column]!;
    if (!member.usable) return undefined;
    // Quiet: a lost member still fails (columnError's other half), an I/O error is not counted.
    const failed = (error: unknown): Promise<void> =>
      !quiet ? this.columnError(member, error) : error instanceof BlockDeviceError ? Promise.resolve() : this.ctx.memberFailed(member, error);
    let table: SlabTable;
    try {
      table = await this.ctx.checksums.table(member, slab, this.id);
    } catch (error) {
      await failed(error);
      return undefined;
    }
    if (table.damaged.size > 0 && !table.repairQueued) {
      table.repairQueued = true;
      for (const [lo, end] of table.damagedRanges()) {
        for (let row = Math.floor(lo / BLOCKS_PER_UNIT); row < Math.ceil(end / BLOCKS_PER_UNIT); row++) this.ctx.repairNeeded(this.id, row);
      }
    }
    const ok = new Array<boolean>(count).fill(false);
    let lo = -1;
    let hi = -1;
    for (let i = 0; i < count; i++) {
      if (table.isUnwritten(firstBlock + i)) {
        ok[i] = true; // reads as zeroes
        continue;
      }
      if (lo === -1) lo = i;
      hi = i;
    }
    if (lo === -1) {
      if (!checksumsOnly) target.fill(0);
      return { data: target, ok, table, firstBlock };
    }
    const span = target.subarray(lo * CHECKSUM_BLOCK, (hi + 1) * CHECKSUM_BLOCK);
    // Devices that checksum where they read (image files: in the thread pool,
    // while the bytes are in that core's cache) hand the CRCs back with the data.
    let nativeCrcs: Uint32Array | undefined;
    try {
      const device = member.device!;
      const offset = member.slabOffset(slab, (firstBlock + lo) * CHECKSUM_BLOCK);
      if (checksumsOnly && device.crc32cBlocks) {
        nativeCrcs = new Uint32Array(hi - lo + 1);
        await device.crc32cBlocks(offset, span.length, CHECKSUM_BLOCK, nativeCrcs, bulk);
      } else if (device.readIntoCrc32c) {
        nativeCrcs = new Uint32Array(hi - lo + 1);
        await device.readIntoCrc32c(offset, span, CHECKSUM_BLOCK, nativeCrcs, bulk);
      } else if (device.readInto) await device.readInto(offset, span);
      else (await device.read(offset, span.length)).copy(span);
      member.bytesRead += span.length;
    } catch (error) {
      await failed(error);
      if (!member.usable) return undefined;
      // The written blocks stay unverified (not ok); unwritten ones are still zeroes.
      target.fill(0);
      return { data: target, ok, table, firstBlock };
    }
    // Checksums only: `target` holds nothing worth zeroing.
    if (lo > 0 && !checksumsOnly) target.fill(0, 0, lo * CHECKSUM_BLOCK);
    if (hi < count - 1 && !checksumsOnly) target.fill(0, (hi + 1) * CHECKSUM_BLOCK);
    // The span's CRCs in one call (block i at crcs[i - lo]), compared before anything else runs.
    const crcs = nativeCrcs ?? crc32cBlocksScratch(span, hi - lo + 1);
    let mismatches = 0;
    for (let i = lo; i <= hi; i++) {
      if (table.isUnwritten(firstBlock + i)) {
        // Read along with its neighbours, but what a trimmed block holds is not its content.
        if (!checksumsOnly) target.fill(0, i * CHECKSUM_BLOCK, (i + 1) * CHECKSUM_BLOCK);
        continue;
      }
      const stored = table.entries[firstBlock + i]!;
      if (stored === UNWRITTEN) continue; // damaged table: read, not verifiable
      if (checksumMatches(stored, crcs[i - lo]!)) ok[i] = true;
      else mismatches++;
    }
    // Counted once the shared CRCs are no longer needed (the count's listeners run now).
    if (!quiet) for (let n = 0; n < mismatches; n++) this.ctx.errorCounted(member, 'checksum');
    return { data: target, ok, table, firstBlock };
  }

  /**
   * copyColumnRows for slab moves, with the reads in buffers of the jobs'
   * pool and only the reads the common cases need: the column's own blocks
   * when every one verifies, or (a mirror whose column is unusable) one
   * other copy that verifies throughout. Anything else (bad blocks, parity
   * rebuilds) is left to copyColumnRows, which reads again. Same result,
   * same guarantees; the caller holds the rows' locks.
   */
  async copyColumnRowsPooled(first: number, count: number, column: number, to: ChunkColumn): Promise<CopyResult> {
    const firstBlock = first * BLOCKS_PER_UNIT;
    const blocks = count * BLOCKS_PER_UNIT;
    const buffer = jobBuffers.take(blocks * CHECKSUM_BLOCK);
    try {
      let read = await this.scrubColumn(column, firstBlock, blocks, buffer, SOURCE_READ);
      if (read && read.ok.includes(false)) return await this.copyColumnRows(first, count, column, to);
      if (!read) {
        if (this.ctx.layout.row(this.spec, first).p !== undefined) return await this.copyColumnRows(first, count, column, to);
        // Mirror layouts map every row alike: row 0 says which columns copy this one.
        const copies = this.ctx.layout.row(this.spec, 0).data.find((c) => c.includes(column))!;
        for (const c of copies) {
          if (c === column) continue;
          read = await this.scrubColumn(c, firstBlock, blocks, buffer, SOURCE_READ);
          if (read && !read.ok.includes(false)) break;
          read = undefined;
        }
        if (!read) return await this.copyColumnRows(first, count, column, to);
      }
      const target = await this.ctx.checksums.table(to.member, to.slab, this.id);
      const entries = new Uint32Array(blocks);
      let lo = -1;
      let hi = -1;
      for (let i = 0; i < blocks; i++) {
        if (read.table.isUnwritten(firstBlock + i)) continue;
        entries[i] = read.table.entries[firstBlock + i]!;
        if (lo < 0) lo = i;
        hi = i;
      }
      let bytesWritten = 0;
      if (lo >= 0) {
        // Unwritten blocks inside the span are zeroes in the buffer (scrubColumn), as copyColumnRows writes them.
        const bytes = buffer.subarray(lo * CHECKSUM_BLOCK, (hi + 1) * CHECKSUM_BLOCK);
        await writeCopy(to.member.device!, to.member.slabOffset(to.slab, (firstBlock + lo) * CHECKSUM_BLOCK), bytes);
        to.member.bytesWritten += bytes.length;
        bytesWritten = bytes.length;
      }
      for (let i = 0; i < blocks; i++) target.set(firstBlock + i, entries[i]!);
      return { bytesWritten, bad: [], lost: 0 };
    } finally {
      jobBuffers.give(buffer);
    }
  }

  /** scrubRows once every column is read: what is bad, by row, and the repair of those rows. */
  private async scrubVerified(first: number, count: number, reads: ReadonlyArray<ColumnRead | undefined>): Promise<ScrubResult> {
    const blocks = count * BLOCKS_PER_UNIT;
    const bytesRead = reads.filter((r) => r !== undefined).length * blocks * CHECKSUM_BLOCK;
    const unchecked = reads.filter((r) => r === undefined).length * blocks * CHECKSUM_BLOCK;
    const bad: BadBlock[] = [];
    // Mirrors with every column read and every block verified: nothing more to check.
    const mirrored = this.ctx.layout.row(this.spec, first).p === undefined;
    if (mirrored && reads.every((r) => r !== undefined && !r.ok.includes(false))) return { bytesRead, bad, repaired: 0, unchecked };
    const uuid = (c: number): string => this.columns[c]!.member.uuid;
    let repaired = 0;
    for (let r = 0; r < count; r++) {
      const row = first + r;
      const map = this.ctx.layout.row(this.spec, row);
      const found = bad.length;
      const ok = (c: number, at: number): boolean => reads[c] === undefined || reads[c]!.ok[at]!;
      if (map.p === undefined) {
        for (let b = 0; b < BLOCKS_PER_UNIT; b++) {
          const at = r * BLOCKS_PER_UNIT + b;
          for (const copies of map.data) {
            const good = copies.find((c) => reads[c] !== undefined && reads[c]!.ok[at]);
            for (const c of copies) {
              if (!ok(c, at)) bad.push({ chunk: this.id, row, block: b, member: uuid(c), problem: 'checksum', ...(good !== undefined ? { from: `copy:${uuid(good)}` } : {}) });
            }
          }
        }
      } else {
        const parityColumns = [map.p, ...(map.q !== undefined ? [map.q] : [])];
        const rowColumns = [...map.data.map((c) => c[0]!), ...parityColumns];
        const complete = rowColumns.every((c) => reads[c] !== undefined);
        let check: { p: Buffer; q?: Buffer } | undefined;
        if (complete) {
          const unit = (c: number): Buffer => reads[c]!.data.subarray(r * STRIPE_UNIT, (r + 1) * STRIPE_UNIT);
          check = computeRowParity(
            map.data.map((copies) => unit(copies[0]!)),
            map.q !== undefined,
          );
        }
        for (let b = 0; b < BLOCKS_PER_UNIT; b++) {
          const at = r * BLOCKS_PER_UNIT + b;
          const wrong = rowColumns.filter((c) => !ok(c, at));
          const recoverable = wrong.length <= parityColumns.length && rowColumns.length - wrong.length >= map.data.length;
          for (const c of wrong) bad.push({ chunk: this.id, row, block: b, member: uuid(c), problem: 'checksum', ...(recoverable ? { from: 'parity' } : {}) });
          if (wrong.length > 0 || !check) continue;
          const span = (x: Buffer): Buffer => x.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK);
          const stored = (c: number): Buffer => reads[c]!.data.subarray(at * CHECKSUM_BLOCK, (at + 1) * CHECKSUM_BLOCK);
          if (!span(check.p).equals(stored(map.p))) bad.push({ chunk: this.id, row, block: b, member: uuid(map.p), problem: 'parity', from: 'parity' });
          if (map.q !== undefined && !span(check.q!).equals(stored(map.q))) bad.push({ chunk: this.id, row, block: b, member: uuid(map.q), problem: 'parity', from: 'parity' });
        }
      }
      if (bad.length > found) repaired += await this.repairRow(row);
    }
    return { bytesRead, bad, repaired, unchecked };
  }
}

/**
 * Reads of a mirror take one copy for MIRROR_RUN_ROWS rows (1 MiB of 64 KiB
 * units), then the next: long reads stay one request per member and still
 * spread over the copies, and every read of a row (short or ranged) tries
 * the same copy first, so a bad copy is met the same way by both.
 */
const MIRROR_RUN_ROWS = 16;

/** Which copy of a mirrored unit in `row` reads try first (index into the row's copies, modulo their count). */
export function mirrorTurn(row: number): number {
  return Math.floor(row / MIRROR_RUN_ROWS);
}

/** One data unit's part of a ranged read: where it is in the chunk and in the caller's buffer. */
interface UnitSegment {
  readonly row: number;
  readonly unit: number;
  /** Byte range inside the unit. */
  readonly from: number;
  readonly to: number;
  /** Offset in the caller's buffer. */
  readonly at: number;
  /** Slab block of `from`, and the block count. */
  readonly firstBlock: number;
  readonly blocks: number;
}

/** What a batched write puts on one column in one row. */
interface ColumnItem {
  readonly column: number;
  readonly row: number;
  readonly firstBlock: number;
  readonly bytes: Buffer;
  readonly crcs: Uint32Array;
}

function itemKey(column: number, row: number): string {
  return `${column}:${row}`;
}

/** Pieces (of one column, in row order) cut where the next one does not start right after the last on the slab. */
function contiguousRuns<T extends { readonly firstBlock: number; readonly blocks: number }>(segments: readonly T[]): T[][] {
  const runs: T[][] = [];
  let run: T[] = [];
  for (const seg of segments) {
    const last = run[run.length - 1];
    if (last && last.firstBlock + last.blocks !== seg.firstBlock) {
      runs.push(run);
      run = [];
    }
    run.push(seg);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

function allUnwritten(entries: Uint32Array, first: number, count: number): boolean {
  for (let i = 0; i < count; i++) if (entries[first + i] !== UNWRITTEN) return false;
  return true;
}

/** The first and last of `count` blocks from `first` that were ever written ([-1, -1]: none). */
function writtenSpan(entries: Uint32Array, first: number, count: number): [number, number] {
  let lo = -1;
  let hi = -1;
  for (let i = 0; i < count; i++) {
    if (entries[first + i] === UNWRITTEN) continue;
    if (lo === -1) lo = i;
    hi = i;
  }
  return [lo, hi];
}

/**
 * Checks `count` blocks read into buf[at…] against their entries (from slab
 * block `first`); unwritten blocks are zeroed, whatever the member held.
 */
function verifyInPlace(entries: Uint32Array, first: number, buf: Buffer, at: number, count: number): boolean {
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset + at, count * CHECKSUM_BLOCK);
  // The CRCs from the first to the last written block in one call (block i at crcs[i - lo]).
  const [lo, hi] = writtenSpan(entries, first, count);
  const crcs = lo < 0 ? undefined : crc32cBlocksScratch(bytes.subarray(lo * CHECKSUM_BLOCK, (hi + 1) * CHECKSUM_BLOCK), hi - lo + 1);
  for (let i = 0; i < count; i++) {
    const stored = entries[first + i]!;
    if (stored === UNWRITTEN) bytes.fill(0, i * CHECKSUM_BLOCK, (i + 1) * CHECKSUM_BLOCK);
    else if (!checksumMatches(stored, crcs![i - lo]!)) return false;
  }
  return true;
}

/** How scrubColumn reads (see there). */
interface ScrubColumnOptions {
  readonly quiet?: boolean;
  readonly checksumsOnly?: boolean;
  readonly uncached?: boolean;
}

/** A slab move's source read: quiet (copyColumnRows, if it must, reads again and counts), around the page cache. */
const SOURCE_READ: ScrubColumnOptions = Object.freeze({ quiet: true, uncached: true });
const UNCACHED: BulkReadOptions = Object.freeze({ uncached: true });

/**
 * A slab move's copy onto its new place, and a migrate's writes into its
 * new chunks (bulkFill): around the page cache where the device can
 * (writeUncached). Through it, a rebuild ran at memory speed
 * until its first flush and at the disk's after it, so its rate and ETA
 * misled, and that flush's burst of dirty pages stalled foreground reads.
 */
function writeCopy(device: BlockDevice, offset: number, bytes: Buffer): Promise<void> {
  return device.writeUncached ? device.writeUncached(offset, bytes) : device.write(offset, bytes);
}

/** One request for back-to-back parts where the device can (writev), else one per part. */
async function writeGather(device: BlockDevice, offset: number, parts: readonly Buffer[], fua: boolean): Promise<void> {
  if (parts.length === 1) {
    await device.write(offset, parts[0]!, { fua });
  } else if (device.writev) {
    await device.writev(offset, parts, { fua });
  } else {
    let at = offset;
    await Promise.all(parts.map((part) => ((at += part.length), device.write(at - part.length, part, { fua }))));
  }
}

/** One request for back-to-back parts where the device can (readv), else one per part. */
async function readScatter(device: BlockDevice, offset: number, parts: readonly Buffer[]): Promise<void> {
  if (parts.length === 1) {
    const [part] = parts as [Buffer];
    if (device.readInto) await device.readInto(offset, part);
    else (await device.read(offset, part.length)).copy(part);
    return;
  }
  if (device.readv) {
    await device.readv(offset, parts);
    return;
  }
  let at = offset;
  await Promise.all(
    parts.map(async (part) => {
      const where = at;
      at += part.length;
      if (device.readInto) await device.readInto(where, part);
      else (await device.read(where, part.length)).copy(part);
    }),
  );
}
