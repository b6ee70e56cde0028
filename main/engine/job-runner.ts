/**
 * The job runner: one per pool (pool.jobs). It plans, starts, schedules,
 * pauses, resumes and cancels repair and reconfiguration jobs, keeps their
 * checkpoints in the pool's metadata log, reports their progress and holds
 * them to the governor (job-governor.ts). Each kind of job is one module
 * (job-rebuild.ts, job-relocate.ts, job-split.ts, job-evacuate.ts,
 * job-rebalance.ts, job-migrate.ts, job-scrub.ts); slab moves are
 * slab-move.ts, shared through job-moves.ts.
 *
 * API (for the service, which wires it to the contract, CLI and UI):
 *
 *   pool.jobs.plan(request)    → JobPlan: bytes to move, space per member
 *                                before/after, redundancy now/during/after,
 *                                estimated duration from measured rates, the
 *                                risk window. Throws JobError(code, reason)
 *                                when impossible. Changes nothing.
 *   pool.jobs.start(request)   → JobStatus; plans first (same refusals), and
 *                                refuses a job sharing chunks, volumes or
 *                                members with an unfinished one (CONFLICT).
 *   pool.jobs.list()/get(id)   → JobStatus of unfinished jobs.
 *   pool.jobs.pause(id) / resume(id) / cancel(id) (cancel → JobReport)
 *   pool.jobs.wait(id)         → the JobReport when it finishes.
 *   pool.jobs.reports()        → reports of jobs finished since the pool opened.
 *   events: 'job-progress' (JobProgress, at most PROGRESS_PER_SECOND per
 *           job), 'job-state' (JobStatus, on every state change),
 *           'job-finished' (JobReport: what moved, bad blocks and where
 *           their good data came from, blocks lost, members removed).
 *   pool.setPolicy({ autoRepair, autoRepairDelayMs, latencyBudget }) sets
 *   automatic repair (auto-repair.ts: spare first, then relocate, then
 *   split, after the member stayed failed autoRepairDelayMs, default 10 s)
 *   and the governor's budget (default 2× the idle p99).
 *   pool.addMember(source, { role: 'spare' | 'data' }) adds spares and
 *   members; pool.jobs.tuning holds the knobs (checkpoint interval, batch
 *   size, batches in flight, an optional fixed rate cap).
 *
 * Lifecycle. start() logs job-start (the request and resolved params) and
 * queues the job; a job sharing data with an unfinished one is refused
 * (CONFLICT), except a repair, which cancels the non-repair jobs in its way
 * first (its plan says which). Jobs run one at a time: repairs first (priority), then
 * oldest first; a running job yields (stops at its next step, stays in the
 * log, queued again) to a queued job of higher priority, or to any queued
 * job while it is paused. A job logs job-update checkpoints as it goes (the
 * slab move under way and how far, a cursor, its tally), job-end when it
 * finishes, is cancelled or fails. Nothing else about it is persisted: at
 * import the pool re-attaches each logged job (restore: a move's shadow,
 * migrate's write mirror) before any I/O, and importPool resumes the ones
 * not paused from their last checkpoint.
 *
 * Cancel leaves a consistent pool: the step under way (a slab move, a
 * migrate group) is undone — its target freed, the chunk where it was —
 * and every step committed before stays, each one complete.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { BadBlock } from './chunk-io.js';
import { autoRepair } from './auto-repair.js';
import { Governor } from './job-governor.js';
import { ProgressMeter } from './job-progress.js';
import { evacuate } from './job-evacuate.js';
import { migrate } from './job-migrate.js';
import { rebalance } from './job-rebalance.js';
import { rebuild } from './job-rebuild.js';
import { relocate } from './job-relocate.js';
import { scrub } from './job-scrub.js';
import { split } from './job-split.js';
import {
  JobError,
  JobStop,
  type JobAttachment,
  type JobClaims,
  type JobContext,
  type JobHost,
  type JobKindModule,
  type JobPlan,
  type JobProgress,
  type JobReport,
  type JobRequest,
  type JobState,
  type JobStatus,
  type JobTuning,
  type SlabMoved,
} from './job-types.js';
import type { Member } from './member.js';
import type { JobInfo, JobKindName, JobTally } from './pool-state.js';

export const JOB_MODULES: Readonly<Record<JobKindName, JobKindModule>> = Object.freeze({ rebuild, relocate, split, evacuate, rebalance, migrate, scrub });

/** Progress events per job and second, at most. */
const PROGRESS_PER_SECOND = 10;
/** What plans assume before a job has measured this pool: a modest disk's sequential rate. */
const DEFAULT_RATE = 100 * 1024 * 1024;
const REPORTS_KEPT = 50;
/** Default grace before automatic repair: long enough for a dropped NBD connection to come back, short next to a rebuild. */
export const AUTO_REPAIR_DELAY_MS = 10_000;
const BAD_BLOCKS_REPORTED = 1000;

