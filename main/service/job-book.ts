/**
 * One open pool's jobs as clients see them: the engine runner's unfinished
 * jobs and the ones that finished since the pool was opened (with their
 * reports), and the runner's events turned into the contract's.
 *
 * - job-progress: the runner's progress and state changes (queued, running,
 *   paused), at most 10 a second per job (the latest wins). A pending one is
 *   dropped when the job finishes, so no progress ever follows job-finished.
 * - job-finished: once per job, with its report.
 *
 * Jobs the service started remember the contract action they were started
 * for (an `add` is a rebalance); the others (automatic repair, resumed after
 * a restart) have it read back from their request.
 */
import type { JobReport as EngineJobReport, JobStatus as EngineJobStatus, JobProgress as EngineJobProgress } from '../engine/job-types.js';
import type { Pool } from '../engine/pool.js';
import type { JobProgress, JobSummary, PlanAction } from '../../preload/api.js';
import type { KeyedThrottle } from './keyed-throttle.js';
import { finishedJob, jobProgress, jobSummary, jobTitle, type FinishedJob } from './job-views.js';
import type { PoolEventListener } from './pool-event-forwarder.js';

/** Finished jobs kept per pool (the engine keeps as many reports). */
const FINISHED_KEPT = 50;
const FINAL = new Set(['done', 'cancelled', 'failed']);

export class JobBook {
  private readonly titles = new Map<string, string>();
  private readonly actions = new Map<string, PlanAction>();
  private readonly finished: FinishedJob[] = [];
  private readonly detachRunner: () => void;

  constructor(
    private readonly pool: Pool,
    private readonly emit: PoolEventListener,
    private readonly progress: KeyedThrottle<JobProgress>,
  ) {
    const runner = pool.jobs;
    const onState = (status: EngineJobStatus): void => {
      this.titles.set(status.id, jobTitle(status.summary));
      if (!FINAL.has(status.state)) this.pushProgress(status);
    };
    const onProgress = (progress: EngineJobProgress): void => this.pushProgress(progress);
    const onFinished = (report: EngineJobReport): void => this.onFinished(report);
    runner.on('job-state', onState);
    runner.on('job-progress', onProgress);
    runner.on('job-finished', onFinished);
    this.detachRunner = () => {
      runner.off('job-state', onState);
      runner.off('job-progress', onProgress);
      runner.off('job-finished', onFinished);
    };
  }

  /** The action a job was started for (kept for its summaries). */
  started(status: EngineJobStatus, action: PlanAction): JobSummary {
    this.actions.set(status.id, action);
    this.titles.set(status.id, jobTitle(status.summary));
    return jobSummary(this.pool.name, status, action);
  }

  summary(status: EngineJobStatus): JobSummary {
    return jobSummary(this.pool.name, status, this.actions.get(status.id));
  }

  /** A finished job of this pool, when it is one of the last FINISHED_KEPT. */
  finishedJob(id: string): FinishedJob | undefined {
    return this.finished.find((j) => j.id === id);
  }

  /** Unfinished jobs in the order they were started, then finished ones, oldest first. */
  list(): JobSummary[] {
    const open = this.pool.jobs
      .list()
      .sort((a, b) => a.created - b.created)
      .map((status) => this.summary(status));
    return [...open, ...this.finished];
  }

  /**
   * Records a change that was done at once (a spare named, members added
   * with nothing to rebalance) as a finished job, and tells clients, so that
   * every started action has a job to show.
   */
  recordImmediate(job: FinishedJob): FinishedJob {
    this.keep(job);
    this.emit('job-finished', job);
    return job;
  }

  detach(): void {
    this.detachRunner();
  }

  private pushProgress(progress: EngineJobProgress): void {
    const title = this.titles.get(progress.id) ?? this.titleFromRunner(progress.id);
    this.progress.push(this.key(progress.id), jobProgress(this.pool.name, progress, title));
  }

  private titleFromRunner(id: string): string {
    try {
      const title = jobTitle(this.pool.jobs.get(id).summary);
      this.titles.set(id, title);
      return title;
    } catch {
      return id;
    }
  }

  private onFinished(report: EngineJobReport): void {
    this.progress.forget(this.key(report.id));
    const title = this.titles.get(report.id) ?? `${report.kind} job ${report.id}`;
    const job = finishedJob(this.pool, report, title, this.actions.get(report.id));
    this.titles.delete(report.id);
    this.actions.delete(report.id);
    this.keep(job);
    this.emit('job-finished', job);
  }

  private keep(job: FinishedJob): void {
    this.finished.push(job);
    if (this.finished.length > FINISHED_KEPT) this.finished.shift();
  }

  private key(id: string): string {
    return `${this.pool.name}/${id}`;
  }
}
