/** Live jobs: progress, rate, ETA and state, with pause/resume/cancel; finished ones keep their report. */
import { memo, useState } from 'react';
import { driveLabel } from '../../lib/drive-label';
import { formatBytes, formatDuration, formatPercent, formatRate } from '../../lib/format';
import { StateBadge } from '../../lib/ui/state-badge';
import { useEngine } from '../../platform/engine-context';
import { useAppStore } from '../../store/app-store';
import type { JobView } from '../../store/jobs-slice';

export function JobsPanel() {
  const order = useAppStore((s) => s.jobOrder);
  const problem = useAppStore((s) => s.jobsProblem);
  return (
    <section className="panel jobs-panel" aria-labelledby="jobs-title">
      <div className="panel-head">
        <h2 id="jobs-title">Jobs</h2>
      </div>
      {order.length === 0 ? (
        <p className="muted small">{problem ? `No jobs: the engine host says “${problem}”.` : 'No jobs running.'}</p>
      ) : (
        <ul className="job-list" aria-label="Jobs">
          {order.map((id) => (
            <JobRow key={id} id={id} />
          ))}
        </ul>
      )}
    </section>
  );
}

const ACTIVE = new Set(['queued', 'running', 'paused']);

const JobRow = memo(function JobRow({ id }: { id: string }) {
  const job = useAppStore((s) => s.jobs[id]);
  const forget = useAppStore((s) => s.forgetJob);
  if (!job) return null;
  const titleId = `job-title-${id}`;
  const active = ACTIVE.has(job.state);
  const pct = job.bytesTotal > 0 ? Math.min(100, (job.bytesDone / job.bytesTotal) * 100) : 0;
  return (
    <li className={`job job-${job.state}`} aria-labelledby={titleId} data-testid={`job-${id}`}>
      <div className="job-head">
        <h3 id={titleId}>{job.title}</h3>
        <span className="job-badges">
          {job.heldBack ? (
            <span className="badge tone-idle" title="Held back so that foreground I/O keeps its speed: the rate and time left follow its load">
              Held back
            </span>
          ) : null}
          <StateBadge state={job.state} />
        </span>
      </div>
      <div
        className="progress"
        role="progressbar"
        aria-labelledby={titleId}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(pct)}
        aria-valuetext={`${formatPercent(job.bytesDone, job.bytesTotal)}, ${formatBytes(job.bytesDone)} of ${formatBytes(job.bytesTotal)}`}
      >
        <span className="progress-fill" style={{ transform: `scaleX(${pct / 100})` }} />
      </div>
      <dl className="job-numbers small tabular">
        <div>
          <dt>Done</dt>
          <dd>
            <span className="num-fixed">{formatPercent(job.bytesDone, job.bytesTotal)}</span> · {formatBytes(job.bytesDone)} of {formatBytes(job.bytesTotal)}
          </dd>
        </div>
        <div>
          <dt>Rate</dt>
          <dd className="num-fixed">{active ? formatRate(job.rate) : '—'}</dd>
        </div>
        <div>
          <dt>Time left</dt>
          <dd className="num-fixed">{job.state === 'running' ? formatDuration(job.etaSeconds) : '—'}</dd>
        </div>
      </dl>
      {active ? <JobControls job={job} /> : null}
      {job.report ? <JobReportView job={job} /> : null}
      {!active ? (
        <button type="button" className="button button-small" onClick={() => forget(id)} aria-label={`Dismiss ${job.title}`}>
          Dismiss
        </button>
      ) : null}
    </li>
  );
});

function JobControls({ job }: { job: JobView }) {
  const engine = useEngine();
  const notify = useAppStore((s) => s.notify);
  const [busy, setBusy] = useState(false);
  const run = async (what: 'job-pause' | 'job-resume' | 'job-cancel'): Promise<void> => {
    setBusy(true);
    try {
      await engine.api.request(what, { id: job.id });
    } catch (error) {
      notify({ level: 'error', title: `Could not ${what.slice(4)} ${job.title}`, detail: (error as Error).message });
    } finally {
      setBusy(false);
      void engine.refreshJobs();
    }
  };
  return (
    <div className="job-controls">
      {job.state === 'paused' ? (
        <button type="button" className="button button-small" disabled={busy} onClick={() => void run('job-resume')} aria-label={`Resume ${job.title}`}>
          Resume
        </button>
      ) : (
        <button type="button" className="button button-small" disabled={busy} onClick={() => void run('job-pause')} aria-label={`Pause ${job.title}`}>
          Pause
        </button>
      )}
      <button type="button" className="button button-small button-danger" disabled={busy} onClick={() => void run('job-cancel')} aria-label={`Cancel ${job.title}`}>
        Cancel
      </button>
    </div>
  );
}

function JobReportView({ job }: { job: JobView }) {
  const report = job.report!;
  const members = useAppStore((s) => s.poolStatus[job.pool]?.members);
  const label = (uuid: string) => {
    const m = members?.find((x) => x.uuid === uuid);
    return m ? driveLabel(m.uri) : uuid.slice(0, 8);
  };
  return (
    <div className="job-report small" role="group" aria-label={`Report of ${job.title}`}>
      <p>
        Moved {formatBytes(report.movedBytes)} in {formatDuration(report.elapsedSeconds)}.
        {report.error ? <span className="text-bad"> {report.error}</span> : null}
      </p>
      {report.badBlocks.length > 0 ? (
        <ul>
          {report.badBlocks.map((b, i) => (
            <li key={i}>
              Bad block in {b.volume} at {formatBytes(b.offset)} ({formatBytes(b.bytes)}) on {label(b.member)}, repaired from {b.repairedFrom}
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">No bad blocks found.</p>
      )}
    </div>
  );
}