export const DEFAULT_TUNING: JobTuning = Object.freeze({
  checkpointMs: 2_000,
  // Every checkpoint flushes the members: a disk (or a host's cache) then never holds more than
  // this of the job's writes unwritten, so neither a slab's commit nor a foreground flush waits
  // behind a slab's worth of write-back (~180 ms per 256 MiB on our test VM), and the job's rate
  // is what the disks sustain from its first seconds on, which keeps the ETA honest.
  checkpointBytes: 32 * 1024 * 1024,
  // 64 rows of 64 KiB: 4 MiB per column per batch. Each batch pays its row
  // locks, table look-ups and thread-pool round trips; at 16 rows a scrub of
  // image files in cache ran at 6.4-7.8 GB/s, at 64 at 9.6-11.9 (bench/_jobs-profile.ts --warm).
  batchRows: 64,
  depth: 3,
});

export interface JobRunnerEvents {
  'job-progress': [progress: JobProgress];
  'job-state': [status: JobStatus];
  'job-finished': [report: JobReport];
}

type StopReason = 'cancel' | 'close' | 'yield';

const ZERO_TALLY: JobTally = Object.freeze({ bytes: 0, slabsMoved: 0, blocksRepaired: 0, blocksLost: 0 });

class Job {
  state: JobState;
  reason: string | undefined;
  stop: StopReason | undefined;
  paused: boolean;
  readonly meter: ProgressMeter;
  tally: JobTally;
  readonly moved: SlabMoved[] = [];
  readonly bad: BadBlock[] = [];
  readonly notes: string[] = [];
  readonly removed: string[] = [];
  attachment: JobAttachment | undefined;
  resumedAfterImport: boolean;
  readonly finished: Promise<JobReport>;
  resolveFinished!: (report: JobReport) => void;
  pauseWaiters: Array<() => void> = [];
  lastProgress = 0;
  progressTimer: NodeJS.Timeout | undefined;
  claims: JobClaims;

  constructor(
    readonly id: string,
    readonly module: JobKindModule,
    readonly params: Record<string, unknown>,
    readonly request: JobRequest,
    readonly summary: string,
    readonly created: number,
    info: JobInfo,
    claims: JobClaims,
    fromLog: boolean,
  ) {
    this.paused = info.paused;
    this.state = info.paused ? 'paused' : 'queued';
    this.tally = { ...ZERO_TALLY, ...info.done };
    this.meter = new ProgressMeter(this.tally.bytes, 0);
    this.resumedAfterImport = fromLog;
    this.claims = claims;
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  wake(): void {
    const waiters = this.pauseWaiters;
    this.pauseWaiters = [];
    for (const w of waiters) w();
  }
}

export class JobRunner extends EventEmitter<JobRunnerEvents> {
  readonly governor: Governor;
  /** The runner's knobs; tests make checkpoints frequent. */
  tuning: JobTuning = DEFAULT_TUNING;
  private readonly jobs = new Map<string, Job>();
  private running: { job: Job; done: Promise<void> } | undefined;
  private readonly finishedReports: JobReport[] = [];
  /** Bytes per second the last jobs reached on this pool (plans estimate with it). */
  private measuredRate: number | undefined;
  private stopped = false;
  private resumable = false;
  /** start() calls run one at a time, so two cannot both pass the conflict check. */
  private startChain: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: JobHost) {
    super();
    this.governor = new Governor(() => host.pool.state.policy.latencyBudget ?? 2);
    for (const info of host.pool.state.jobs) {
      const module = JOB_MODULES[info.kind];
      if (!module) continue;
      const { request, summary, ...params } = info.params as { request: JobRequest; summary: string };
      let claims: JobClaims;
      try {
        claims = module.claims(host, params);
      } catch {
        claims = { chunks: new Set(), members: new Set(), volumes: new Set() };
      }
      const job = new Job(info.id, module, params, request, summary, info.created, info, claims, true);
      job.attachment = module.restore?.(host, info);
      this.jobs.set(info.id, job);
    }
    host.pool.on('member-state', (member: Member) => {
      if (member.state === 'failed') this.memberFailed(member);
    });
  }

