/**
 * A volume: a BlockDevice made of chunks, which the NBD server exports.
 *
 * Logical byte L of the volume lives in chunk floor(L / chunkCapacity); inside
 * the chunk, in row floor(l / rowBytes). Every request is cut at row
 * boundaries and each row piece runs under that row's lock (see key-lock.ts),
 * so rows change one request at a time while different rows proceed in
 * parallel across members. Requests not aligned to 4 KiB read the edge blocks
 * and merge them under the same lock.
 *
 * Durability: a write resolved with FUA is on stable storage on every usable
 * member, checksums included; flush() makes every earlier write so.
 */
import { BlockDeviceError, type BlockDevice, type BlockDeviceCapabilities, type WriteOptions, type WriteZeroesOptions } from '../nbd/block-device.js';
import { CHECKSUM_BLOCK } from './checksum-block.js';
import type { ChunkIo } from './chunk-io.js';
import type { KeyLock } from './key-lock.js';
import type { LayoutSpec } from './layout.js';

/** Bytes of zeroes written per step by writeZeroes, to bound memory. */
const ZERO_STEP = 1024 * 1024;

export type VolumeState = 'online' | 'degraded' | 'failed';

export interface VolumeContext {
  /** The pool's row locks (possibly timed: the job governor watches foreground latency through them). */
  readonly rowLock: Pick<KeyLock<string>, 'with'>;
  /** Makes every earlier write durable on every usable member (checksums, then devices). */
  flush(): Promise<void>;
  /** Called before a row is written, so the write-intent log covers it; returns what to call when the write is done. */
  beginWrite?(chunk: ChunkIo, row: number): Promise<() => void>;
  /** Current state; reads and writes of a failed volume fail at once. */
  state(): VolumeState;
}

interface RowPiece {
  readonly chunk: ChunkIo;
  readonly row: number;
  /** Offset inside the row's logical bytes. */
  readonly start: number;
  readonly length: number;
  /** Offset in the caller's buffer. */
  readonly at: number;
}

export class Volume implements BlockDevice {
  readonly capabilities: BlockDeviceCapabilities = {
    readOnly: false,
    canFlush: true,
    canTrim: true,
    canWriteZeroes: true,
    canFastZero: false,
    canCache: false,
    // One Volume object serves every connection, so they share one cache.
    canMultiConn: true,
    minimumBlockSize: 1,
    preferredBlockSize: CHECKSUM_BLOCK,
  };

  constructor(
    readonly name: string,
    readonly size: number,
    /** Changes when a migrate job finishes (job-migrate.ts). */
    public spec: LayoutSpec,
    /** The pool may change this list in place (a migrate job replaces chunks): never cache it across an await. */
    readonly chunks: readonly ChunkIo[],
    private readonly ctx: VolumeContext,
  ) {
    const capacity = chunks.reduce((sum, c) => sum + c.capacity, 0);
    if (capacity < size) throw new Error(`volume ${name}: chunks hold ${capacity} bytes, less than its size ${size}`);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(offset, out);
    return out;
  }

  /** Reads target.length bytes at `offset` into `target` (the NBD server's pooled buffers). */
  readInto(offset: number, target: Buffer): Promise<void> {
    try {
      this.check(offset, target.length);
    } catch (error) {
      return Promise.reject(error);
    }
    const pieces = this.pieces(offset, target.length);
    if (pieces.length === 1) {
      const piece = pieces[0]!;
      if (!blockAligned(piece)) return this.readPiece(piece, target);
      // Whole blocks of one row (every short aligned read): straight to the
      // chunk under the row lock, without readPiece's closures.
      return this.ctx.rowLock.with(`${piece.chunk.id}:${piece.row}`, () => {
        this.checkState();
        return piece.chunk.readRowInto(piece.row, piece.start, target);
      });
    }
    return this.readPieces(pieces, target);
  }

  private async readPieces(pieces: readonly RowPiece[], target: Buffer): Promise<void> {
    // Whole-block pieces of one chunk (consecutive rows) are read as one
    // range: a request per member rather than one per stripe unit.
    const work: Array<Promise<void>> = [];
    for (let i = 0; i < pieces.length; ) {
      let j = i + 1;
      if (blockAligned(pieces[i]!)) {
        while (j < pieces.length && pieces[j]!.chunk === pieces[i]!.chunk && blockAligned(pieces[j]!)) j++;
      }
      work.push(j - i === 1 ? this.readPiece(pieces[i]!, target) : this.readRows(pieces.slice(i, j), target));
      i = j;
    }
    await Promise.all(work);
  }

