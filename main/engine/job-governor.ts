/**
 * The governor: how fast jobs may go so that foreground I/O keeps its
 * latency. Budget: foreground p99 ≤ budget × the idle p99 (policy
 * latencyBudget, default 2), where idle means "with no job I/O". The
 * pieces it times are held to AIM of the budget: a client also waits for
 * what they do not show.
 *
 * Measuring. The pool times foreground row pieces (a piece's lock wait and
 * its I/O: what a job slows down), every one while a job runs and one in
 * IDLE_EVERY while none does, and hands the time to sample(). With no job
 * running, that is the idle baseline: the median of the p99s of the last
 * IDLE_ROUNDS rounds of IDLE_KEPT pieces, none older than IDLE_ROUNDS_MS
 * (the p99 of what there is, until a first round is complete). Why a median of rounds: one round's p99 is its
 * tenth-slowest piece, so a baseline taken from one short stretch (a cold
 * page cache, a neighbour's burst) was up to 2.7× the foreground's idle p99
 * over a longer run (bench jobs), and the job was then let slow the
 * foreground that much more. While a job runs, every WINDOW_MS the governor
 * looks at the window:
 *
 * - Fewer than MIN_SAMPLES: there is no foreground load to protect; the job
 *   runs unthrottled (the issue: "takes the full bandwidth when there is no
 *   foreground I/O").
 * - No idle baseline yet, or an old one (BASELINE_TTL_MS): a probe. Job I/O
 *   stops; after PROBE_SETTLE_MS (the batches under way finish) the
 *   foreground p99 of the next PROBE_MS is one measure of the idle latency,
 *   and the baseline becomes the median of the last PROBES_KEPT of them and
 *   the baseline the job began with. Why a median: one probe's p99 is the
 *   tenth-slowest of about a thousand pieces, and one probe in a governed
 *   rebuild (bench jobs --trace) read 2.39 ms where the one before read 0.33
 *   and the windows around it 0.5-0.7 with the job at 6-19 MiB/s: the job
 *   then ran at 280 MiB/s against a budget of 4.8 ms. A probe costs the job
 *   ~PROBE_SETTLE_MS + PROBE_MS every BASELINE_TTL_MS (~3 %).
 * - Otherwise AIMD on the job's byte rate, "above budget" meaning both the
 *   window's p99 and that of the last SPAN windows pooled (a few slow
 *   pieces are not the job's doing; lasting slowness is), "below" both
 *   under: above budget, the rate is cut
 *   to what the job did in the window (or its limit, if lower) times
 *   target/observed, kept between ×MAX_CUT and ×CUT; comfortably below
 *   (under RAISE_BELOW of the budget) it grows ×RAISE (×FAST_RAISE under
 *   FAST_RAISE_BELOW), up to CEILING× what the job manages: while there is
 *   foreground I/O the job stays held, so it never bursts back to full
 *   speed (and full-size batches) to be cut again.
 *
 * A job that begins while foreground I/O goes on (a foreground piece within
 * FOREGROUND_RECENT_MS) begins held (`throttled`: small batches, two at a
 * time) in slow start: at SLOW_START_RATE, the limit doubling after every
 * window within the budget, until the first window over it (then AIMD as
 * above). Why: on our test VM the first few hundred MiB of a rebuild cost
 * the foreground far more than the same rate later (a window's p99 of 10 to
 * 15 ms at 300 MiB/s in the first 300 ms, about 1 ms at 400 MiB/s later in
 * the same rebuild), whatever rate the job began at above a few MiB/s; from
 * 8 MiB/s, doubling, the first windows stay within the budget and the job
 * is at 100+ MiB/s within two seconds (bench jobs --trace). A first look
 * after FIRST_LOOK_MS lets it run free if the foreground has stopped.
 *
 * A job held near the floor (FLOOR_REPROBE × MIN_RATE) whose foreground is
 * still over budget probes again: the slowness is not the job's, or the
 * baseline is out of date.
 *
 * Pacing: admit(bytes) waits until the job's bytes fit the rate (a virtual
 * clock: each admission moves "next free" on by bytes / rate), and while a
 * probe runs.
 */