  // ---------------------------------------------------------------- API

  /** What the job would do; throws JobError when it cannot be done. Changes nothing. */
  plan(request: JobRequest): JobPlan {
    const module = moduleFor(request);
    const params = module.prepare(this.host, request);
    const plan = this.planWith(module, params);
    const cancels = this.inTheWay(module, module.claims(this.host, params), false);
    if (cancels.length === 0) return plan;
    return { ...plan, notes: [...plan.notes, ...cancels.map((j) => `starting it cancels job ${j.id} (${j.summary}), which works on the same data: restoring redundancy comes first`)] };
  }

  /** Plans (refusing what cannot be done), checks for conflicts, logs the job and queues it. */
  start(request: JobRequest): Promise<JobStatus> {
    const run = this.startChain.then(() => this.startNow(request));
    this.startChain = run.catch(() => {});
    return run;
  }

  list(): JobStatus[] {
    return [...this.jobs.values()].map((j) => this.status(j));
  }

  get(id: string): JobStatus {
    return this.status(this.find(id));
  }

  reports(): JobReport[] {
    return [...this.finishedReports];
  }

  /** Resolves with the job's report when it finishes (at once for a recently finished one). */
  wait(id: string): Promise<JobReport> {
    const job = this.jobs.get(id);
    if (job) return job.finished;
    const report = this.finishedReports.find((r) => r.id === id);
    if (report) return Promise.resolve(report);
    return Promise.reject(new JobError('NOT_FOUND', `no job ${id} in pool ${this.host.pool.name}`));
  }

  /** Stops the job at its next step; it keeps its place (and its move's target) until resumed. */
  async pause(id: string): Promise<JobStatus> {
    const job = this.find(id);
    if (job.paused) return this.status(job);
    await this.host.commit({ t: 'job-update', id, paused: true });
    job.paused = true;
    job.state = 'paused';
    this.emitState(job);
    this.pump();
    return this.status(job);
  }

  async resume(id: string): Promise<JobStatus> {
    const job = this.find(id);
    if (!job.paused) return this.status(job);
    await this.host.commit({ t: 'job-update', id, paused: false });
    job.paused = false;
    if (this.running?.job === job) {
      job.state = 'running';
      job.meter.restart();
      job.wake();
    } else {
      job.state = 'queued';
    }
    this.emitState(job);
    this.pump();
    return this.status(job);
  }

  /** Cancels the job: the step under way is undone, the steps done stay. Resolves with its report. */
  async cancel(id: string): Promise<JobReport> {
    const job = this.find(id);
    if (this.running?.job === job) {
      job.stop = 'cancel';
      job.wake();
      return job.finished;
    }
    job.stop = 'cancel';
    try {
      await job.attachment?.abort();
      job.attachment = undefined;
    } catch (error) {
      job.stop = undefined;
      throw new JobError('BAD_STATE', `job ${id} could not be cancelled: ${describe(error)}`);
    }
    await this.end(job, 'cancelled');
    return job.finished;
  }

  /** Queues the jobs found in the log (importPool calls it after reconcile). */
  resumeAll(): void {
    this.resumable = true;
    this.pump();
  }

  /** Why this volume or member may not be changed now (an unfinished job works on it), or undefined. */
  busyReason(what: { volume?: string; member?: string }): string | undefined {
    for (const job of this.jobs.values()) {
      if (what.volume !== undefined && job.claims.volumes.has(what.volume)) {
        return `volume ${what.volume} is in use by job ${job.id} (${job.summary}); wait for it or cancel it first`;
      }
      if (what.member !== undefined && job.claims.members.has(what.member)) {
        return `member ${this.label(what.member)} is in use by job ${job.id} (${job.summary}); wait for it or cancel it first`;
      }
    }
    return undefined;
  }

  /** Stops the running job at its next step (pool close); everything stays in the log. */
  async stop(): Promise<void> {
    this.stopped = true;
    const running = this.running;
    if (running) {
      running.job.stop = 'close';
      running.job.wake();
      await running.done;
    }
    for (const job of this.jobs.values()) clearTimeout(job.progressTimer);
    for (const timer of this.repairTimers) clearTimeout(timer);
  }

  // ---------------------------------------------------------------- planning

