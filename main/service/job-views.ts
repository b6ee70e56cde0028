/**
 * The contract's views of engine jobs (preload/api.ts): progress, summaries,
 * reports with their bad blocks placed in their volumes, and the action a
 * job carries out (for jobs the engine started by itself, or resumed after
 * a restart, the action is read back from the job's request).
 */
import type { BadBlock } from '../engine/chunk-io.js';
import type {
  JobProgress as EngineJobProgress,
  JobReport as EngineJobReport,
  JobRequest,
  JobStatus as EngineJobStatus,
} from '../engine/job-types.js';
import { STRIPE_UNIT } from '../engine/layout.js';
import { layouts } from '../engine/layouts.js';
import type { Pool } from '../engine/pool.js';
import type { BadBlockRepair, JobProgress, JobReport, JobSummary, PlanAction, VolumeLayout } from '../../preload/api.js';
import { layoutSpelling } from './pool-views.js';

const BLOCK = 4096;

export type FinishedJob = JobSummary & { readonly report: JobReport };

/**
 * Member URIs as people tell drives apart in a sentence: a drive served on
 * a local socket (a demo image, a helper disk) by its export name ("disk1"),
 * not by the socket path.
 */
export function readableLabels(text: string): string {
  return text.replace(/nbd\+unix:\/\/\/([^?\s]+)\?socket=[^\s)]+/g, '$1');
}

/** The engine's one-line summary, as a title for people. */
export function jobTitle(summary: string): string {
  const text = readableLabels(summary);
  return text.length > 0 ? text[0]!.toUpperCase() + text.slice(1) : text;
}

/** The contract action a job request carries out. */
export function actionOf(request: JobRequest): PlanAction {
  switch (request.kind) {
    case 'rebuild':
      return request.spare !== undefined ? { kind: 'rebuild', spare: request.spare } : { kind: 'rebuild' };
    case 'relocate':
    case 'split':
      return { kind: 'rebuild' };
    case 'evacuate':
      return { kind: 'remove', member: request.member };
    case 'rebalance':
      return { kind: 'rebalance' };
    case 'migrate': {
      const layout = layoutSpelling({ name: request.layout, copies: request.copies ?? defaultCopies(request.layout), width: 0 }) as VolumeLayout;
      return { kind: 'migrate', volume: request.volume, layout, ...(request.width !== undefined ? { width: request.width } : {}) };
    }
    case 'scrub':
      return request.volume !== undefined ? { kind: 'scrub', volume: request.volume } : { kind: 'scrub' };
  }
}

function defaultCopies(layout: string): number {
  return layout === 'raid1' || layout === 'raid10' ? 2 : 1;
}

export function jobProgress(pool: string, progress: EngineJobProgress, title: string): JobProgress {
  return {
    id: progress.id,
    pool,
    kind: progress.kind,
    state: progress.state,
    title,
    bytesDone: progress.bytesDone,
    bytesTotal: progress.bytesTotal,
    rate: progress.rateBytesPerSecond,
    etaSeconds: progress.etaMs === undefined ? null : Math.ceil(progress.etaMs / 1000),
    heldBack: progress.state === 'running' && progress.throttled,
  };
}

export function jobSummary(pool: string, status: EngineJobStatus, action: PlanAction | undefined): JobSummary {
  return {
    ...jobProgress(pool, status, jobTitle(status.summary)),
    action: action ?? actionOf(status.request),
    startedAt: new Date(status.created).toISOString(),
  };
}

/** A finished job: its last progress (all done when it succeeded), and its report. */
export function finishedJob(pool: Pool, report: EngineJobReport, title: string, action: PlanAction | undefined): FinishedJob {
  const scrub = report.kind === 'scrub';
  const done = report.outcome === 'done';
  return {
    id: report.id,
    pool: pool.name,
    kind: report.kind,
    state: report.outcome,
    title,
    bytesDone: report.bytes,
    bytesTotal: report.bytes,
    rate: 0,
    etaSeconds: done ? 0 : null,
    heldBack: false,
    action: action ?? actionOf(report.request),
    startedAt: new Date(report.created).toISOString(),
    finishedAt: new Date(report.finished).toISOString(),
    report: {
      movedBytes: scrub ? 0 : report.bytes,
      ...(scrub ? { checkedBytes: report.bytes } : {}),
      elapsedSeconds: Math.max(0, (report.finished - report.created) / 1000),
      badBlocks: report.badBlocks.map((b) => badBlockRepair(pool, b)),
      blocksRepaired: report.blocksRepaired,
      blocksLost: report.blocksLost,
      membersRemoved: report.membersRemoved,
      notes: report.notes,
      ...(report.reason !== undefined ? { error: report.reason } : {}),
    },
  };
}

/**
 * Where a bad block is in its volume. A data column's block is one 4 KiB
 * block of the volume; a parity column's block covers that block of every
 * data unit of the row, so it is reported as the row's first data unit's.
 */
export function badBlockRepair(pool: Pool, bad: BadBlock): BadBlockRepair {
  const repairedFrom =
    bad.from === undefined ? 'nothing valid was left' : bad.from === 'parity' ? `parity of row ${bad.row}` : `copy on ${bad.from.replace(/^copy:/, '')}`;
  const place = placeInVolume(pool, bad);
  return { volume: place?.volume ?? `(chunk ${bad.chunk}, no longer in a volume)`, offset: place?.offset ?? 0, bytes: BLOCK, member: bad.member, repairedFrom };
}

function placeInVolume(pool: Pool, bad: BadBlock): { volume: string; offset: number } | undefined {
  const chunkBytes = (id: number): number => {
    const spec = pool.state.chunks.get(id)!.spec;
    return layouts[spec.name].dataUnits(spec) * pool.geometry.dataBytes;
  };
  for (const volume of pool.state.volumes) {
    const index = volume.chunks.indexOf(bad.chunk);
    if (index < 0) continue;
    const info = pool.state.chunks.get(bad.chunk)!;
    const layout = layouts[info.spec.name];
    const unitsPerRow = layout.dataUnits(info.spec);
    const column = info.slabs.findIndex((s) => s.member === bad.member);
    const unit = Math.max(0, layout.row(info.spec, bad.row).data.findIndex((copies) => copies.includes(column)));
    let offset = 0;
    for (const earlier of volume.chunks.slice(0, index)) offset += chunkBytes(earlier);
    offset += bad.row * unitsPerRow * STRIPE_UNIT + unit * STRIPE_UNIT + bad.block * BLOCK;
    return { volume: volume.name, offset };
  }
  return undefined;
}
