/**
 * A FIFO of received socket chunks that parsers consume from the front.
 *
 * Why not concatenate into one growing buffer: a 1 MiB write payload arrives
 * as ~16 socket chunks; concatenating on every arrival copies O(n^2) bytes.
 * Here chunks are kept as they came; a caller that needs n contiguous bytes
 * gets a zero-copy subarray when they lie in one chunk, and one copy
 * otherwise. Socket chunks are never reused by Node, so holding subarrays of
 * them past the 'data' callback is safe.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Index of the first live chunk in `chunks` (avoids Array#shift). */
  private first = 0;
  /** Bytes of chunks[first] already consumed. */
  private head = 0;
  private scratch = Buffer.allocUnsafe(64);
  /** Bytes available. */
  length = 0;
  /** After view(): the offset within the returned buffer where the bytes start. */
  viewOffset = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /**
   * The first n bytes (n <= length) without consuming them: a buffer and
   * `viewOffset` into it. Zero-copy when contiguous; otherwise copied into a
   * scratch buffer that the next view() overwrites (so use it at once).
   */
  view(n: number): Buffer {
    const c = this.chunks[this.first];
    if (c.length - this.head >= n) {
      this.viewOffset = this.head;
      return c;
    }
    if (this.scratch.length < n) this.scratch = Buffer.allocUnsafe(Math.max(n, this.scratch.length * 2));
    this.copyOut(this.scratch, 0, n);
    this.viewOffset = 0;
    return this.scratch;
  }

  /** True when the first n bytes are all here and lie in one chunk. */
  contiguous(n: number): boolean {
    return this.length >= n && this.chunks[this.first].length - this.head >= n;
  }

  /** Removes and returns the first n bytes (n <= length) as a buffer that stays valid. */
  take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const c = this.chunks[this.first];
    if (c.length - this.head >= n) {
      const out = c.subarray(this.head, this.head + n);
      this.skip(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    this.copyOut(out, 0, n);
    this.skip(n);
    return out;
  }

  /** Removes the first n bytes (n <= length), copying them into dst at `at`. */
  takeInto(dst: Uint8Array, at: number, n: number): void {
    this.copyOut(dst, at, n);
    this.skip(n);
  }

  /** Discards the first n bytes (n <= length). */
  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const c = this.chunks[this.first];
      const avail = c.length - this.head;
      if (n < avail) {
        this.head += n;
        return;
      }
      n -= avail;
      this.chunks[this.first] = undefined as unknown as Buffer;
      this.first++;
      this.head = 0;
    }
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first > 1024) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }

  clear(): void {
    this.chunks = [];
    this.first = 0;
    this.head = 0;
    this.length = 0;
  }

  private copyOut(dst: Uint8Array, at: number, n: number): void {
    let i = this.first;
    let off = this.head;
    while (n > 0) {
      const c = this.chunks[i];
      const k = Math.min(n, c.length - off);
      c.copy(dst, at, off, off + k);
      at += k;
      n -= k;
      i++;
      off = 0;
    }
  }
}
