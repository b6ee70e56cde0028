/**
 * The governor: how fast jobs may go so that foreground I/O keeps its
 * latency. Budget: foreground p99 ≤ budget × the idle p99 (policy
 * latencyBudget, default 2), where idle means "with no job I/O".
 *
 * Measuring. While a job runs, the pool times every foreground row piece
 * (its lock wait and its I/O: what a job slows down) and hands the time to
 * sample(). Every WINDOW_MS the governor looks at the window:
 *
 * - Fewer than MIN_SAMPLES: there is no foreground load to protect; the job
 *   runs unthrottled (the issue: "takes the full bandwidth when there is no
 *   foreground I/O").
 * - No idle baseline yet, or an old one (BASELINE_TTL_MS): a probe. Job I/O
 *   stops; after PROBE_SETTLE_MS (the batches under way finish) the
 *   foreground p99 of the next PROBE_MS is the idle baseline. A probe costs
 *   the job ~PROBE_SETTLE_MS + PROBE_MS every BASELINE_TTL_MS (~3 %).
 * - Otherwise AIMD on the job's byte rate: above budget, the rate is cut
 *   (×CUT, starting from what the job did in the last window when it
 *   was unthrottled); comfortably below (under RAISE_BELOW of the budget) it
 *   grows ×RAISE, and past twice what the job manages it is lifted.
 *
 * Pacing: admit(bytes) waits until the job's bytes fit the rate (a virtual
 * clock: each admission moves "next free" on by bytes / rate), and while a
 * probe runs.
 */

const WINDOW_MS = 300;
const MIN_SAMPLES = 8;
const PROBE_MS = 300;
/** The start of a probe is not idle yet: the job's batches already under way finish first. */
const PROBE_SETTLE_MS = 100;
const BASELINE_TTL_MS = 15_000;
const CUT = 0.7;
const RAISE = 1.2;
const RAISE_BELOW = 0.8;
/** Never slower than this: a job must finish eventually even under constant load. */
const MIN_RATE = 2 * 1024 * 1024;
/** Used when nothing better is known for a first cut. */
const FALLBACK_RATE = 64 * 1024 * 1024;

export class Governor {
  /** Bytes per second the job may use; Infinity when unthrottled. */
  private limit = Infinity;
  private nextFree = 0;
  private window: number[] = [];
  private probeSamples: number[] | undefined;
  private probeFrom = 0;
  private probeUntil = 0;
  private probeDone: Promise<void> | undefined;
  private probeRelease: (() => void) | undefined;
  private baseline: number | undefined;
  private baselineAt = 0;
  private admitted = 0;
  private timer: NodeJS.Timeout | undefined;
  private active = 0;

  constructor(
    /** The budget factor, asked each time (the pool's policy may change). */
    private readonly budget: () => number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Whether foreground latency should be sampled now (a job is running). */
  get sampling(): boolean {
    return this.active > 0;
  }

  /** Whether job I/O is held back now. */
  get throttled(): boolean {
    return this.limit !== Infinity || this.probeSamples !== undefined;
  }

  /** The current limit in bytes per second (Infinity: none). */
  get rateLimit(): number {
    return this.limit;
  }

  /** The idle p99 the budget is measured against, once known (milliseconds). */
  get idleP99(): number | undefined {
    return this.baseline;
  }

  /** A job starts running; returns what to call when it stops. */
  begin(): () => void {
    this.active++;
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), WINDOW_MS);
      this.timer.unref();
    }
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.active--;
      if (this.active === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
        this.endProbe();
        this.limit = Infinity;
        this.window = [];
      }
    };
  }

  /** One foreground row piece took `ms`. */
  sample(ms: number): void {
    if (!this.probeSamples) this.window.push(ms);
    else if (this.now() >= this.probeFrom) this.probeSamples.push(ms);
  }

  /** Waits until the job may do `bytes` of I/O. */
  async admit(bytes: number): Promise<void> {
    while (this.probeDone) await this.probeDone;
    this.admitted += bytes;
    if (this.limit === Infinity) return;
    const t = this.now();
    const start = Math.max(t, this.nextFree);
    this.nextFree = start + (bytes * 1000) / this.limit;
    const wait = start - t;
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  private tick(): void {
    const t = this.now();
    if (this.probeSamples) {
      if (t < this.probeUntil) return;
      if (this.probeSamples.length >= MIN_SAMPLES) {
        this.baseline = p99(this.probeSamples);
        this.baselineAt = t;
      }
      this.endProbe();
      this.window = [];
      this.admitted = 0;
      return;
    }
    const samples = this.window;
    const jobRate = (this.admitted * 1000) / WINDOW_MS;
    this.window = [];
    this.admitted = 0;
    if (samples.length < MIN_SAMPLES) {
      this.limit = Infinity;
      return;
    }
    if (this.baseline === undefined || t - this.baselineAt > BASELINE_TTL_MS) {
      this.startProbe(t);
      return;
    }
    const target = this.budget() * this.baseline;
    const observed = p99(samples);
    if (observed > target) {
      const from = (this.limit === Infinity ? (jobRate > 0 ? jobRate : FALLBACK_RATE) : this.limit) * CUT;
      this.limit = Math.max(MIN_RATE, from);
    } else if (observed < RAISE_BELOW * target && this.limit !== Infinity) {
      this.limit *= RAISE;
      if (jobRate > 0 && this.limit > 2 * jobRate) this.limit = Infinity;
    }
  }

  private startProbe(t: number): void {
    this.probeSamples = [];
    this.probeFrom = t + PROBE_SETTLE_MS;
    this.probeUntil = t + PROBE_SETTLE_MS + PROBE_MS;
    this.probeDone = new Promise((resolve) => (this.probeRelease = resolve));
  }

  private endProbe(): void {
    this.probeSamples = undefined;
    this.probeRelease?.();
    this.probeRelease = undefined;
    this.probeDone = undefined;
  }
}

/** The 99th percentile of `values` (nearest rank). */
export function p99(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
}
