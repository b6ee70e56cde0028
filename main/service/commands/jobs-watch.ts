/**
 * `spindle jobs --watch`: follows the running jobs (and any started
 * meanwhile) until none is queued or running.
 *
 * On a terminal the jobs are drawn as progress bars with rate and ETA and
 * redrawn in place, at most ten times a second; otherwise each job gets a
 * plain line when its progress changes, at most once a second, and one
 * when it ends. With --json nothing is printed until the end, then the
 * watched jobs as `{ jobs }` (job-list's shape). It ends 0 when every job
 * that ended meanwhile is done, 1 when one failed or was cancelled.
 */
import type { JobProgress, JobState, JobSummary } from '../../../preload/api.js';
import type { ControlClient } from '../control-client.js';
import { CliError, print, type Io } from './command-support.js';
import { jobLine, reportLine } from './job-text.js';

const FINAL: ReadonlySet<JobState> = new Set(['done', 'cancelled', 'failed']);
const ACTIVE: ReadonlySet<JobState> = new Set(['queued', 'running']);
const REDRAW_MS = 100;
const LINE_MS = 1000;

type JobView = JobProgress & Partial<JobSummary>;

export async function watchJobs(client: ControlClient, io: Io, options: { pool?: string; json?: boolean }): Promise<void> {
  const mode = options.json ? 'json' : io.tty ? 'tty' : 'lines';
  const views = new Map<string, JobView>();
  const watched = new Set<string>();
  const ended = new Map<string, JobSummary>();
  const lines = new PlainLines(io);
  const screen = new Screen(io);
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let disconnected = false;
  let listed = false;

  const mine = (pool: string): boolean => options.pool === undefined || pool === options.pool;
  const draw = (): void => {
    if (mode === 'tty') screen.draw([...watched].map((id) => views.get(id)!).map((j) => (FINAL.has(j.state) && j.report ? reportLine(j as JobSummary) : jobLine(j, { bar: true }))));
  };
  const settle = (): void => {
    if (!listed) return;
    if ([...watched].some((id) => ACTIVE.has(views.get(id)!.state))) return;
    finish();
  };

  const offProgress = client.on('job-progress', (progress) => {
    if (!mine(progress.pool)) return;
    const known = views.get(progress.id);
    if (known && FINAL.has(known.state)) return;
    views.set(progress.id, { ...known, ...progress });
    watched.add(progress.id);
    if (mode === 'lines') lines.progress(progress);
    else screen.schedule(draw);
    settle();
  });
  const offFinished = client.on('job-finished', (job) => {
    if (!mine(job.pool)) return;
    views.set(job.id, job);
    watched.add(job.id);
    ended.set(job.id, job);
    if (mode === 'lines') lines.finished(job);
    else screen.schedule(draw);
    settle();
  });
  client.onClose(() => {
    disconnected = true;
    finish();
  });

  try {
    const { jobs } = await client.request('job-list', options.pool !== undefined ? { pool: options.pool } : {});
    for (const job of jobs) {
      if (views.has(job.id)) continue;
      views.set(job.id, job);
      if (!FINAL.has(job.state)) watched.add(job.id);
    }
    listed = true;
    if (mode === 'lines') for (const id of watched) lines.progress(views.get(id)!);
    draw();
    settle();
    await done;
  } finally {
    offProgress();
    offFinished();
    lines.close();
    screen.close();
  }
  if (disconnected) throw new CliError('the engine host closed the connection while jobs were being watched');
  draw();

  const final = await client.request('job-list', options.pool !== undefined ? { pool: options.pool } : {});
  const result = final.jobs.filter((j) => watched.has(j.id));
  if (mode === 'json') print(io, { json: true }, { jobs: result }, '');
  else if (watched.size === 0) io.out('no job is running\n');
  else if (mode === 'lines') {
    for (const id of watched) if (!ended.has(id)) io.out(`${jobLine(views.get(id)!, { bar: false })}\n`);
  }
  const bad = [...ended.values()].filter((j) => j.state !== 'done');
  if (bad.length > 0) {
    throw new CliError(bad.map((j) => `job ${j.id} ${j.state}${j.report?.error ? `: ${j.report.error}` : ''}`).join('; '));
  }
}

/** Without a terminal: a line per job when its progress changed, at most once a second, and one when it ends. */
class PlainLines {
  private readonly last = new Map<string, { at: number; key: string }>();
  private readonly pending = new Map<string, { timer: NodeJS.Timeout; job: JobProgress }>();

  constructor(private readonly io: Io) {}

  progress(job: JobProgress): void {
    const waiting = this.pending.get(job.id);
    if (waiting) {
      waiting.job = job;
      return;
    }
    const last = this.last.get(job.id);
    const now = performance.now();
    if (!last || now - last.at >= LINE_MS) {
      this.emit(job, now);
      return;
    }
    const timer = setTimeout(() => {
      const entry = this.pending.get(job.id)!;
      this.pending.delete(job.id);
      this.emit(entry.job, performance.now());
    }, last.at + LINE_MS - now);
    this.pending.set(job.id, { timer, job });
  }

  finished(job: JobSummary): void {
    const waiting = this.pending.get(job.id);
    if (waiting) clearTimeout(waiting.timer);
    this.pending.delete(job.id);
    this.last.set(job.id, { at: performance.now(), key: 'end' });
    this.io.out(`${reportLine(job)}\n`);
  }

  close(): void {
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }

  private emit(job: JobProgress, now: number): void {
    const line = jobLine(job, { bar: false });
    // The rate and ETA move all the time; a line is worth printing when the progress or the state did.
    const key = `${job.state} ${job.bytesDone} ${job.bytesTotal}`;
    if (this.last.get(job.id)?.key === key) return;
    this.last.set(job.id, { at: now, key });
    this.io.out(`${line}\n`);
  }
}

/** On a terminal: the jobs' lines, redrawn in place (cursor up, clear line), at most every REDRAW_MS. */
class Screen {
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly io: Io) {}

  schedule(draw: () => void): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      draw();
    }, REDRAW_MS);
  }

  draw(lines: readonly string[]): void {
    // A line wider than the terminal would wrap, and the cursor would no longer go back to the top.
    const width = Math.max(20, (this.io.columns || 80) - 1);
    let text = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const line of lines) text += `\r\x1b[2K${line.length > width ? `${line.slice(0, width - 1)}…` : line}\n`;
    this.drawn = lines.length;
    if (text) this.io.out(text);
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
