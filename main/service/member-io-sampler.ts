/**
 * Each member's I/O rate (contract event `member-io-rate`): its byte
 * counters (member.ts bytesRead, bytesWritten: every cause, foreground and
 * jobs alike) sampled once a second, as bytes per second since the last
 * sample. It runs only while someone listens (the engine host starts it
 * with its first client and stops it with its last); a member's first
 * sample after a start only sets its baseline.
 */
import type { Pool } from '../engine/pool.js';
import type { Events } from '../../preload/api.js';

export const IO_RATE_INTERVAL_MS = 1000;

export class MemberIoSampler {
  private timer: NodeJS.Timeout | undefined;
  /** pool/member uuid → the counters at the last sample. */
  private last = new Map<string, { at: number; read: number; written: number }>();

  constructor(
    private readonly pools: () => Iterable<Pool>,
    private readonly emit: (data: Events['member-io-rate']) => void,
    private readonly intervalMs = IO_RATE_INTERVAL_MS,
  ) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.last.clear();
  }

  private sample(): void {
    const now = performance.now();
    const seen = new Map<string, { at: number; read: number; written: number }>();
    for (const pool of this.pools()) {
      for (const member of pool.members.values()) {
        const key = `${pool.name}/${member.uuid}`;
        const counters = { at: now, read: member.bytesRead, written: member.bytesWritten };
        seen.set(key, counters);
        const before = this.last.get(key);
        if (!before || now <= before.at) continue;
        const seconds = (now - before.at) / 1000;
        this.emit({
          pool: pool.name,
          member: member.uuid,
          readBytesPerSec: Math.max(0, Math.round((counters.read - before.read) / seconds)),
          writeBytesPerSec: Math.max(0, Math.round((counters.written - before.written) / seconds)),
        });
      }
    }
    this.last = seen;
  }
}
