/**
 * The vocabulary of repair and reconfiguration jobs (job-runner.ts runs
 * them): what a caller asks for (JobRequest), what it is shown before
 * (JobPlan), what it sees meanwhile (JobStatus, JobProgress) and after
 * (JobReport), and what each job module provides (JobKindModule) and gets
 * (JobContext, JobHost). Plain data, so the service can pass it on as is.
 */
import type { BadBlock, ChunkIo } from './chunk-io.js';
import type { KeyLock } from './key-lock.js';
import type { LayoutName, LayoutSpec } from './layout.js';
import type { Member } from './member.js';
import type { Pool } from './pool.js';
import type { ChunkInfo, JobInfo, JobKindName, JobTally, MemberRole, PoolRecord, PoolState } from './pool-state.js';
import type { SlabAllocator } from './allocator.js';
import type { WriteIntentLog } from './write-intent.js';

export type { JobKindName } from './pool-state.js';

/** What to do. Members are named by UUID or by the URI they were added with. */
export type JobRequest =
  /** Rebuild a failed (or failing) member's slabs onto a spare; the spare becomes a data member, the old member leaves. */
  | { readonly kind: 'rebuild'; readonly member: string; readonly spare?: string }
  /** Move a failed member's slabs onto one other member with room for all of them; the old member leaves. */
  | { readonly kind: 'relocate'; readonly member: string; readonly target?: string }
  /** Spread a failed member's slabs over the other members (no single one has room); the old member leaves. */
  | { readonly kind: 'split'; readonly member: string }
  /** Move every slab off an online member, then remove it from the pool. */
  | { readonly kind: 'evacuate'; readonly member: string }
  /** Even out how full the data members are (after a member was added, say). */
  | { readonly kind: 'rebalance' }
  /** Change a volume's layout online. */
  | { readonly kind: 'migrate'; readonly volume: string; readonly layout: LayoutName; readonly copies?: number; readonly width?: number }
  /** Read everything (one volume, or all), verify checksums and parity, repair what is wrong. */
  | { readonly kind: 'scrub'; readonly volume?: string };

export type JobErrorCode =
  | 'BAD_REQUEST'
  | 'NOT_FOUND'
  | 'NO_SPACE'
  | 'SPARE_TOO_SMALL'
  | 'REDUNDANCY'
  | 'MEMBER_FAILING'
  | 'VOLUME_FAILED'
  | 'CONFLICT'
  | 'NOTHING_TO_DO'
  | 'BAD_STATE';

/** A refusal (the plan is impossible, or the call makes no sense now); nothing was changed. */
export class JobError extends Error {
  constructor(
    readonly code: JobErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'JobError';
  }
}

export interface MemberSpace {
  readonly uuid: string;
  readonly label: string;
  readonly role: MemberRole;
  readonly state: string;
  /** Slabs in use before and after the job. */
  readonly usedSlabsBefore: number;
  readonly usedSlabsAfter: number;
  readonly slabCount: number;
  /** Bytes of slab space in use before and after (slabs × slab size). */
  readonly usedBytesBefore: number;
  readonly usedBytesAfter: number;
  /** Whether the member is part of the pool after the job (a rebuilt or evacuated member leaves). */
  readonly remains: boolean;
}

export interface VolumeRedundancy {
  readonly volume: string;
  /** Further member failures the volume survives: now (at the start), at worst while the job runs, after it. */
  readonly now: number;
  readonly during: number;
  readonly after: number;
}

export interface JobPlan {
  readonly kind: JobKindName;
  /** One line for people: "rebuild m2 (3 slabs) onto spare m5". */
  readonly summary: string;
  /** Bytes the job reads or copies (slab data bytes; scrub: bytes read). */
  readonly bytes: number;
  /** Slab moves (0 for scrub; chunks rebuilt for migrate). */
  readonly slabs: number;
  readonly members: readonly MemberSpace[];
  readonly redundancy: readonly VolumeRedundancy[];
  /** From the rate jobs measured on this pool, or a stated default when none was measured yet. */
  readonly estimatedMs: number;
  readonly rateBytesPerSecond: number;
  readonly rateSource: 'measured' | 'default';
  /** Time expected below full redundancy (a volume tolerating fewer failures than its layout can). */
  readonly riskWindowMs: number;
  readonly notes: readonly string[];
}