  /**
   * The unfinished jobs a new job shares data with. A repair (priority 0:
   * rebuild, relocate, split) goes first: the others in its way are
   * returned, to be cancelled (cancel leaves the pool consistent, and they
   * can be started again). Anything else in the way is a CONFLICT — thrown
   * when `strict`, else left for start() to refuse.
   */
  private inTheWay(module: JobKindModule, claims: JobClaims, strict: boolean): Job[] {
    const cancels: Job[] = [];
    for (const other of this.jobs.values()) {
      const shared = sharedClaim(claims, other.claims, (uuid) => this.label(uuid));
      if (!shared) continue;
      if (module.priority === 0 && other.module.priority > 0) cancels.push(other);
      else if (strict) throw new JobError('CONFLICT', `job ${other.id} (${other.summary}) already works on ${shared}; wait for it or cancel it first`);
    }
    // Nothing is cancelled unless the job can then start.
    return cancels;
  }

  private planWith(module: JobKindModule, params: Record<string, unknown>): JobPlan {
    const { belowFullRedundancy, ...plan } = module.plan(this.host, params);
    const rate = this.measuredRate ?? DEFAULT_RATE;
    const estimatedMs = Math.round((plan.bytes * 1000) / rate);
    return {
      ...plan,
      estimatedMs,
      rateBytesPerSecond: Math.round(rate),
      rateSource: this.measuredRate === undefined ? 'default' : 'measured',
      riskWindowMs: belowFullRedundancy ? estimatedMs : 0,
    };
  }

  private async startNow(request: JobRequest): Promise<JobStatus> {
    if (this.stopped) throw new JobError('BAD_STATE', `pool ${this.host.pool.name} is closing`);
    const module = moduleFor(request);
    const params = module.prepare(this.host, request);
    const plan = this.planWith(module, params);
    const claims = module.claims(this.host, params);
    for (const other of this.inTheWay(module, claims, true)) {
      this.host.log('warn', `cancelling job ${other.id} (${other.summary}): ${plan.summary} comes first`);
      await this.cancel(other.id);
    }
    const id = randomUUID().slice(0, 8);
    const info: JobInfo = {
      id,
      kind: module.kind,
      params: { ...params, request, summary: plan.summary },
      created: Date.now(),
      paused: false,
      done: ZERO_TALLY,
    };
    await this.host.commit({ t: 'job-start', job: info });
    const job = new Job(id, module, params, request, plan.summary, info.created, info, claims, false);
    job.meter.total = plan.bytes;
    this.jobs.set(id, job);
    this.host.log('info', `job ${id} queued: ${plan.summary}`);
    this.emitState(job);
    this.resumable = true;
    this.pump();
    return this.status(job);
  }

  // ---------------------------------------------------------------- scheduling

  private pump(): void {
    if (this.stopped || !this.resumable) return;
    const queued = [...this.jobs.values()].filter((j) => j.state === 'queued' && !j.paused && j.stop === undefined);
    const running = this.running?.job;
    if (running) {
      const preempt = queued.some((j) => j.module.priority < running.module.priority || running.paused);
      if (preempt && running.stop === undefined) {
        running.stop = 'yield';
        running.wake();
      }
      return;
    }
    queued.sort((a, b) => a.module.priority - b.module.priority || a.created - b.created);
    const next = queued[0];
    if (!next) return;
    const done = this.run(next);
    this.running = { job: next, done };
  }

  private async run(job: Job): Promise<void> {
    job.state = 'running';
    job.stop = undefined;
    job.meter.restart();
    this.emitState(job);
    const endGovernor = this.governor.begin();
    let outcome: 'done' | 'failed' | 'cancelled' | 'stopped';
    try {
      await job.module.run(this.context(job), job.params);
      outcome = 'done';
    } catch (error) {
      if (error instanceof JobStop) outcome = job.stop === 'cancel' ? 'cancelled' : 'stopped';
      else {
        outcome = 'failed';
        job.reason = describe(error);
      }
    } finally {
      endGovernor();
    }
    this.running = undefined;
    if (outcome === 'stopped') {
      const why = job.stop;
      job.stop = undefined;
      job.state = job.paused ? 'paused' : 'queued';
      // It goes on from its last checkpoint: so does its count of bytes done.
      const logged = this.host.pool.state.jobs.find((j) => j.id === job.id);
      if (logged) {
        job.tally = { ...ZERO_TALLY, ...logged.done };
        job.meter.done = job.tally.bytes;
      }
      if (why !== 'close') this.emitState(job);
      this.pump();
      return;
    }
    if (outcome === 'done' && job.meter.rate > 0) {
      this.measuredRate = this.measuredRate === undefined ? job.meter.rate : (this.measuredRate + job.meter.rate) / 2;
    }
    await this.end(job, outcome);
    this.pump();
  }