  /** Consecutive whole-block row pieces of one chunk, under all their row locks (taken in row order). */
  private readRows(run: readonly RowPiece[], target: Buffer): Promise<void> {
    const first = run[0]!;
    const last = run[run.length - 1]!;
    const read = (): Promise<void> => first.chunk.readRowsInto(first.row, first.start, target.subarray(first.at, last.at + last.length));
    const lock = (i: number): Promise<void> => (i === run.length ? read() : this.withRow(run[i]!, () => lock(i + 1)));
    return lock(0);
  }

  private readPiece(piece: RowPiece, target: Buffer): Promise<void> {
    return this.withRow(piece, async () => {
      const { from, to } = aligned(piece.start, piece.length);
      const into = target.subarray(piece.at, piece.at + piece.length);
      if (from === piece.start && to === piece.start + piece.length) {
        await piece.chunk.readRowInto(piece.row, from, into);
      } else {
        // Not 4 KiB aligned: read the whole blocks, hand out the part asked for.
        const data = await piece.chunk.readRow(piece.row, from, to - from);
        data.copy(into, 0, piece.start - from, piece.start - from + piece.length);
      }
    });
  }

  async write(offset: number, data: Uint8Array, options: WriteOptions = {}): Promise<void> {
    this.check(offset, data.length);
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const fua = options.fua ?? false;
    const pieces = this.pieces(offset, bytes.length);
    const work: Array<Promise<void>> = [];
    // As for reads: whole-block pieces of one chunk go as one ranged write.
    for (let i = 0; i < pieces.length; ) {
      let j = i + 1;
      if (blockAligned(pieces[i]!)) {
        while (j < pieces.length && pieces[j]!.chunk === pieces[i]!.chunk && blockAligned(pieces[j]!)) j++;
      }
      let run = pieces.slice(i, j);
      // A part-row at either end of a run shares its row with the neighbouring
      // request of a sequential stream. Under the run's locks it would hold
      // that whole request back (on raid5 and raid6, whose rows rarely match
      // a request's size, every request waited for the one before); alone,
      // it waits only for that row.
      if (run.length > 1 && !wholeRow(run[0]!)) {
        work.push(this.writePiece(run[0]!, bytes, fua));
        run = run.slice(1);
      }
      if (run.length > 1 && !wholeRow(run[run.length - 1]!)) {
        work.push(this.writePiece(run[run.length - 1]!, bytes, fua));
        run = run.slice(0, -1);
      }
      work.push(run.length === 1 ? this.writePiece(run[0]!, bytes, fua) : this.writeRows(run, bytes, fua));
      i = j;
    }
    await Promise.all(work);
  }

  private writePiece(piece: RowPiece, bytes: Buffer, fua: boolean): Promise<void> {
    return this.withWrite(piece, async () => {
      const { from, to } = aligned(piece.start, piece.length);
      let block: Buffer;
      if (from === piece.start && to === piece.start + piece.length) {
        block = bytes.subarray(piece.at, piece.at + piece.length);
      } else {
        // Partial blocks at the edges: merge with what is there.
        block = await this.mergeEdges(piece, from, to);
        bytes.copy(block, piece.start - from, piece.at, piece.at + piece.length);
      }
      await piece.chunk.writeRow(piece.row, from, block, fua);
    });
  }

  /** Consecutive whole-block row pieces of one chunk: every row locked (in row order) and begun, then one ranged write. */
  private writeRows(run: readonly RowPiece[], bytes: Buffer, fua: boolean): Promise<void> {
    const first = run[0]!;
    const last = run[run.length - 1]!;
    const write = (): Promise<void> => first.chunk.writeRows(first.row, first.start, bytes.subarray(first.at, last.at + last.length), fua);
    const lock = (i: number): Promise<void> => (i === run.length ? write() : this.withWrite(run[i]!, () => lock(i + 1)));
    return lock(0);
  }

  async flush(): Promise<void> {
    this.checkState();
    await this.ctx.flush();
  }

