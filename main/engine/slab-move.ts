/**
 * Moving one slab: column `column` of a chunk gets a new place (a slab on
 * another member) while the volume goes on serving reads and writes. Every
 * job that moves data (rebuild, relocate, split, evacuate, rebalance) is a
 * sequence of these.
 *
 * How (the caller is the job, through job-moves.ts):
 *
 *   1. reserve: the target slab is taken from the allocator and logged as
 *      the job's move (job-update, rows 0) before anything is written to it.
 *   2. shadow: the chunk's column gets a ColumnShadow (chunk-io.ts): from
 *      now on, every change to a row marked copied (writes, trims, repairs)
 *      is made on the target as well, with its checksums.
 *   3. copy: rows are copied in batches (a few at once), each under its
 *      rows' locks (ChunkIo.copyColumnRowsPooled, which leaves all but the
 *      plain cases to copyColumnRows: the column's own blocks where they
 *      verify, else rebuilt from copies or parity and checked against
 *      the column's checksum), and the batch marks its rows copied before
 *      the locks are released. So, at every instant, rows marked copied are
 *      equal on the column and on the target, and the others are the
 *      copy's to do.
 *   4. checkpoint, now and then: flush (data and checksum tables durable
 *      on every member, the target included), then log the move with
 *      `rows` = the first row not copied (all below are).
 *   5. commit, when every row is copied: flush, then log chunk-move (the
 *      column's new place, and the job's move cleared, in one record); then
 *      the chunk uses the target; then every row lock is taken once, and
 *      only then is the old slab freed. That wait covers every request that
 *      could still use the old place: a volume request takes its first
 *      row's lock before its first await and holds it until it is done, and
 *      its ChunkIo call runs under all its rows' locks and looks up the
 *      chunk's columns then — so one that finds the new place is fine, and
 *      one that found the old place holds a lock the wait waits for.
 *   Abort (cancel, target failed): drop the shadow, wait for the row locks
 *   once, log the move cleared, free the target.
 *
 * Crash safety. The log names the column's place; it names the target only
 * after step 5's flush, so a crash before leaves the chunk where it was, with
 * the target reserved (the job's move) and its copy durable up to the
 * checkpoint's `rows`. On import the pool re-attaches the shadow before any
 * I/O (restore), and the move goes on from `rows`, after copying again the
 * rows that may differ: rows in write-intent regions the import reconciled
 * (a write in flight at the crash may have reached the column and not the
 * target, or the other way round; reconcile settled the column) and rows
 * whose checksum-table block on the target is damaged (torn by the crash).
 * Every other row below `rows` was equal at the checkpoint and has taken
 * each later change on both places, durable on both at each flush. A crash
 * after step 5's record finds the target in the chunk, holding every row:
 * copied, flushed, and mirrored since; writes then in flight are in the
 * chunk's write-intent regions and are reconciled like any others.
 */
import type { ChunkColumn, ChunkIo, ColumnChange, ColumnShadow, CopyResult } from './chunk-io.js';
import type { JobHost } from './job-types.js';
import { rowsOfRegion } from './write-intent.js';
import { STRIPE_UNIT } from './layout.js';
import { CHECKSUM_BLOCK } from './checksum-block.js';

const BLOCKS_PER_UNIT = STRIPE_UNIT / CHECKSUM_BLOCK;

export class SlabMove implements ColumnShadow {
  /** copied[r] = 1: row r is equal on the column and the target. */
  private readonly copied: Uint8Array;
  /** Every row below is copied (what a checkpoint records). */
  private prefix: number;
  /** The next row no batch has taken yet. */
  private issued: number;
  /** Why the target can no longer be used; the move must be aborted. */
  broken: Error | undefined;
  private attached = false;

  constructor(
    private readonly host: JobHost,
    readonly jobId: string,
    readonly chunk: ChunkIo,
    readonly column: number,
    readonly to: ChunkColumn,
    /** Rows durably copied already (from the job's checkpoint). */
    startRow = 0,
  ) {
    this.copied = new Uint8Array(chunk.rows);
    this.copied.fill(1, 0, startRow);
    this.prefix = startRow;
    this.issued = startRow;
  }

