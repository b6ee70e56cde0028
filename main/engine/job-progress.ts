/**
 * A job's progress: bytes done of bytes total, a smoothed rate and an ETA.
 *
 * The rate is the bytes done over a sliding window (the last WINDOW_MS, or
 * everything since the job last started when that is shorter), not an
 * average of instantaneous rates: on a steady load it converges to the true
 * rate within the window and then stays there, so ETA = remaining / rate is
 * honest (the issue asks for ±20 % once 10 % is done); on a changing load it
 * follows within one window. Time spent paused is not counted: a pause
 * starts the window again.
 *
 * A known change of pace (the governor lets the job run free, or holds it
 * back) opens a fresh window: at once while no rate has been claimed yet,
 * else as soon as the fresh one has MIN_SPAN_MS of its own (until then the
 * old window stands, so an ETA once given does not go away). Why: a job
 * begun just after foreground I/O starts held and is let go within 100 ms
 * (job-governor.ts); with its held trickle in the window, a 1 GiB
 * rebuild's ETA at 10 % was 29-48 % long (bench/_jobs-profile.ts).
 */

/** Long enough to smooth batch-to-batch jitter; short enough to follow a load change. */
const WINDOW_MS = 10_000;
/**
 * The window while the governor holds the job back. Its pace then follows
 * the foreground's latency, which moves it within seconds (job-governor.ts):
 * replayed over the paces of 20 governed 1 GiB rebuilds (bench jobs
 * --trace, one look per 300 ms), the ETA's median error at 50/75/90 % done
 * was +89/+64/+19 % with 10 s and +21/+14/-10 % with 3 s, and 8, 8 and 9
 * of them (of 20, 20, 16) were within ±20 % instead of 2, 3 and 7.
 */
const HELD_WINDOW_MS = 3_000;
/** Samples closer together than this are one (the window's ends are this precise). */
const SAMPLE_SPACING_MS = 10;
/** No rate is claimed from less than this (the first batches include start-up costs). */
const MIN_SPAN_MS = 500;

export class ProgressMeter {
  done: number;
  total: number;
  /** (time, done) samples, oldest first, the first at or before the window's start. */
  private samples: Array<[number, number]> = [];
  /** Where the pace last changed (time, done). */
  private paceChange: [number, number] | undefined;
  /** The governor holds the job back: the rate is taken over HELD_WINDOW_MS. */
  private held = false;

  constructor(
    done = 0,
    total = 0,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.done = done;
    this.total = total;
  }

  /**
   * The job (re)starts measuring: after a start, a resume, a restart. The
   * window opens at its first bytes, not now: what comes before them (the
   * start record's flush, a move's first reads of cold metadata) is no part
   * of the rate the rest goes at: counted, it made a 1 GiB rebuild's ETA
   * at its first mark 8-20 % long; not counted, -12..+4 % in six runs
   * (bench/_jobs-profile.ts --progress).
   */
  restart(): void {
    this.samples = [];
    this.paceChange = undefined;
  }

  /**
   * Whether the governor holds the job back, told at every advance: a held
   * job's rate is taken over HELD_WINDOW_MS, and a change either way is a
   * change of pace.
   */
  setHeld(held: boolean): void {
    if (held === this.held) return;
    this.held = held;
    this.paceChanged();
  }

  /** The job's pace changes now for a known reason (see the top of the file). */
  paceChanged(): void {
    if (this.samples.length === 0) return;
    const t = this.now();
    // No rate claimed yet: the window opens here, as at a start.
    if (t - this.samples[0]![0] < MIN_SPAN_MS) this.samples = [[t, this.done]];
    else this.paceChange = [t, this.done];
  }

  /** Counts `bytes` more done. */
  advance(bytes: number): void {
    this.done += bytes;
    const t = this.now();
    // The first bytes open the window (restart() leaves it empty): they took the time since the
    // job began, so they count only as its start.
    // One sample per SAMPLE_SPACING_MS at most (the newest moves forward until the next is due): a
    // held job advances thousands of times a second, and cutting the oldest at a fixed count left
    // its 3 s window's start interpolated across seconds (the rate 41 % low in a unit test).
    const n = this.samples.length;
    if (n >= 2 && t - this.samples[n - 2]![0] < SAMPLE_SPACING_MS) this.samples[n - 1] = [t, this.done];
    else this.samples.push([t, this.done]);
    // Keep one sample at or before the window's start, drop older ones.
    while (this.samples.length > 2 && this.samples[1]![0] <= t - WINDOW_MS) this.samples.shift();
  }

  /** Bytes per second over the window; 0 when not measured yet. */
  get rate(): number {
    if (this.samples.length < 2) return 0;
    const t = this.now();
    const window = this.held ? HELD_WINDOW_MS : WINDOW_MS;
    if (this.paceChange) {
      // Once the change is a whole window old, the window below holds only what came after it.
      const [tc, dc] = this.paceChange;
      if (t - tc >= MIN_SPAN_MS && t - tc < window) return ((this.done - dc) * 1000) / (t - tc);
    }
    const [t0] = this.samples[0]!;
    const start = Math.max(t0, t - window);
    const span = t - start;
    if (t - t0 < MIN_SPAN_MS || span <= 0) return 0;
    return ((this.done - this.doneAt(start)) * 1000) / span;
  }

  /** Bytes done at time `t` (no earlier than the first sample), interpolated between the samples around it. */
  private doneAt(t: number): number {
    if (t <= this.samples[0]![0]) return this.samples[0]![1];
    let i = 0;
    while (i + 1 < this.samples.length && this.samples[i + 1]![0] < t) i++;
    const [ta, da] = this.samples[i]!;
    const next = this.samples[i + 1];
    if (!next) return da;
    const [tb, db] = next;
    return tb > ta ? da + ((db - da) * (t - ta)) / (tb - ta) : db;
  }

  /** Milliseconds left at the current rate; undefined while the rate is unknown. */
  get etaMs(): number | undefined {
    const rate = this.rate;
    if (rate <= 0) return undefined;
    return (Math.max(0, this.total - this.done) * 1000) / rate;
  }
}