  async trim(offset: number, length: number, options: WriteOptions = {}): Promise<void> {
    this.check(offset, length);
    await Promise.all(
      this.pieces(offset, length).map((piece) =>
        this.withWrite(piece, async () => {
          // Trim is advisory: only whole blocks are discarded.
          const from = Math.ceil(piece.start / CHECKSUM_BLOCK) * CHECKSUM_BLOCK;
          const to = Math.floor((piece.start + piece.length) / CHECKSUM_BLOCK) * CHECKSUM_BLOCK;
          if (to <= from) return;
          await piece.chunk.trimRow(piece.row, from, to - from);
        }),
      ),
    );
    if (options.fua) await this.ctx.flush();
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions = {}): Promise<void> {
    this.check(offset, length);
    if (options.fastZero) throw new BlockDeviceError('ENOTSUP', 'fast zeroing is not supported by volumes');
    const zeroes = Buffer.alloc(Math.min(length, ZERO_STEP));
    for (let done = 0; done < length; done += ZERO_STEP) {
      const n = Math.min(ZERO_STEP, length - done);
      await this.write(offset + done, zeroes.subarray(0, n), { fua: options.fua && done + n === length });
    }
  }

  async close(): Promise<void> {
    // The pool owns the members; closing an export does not close them.
  }

  private async mergeEdges(piece: RowPiece, from: number, to: number): Promise<Buffer> {
    const block = Buffer.alloc(to - from);
    const head = piece.start !== from;
    const tail = piece.start + piece.length !== to;
    if (head) (await piece.chunk.readRow(piece.row, from, CHECKSUM_BLOCK)).copy(block, 0);
    if (tail && (!head || to - from > CHECKSUM_BLOCK)) {
      (await piece.chunk.readRow(piece.row, to - CHECKSUM_BLOCK, CHECKSUM_BLOCK)).copy(block, to - from - CHECKSUM_BLOCK);
    }
    return block;
  }

  private withRow<T>(piece: RowPiece, fn: () => Promise<T>): Promise<T> {
    return this.ctx.rowLock.with(`${piece.chunk.id}:${piece.row}`, async () => {
      this.checkState();
      return fn();
    });
  }

  /** A row piece that changes the row: under its lock, and covered by the write-intent log. */
  private withWrite(piece: RowPiece, fn: () => Promise<void>): Promise<void> {
    return this.withRow(piece, async () => {
      const done = await this.ctx.beginWrite?.(piece.chunk, piece.row);
      try {
        await fn();
      } finally {
        done?.();
      }
    });
  }

  /** Where each chunk starts in the volume (bytes), for the lookup; dropped when the chunk list changes. */
  private chunkStarts: Float64Array | undefined;

  /** The pool changed `chunks` in place (a migrate replaced some): the lookup is built again. */
  chunksChanged(): void {
    this.chunkStarts = undefined;
  }

  /** The index of the chunk holding byte `offset`: a binary search (a big volume has a hundred thousand chunks). */
  private chunkAt(offset: number): number {
    let starts = this.chunkStarts;
    if (!starts) {
      starts = new Float64Array(this.chunks.length);
      let at = 0;
      this.chunks.forEach((chunk, i) => {
        starts![i] = at;
        at += chunk.capacity;
      });
      this.chunkStarts = starts;
    }
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private pieces(offset: number, length: number): RowPiece[] {
    const pieces: RowPiece[] = [];
    let position = offset;
    const end = offset + length;
    let chunkIndex = this.chunkAt(offset);
    let chunkStart = this.chunkStarts![chunkIndex]!;
    while (position < end) {
      while (position >= chunkStart + this.chunks[chunkIndex]!.capacity) {
        chunkStart += this.chunks[chunkIndex]!.capacity;
        chunkIndex++;
      }
      const chunk = this.chunks[chunkIndex]!;
      const inChunk = position - chunkStart;
      const row = Math.floor(inChunk / chunk.rowBytes);
      const start = inChunk - row * chunk.rowBytes;
      const n = Math.min(chunk.rowBytes - start, end - position);
      pieces.push({ chunk, row, start, length: n, at: position - offset });
      position += n;
    }
    return pieces;
  }

  private check(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockDeviceError('EINVAL', `volume ${this.name}: range ${offset}+${length} is outside its ${this.size} bytes`);
    }
    this.checkState();
  }

  private checkState(): void {
    if (this.ctx.state() === 'failed') {
      throw new BlockDeviceError('EIO', `volume ${this.name} has failed: more members are lost than its layout survives`);
    }
  }
}

function blockAligned(piece: RowPiece): boolean {
  return piece.start % CHECKSUM_BLOCK === 0 && piece.length % CHECKSUM_BLOCK === 0;
}

function wholeRow(piece: RowPiece): boolean {
  return piece.start === 0 && piece.length === piece.chunk.rowBytes;
}

function aligned(start: number, length: number): { from: number; to: number } {
  return {
    from: Math.floor(start / CHECKSUM_BLOCK) * CHECKSUM_BLOCK,
    to: Math.ceil((start + length) / CHECKSUM_BLOCK) * CHECKSUM_BLOCK,
  };
}
