/**
 * Plans and jobs (contract `plan`, `job-*`, `pool-remove-member`,
 * `pool-set-spare`): each contract action becomes engine job requests
 * (job-runner.ts), tried in order until the engine takes one.
 *
 *   rebuild [spare]  the pool's failed or missing member that holds data:
 *                    rebuild onto the given spare (only it), else onto the
 *                    pool's spare, else relocate onto one member, else
 *                    split over several — the first the engine can plan
 *   remove M         evacuate M (it leaves the pool at the end)
 *   add M…           the drives join as data members, then a rebalance;
 *                    its plan is a forecast (add-forecast.ts)
 *   spare M          immediate, nothing moves: a new drive joins as a
 *                    spare; a data member that holds nothing is taken
 *                    out (an evacuate with nothing to move) and added
 *                    back as a spare; one that holds data is refused
 *   migrate, rebalance, scrub   the engine job of that name
 *
 * A plan never changes the pool; an impossible one is a Plan with
 * `possible: false` and the engine's reason. A start that the engine
 * refuses is a RequestFailedError with its reason. Immediate changes are
 * recorded as jobs already done (job-book.ts), so every start has a job.
 */
import { randomUUID } from 'node:crypto';
import { parseLayoutName } from '../engine/layouts.js';
import { GeometryError, memberGeometry } from '../engine/on-disk-format.js';
import { JobError, type JobRequest, type JobStatus as EngineJobStatus } from '../engine/job-types.js';
import type { Member } from '../engine/member.js';
import type { Pool } from '../engine/pool.js';
import type { JobKind, JobSummary, Plan, PlanAction, PoolStatus } from '../../preload/api.js';
import { RequestFailedError } from './request-failed-error.js';
import { forecastAdd } from './add-forecast.js';
import { findMember, MemberNotFoundError } from './find-member.js';
import type { FinishedJob } from './job-views.js';
import { planView, stillPlan } from './plan-views.js';
import type { OpenPoolView, PoolRegistry, ProbedDrive } from './pool-registry.js';

const REPAIRS = new Set(['rebuild', 'relocate', 'split']);
/** What the engine's plans assume before a job has measured a pool (job-runner.ts DEFAULT_RATE). */
const ENGINE_DEFAULT_RATE = 100 * 1024 * 1024;
const MEMBER_URI = /^(nbd|nbds|nbd\+unix):|^file:(\/\/)?\//;

type Requests = { readonly requests: readonly JobRequest[]; readonly notes?: readonly string[] } | { readonly reason: string };

export class PoolActions {
  constructor(private readonly registry: PoolRegistry) {}

  async plan(poolName: string, action: PlanAction): Promise<Plan> {
    const entry = await this.registry.openEntry(poolName);
    const { pool } = entry;
    const title = describeAction(pool.name, action);
    switch (action.kind) {
      case 'add':
        return this.planAdd(pool, action);
      case 'spare': {
        const change = await this.spareChange(pool, action.member);
        if ('reason' in change) return stillPlan(pool, action, title, { reason: change.reason });
        if (change.kind === 'new') {
          const plan = stillPlan(pool, action, `add ${change.drive.uri} to pool ${pool.name} as a spare (nothing moves)`, { possible: true });
          const bytes = change.slabs * pool.state.slabSize;
          const space = { usedBytes: 0, freeBytes: bytes };
          return { ...plan, perMember: [...plan.perMember, { member: change.drive.uri, uri: change.drive.uri, before: space, after: space }] };
        }
        return stillPlan(pool, action, `make ${change.member.label} a spare of pool ${pool.name} (it holds no data: nothing moves)`, { possible: true });
      }
      default: {
        const resolved = this.requestsFor(pool, action);
        if ('reason' in resolved) return stillPlan(pool, action, title, { reason: resolved.reason });
        const reasons: string[] = [];
        for (const request of resolved.requests) {
          try {
            const plan = pool.jobs.plan(request);
            const fallback = reasons.length > 0 ? [`instead of ${reasons.join('; ')}`] : [];
            return planView(pool, action, plan, [...(resolved.notes ?? []), ...fallback]);
          } catch (error) {
            if (!(error instanceof JobError)) throw error;
            reasons.push(resolved.requests.length > 1 ? `${request.kind}: ${error.message}` : error.message);
          }
        }
        return stillPlan(pool, action, title, { reason: reasons.join('; ') });
      }
    }
  }