  covers(row: number): boolean {
    return this.copied[row] === 1 && this.broken === undefined;
  }

  get done(): boolean {
    return this.prefix >= this.chunk.rows;
  }

  /** Whether every row has been handed to a batch (some may still be copying). */
  get allIssued(): boolean {
    return this.issued >= this.chunk.rows;
  }

  get rowsCopied(): number {
    return this.prefix;
  }

  /** The move's record, for the job's checkpoints. */
  get info(): { chunk: number; column: number; to: { member: string; slab: number }; rows: number } {
    return { chunk: this.chunk.id, column: this.column, to: { member: this.to.member.uuid, slab: this.to.slab }, rows: this.prefix };
  }

  /** Step 2: every later change to a copied row reaches the target. Synchronous, so no write slips past. */
  attach(): void {
    if (this.attached) return;
    const shadows = (this.chunk.shadows ??= new Array(this.chunk.columns.length).fill(undefined));
    if (shadows[this.column] && shadows[this.column] !== this) throw new Error(`chunk ${this.chunk.id} column ${this.column} is already being moved`);
    shadows[this.column] = this;
    this.attached = true;
  }

  private detach(): void {
    if (!this.attached) return;
    const shadows = this.chunk.shadows;
    if (shadows?.[this.column] === this) shadows[this.column] = undefined;
    if (shadows && shadows.every((s) => s === undefined)) this.chunk.shadows = undefined;
    this.attached = false;
  }

  /** ColumnShadow: the same change on the target; a failure breaks the move, never the write. */
  async change(rows: readonly number[], change: ColumnChange): Promise<void> {
    if (!rows.some((row) => this.covers(row))) return;
    const { member, slab } = this.to;
    try {
      if (!member.writable) throw new Error(`member ${member.label} is ${member.state}`);
      await change(member, slab, await this.host.pool.checksums.table(member, slab, this.chunk.id));
    } catch (error) {
      this.breakWith(error);
    }
  }

  /**
   * ColumnShadow: reconcile after a crash. When the column's member is lost,
   * the target holds the column's data for every row it covers (each change
   * reached it), and it is the only copy: a write torn by the crash leaves
   * the row's parity disagreeing with its data, and rebuilding the lost
   * column from that parity would give wrong bytes. So the row is
   * reconciled with the target standing in for the column (ChunkIo.resyncRow
   * on a view of the chunk), which makes copies and parity agree with it.
   */
  resync(row: number): Promise<number> | undefined {
    if (!this.covers(row) || this.chunk.columns[this.column]!.member.usable) return undefined;
    if (!this.view) {
      const slabs = this.chunk.columns.map((c, i) => (i === this.column ? { member: this.to.member.uuid, slab: this.to.slab } : { member: c.member.uuid, slab: c.slab }));
      this.view = this.host.makeChunk({ id: this.chunk.id, spec: this.chunk.spec, slabs });
    }
    return this.view.resyncRow(row);
  }
  private view: ChunkIo | undefined;

  private breakWith(error: unknown): void {
    if (this.broken) return;
    this.broken = new Error(`the new place of chunk ${this.chunk.id} column ${this.column}, on member ${this.to.member.label}, failed: ${error instanceof Error ? error.message : String(error)}`);
    if (this.to.member.writable) void this.host.markFailed(this.to.member, this.broken.message).catch(() => {});
  }

  /**
   * Step 3: copies the next `count` rows (fewer at the end) under their
   * locks. Several batches may run at once; each marks its rows copied
   * before it lets go of their locks.
   */
  async copyNext(count: number): Promise<{ rows: number; result: CopyResult }> {
    const first = this.issued;
    const n = Math.min(count, this.chunk.rows - first);
    this.issued = first + n;
    const result = await this.copyRows(first, n, () => {
      this.copied.fill(1, first, first + n);
      while (this.prefix < this.chunk.rows && this.copied[this.prefix] === 1) this.prefix++;
    });
    return { rows: n, result };
  }

