/**
 * The checksums of every slab a volume touches, cached in memory and written
 * back to each slab's table (see slab-geometry.ts).
 *
 * Entry encoding (one u32 per 4 KiB block):
 * - 0 means "never written, or trimmed": the block reads as zeroes and is not
 *   read from the member at all. So a new slab needs no initialisation, and a
 *   trim on a mirror is a table update only.
 * - otherwise the block's CRC32C, with a CRC of 0 stored as 0xFFFFFFFF (so it
 *   cannot look unwritten); a stored 0xFFFFFFFF thus accepts 0 and 0xFFFFFFFF.
 *
 * Write-back: entries change in memory with each write and reach the member
 * when the volume flushes (or at once for FUA writes). A crash in between can
 * leave a table older than its data; the write-intent log (write-intent.ts)
 * names those regions so import reconciles them instead of calling them
 * corrupt.
 */
import type { Member } from './member.js';
import type { SlabGeometry } from './slab-geometry.js';
import { CHECKSUM_BLOCK } from './checksum-block.js';
import { crc32c } from './checksum.js';

export const UNWRITTEN = 0;
const ZERO_CRC_ALIAS = 0xffffffff;
/** Entries per table block; then u32 owner (chunk id) and u32 check. */
const ENTRIES_PER_TABLE_BLOCK = CHECKSUM_BLOCK / 4 - 2;
const OWNER_OFFSET = ENTRIES_PER_TABLE_BLOCK * 4;
const CHECK_OFFSET = OWNER_OFFSET + 4;

/**
 * A table block is ours when its check (CRC32C seeded with the pool's
 * identity) holds and its owner field is our chunk. A block of another owner
 * (a slab freed and reused), of another pool, or never written as a table,
 * reads as "all unwritten". A block naming our chunk whose check fails is
 * damaged (bit rot, or torn by a crash): its entries are unknown, so its
 * blocks are read and treated as unverified — served from another copy or
 * parity, and rewritten — never taken for unwritten.
 */
export function tableSeed(poolUuid: string): number {
  return crc32c(Buffer.from(poolUuid.replace(/-/g, ''), 'hex'));
}

export function encodeChecksum(crc: number): number {
  return crc === 0 ? ZERO_CRC_ALIAS : crc >>> 0;
}

export function checksumMatches(stored: number, computed: number): boolean {
  return stored === computed || (stored === ZERO_CRC_ALIAS && computed === 0);
}

/** The table of one slab of one member. */
export class SlabTable {
  readonly entries: Uint32Array;
  private readonly dirty = new Set<number>();
  /** Write-backs run one after another, so a caller that waits on one knows its entries are on disk. */
  private writing: Promise<void> = Promise.resolve();

  /**
   * Table blocks of ours whose check failed: their entries are unknown until
   * each is set again (by the repair of its rows). `known` marks those set.
   */
  readonly damaged = new Set<number>();
  private readonly known = new Map<number, Uint8Array>();
  /** Whether the rows behind the damaged blocks were queued for repair. */
  repairQueued = false;

  constructor(
    readonly member: Member,
    readonly slab: number,
    private readonly geometry: SlabGeometry,
    raw: Buffer,
    private readonly seed: number,
    private readonly owner: number,
  ) {
    this.entries = new Uint32Array(geometry.dataBlocks);
    const blocks = Math.ceil(geometry.dataBlocks / ENTRIES_PER_TABLE_BLOCK);
    for (let t = 0; t < blocks; t++) {
      const block = raw.subarray(t * CHECKSUM_BLOCK, (t + 1) * CHECKSUM_BLOCK);
      const ours = block.readUInt32LE(OWNER_OFFSET) === owner;
      const valid = crc32c(block.subarray(0, CHECK_OFFSET), seed) === block.readUInt32LE(CHECK_OFFSET);
      if (!valid || !ours) {
        if (ours && !valid) {
          this.damaged.add(t);
          this.known.set(t, new Uint8Array(ENTRIES_PER_TABLE_BLOCK));
        }
        continue; // entries stay 0: unwritten (or unknown, if damaged)
      }
      const first = t * ENTRIES_PER_TABLE_BLOCK;
      const last = Math.min(first + ENTRIES_PER_TABLE_BLOCK, geometry.dataBlocks);
      for (let i = first; i < last; i++) this.entries[i] = block.readUInt32LE((i - first) * 4);
    }
  }

  /** Whether this block is unwritten for sure (its entry is 0 and known). */
  isUnwritten(block: number): boolean {
    return this.entries[block] === UNWRITTEN && this.isKnown(block);
  }

  private isKnown(block: number): boolean {
    const t = Math.floor(block / ENTRIES_PER_TABLE_BLOCK);
    return !this.damaged.has(t) || this.known.get(t)![block - t * ENTRIES_PER_TABLE_BLOCK] === 1;
  }

