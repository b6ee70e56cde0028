/**
 * A pool member: one BlockDevice (an NBD connection to a disk, an image file)
 * with the state the engine keeps about it.
 *
 * States: `online` (in sync, used for reads and writes), `resyncing` (back
 * after an absence: takes every write, serves no read until the rows it
 * missed are rebuilt), `failed` (I/O to it failed; skipped until it is
 * replaced or returns), `missing` (not found at import). Only the pool changes a member's state, and it
 * records every change in the metadata log before acting on it.
 */
import type { BlockDevice } from '../nbd/block-device.js';

export type MemberState = 'online' | 'resyncing' | 'failed' | 'missing';

export interface ErrorCounters {
  read: number;
  write: number;
  checksum: number;
}

export class Member {
  state: MemberState;
  readonly errors: ErrorCounters = { read: 0, write: 0, checksum: 0 };
  /** Bytes moved, for the UI's I/O-rate sparklines. */
  bytesRead = 0;
  bytesWritten = 0;

  constructor(
    readonly uuid: string,
    /** The member's device; undefined while missing. */
    public device: BlockDevice | undefined,
    /** Byte offset of slab 0 on the device (learnt late for a member missing at import). */
    public dataOffset: number,
    readonly slabSize: number,
    readonly slabCount: number,
    readonly label: string,
  ) {
    this.state = device ? 'online' : 'missing';
  }

  /** Serves reads: in sync. */
  get usable(): boolean {
    return this.state === 'online' && this.device !== undefined;
  }

  /** Takes writes: in sync, or catching up. */
  get writable(): boolean {
    return (this.state === 'online' || this.state === 'resyncing') && this.device !== undefined;
  }

  /** Device offset of byte `offset` of slab `slab`. */
  slabOffset(slab: number, offset = 0): number {
    return this.dataOffset + slab * this.slabSize + offset;
  }
}