  async start(poolName: string, action: PlanAction): Promise<JobSummary> {
    const entry = await this.registry.openEntry(poolName);
    const { pool } = entry;
    switch (action.kind) {
      case 'add':
        return this.startAdd(entry, action);
      case 'spare':
        return this.makeSpare(entry, action);
      default: {
        const resolved = this.requestsFor(pool, action);
        if ('reason' in resolved) throw new RequestFailedError(`cannot ${describeAction(pool.name, action)}: ${resolved.reason}`);
        const reasons: string[] = [];
        for (const request of resolved.requests) {
          try {
            return entry.jobs.started(await pool.jobs.start(request), action);
          } catch (error) {
            if (!(error instanceof JobError)) throw error;
            reasons.push(resolved.requests.length > 1 ? `${request.kind}: ${error.message}` : error.message);
          }
        }
        throw new RequestFailedError(`cannot ${describeAction(pool.name, action)}: ${reasons.join('; ')}`);
      }
    }
  }

  /** Takes a spare out of the pool (`spare: false`), or makes a drive a spare (`spare: true`). */
  async setSpare(poolName: string, member: string, spare: boolean): Promise<PoolStatus> {
    const entry = await this.registry.openEntry(poolName);
    if (spare) {
      await this.makeSpare(entry, { kind: 'spare', member });
    } else {
      const m = findMember(entry.pool, member);
      if (roleOf(entry.pool, m) !== 'spare') {
        throw new RequestFailedError(`member ${m.label} is a data member of pool ${poolName}, not a spare; to take it out, remove it (its data moves to the other members first)`);
      }
      await this.evacuateNow(entry, m);
    }
    return this.registry.status(poolName);
  }

  async list(poolName: string | undefined): Promise<JobSummary[]> {
    if (poolName !== undefined) return (await this.registry.openEntry(poolName)).jobs.list();
    const { open } = await this.registry.openAndUnavailable();
    return open.flatMap((entry) => entry.jobs.list());
  }

  async pause(id: string): Promise<JobSummary> {
    const { entry } = await this.findJob(id);
    return entry.jobs.summary(await entry.pool.jobs.pause(id));
  }

  async resume(id: string): Promise<JobSummary> {
    const { entry } = await this.findJob(id);
    return entry.jobs.summary(await entry.pool.jobs.resume(id));
  }

  async cancel(id: string): Promise<JobSummary> {
    const { entry } = await this.findJob(id);
    await entry.pool.jobs.cancel(id);
    const finished = entry.jobs.finishedJob(id);
    if (!finished) throw new Error(`job ${id} was cancelled but its report is missing`);
    return finished;
  }

  // ---------------------------------------------------------------- actions → requests

  private requestsFor(pool: Pool, action: Exclude<PlanAction, { kind: 'add' | 'spare' }>): Requests {
    switch (action.kind) {
      case 'rebuild':
        return rebuildRequests(pool, action.spare);
      case 'remove': {
        const member = tryFindMember(pool, action.member);
        if (typeof member === 'string') return { reason: member };
        return { requests: [{ kind: 'evacuate', member: member.uuid }] };
      }
      case 'migrate': {
        const { name, copies } = parseLayoutName(action.layout);
        return { requests: [{ kind: 'migrate', volume: action.volume, layout: name, copies, ...(action.width !== undefined ? { width: action.width } : {}) }] };
      }
      case 'rebalance':
        return { requests: [{ kind: 'rebalance' }] };
      case 'scrub':
        return { requests: [action.volume !== undefined ? { kind: 'scrub', volume: action.volume } : { kind: 'scrub' }] };
    }
  }

  // ---------------------------------------------------------------- add

