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

export const UNWRITTEN = 0;
const ZERO_CRC_ALIAS = 0xffffffff;
const ENTRIES_PER_TABLE_BLOCK = CHECKSUM_BLOCK / 4;

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

  constructor(
    readonly member: Member,
    readonly slab: number,
    private readonly geometry: SlabGeometry,
    raw: Buffer,
  ) {
    this.entries = new Uint32Array(geometry.dataBlocks);
    for (let i = 0; i < geometry.dataBlocks; i++) this.entries[i] = raw.readUInt32LE(i * 4);
  }

  set(block: number, value: number): void {
    if (this.entries[block] === value) return;
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
    const blocks = [...this.dirty].sort((a, b) => a - b);
    this.dirty.clear();
    const block = Buffer.alloc(CHECKSUM_BLOCK);
    try {
      for (const index of blocks) {
        block.fill(0);
        const first = index * ENTRIES_PER_TABLE_BLOCK;
        const last = Math.min(first + ENTRIES_PER_TABLE_BLOCK, this.entries.length);
        for (let i = first; i < last; i++) block.writeUInt32LE(this.entries[i]!, (i - first) * 4);
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

  constructor(private readonly geometry: SlabGeometry) {}

  async table(member: Member, slab: number): Promise<SlabTable> {
    const key = `${member.uuid}/${slab}`;
    const cached = this.tables.get(key);
    if (cached) return cached;
    let pending = this.loading.get(key);
    if (!pending) {
      pending = (async () => {
        const device = member.device;
        if (!device) throw new Error(`member ${member.label} has no device`);
        const raw = await device.read(member.slabOffset(slab, this.geometry.tableOffset), this.geometry.tableBytes);
        const table = new SlabTable(member, slab, this.geometry, raw);
        this.tables.set(key, table);
        return table;
      })();
      this.loading.set(key, pending);
      pending.finally(() => this.loading.delete(key)).catch(() => {});
    }
    return pending;
  }

  /** A table to be written from scratch (a fresh slab, or a slab being rebuilt): no read. */
  fresh(member: Member, slab: number): SlabTable {
    const table = new SlabTable(member, slab, this.geometry, Buffer.alloc(this.geometry.tableBytes));
    // Every block counts as dirty, so the zeroed table reaches the disk.
    for (let i = 0; i < table.entries.length; i += ENTRIES_PER_TABLE_BLOCK) {
      table.entries[i] = 1;
      table.set(i, 0);
    }
    this.tables.set(`${member.uuid}/${slab}`, table);
    return table;
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