const WINDOW_MS = 300;
/** Windows pooled for the decision (see tick). */
const SPAN = 3;
const MIN_SAMPLES = 8;
const PROBE_MS = 300;
/** The start of a probe is not idle yet: the job's batches already under way finish first. */
const PROBE_SETTLE_MS = 100;
const BASELINE_TTL_MS = 15_000;
/** Probes whose median (with the baseline a job began with) is the baseline while jobs run. */
const PROBES_KEPT = 3;
/** Idle pieces per round (one p99 each); the baseline is the median of the last IDLE_ROUNDS rounds' p99s. */
const IDLE_KEPT = 1000;
const IDLE_ROUNDS = 8;
/** Rounds older than this no longer count. */
const IDLE_ROUNDS_MS = 10_000;
/** The baseline is brought up to date every IDLE_MIN idle pieces timed (and first taken from that many). */
const IDLE_MIN = 100;
/**
 * With no job running, one foreground piece in IDLE_EVERY is timed: timing
 * every one cost 1-3 µs per 4 KiB read of 28-33 (bench engine --only
 * compare), and a sample of the pieces has the same p99.
 */
const IDLE_EVERY = 4;
/**
 * The governor holds the pieces it times to this share of the budget. What
 * it times (a row piece's lock wait and member I/O) is not all a client
 * waits for: the job's work on the event loop and the socket are not in
 * it, so held to the whole budget, the client's p99 went over it. Taking
 * turns, six governed 1 GiB rebuilds each (bench/_governed-ab.ts): at the
 * whole budget, fio's p99 was 1.81-3.36x idle, 2x or more in 4 of 6, mean
 * 2.23, at 77 MiB/s mean; at 0.9 of it 1.51-1.81x, mean 1.69, at 56 MiB/s.
 */
const AIM = 0.9;
const CUT = 0.7;
const MAX_CUT = 0.3;
const RAISE = 1.2;
const RAISE_BELOW = 0.8;
const FAST_RAISE = 1.5;
/**
 * Under this share of the budget the limit grows ×FAST_RAISE. At 0.5, a
 * governed rebuild cut to the floor by its start took 9 s to climb back to
 * 60 MiB/s with the foreground's p99 at 0.5-0.7 of the budget all the way;
 * at 0.65, taking turns (bench jobs): 86, 64 and 41 MiB/s against 47, 55 and
 * 34, the foreground's p99 1.42-1.68× idle against 1.44-1.84×.
 */
const FAST_RAISE_BELOW = 0.65;
/** While held, the limit grows to at most this many times what the job manages. */
const CEILING = 2;
/** Where a job begun under foreground I/O starts; the limit doubles each window within the budget. */
const SLOW_START_RATE = 8 * 1024 * 1024;
/** Foreground pieces this recent when a job begins: it begins held. */
const FOREGROUND_RECENT_MS = 1_000;
/**
 * A job begun held looks this soon whether the foreground goes on: if
 * fewer than a window's MIN_SAMPLES, pro rata, came meanwhile, it was the
 * end of a burst (often the writes that made the job's data), and the job
 * runs free. Waiting for the first whole window held 1 GiB rebuilds at
 * slow start's rate for their first 300 ms (bench/_jobs-profile.ts --progress).
 */
const FIRST_LOOK_MS = 100;
/** Never slower than this: a job must finish eventually even under constant load. */
const MIN_RATE = 2 * 1024 * 1024;
/** A job held to at most this many times MIN_RATE and still over budget probes again (a baseline at least MIN_BASELINE_AGE_MS old). */
const FLOOR_REPROBE = 4;
const MIN_BASELINE_AGE_MS = 2_000;
/** Used when nothing better is known for a first cut. */
const FALLBACK_RATE = 64 * 1024 * 1024;