export type JobState = 'queued' | 'running' | 'paused' | 'done' | 'cancelled' | 'failed';

export interface JobProgress {
  readonly id: string;
  readonly kind: JobKindName;
  readonly state: JobState;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Smoothed over the last seconds (job-progress.ts); 0 until measured. */
  readonly rateBytesPerSecond: number;
  /** Undefined until the rate is known. */
  readonly etaMs?: number;
  readonly slabsMoved: number;
  /** The governor is holding the job back for foreground I/O. */
  readonly throttled: boolean;
}

export interface JobStatus extends JobProgress {
  readonly request: JobRequest;
  readonly summary: string;
  /** Milliseconds since 1970. */
  readonly created: number;
  /** Why it failed, or why it is waiting. */
  readonly reason?: string;
}

export interface SlabMoved {
  readonly chunk: number;
  readonly volume?: string;
  readonly column: number;
  readonly from: { readonly member: string; readonly slab: number };
  readonly to: { readonly member: string; readonly slab: number };
}

export interface JobReport {
  readonly id: string;
  readonly kind: JobKindName;
  readonly request: JobRequest;
  readonly outcome: 'done' | 'cancelled' | 'failed';
  readonly reason?: string;
  readonly created: number;
  readonly finished: number;
  readonly bytes: number;
  /** Slab moves this run of the engine made (a job resumed after a restart lists those since). */
  readonly moved: readonly SlabMoved[];
  readonly slabsMoved: number;
  /** Bad blocks found and where their good data came from (the first 1000; blocksRepaired counts all). */
  readonly badBlocks: readonly BadBlock[];
  readonly blocksRepaired: number;
  /** Blocks for which nothing valid was left: they read as EIO. */
  readonly blocksLost: number;
  /** Members the job took out of the pool. */
  readonly membersRemoved: readonly string[];
  readonly notes: readonly string[];
}

/** The chunks and members a job works on; two jobs sharing any are refused. */
export interface JobClaims {
  readonly chunks: ReadonlySet<number>;
  readonly members: ReadonlySet<string>;
  readonly volumes: ReadonlySet<string>;
}

