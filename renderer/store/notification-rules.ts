/**
 * Which engine events deserve a notification, and in what words. Pure
 * functions of the event and what the store knew before it, so each rule is
 * tested on its own (notification-rules.test.ts).
 */
import type { ErrorCounts, Events, JobProgress, JobSummary, MemberState } from '../../preload/api';
import { formatBytes, formatDuration } from '../lib/format';
import type { Notice } from './notifications-slice';

export function memberStateNotice(label: string, pool: string, before: MemberState | undefined, after: MemberState, reason?: string): Notice | undefined {
  if (before === after) return undefined;
  if (after === 'failed') {
    return { level: 'error', title: `Drive ${label} failed`, detail: `Pool ${pool} is running without it${reason ? `: ${reason}` : ''}.` };
  }
  if (after === 'missing') return { level: 'warn', title: `Drive ${label} is missing`, detail: `Pool ${pool} cannot reach it.` };
  if (after === 'resyncing') return { level: 'info', title: `Repair started on ${label}`, detail: `Pool ${pool} is copying back what the drive missed.` };
  if (after === 'online' && before !== undefined && before !== 'online') {
    return { level: 'success', title: `Repair finished: ${label} is back online`, detail: `Pool ${pool} has its redundancy back.` };
  }
  return undefined;
}

export function memberErrorsNotice(label: string, pool: string, before: ErrorCounts | undefined, after: ErrorCounts): Notice | undefined {
  const base = before ?? { read: 0, write: 0, checksum: 0 };
  const checksum = after.checksum - base.checksum;
  const io = after.read - base.read + (after.write - base.write);
  const key = `errors:${pool}/${label}`;
  if (checksum > 0) {
    return {
      level: 'warn',
      key,
      title: `Checksum errors found on ${label}`,
      detail: `${after.checksum} bad block${after.checksum === 1 ? '' : 's'} found on this drive in pool ${pool} so far; good data was served from redundancy and the bad copy rewritten.`,
    };
  }
  if (io > 0) return { level: 'warn', key, title: `I/O errors on ${label}`, detail: `${after.read} read and ${after.write} write errors on this drive in pool ${pool} so far.` };
  return undefined;
}

/** The engine's log lines about read repair. */
export function logNotice(entry: Events['log']): Notice | undefined {
  const where = entry.pool ? ` in pool ${entry.pool}` : '';
  if (/^repaired \d+ block/.test(entry.message)) return { level: 'success', key: `repair:${entry.pool ?? ''}`, title: `Repair finished${where}`, detail: capitalise(entry.message) + '.' };
  if (/^repair of .* failed/.test(entry.message)) return { level: 'error', title: `Repair failed${where}`, detail: capitalise(entry.message) + '.' };
  return undefined;
}

const REPAIR_KINDS = new Set(['rebuild', 'relocate', 'split', 'evacuate']);

export function jobStartedNotice(job: JobProgress, known: boolean): Notice | undefined {
  if (known || job.state !== 'running') return undefined;
  const what = REPAIR_KINDS.has(job.kind) ? 'Repair started' : 'Job started';
  return { level: 'info', title: `${what}: ${job.title}`, detail: `Pool ${job.pool}, ${formatBytes(job.bytesTotal)} to move.` };
}

export function jobFinishedNotice(job: JobSummary & { report: NonNullable<JobSummary['report']> }): Notice {
  const what = REPAIR_KINDS.has(job.kind) ? 'Repair' : 'Job';
  const { report } = job;
  if (job.state === 'failed') return { level: 'error', title: `${what} failed: ${job.title}`, detail: report.error ?? 'The engine gave no reason.' };
  if (job.state === 'cancelled') return { level: 'warn', title: `${what} cancelled: ${job.title}`, detail: `${formatBytes(report.movedBytes)} had been moved.` };
  const bad = report.badBlocks.length;
  return {
    level: 'success',
    title: `${what} finished: ${job.title}`,
    detail: `Moved ${formatBytes(report.movedBytes)} in ${formatDuration(report.elapsedSeconds)}${bad ? `; ${bad} bad block${bad === 1 ? '' : 's'} repaired` : ''}.`,
  };
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