  /**
   * After a crash: copies again the rows below `rows` that may differ (see
   * the theory comment). Returns the rows copied.
   */
  async recopyAfterImport(): Promise<number> {
    const rows = new Set<number>();
    for (const region of this.host.reconciledRegions) {
      const { chunkId, firstRow, rows: count } = rowsOfRegion(region);
      if (chunkId !== this.chunk.id) continue;
      for (let r = firstRow; r < Math.min(firstRow + count, this.prefix); r++) rows.add(r);
    }
    const table = await this.host.pool.checksums.table(this.to.member, this.to.slab, this.chunk.id);
    for (const [first, end] of table.damagedRanges()) {
      for (let r = Math.floor(first / BLOCKS_PER_UNIT); r < Math.min(Math.ceil(end / BLOCKS_PER_UNIT), this.prefix); r++) rows.add(r);
    }
    const sorted = [...rows].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length; ) {
      let j = i + 1;
      while (j < sorted.length && sorted[j] === sorted[j - 1]! + 1 && j - i < 16) j++;
      await this.copyRows(sorted[i]!, j - i);
      i = j;
    }
    return sorted.length;
  }

  private async copyRows(first: number, count: number, advance?: () => void): Promise<CopyResult> {
    if (this.broken) throw this.broken;
    const keys = Array.from({ length: count }, (_, i) => `${this.chunk.id}:${first + i}`);
    return withLocks(this.host, keys, async () => {
      let result: CopyResult;
      try {
        result = await this.chunk.copyColumnRowsPooled(first, count, this.column, this.to);
      } catch (error) {
        // The target failed (the column's own failures are served around, not thrown).
        this.breakWith(error);
        throw this.broken!;
      }
      advance?.();
      return result;
    });
  }

  /** Step 5: the column lives on the target from now on; the old slab is freed. */
  async commit(): Promise<void> {
    if (!this.done) throw new Error(`chunk ${this.chunk.id} column ${this.column}: ${this.chunk.rows - this.prefix} rows are not copied yet`);
    await this.host.flush();
    if (this.broken) throw this.broken;
    const from = this.chunk.columns[this.column]!;
    await this.host.commit({ t: 'chunk-move', chunk: this.chunk.id, column: this.column, to: { member: this.to.member.uuid, slab: this.to.slab }, job: this.jobId });
    this.chunk.setColumn(this.column, this.to);
    this.detach();
    await drainRows(this.host, this.chunk);
    this.host.releaseSlabs([{ member: from.member, slab: from.slab }]);
  }

  /** Gives the target back; the chunk stays where it was. */
  async abort(): Promise<void> {
    this.detach();
    await drainRows(this.host, this.chunk);
    await this.host.commit({ t: 'job-update', id: this.jobId, move: null });
    this.host.releaseSlabs([{ member: this.to.member, slab: this.to.slab }]);
  }

  /** Re-attaches a move found in the log (pool open), before any I/O. */
  static restore(host: JobHost, jobId: string, info: { chunk: number; column: number; to: { member: string; slab: number }; rows: number }): SlabMove | undefined {
    const chunk = host.pool.chunk(info.chunk);
    const member = host.pool.members.get(info.to.member);
    if (!chunk || !member) return undefined;
    const move = new SlabMove(host, jobId, chunk, info.column, { member, slab: info.to.slab }, info.rows);
    move.attach();
    return move;
  }
}

/** Runs `fn` holding the row locks `keys` (taken in the order given: callers give ascending rows). */
export function withLocks<T>(host: JobHost, keys: readonly string[], fn: () => Promise<T>): Promise<T> {
  let i = 0;
  const take = (): Promise<T> => (i === keys.length ? fn() : host.rowLock.with(keys[i++]!, take));
  return take();
}

/** Resolves when every request queued on a row of the chunk before now has finished. */
export async function drainRows(host: JobHost, chunk: ChunkIo): Promise<void> {
  const idle = async (): Promise<void> => {};
  await Promise.all(Array.from({ length: chunk.rows }, (_, row) => host.rowLock.with(`${chunk.id}:${row}`, idle)));
}