/** The pool's internals that jobs need; the pool makes one (pool.ts, jobHost). */
export interface JobHost {
  readonly pool: Pool;
  readonly rowLock: KeyLock<string>;
  readonly allocator: SlabAllocator;
  readonly intent: WriteIntentLog;
  /** Write-intent regions the import reconciled ("chunkId:region"): rows there may differ from a move's copy. */
  readonly reconciledRegions: ReadonlySet<string>;
  /** Logs a record and applies it, in turn with every other state change. */
  commit(record: PoolRecord): Promise<void>;
  /** The same, with the record made from the state it applies to (new chunk ids). */
  commitWith(build: (state: PoolState) => PoolRecord): Promise<void>;
  flush(): Promise<void>;
  markFailed(member: Member, reason: string): Promise<void>;
  makeChunk(info: ChunkInfo): ChunkIo;
  /** The list of chunks the volume object reads (changed in place by migrate). */
  volumeChunks(name: string): ChunkIo[];
  /** After a volume-rechunk record: the volume reads the new chunks; returns the ones it no longer uses. */
  replaceChunks(volume: string, first: number, count: number, chunks: readonly ChunkIo[], spec?: LayoutSpec): ChunkIo[];
  /** Frees slabs no chunk uses any more (after everything that used them has finished). */
  releaseSlabs(slabs: ReadonlyArray<{ member: Member; slab: number }>): void;
  setRole(uuid: string, role: MemberRole): Promise<void>;
  /** Takes a member that holds no slab out of the pool (durably), forgetting its labels. */
  removeMember(uuid: string): Promise<void>;
  chunkHealth(chunk: ChunkIo): 'online' | 'degraded' | 'failed';
  volumeStatesChanged(): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

/** Something a job keeps between its runs (a slab move under way): what to undo if it is cancelled while not running. */
export interface JobAttachment {
  abort(): Promise<void>;
}

/** The runner's knobs (tests make checkpoints frequent; the defaults suit real disks). */
export interface JobTuning {
  /** Checkpoint a move at least this often… */
  readonly checkpointMs: number;
  /** …and after this many bytes. */
  readonly checkpointBytes: number;
  /** Rows (64 KiB each per column) per copy or scrub batch. */
  readonly batchRows: number;
  /** Batches in flight when the governor does not hold the job back. */
  readonly depth: number;
  /** A fixed ceiling on job I/O in bytes per second, on top of the governor (none when absent). */
  readonly maxRate?: number;
}

/** What the runner gives a running job. */
export interface JobContext {
  readonly host: JobHost;
  readonly id: string;
  readonly tuning: JobTuning;
  /** The job as the log has it now. */
  info(): JobInfo;
  /** Waits while paused and for the governor; throws JobStop when the job must stop (cancel, close, yield). */
  admit(bytes: number): Promise<void>;
  /** The governor holds jobs back: keep one batch in flight. */
  readonly throttled: boolean;
  /** The job is being cancelled: undo the step under way. */
  readonly cancelling: boolean;
  /** True until the job's first checkpoint after the pool was imported with it in its log. */
  readonly resumedAfterImport: boolean;
  /** Kept between runs in this process; the runner aborts it when the job is cancelled while not running. */
  attachment: JobAttachment | undefined;
  /** Counts bytes done (progress, rate, ETA). */
  advance(bytes: number): void;
  /** Sets the bytes the whole job does (done included). */
  setTotal(bytes: number): void;
  /** Logs a job-update (cursor, move, …) with the tally so far. */
  checkpoint(update: Omit<Extract<PoolRecord, { t: 'job-update' }>, 't' | 'id' | 'done'>): Promise<void>;
  /** The tally so far (persisted with each checkpoint). */
  tally(): JobTally;
  count(change: Partial<JobTally>): void;
  moved(move: SlabMoved): void;
  badBlocks(blocks: readonly BadBlock[]): void;
  memberRemoved(uuid: string): void;
  note(text: string): void;
}

/** Thrown by admit() when the job must stop; the runner knows why. */
export class JobStop extends Error {
  constructor() {
    super('job stopped');
    this.name = 'JobStop';
  }
}

/** What a job module's plan returns; the runner adds the estimates. */
export type KindPlan = Omit<JobPlan, 'estimatedMs' | 'riskWindowMs' | 'rateBytesPerSecond' | 'rateSource'> & {
  /** Whether some volume stays below its full redundancy until the job ends (the risk window). */
  readonly belowFullRedundancy: boolean;
};

/** One job kind: one module each (job-rebuild.ts, …). */
export interface JobKindModule {
  readonly kind: JobKindName;
  /** Lower runs first; repairs (restoring redundancy) come before everything else. */
  readonly priority: number;
  /** Checks the request and resolves names; the params are persisted with the job. Throws JobError. */
  prepare(host: JobHost, request: JobRequest): Record<string, unknown>;
  /** What the job would do, now; throws JobError when it cannot be done. Changes nothing. */
  plan(host: JobHost, params: Record<string, unknown>): KindPlan;
  claims(host: JobHost, params: Record<string, unknown>): JobClaims;
  /** Does the work, going on from what ctx.info() says was done. */
  run(ctx: JobContext, params: Record<string, unknown>): Promise<void>;
  /** Called once at pool open for a persisted job, before any I/O: re-attach what must see writes. */
  restore?(host: JobHost, info: JobInfo): JobAttachment | undefined;
  /** Called when the job has ended, however (undo what only made sense while it ran). */
  ended?(host: JobHost, params: Record<string, unknown>, outcome: 'done' | 'failed' | 'cancelled'): void;
}
