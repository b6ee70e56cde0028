/**
 * Notices disks coming and going by polling the inventory.
 *
 * Why polling: the kernel announces block devices on a netlink uevent
 * socket, which Node cannot open without a native addon; `udevadm monitor`
 * would read it for us but is not installed on every machine (not on our
 * development and CI machines, which run without udev), and inotify on /dev
 * misses loop devices, whose nodes exist before they are bound. One lsblk
 * run costs a few milliseconds, so a poll every two seconds is cheap and
 * catches every kind of change the same way: a device appearing, vanishing,
 * being re-bound to another disk or image (same kernel name, new identity),
 * or changing size (media removed from a reader reads as size 0).
 */
import type { Disk } from './disk-inventory.js';

export type HotplugEvent =
  | { readonly type: 'added'; readonly disk: Disk }
  | { readonly type: 'removed'; readonly disk: Disk }
  | { readonly type: 'changed'; readonly disk: Disk; readonly before: Disk };

export interface DiskWatcherOptions {
  /** Lists whole devices; injected so the helper shares its inventory reader. */
  readonly list: () => Promise<readonly Disk[]>;
  readonly onEvent: (event: HotplugEvent) => void;
  readonly onError?: (error: Error) => void;
  /** Default 2000 ms. */
  readonly intervalMs?: number;
}

/** Differences between two inventories of whole devices, keyed by kernel name. */
export function diffInventories(before: readonly Disk[], after: readonly Disk[]): HotplugEvent[] {
  const old = new Map(before.map((d) => [d.kernelName, d]));
  const now = new Map(after.map((d) => [d.kernelName, d]));
  const events: HotplugEvent[] = [];
  for (const [name, disk] of old) {
    const next = now.get(name);
    if (!next || next.id !== disk.id) events.push({ type: 'removed', disk });
  }
  for (const [name, disk] of now) {
    const prev = old.get(name);
    if (!prev || prev.id !== disk.id) events.push({ type: 'added', disk });
    else if (prev.size !== disk.size) events.push({ type: 'changed', disk, before: prev });
  }
  return events;
}

export class DiskWatcher {
  private timer: NodeJS.Timeout | undefined;
  private last: readonly Disk[] | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: DiskWatcherOptions) {}

  /** Takes the first inventory (no events for it), then polls. */
  async start(): Promise<void> {
    this.last = await this.options.list();
    this.schedule();
  }

  /** Polls now (tests and callers that just changed something call this instead of waiting). */
  poll(): Promise<void> {
    this.running ??= this.pollOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.poll().finally(() => this.schedule());
    }, this.options.intervalMs ?? 2000);
    this.timer.unref();
  }

  private async pollOnce(): Promise<void> {
    let now: readonly Disk[];
    try {
      now = await this.options.list();
    } catch (error) {
      this.options.onError?.(error as Error);
      return;
    }
    if (this.stopped) return;
    const before = this.last ?? now;
    this.last = now;
    for (const event of diffInventories(before, now)) this.options.onEvent(event);
  }
}