  private async planAdd(pool: Pool, action: Extract<PlanAction, { kind: 'add' }>): Promise<Plan> {
    const title = describeAction(pool.name, action);
    const busy = busyReason(pool);
    if (busy) return stillPlan(pool, action, title, { reason: busy });
    let drives: ProbedDrive[];
    try {
      drives = await this.registry.probeDrives(action.members, { confirmExistingData: action.force === true });
    } catch (error) {
      // A disk helper's refusal to serve a disk that holds data: confirming (force) erases it.
      if ((error as { code?: unknown }).code === 'NEEDS_CONFIRMATION') {
        return { ...stillPlan(pool, action, title, { reason: `${describe(error)}; adding it with force erases that` }), erases: [describe(error)] };
      }
      return stillPlan(pool, action, title, { reason: describe(error) });
    }
    const inUse = drives.filter((d) => d.label?.inUse);
    if (inUse.length > 0) {
      const which = inUse.map((d) => `${d.uri} is member ${d.label!.memberUuid} of pool ${d.label!.poolName ?? d.label!.poolUuid}`).join('; ');
      return stillPlan(pool, action, title, { reason: `${which}: take it out of that pool first` });
    }
    const erases = drives.flatMap((d) => (d.label ? [`${d.uri} holds the label of member ${d.label.memberUuid} of ${labelOwner(d.label, pool)}: adding it erases that`] : []));
    if (erases.length > 0 && action.force !== true) {
      return { ...stillPlan(pool, action, title, { reason: `${erases.join('; ')}. Add it with force to erase it` }), erases };
    }
    try {
      const plan = forecastAdd(pool, action, drives, engineRate(pool));
      return erases.length > 0 ? { ...plan, erases } : plan;
    } catch (error) {
      if (error instanceof GeometryError) return stillPlan(pool, action, title, { reason: error.message });
      throw error;
    }
  }

  private async startAdd(entry: OpenPoolView, action: Extract<PlanAction, { kind: 'add' }>): Promise<JobSummary> {
    const { pool } = entry;
    const busy = busyReason(pool);
    if (busy) throw new RequestFailedError(`cannot ${describeAction(pool.name, action)}: ${busy}`);
    await this.registry.addMembers({ pool: pool.name, members: action.members, role: 'data', ...(action.force === true ? { force: true } : {}) });
    const names = action.members.join(', ');
    try {
      return entry.jobs.started(await pool.jobs.start({ kind: 'rebalance' }), action);
    } catch (error) {
      if (!(error instanceof JobError)) throw error;
      if (error.code === 'NOTHING_TO_DO') {
        return entry.jobs.recordImmediate(immediateJob(pool, 'rebalance', action, `Add ${names} to pool ${pool.name} (nothing to rebalance)`, [error.message]));
      }
      throw new RequestFailedError(`added ${names} to pool ${pool.name}, but the rebalance did not start: ${error.message}; start it later with a rebalance`);
    }
  }

  // ---------------------------------------------------------------- spares

  private async spareChange(
    pool: Pool,
    ref: string,
  ): Promise<{ kind: 'member'; member: Member } | { kind: 'new'; drive: { uri: string; size: number }; slabs: number } | { reason: string }> {
    let member: Member | undefined;
    try {
      member = findMember(pool, ref);
    } catch (error) {
      if (!(error instanceof MemberNotFoundError) || !MEMBER_URI.test(ref)) return { reason: describe(error) };
    }
    if (member) {
      if (roleOf(pool, member) === 'spare') return { reason: `${member.label} is already a spare of pool ${pool.name}` };
      if (member.state !== 'online') return { reason: `${member.label} is ${member.state}: only a healthy drive can be a spare` };
      const slabs = slabsOn(pool, member.uuid);
      if (slabs > 0) {
        return { reason: `${member.label} holds ${slabs} slab${slabs === 1 ? '' : 's'} of data: remove it from the pool first (its data moves to the other members), then make it the spare` };
      }
      const busy = pool.jobs.busyReason({ member: member.uuid });
      if (busy) return { reason: busy };
      return { kind: 'member', member };
    }
    try {
      const [drive] = await this.registry.probeDrives([ref]);
      return { kind: 'new', drive: drive!, slabs: memberGeometry(drive!.size, pool.state.slabSize).slabCount };
    } catch (error) {
      return { reason: describe(error) };
    }
  }

