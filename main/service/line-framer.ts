/**
 * Newline-delimited JSON framing for the control socket, with a hard cap on
 * message size so that a client cannot make the engine host buffer without
 * bound.
 */
export class LineFramer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxLineBytes: number) {}

  /**
   * Feeds a chunk; returns the complete lines it finished. Throws
   * MessageTooLargeError when a line grows past the cap (the caller closes the
   * connection: the stream can no longer be trusted to be in sync).
   */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) break;
      const part = chunk.subarray(start, newline);
      this.check(this.pendingBytes + part.length);
      if (this.pending.length > 0) {
        this.pending.push(part);
        lines.push(Buffer.concat(this.pending).toString('utf8'));
        this.pending = [];
        this.pendingBytes = 0;
      } else {
        lines.push(part.toString('utf8'));
      }
      start = newline + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.check(this.pendingBytes + rest.length);
      this.pending.push(Buffer.from(rest));
      this.pendingBytes += rest.length;
    }
    return lines.filter((line) => line.trim() !== '');
  }

  private check(bytes: number): void {
    if (bytes > this.maxLineBytes) throw new MessageTooLargeError(this.maxLineBytes);
  }
}

export class MessageTooLargeError extends Error {
  constructor(limit: number) {
    super(`message larger than ${limit} bytes`);
    this.name = 'MessageTooLargeError';
  }
}
