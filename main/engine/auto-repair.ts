/**
 * Automatic repair (pool policy autoRepair): when a member fails and holds
 * data, a repair job starts by itself — onto a spare first (rebuild), else
 * onto one member with room (relocate), else spread over several (split).
 * A rebalance, migrate, evacuate or scrub in the way is cancelled first by
 * the runner (restoring redundancy comes before everything else; cancel
 * leaves the pool consistent). When nothing fits, the reasons are logged and the member
 * waits for a person (or for a spare to be added).
 */
import type { JobRunner } from './job-runner.js';
import { JobError, type JobHost, type JobRequest, type JobStatus } from './job-types.js';
import { columnsOn } from './job-moves.js';

const REPAIRS = new Set(['rebuild', 'relocate', 'split']);

export async function autoRepair(runner: JobRunner, host: JobHost, uuid: string): Promise<JobStatus | undefined> {
  const member = host.pool.members.get(uuid);
  if (!member || member.state !== 'failed') return undefined;
  if (columnsOn(host, uuid).length === 0) return undefined;
  const busy = runner.jobsOnMember(uuid);
  if (busy.some((j) => REPAIRS.has(j.kind))) return undefined;
  const requests: JobRequest[] = [
    { kind: 'rebuild', member: uuid },
    { kind: 'relocate', member: uuid },
    { kind: 'split', member: uuid },
  ];
  const reasons: string[] = [];
  for (const request of requests) {
    try {
      runner.plan(request);
    } catch (error) {
      reasons.push(`${request.kind}: ${(error as Error).message}`);
      continue;
    }
    try {
      // The runner cancels a rebalance, migrate, evacuate or scrub in the way: repairs come first.
      const status = await runner.start(request);
      host.log('warn', `member ${member.label} failed: automatic repair started (job ${status.id}: ${status.summary})`);
      return status;
    } catch (error) {
      if (!(error instanceof JobError)) throw error;
      reasons.push(`${request.kind}: ${error.message}`);
    }
  }
  host.log('error', `member ${member.label} failed and cannot be repaired automatically: ${reasons.join('; ')}`);
  return undefined;
}