  private async makeSpare(entry: OpenPoolView, action: Extract<PlanAction, { kind: 'spare' }>): Promise<FinishedJob> {
    const { pool } = entry;
    const change = await this.spareChange(pool, action.member);
    if ('reason' in change) throw new RequestFailedError(`cannot ${describeAction(pool.name, action)}: ${change.reason}`);
    if (change.kind === 'new') {
      await this.registry.addMembers({ pool: pool.name, members: [change.drive.uri], role: 'spare' });
      return entry.jobs.recordImmediate(immediateJob(pool, 'spare', action, `Add ${change.drive.uri} to pool ${pool.name} as a spare`, []));
    }
    const { label } = change.member;
    await this.evacuateNow(entry, change.member);
    try {
      // Its labels were wiped as it left; force covers a wipe that failed (they would name this pool).
      await this.registry.addMembers({ pool: pool.name, members: [label], role: 'spare', force: true });
    } catch (error) {
      throw new RequestFailedError(`${label} left pool ${pool.name} as a data member but could not come back as a spare: ${describe(error)}`);
    }
    return entry.jobs.recordImmediate(immediateJob(pool, 'spare', action, `Make ${label} a spare of pool ${pool.name}`, []));
  }

  /** Takes a member that holds no data out of the pool: an evacuate with nothing to move, waited for. */
  private async evacuateNow(entry: OpenPoolView, member: Member): Promise<void> {
    let status: EngineJobStatus;
    try {
      status = await entry.pool.jobs.start({ kind: 'evacuate', member: member.uuid });
    } catch (error) {
      if (error instanceof JobError) throw new RequestFailedError(`cannot take ${member.label} out of pool ${entry.pool.name}: ${error.message}`);
      throw error;
    }
    entry.jobs.started(status, { kind: 'remove', member: member.uuid });
    const report = await entry.pool.jobs.wait(status.id);
    if (report.outcome !== 'done') {
      throw new RequestFailedError(`taking ${member.label} out of pool ${entry.pool.name} ${report.outcome}${report.reason ? `: ${report.reason}` : ''}`);
    }
  }

  // ---------------------------------------------------------------- finding jobs

  private async findJob(id: string): Promise<{ entry: OpenPoolView }> {
    const { open } = await this.registry.openAndUnavailable();
    for (const entry of open) {
      if (entry.pool.jobs.list().some((j) => j.id === id)) return { entry };
    }
    for (const entry of open) {
      const finished = entry.jobs.finishedJob(id);
      if (finished) throw new RequestFailedError(`job ${id} of pool ${entry.name} has already finished (${finished.state})`);
    }
    throw new RequestFailedError(`no job ${id}${open.length > 0 ? ` in pool${open.length === 1 ? '' : 's'} ${open.map((e) => e.name).join(', ')}` : ': there are no open pools'}`);
  }
}

// ---------------------------------------------------------------- helpers

function rebuildRequests(pool: Pool, spareRef: string | undefined): Requests {
  const lost = [...pool.members.values()].filter((m) => (m.state === 'failed' || m.state === 'missing') && slabsOn(pool, m.uuid) > 0);
  if (lost.length === 0) return { reason: `no member of pool ${pool.name} that holds data has failed or gone missing: there is nothing to rebuild` };
  const waiting = lost.filter((m) => !pool.jobs.jobsOnMember(m.uuid).some((j) => REPAIRS.has(j.kind)));
  if (waiting.length === 0) {
    const job = pool.jobs.jobsOnMember(lost[0]!.uuid).find((j) => REPAIRS.has(j.kind))!;
    return { reason: `${lost[0]!.label} is already being repaired by job ${job.id} (${job.summary})` };
  }
  const member = waiting[0]!;
  const notes = waiting.length > 1 ? [`${waiting.length - 1} more lost member(s) wait for their own rebuild: ${waiting.slice(1).map((m) => m.label).join(', ')}`] : [];
  if (spareRef !== undefined) {
    const spare = tryFindMember(pool, spareRef);
    if (typeof spare === 'string') return { reason: spare };
    return { requests: [{ kind: 'rebuild', member: member.uuid, spare: spare.uuid }], notes };
  }
  return {
    requests: [
      { kind: 'rebuild', member: member.uuid },
      { kind: 'relocate', member: member.uuid },
      { kind: 'split', member: member.uuid },
    ],
    notes,
  };
}

