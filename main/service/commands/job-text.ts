/**
 * Plans, jobs and drives as text for people (the CLI without --json):
 * plans as a short report with a table of space per member, jobs as a
 * table or as one progress line each (a bar on a terminal), drives as a
 * table.
 */
import { formatSize } from '../../engine/units.js';
import type { Drive, JobProgress, JobSummary, Plan, PoolPolicy } from '../../../preload/api.js';
import { shortId, table } from './status-text.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-/;

/** A member as the plan names it: its short uuid and URI, or the URI of a drive not in the pool yet. */
function memberName(member: string, uri: string): string {
  return UUID.test(member) ? `${shortId(member)} ${uri}` : `(new) ${uri}`;
}

export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function planText(plan: Plan): string {
  if (!plan.possible) return `cannot ${plan.summary}: ${plan.reason ?? 'the engine gave no reason'}`;
  const lines = [
    `plan: ${plan.summary}`,
    plan.action.kind === 'scrub' ? `  data to read:      ${formatSize(plan.bytesToMove)}` : `  data to move:      ${formatSize(plan.bytesToMove)}`,
    `  estimated time:    ${formatSeconds(plan.estimatedSeconds)}`,
    `  redundancy during: ${plan.redundancyDuring.description}`,
    `  redundancy after:  ${plan.redundancyAfter.description}`,
    `  risk window:       ${plan.riskWindowSeconds > 0 ? `${formatSeconds(plan.riskWindowSeconds)} with less redundancy than after` : 'none'}`,
    '  space per member (used before → after):',
    table(
      ['MEMBER', 'BEFORE', 'AFTER', 'FREE AFTER'],
      plan.perMember.map((m) => {
        const leaves = m.after.usedBytes === 0 && m.after.freeBytes === 0 && m.before.usedBytes + m.before.freeBytes > 0;
        return [memberName(m.member, m.uri), formatSize(m.before.usedBytes), leaves ? 'leaves the pool' : formatSize(m.after.usedBytes), leaves ? '-' : formatSize(m.after.freeBytes)];
      }),
      '    ',
    ),
  ];
  for (const note of plan.notes ?? []) lines.push(`  note: ${note}`);
  for (const erased of plan.erases ?? []) lines.push(`  erases: ${erased}`);
  return lines.join('\n');
}

export function rateText(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatSize(bytesPerSecond)}/s` : '-';
}

function percent(job: JobProgress): string {
  if (job.state === 'done') return '100%';
  if (job.bytesTotal <= 0) return '0%';
  return `${Math.min(100, Math.floor((job.bytesDone * 100) / job.bytesTotal))}%`;
}

function bar(job: JobProgress, width: number): string {
  const fraction = job.state === 'done' ? 1 : job.bytesTotal > 0 ? Math.min(1, job.bytesDone / job.bytesTotal) : 0;
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

function eta(job: JobProgress): string {
  if (job.state !== 'running') return '';
  return job.etaSeconds === null ? 'ETA ?' : `ETA ${formatSeconds(job.etaSeconds)}`;
}

/** Why a job goes slower than it could: said beside its rate and ETA. */
const HELD_BACK = '(held back for foreground I/O)';

/** One job on one line: a bar on a terminal, plain words otherwise. */
export function jobLine(job: JobProgress, options: { bar: boolean }): string {
  const progress = options.bar ? `${bar(job, 24)} ${percent(job).padStart(4)}` : percent(job);
  const parts = [`job ${job.id}`, job.state.padEnd(9), progress, `${formatSize(job.bytesDone)} of ${formatSize(job.bytesTotal)}`];
  if (job.state === 'running') parts.push(rateText(job.rate), eta(job), job.heldBack ? HELD_BACK : '');
  parts.push(`${job.pool}: ${job.title}`);
  return parts.filter((p) => p !== '').join('  ');
}

/** What a finished job did, in one line. */
export function reportLine(job: JobSummary): string {
  const report = job.report;
  if (!report) return jobLine(job, { bar: false });
  const bad = report.badBlocks.length;
  const facts = [
    report.checkedBytes !== undefined ? `checked ${formatSize(report.checkedBytes)}` : `moved ${formatSize(report.movedBytes)}`,
    `in ${formatSeconds(report.elapsedSeconds)}`,
    ...(bad > 0 ? [`${report.blocksRepaired ?? bad} bad block(s) repaired`] : []),
    ...(report.blocksLost ? [`${report.blocksLost} block(s) lost`] : []),
  ];
  return `job ${job.id} ${job.state}: ${job.pool}: ${job.title} — ${facts.join(', ')}${report.error ? ` (${report.error})` : ''}`;
}

export function jobsText(jobs: readonly JobSummary[]): string {
  if (jobs.length === 0) return 'no jobs';
  return table(
    ['ID', 'POOL', 'KIND', 'STATE', 'DONE', 'RATE', 'ETA', 'TITLE'],
    jobs.map((j) => [
      j.id,
      j.pool,
      j.kind,
      j.state,
      percent(j),
      j.state === 'running' ? `${rateText(j.rate)}${j.heldBack ? ' (held back)' : ''}` : '-',
      j.state === 'running' && j.etaSeconds !== null ? formatSeconds(j.etaSeconds) : '-',
      j.title,
    ]),
    '',
  );
}

function smartText(drive: Drive): string {
  if (!drive.smart) return '-';
  const temp = drive.smart.temperatureC !== null ? ` ${drive.smart.temperatureC}°C` : '';
  return `${drive.smart.verdict}${temp}`;
}

export function drivesText(drives: readonly Drive[]): string {
  if (drives.length === 0) return 'no drives';
  return table(
    ['DRIVE', 'SIZE', 'STATE', 'POOL', 'ROLE', 'SMART', 'URI'],
    drives.map((d) => [
      d.path + (d.model ? ` (${d.model})` : ''),
      formatSize(d.size),
      d.state,
      d.poolName ?? '-',
      d.role ?? (d.unusableReason ? 'unusable' : 'unassigned'),
      smartText(d),
      d.unusableReason ? `${d.uri} (${d.unusableReason})` : d.uri,
    ]),
    '',
  );
}

export function policyText(pool: string, policy: PoolPolicy): string {
  return `pool ${pool}: automatic repair ${policy.autoRepair ? 'on' : 'off'}, latency budget ${policy.latencyBudget}× the idle p99 while jobs run`;
}