  private async end(job: Job, outcome: 'done' | 'failed' | 'cancelled'): Promise<void> {
    try {
      await this.host.commit({ t: 'job-end', id: job.id });
    } catch (error) {
      this.host.log('error', `job ${job.id} ended (${outcome}) but its end could not be logged: ${describe(error)}`);
    }
    this.jobs.delete(job.id);
    clearTimeout(job.progressTimer);
    job.state = outcome;
    try {
      job.module.ended?.(this.host, job.params, outcome);
    } catch (error) {
      this.host.log('warn', `job ${job.id}: ${describe(error)}`);
    }
    const report: JobReport = {
      id: job.id,
      kind: job.module.kind,
      request: job.request,
      outcome,
      ...(job.reason ? { reason: job.reason } : {}),
      created: job.created,
      finished: Date.now(),
      bytes: job.meter.done,
      moved: job.moved,
      slabsMoved: job.tally.slabsMoved,
      badBlocks: job.bad,
      blocksRepaired: job.tally.blocksRepaired,
      blocksLost: job.tally.blocksLost,
      membersRemoved: job.removed,
      notes: job.notes,
    };
    this.finishedReports.push(report);
    if (this.finishedReports.length > REPORTS_KEPT) this.finishedReports.shift();
    const level = outcome === 'failed' ? 'error' : 'info';
    this.host.log(level, `job ${job.id} (${job.summary}) ${outcome}${job.reason ? `: ${job.reason}` : ''}`);
    this.emitState(job);
    this.emit('job-finished', report);
    job.resolveFinished(report);
  }

  private context(job: Job): JobContext {
    const host = this.host;
    const governor = this.governor;
    const tuning = (): JobTuning => this.tuning;
    const pace = (bytes: number): Promise<void> => this.pace(bytes);
    return {
      host,
      id: job.id,
      get tuning() {
        return tuning();
      },
      info: () => host.pool.state.jobs.find((j) => j.id === job.id)!,
      admit: async (bytes) => {
        const whilePaused = async (): Promise<void> => {
          for (;;) {
            if (job.stop !== undefined) throw new JobStop();
            if (!job.paused) return;
            await new Promise<void>((resolve) => job.pauseWaiters.push(resolve));
          }
        };
        await whilePaused();
        await governor.admit(bytes);
        await pace(bytes);
        // Paused while it waited for its turn (a slow maxRate can make that seconds): its I/O waits too.
        await whilePaused();
      },
      get throttled() {
        return governor.throttled;
      },
      get cancelling() {
        return job.stop === 'cancel';
      },
      get resumedAfterImport() {
        return job.resumedAfterImport;
      },
      get attachment() {
        return job.attachment;
      },
      set attachment(value) {
        job.attachment = value;
      },
      advance: (bytes) => {
        job.meter.setHeld(governor.throttled);
        job.meter.advance(bytes);
        job.tally = { ...job.tally, bytes: job.meter.done };
        this.progress(job);
      },
      setTotal: (bytes) => {
        job.meter.total = bytes;
      },
      checkpoint: async (update) => {
        await host.commit({ t: 'job-update', id: job.id, ...update, done: job.tally });
        job.resumedAfterImport = false;
      },
      tally: () => job.tally,
      count: (change) => {
        job.tally = {
          bytes: job.tally.bytes + (change.bytes ?? 0),
          slabsMoved: job.tally.slabsMoved + (change.slabsMoved ?? 0),
          blocksRepaired: job.tally.blocksRepaired + (change.blocksRepaired ?? 0),
          blocksLost: job.tally.blocksLost + (change.blocksLost ?? 0),
        };
      },
      moved: (move) => {
        job.moved.push(move);
      },
      badBlocks: (blocks) => {
        for (const b of blocks) if (job.bad.length < BAD_BLOCKS_REPORTED) job.bad.push(b);
      },
      memberRemoved: (uuid) => {
        job.removed.push(uuid);
      },
      note: (text) => {
        job.notes.push(text);
        host.log('info', `job ${job.id}: ${text}`);
      },
    };
  }

  private paceFree = 0;

  /** Holds job I/O to tuning.maxRate, when set. */
  private async pace(bytes: number): Promise<void> {
    const rate = this.tuning.maxRate;
    if (rate === undefined || rate <= 0) return;
    const now = performance.now();
    const start = Math.max(now, this.paceFree);
    this.paceFree = start + (bytes * 1000) / rate;
    if (start - now > 1) await new Promise((resolve) => setTimeout(resolve, start - now));
  }