export class Governor {
  /** Bytes per second the job may use; Infinity when unthrottled. */
  private limit = Infinity;
  private nextFree = 0;
  private window: number[] = [];
  /** The last SPAN windows' samples (the newest last). */
  private recent: number[][] = [];
  private probeSamples: number[] | undefined;
  private probeFrom = 0;
  private probeUntil = 0;
  private probeDone: Promise<void> | undefined;
  private probeRelease: (() => void) | undefined;
  private baseline: number | undefined;
  private baselineAt = 0;
  /** The idle p99s the baseline is the median of while jobs run (see "a probe"), the newest last. */
  private probed: number[] = [];
  private admitted = 0;
  private timer: NodeJS.Timeout | undefined;
  private active = 0;
  /** Foreground pieces timed with no job running (a ring of IDLE_KEPT), how many so far, and the p99s of the last IDLE_ROUNDS full rounds. */
  private idle: number[] = [];
  private idleNext = 0;
  private idleCount = 0;
  private idleAsked = 0;
  private idleSampledAt = -Infinity;
  private idleRounds: Array<{ p99: number; at: number }> = [];
  /** When the last idle piece was timed. */
  private idleLast = -Infinity;
  /** In slow start: the limit doubles after each window within the budget. */
  private slowStart = false;
  /** Told of every decision (benchmarks print it). */
  trace: ((tick: GovernorTick) => void) | undefined;