  /** Data blocks covered by damaged table blocks, as [first, end) ranges. */
  damagedRanges(): Array<[number, number]> {
    return [...this.damaged].map((t) => [t * ENTRIES_PER_TABLE_BLOCK, Math.min((t + 1) * ENTRIES_PER_TABLE_BLOCK, this.entries.length)]);
  }

  set(block: number, value: number): void {
    const t = Math.floor(block / ENTRIES_PER_TABLE_BLOCK);
    const known = this.known.get(t);
    if (known) {
      known[block - t * ENTRIES_PER_TABLE_BLOCK] = 1;
      const first = t * ENTRIES_PER_TABLE_BLOCK;
      const count = Math.min(ENTRIES_PER_TABLE_BLOCK, this.entries.length - first);
      if (known.subarray(0, count).every((k) => k === 1)) {
        // Every entry re-established: the block is sound again and may be written.
        this.damaged.delete(t);
        this.known.delete(t);
      }
    } else if (this.entries[block] === value) {
      return;
    }
    this.entries[block] = value;
    this.dirty.add(Math.floor(block / ENTRIES_PER_TABLE_BLOCK));
  }

  get isDirty(): boolean {
    return this.dirty.size > 0;
  }

  /** Writes the changed table blocks to the member; `fua` makes them durable before resolving. */
  writeBack(fua = false): Promise<void> {
    const run = this.writing.then(() => this.writeDirty(fua));
    this.writing = run.catch(() => {});
    return run;
  }

  private async writeDirty(fua: boolean): Promise<void> {
    if (this.dirty.size === 0) return;
    const device = this.member.device;
    if (!device || !this.member.writable) {
      this.dirty.clear(); // a failed member's table is rebuilt when it is resynced
      return;
    }
    // A damaged block is written only once all its entries are known again:
    // writing it earlier would turn the unknown ones into "unwritten".
    const blocks = [...this.dirty].filter((t) => !this.damaged.has(t)).sort((a, b) => a - b);
    for (const t of blocks) this.dirty.delete(t);
    const block = Buffer.alloc(CHECKSUM_BLOCK);
    try {
      for (const index of blocks) {
        block.fill(0);
        const first = index * ENTRIES_PER_TABLE_BLOCK;
        const last = Math.min(first + ENTRIES_PER_TABLE_BLOCK, this.entries.length);
        for (let i = first; i < last; i++) block.writeUInt32LE(this.entries[i]!, (i - first) * 4);
        block.writeUInt32LE(this.owner, OWNER_OFFSET);
        block.writeUInt32LE(crc32c(block.subarray(0, CHECK_OFFSET), this.seed), CHECK_OFFSET);
        await device.write(this.member.slabOffset(this.slab, this.geometry.tableOffset + index * CHECKSUM_BLOCK), block, { fua });
      }
    } catch (error) {
      for (const index of blocks) this.dirty.add(index);
      throw error;
    }
  }
}

/**
 * All cached tables. Tables load on first use; concurrent first uses share
 * one read.
 */
export class ChecksumCache {
  private readonly tables = new Map<string, SlabTable>();
  private readonly loading = new Map<string, Promise<SlabTable>>();

  constructor(
    private readonly geometry: SlabGeometry,
    private readonly poolUuid: string,
  ) {}

  /** The table of `slab` on `member`, which chunk `chunkId` owns. */
  async table(member: Member, slab: number, chunkId: number): Promise<SlabTable> {
    const key = `${member.uuid}/${slab}`;
    const cached = this.tables.get(key);
    if (cached) return cached;
    let pending = this.loading.get(key);
    if (!pending) {
      pending = (async () => {
        const device = member.device;
        if (!device) throw new Error(`member ${member.label} has no device`);
        const raw = await device.read(member.slabOffset(slab, this.geometry.tableOffset), this.geometry.tableBytes);
        const table = new SlabTable(member, slab, this.geometry, raw, tableSeed(this.poolUuid), chunkId);
        this.tables.set(key, table);
        return table;
      })();
      this.loading.set(key, pending);
      pending.finally(() => this.loading.delete(key)).catch(() => {});
    }
    return pending;
  }

  /** The table of `slab` on `member` if it is loaded already (no I/O, no Promise). */
  cached(member: Member, slab: number): SlabTable | undefined {
    return this.tables.get(`${member.uuid}/${slab}`);
  }

  forget(member: Member, slab?: number): void {
    for (const [key, table] of this.tables) {
      if (table.member === member && (slab === undefined || table.slab === slab)) this.tables.delete(key);
    }
  }

  dirtyTables(): SlabTable[] {
    return [...this.tables.values()].filter((t) => t.isDirty);
  }

  /**
   * Writes back every dirty table of usable members. A member whose write
   * fails is handed to `onError` (the pool fails it); the others still finish.
   */
  async writeBackAll(onError: (member: Member, error: unknown) => Promise<void>): Promise<void> {
    await Promise.all(this.dirtyTables().map((t) => t.writeBack().catch((error: unknown) => onError(t.member, error))));
  }
}