  // ---------------------------------------------------------------- events

  private status(job: Job): JobStatus {
    return {
      ...this.progressOf(job),
      request: job.request,
      summary: job.summary,
      created: job.created,
      ...(job.reason ? { reason: job.reason } : {}),
    };
  }

  private progressOf(job: Job): JobProgress {
    const rate = job.state === 'running' && !job.paused ? job.meter.rate : 0;
    const eta = rate > 0 ? job.meter.etaMs : undefined;
    return {
      id: job.id,
      kind: job.module.kind,
      state: job.state,
      bytesDone: job.meter.done,
      bytesTotal: Math.max(job.meter.total, job.meter.done),
      rateBytesPerSecond: Math.round(rate),
      ...(eta !== undefined ? { etaMs: Math.round(eta) } : {}),
      slabsMoved: job.tally.slabsMoved,
      throttled: job.state === 'running' && this.governor.throttled,
    };
  }

  /** Emits progress at most PROGRESS_PER_SECOND times a second, the latest always last. */
  private progress(job: Job): void {
    const interval = 1000 / PROGRESS_PER_SECOND;
    // A pending event carries the latest numbers when it fires.
    if (job.progressTimer) return;
    const now = performance.now();
    if (now - job.lastProgress >= interval) {
      job.lastProgress = now;
      this.emit('job-progress', this.progressOf(job));
      return;
    }
    job.progressTimer = setTimeout(() => {
      job.progressTimer = undefined;
      job.lastProgress = performance.now();
      if (this.jobs.has(job.id)) this.emit('job-progress', this.progressOf(job));
    }, interval - (now - job.lastProgress));
    job.progressTimer.unref();
  }

  private emitState(job: Job): void {
    this.emit('job-state', this.status(job));
  }

  // ---------------------------------------------------------------- automatic repair

  private memberFailed(member: Member): void {
    const policy = this.host.pool.state.policy;
    if (this.stopped || !policy.autoRepair) return;
    const delay = policy.autoRepairDelayMs ?? AUTO_REPAIR_DELAY_MS;
    if (delay > 0) this.host.log('info', `member ${member.label} failed: automatic repair starts in ${Math.round(delay / 1000)} s unless it is back`);
    // At least after the failure is logged (markFailed commits it right after this event).
    const timer = setTimeout(() => {
      this.repairTimers.delete(timer);
      if (this.stopped || !this.host.pool.state.policy.autoRepair || member.state !== 'failed') return;
      void autoRepair(this, this.host, member.uuid).catch((error: unknown) => {
        this.host.log('warn', `automatic repair of ${member.label} did not start: ${describe(error)}`);
      });
    }, delay);
    timer.unref();
    this.repairTimers.add(timer);
  }
  private readonly repairTimers = new Set<NodeJS.Timeout>();

  /** Jobs (unfinished) whose claims include this member. */
  jobsOnMember(uuid: string): JobStatus[] {
    return [...this.jobs.values()].filter((j) => j.claims.members.has(uuid)).map((j) => this.status(j));
  }

  private find(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) {
      const finished = this.finishedReports.find((r) => r.id === id);
      if (finished) throw new JobError('BAD_STATE', `job ${id} has already finished (${finished.outcome})`);
      throw new JobError('NOT_FOUND', `no job ${id} in pool ${this.host.pool.name}`);
    }
    return job;
  }

  private label(uuid: string): string {
    return this.host.pool.members.get(uuid)?.label ?? uuid;
  }
}

function moduleFor(request: JobRequest): JobKindModule {
  const module = typeof request === 'object' && request !== null ? JOB_MODULES[request.kind] : undefined;
  if (!module) {
    const kind = typeof request === 'object' && request !== null ? String((request as { kind?: unknown }).kind) : String(request);
    throw new JobError('BAD_REQUEST', `unknown job kind "${kind}": expected ${Object.keys(JOB_MODULES).join(', ')}`);
  }
  return module;
}

function sharedClaim(a: JobClaims, b: JobClaims, label: (uuid: string) => string): string | undefined {
  for (const v of a.volumes) if (b.volumes.has(v)) return `volume ${v}`;
  for (const m of a.members) if (b.members.has(m)) return `member ${label(m)}`;
  for (const c of a.chunks) if (b.chunks.has(c)) return `chunk ${c}`;
  return undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