  constructor(
    /** The budget factor, asked each time (the pool's policy may change). */
    private readonly budget: () => number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Whether the foreground piece about to run should be timed (pool.ts asks
   * once per piece): every piece while a job runs, one in IDLE_EVERY while
   * none does (see "Measuring"). Asking is also the foreground's sign of
   * life while no job runs.
   */
  get sampling(): boolean {
    if (this.active > 0) return true;
    this.idleLast = this.now();
    return this.idleAsked++ % IDLE_EVERY === 0;
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
    if (this.active === 1) {
      this.admitted = 0;
      this.window = [];
      this.slowStart = false;
      this.probed = this.baseline === undefined ? [] : [this.baseline];
      if (this.now() - this.idleLast < FOREGROUND_RECENT_MS) {
        this.limit = SLOW_START_RATE;
        this.slowStart = true;
        setTimeout(() => this.firstLook(), FIRST_LOOK_MS).unref();
      }
    }
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
    if (this.active === 0) {
      this.sampleIdle(ms);
      return;
    }
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

  /** See FIRST_LOOK_MS. */
  private firstLook(): void {
    if (!this.slowStart || this.active === 0 || this.probeSamples) return;
    if (this.window.length < (MIN_SAMPLES * FIRST_LOOK_MS) / WINDOW_MS) {
      this.limit = Infinity;
      this.slowStart = false;
    }
  }

  private tick(): void {
    const t = this.now();
    if (this.probeSamples) {
      if (t < this.probeUntil) return;
      if (this.probeSamples.length >= MIN_SAMPLES) {
        this.probed.push(p99(this.probeSamples));
        if (this.probed.length > PROBES_KEPT) this.probed.shift();
        this.baseline = median(this.probed);
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
      this.slowStart = false;
      return;
    }
    if (this.baseline === undefined || t - this.baselineAt > BASELINE_TTL_MS) {
      this.startProbe(t);
      this.trace?.({ at: t, samples: samples.length, p99: p99(samples), target: NaN, limit: this.limit, jobRate, probe: true });
      return;
    }
    const target = AIM * this.budget() * this.baseline;
    // The window, and the last SPAN windows pooled: a few slow pieces in one window (this machine's
    // own hiccups) are its p99 but not the pooled one, so they do not cut the job; lasting slowness is both.
    this.recent.push(samples);
    if (this.recent.length > SPAN) this.recent.shift();
    const observed = Math.min(p99(samples), p99(this.recent.flat()));
    if (observed > target && this.limit <= FLOOR_REPROBE * MIN_RATE && t - this.baselineAt > MIN_BASELINE_AGE_MS) {
      // Held near the floor and still over: the job is not what slows the foreground, or the
      // baseline is out of date (other load came). Measure the idle latency again.
      this.startProbe(t);
      this.trace?.({ at: t, samples: samples.length, p99: observed, target, limit: this.limit, jobRate, probe: true });
      return;
    }
    const slowest = Math.max(p99(samples), p99(this.recent.flat()));
    if (this.slowStart && observed <= target) {
      this.limit *= 2;
      if (jobRate > 0) this.limit = Math.min(this.limit, Math.max(SLOW_START_RATE, CEILING * jobRate));
      this.trace?.({ at: t, samples: samples.length, p99: observed, target, limit: this.limit, jobRate, probe: false });
      return;
    }
    this.slowStart = false;
    if (observed > target) {
      // From what the job really did: a limit it does not reach holds nothing back.
      const did = jobRate > 0 ? jobRate : FALLBACK_RATE;
      const from = this.limit === Infinity ? did : Math.min(this.limit, did);
      this.limit = Math.max(MIN_RATE, from * Math.min(CUT, Math.max(MAX_CUT, target / observed)));
      // What follows is measured at the new rate.
      this.recent = [];
    } else if (slowest < RAISE_BELOW * target && this.limit !== Infinity) {
      this.limit *= slowest < FAST_RAISE_BELOW * target ? FAST_RAISE : RAISE;
      if (jobRate > 0) this.limit = Math.min(this.limit, CEILING * jobRate);
    }
    this.trace?.({ at: t, samples: samples.length, p99: observed, target, limit: this.limit, jobRate, probe: false });
  }

  private sampleIdle(ms: number): void {
    const t = this.now();
    // After a long quiet the pieces kept are another workload's: start again.
    if (t - this.idleSampledAt > IDLE_ROUNDS_MS) {
      this.idle = [];
      this.idleNext = 0;
      this.idleCount = 0;
      this.idleRounds = [];
    }
    this.idleSampledAt = t;
    if (this.idle.length < IDLE_KEPT) this.idle.push(ms);
    else this.idle[this.idleNext] = ms;
    this.idleNext = (this.idleNext + 1) % IDLE_KEPT;
    this.idleCount++;
    if (this.idleCount % IDLE_MIN !== 0 || this.idle.length < IDLE_MIN) return;
    // Rounds from another time (a bulk write before a read workload) say nothing of today's foreground.
    const fresh = this.idleRounds.filter((r) => t - r.at <= IDLE_ROUNDS_MS);
    const expired = fresh.length < this.idleRounds.length;
    this.idleRounds = fresh;
    // Sorting is kept to round ends (and times with no round): the baseline is only as old as its last round.
    if (this.idleCount % IDLE_KEPT === 0) {
      this.idleRounds.push({ p99: p99(this.idle), at: t });
      if (this.idleRounds.length > IDLE_ROUNDS) this.idleRounds.shift();
      this.baseline = median(this.idleRounds.map((r) => r.p99));
    } else if (this.idleRounds.length === 0) this.baseline = p99(this.idle);
    else if (expired) this.baseline = median(this.idleRounds.map((r) => r.p99));
    this.baselineAt = t;
  }

  private startProbe(t: number): void {
    this.recent = [];
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

/** One look at a window (Governor.trace). */
export interface GovernorTick {
  readonly at: number;
  readonly samples: number;
  /** The window's foreground p99 and what it is held to (ms). */
  readonly p99: number;
  readonly target: number;
  /** The job's limit after this tick, and what it did in the window (bytes per second). */
  readonly limit: number;
  readonly jobRate: number;
  /** This tick began a probe of the idle latency. */
  readonly probe: boolean;
}

/** The middle of `values` (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The 99th percentile of `values` (nearest rank). */
export function p99(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
}