function tryFindMember(pool: Pool, ref: string): Member | string {
  try {
    return findMember(pool, ref);
  } catch (error) {
    if (error instanceof MemberNotFoundError) return error.message;
    throw error;
  }
}

function roleOf(pool: Pool, member: Member): 'data' | 'spare' {
  return pool.state.members.find((m) => m.uuid === member.uuid)?.role ?? 'data';
}

function slabsOn(pool: Pool, uuid: string): number {
  let n = 0;
  for (const chunk of pool.state.chunks.values()) for (const s of chunk.slabs) if (s.member === uuid) n++;
  return n;
}

/** A rebalance runs alone (it may move any chunk): the reason it cannot start now, if any. */
function busyReason(pool: Pool): string | undefined {
  const job = pool.jobs.list()[0];
  return job ? `job ${job.id} (${job.summary}) is unfinished, and the rebalance after adding drives runs alone: wait for it or cancel it first` : undefined;
}

/** The rate the engine's plans use for this pool: measured by its jobs, or the engine's default. */
function engineRate(pool: Pool): { bytesPerSecond: number; measured: boolean } {
  try {
    const plan = pool.jobs.plan({ kind: 'scrub' });
    return { bytesPerSecond: plan.rateBytesPerSecond, measured: plan.rateSource === 'measured' };
  } catch {
    return { bytesPerSecond: ENGINE_DEFAULT_RATE, measured: false };
  }
}

function immediateJob(pool: Pool, kind: JobKind, action: PlanAction, title: string, notes: readonly string[]): FinishedJob {
  const now = new Date().toISOString();
  return {
    id: `${kind}-${randomUUID().slice(0, 8)}`,
    pool: pool.name,
    kind,
    state: 'done',
    title,
    bytesDone: 0,
    bytesTotal: 0,
    rate: 0,
    etaSeconds: 0,
    heldBack: false,
    action,
    startedAt: now,
    finishedAt: now,
    report: { movedBytes: 0, elapsedSeconds: 0, badBlocks: [], blocksRepaired: 0, blocksLost: 0, membersRemoved: [], notes },
  };
}

/** Whose label a drive carries, in words. */
function labelOwner(label: NonNullable<ProbedDrive['label']>, pool: Pool): string {
  if (label.poolUuid === pool.state.uuid) return `this pool (it left while it could not be reached, so its labels stayed)`;
  return label.poolName !== undefined ? `pool ${label.poolName}` : `another Spindle pool (${label.poolUuid}), not open here`;
}

/** The action in words, for impossible plans and refusals. */
export function describeAction(pool: string, action: PlanAction): string {
  switch (action.kind) {
    case 'add':
      return `add ${action.members.join(', ')} to pool ${pool}`;
    case 'remove':
      return `remove ${action.member} from pool ${pool}`;
    case 'spare':
      return `make ${action.member} a spare of pool ${pool}`;
    case 'migrate':
      return `migrate volume ${pool}/${action.volume} to ${action.layout}`;
    case 'rebalance':
      return `rebalance pool ${pool}`;
    case 'rebuild':
      return `rebuild pool ${pool}${action.spare !== undefined ? ` onto ${action.spare}` : ''}`;
    case 'scrub':
      return action.volume !== undefined ? `scrub volume ${pool}/${action.volume}` : `scrub pool ${pool}`;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
