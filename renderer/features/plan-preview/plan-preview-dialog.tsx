/**
 * The plan for a reconfiguration, from the engine, before anything changes:
 * data to move, space per drive before and after, redundancy during and
 * after, time and risk window; Confirm starts the job, Cancel changes nothing.
 */
import { useEffect, useState } from 'react';
import type { Plan } from '../../../preload/api';
import { driveLabel } from '../../lib/drive-label';
import { formatBytes, formatDuration } from '../../lib/format';
import { ModalDialog } from '../../lib/ui/modal-dialog';
import { useEngine } from '../../platform/engine-context';
import { useAppStore } from '../../store/app-store';
import type { PlanRequest } from '../../store/ui-slice';

export function PlanPreview() {
  const request = useAppStore((s) => s.planRequest);
  return request ? <PlanPreviewDialog key={JSON.stringify(request)} request={request} /> : null;
}

type Loaded = { kind: 'loading' } | { kind: 'plan'; plan: Plan } | { kind: 'error'; message: string };

function PlanPreviewDialog({ request }: { request: PlanRequest }) {
  const engine = useEngine();
  const close = useAppStore((s) => s.closePlan);
  const notify = useAppStore((s) => s.notify);
  const [loaded, setLoaded] = useState<Loaded>({ kind: 'loading' });
  const [starting, setStarting] = useState(false);
  const [startError, setStartError] = useState<string>();

  useEffect(() => {
    let live = true;
    engine.api.request('plan', { pool: request.pool, action: request.action }).then(
      (plan) => live && setLoaded({ kind: 'plan', plan }),
      (error: Error) => live && setLoaded({ kind: 'error', message: error.message }),
    );
    return () => {
      live = false;
    };
  }, [engine, request]);

  const confirm = async (): Promise<void> => {
    setStarting(true);
    try {
      const job = await engine.api.request('job-start', { pool: request.pool, action: request.action });
      useAppStore.getState().setJobs([job]);
      close();
    } catch (error) {
      setStartError((error as Error).message);
      notify({ level: 'error', title: `Could not start: ${request.title}`, detail: (error as Error).message });
    } finally {
      setStarting(false);
    }
  };

  const plan = loaded.kind === 'plan' ? loaded.plan : undefined;
  return (
    <ModalDialog title={request.title} onClose={close} className="plan-dialog">
      {loaded.kind === 'loading' ? (
        <p className="muted" role="status">
          Asking the engine for a plan…
        </p>
      ) : null}
      {loaded.kind === 'error' ? (
        <p className="error" role="alert">
          The engine could not plan this: {loaded.message}
        </p>
      ) : null}
      {plan?.erases && plan.erases.length > 0 ? <ErasesBlock plan={plan} request={request} /> : null}
      {plan && !(plan.erases?.length && !plan.possible) ? <PlanDetails plan={plan} /> : null}
      {startError ? (
        <p className="error" role="alert">
          {startError}
        </p>
      ) : null}
      <div className="form-buttons">
        <button type="button" className="button button-primary" disabled={!plan?.possible || starting} onClick={() => void confirm()}>
          Confirm
        </button>
        <button type="button" className="button" onClick={close}>
          Cancel
        </button>
      </div>
    </ModalDialog>
  );
}

/**
 * What confirming would destroy (another pool's labels on a drive, data a
 * disk helper found). Nothing is erased until the person ticks the box, which
 * asks the engine for the plan again with `force`, and then confirms it.
 */
function ErasesBlock({ plan, request }: { plan: Plan; request: PlanRequest }) {
  const requestPlan = useAppStore((s) => s.requestPlan);
  const action = request.action;
  return (
    <div className={plan.possible ? 'plan-erases plan-summary' : 'plan-erases plan-impossible'} role={plan.possible ? 'note' : 'alert'}>
      <p>
        <strong>{plan.possible ? 'Confirming erases:' : 'This drive holds data that adding it would erase:'}</strong>
      </p>
      <ul>
        {plan.erases!.map((line) => (
          <li key={line}>{line}</li>
        ))}
      </ul>
      {action.kind === 'add' ? (
        <label className="checkbox-label">
          <input type="checkbox" checked={action.force === true} onChange={(e) => requestPlan({ ...request, action: { ...action, force: e.target.checked } })} />
          Erase it and add it to pool {request.pool}
        </label>
      ) : null}
    </div>
  );
}

function PlanDetails({ plan }: { plan: Plan }) {
  if (!plan.possible) {
    return (
      <div className="plan-impossible" role="alert">
        <p>
          <strong>This cannot be done:</strong> {plan.reason ?? 'the engine gave no reason.'}
        </p>
      </div>
    );
  }
  const max = Math.max(1, ...plan.perMember.map((m) => Math.max(m.before.usedBytes + m.before.freeBytes, m.after.usedBytes + m.after.freeBytes)));
  return (
    <div className="plan-details">
      <p className="plan-summary">{plan.summary}</p>
      <dl className="facts tabular">
        <dt>Data to move</dt>
        <dd>{formatBytes(plan.bytesToMove)}</dd>
        <dt>Estimated time</dt>
        <dd>{formatDuration(plan.estimatedSeconds)}</dd>
        <dt>Redundancy while it runs</dt>
        <dd>{plan.redundancyDuring.description}</dd>
        <dt>Redundancy after</dt>
        <dd>{plan.redundancyAfter.description}</dd>
        <dt>Risk window</dt>
        <dd>{plan.riskWindowSeconds > 0 ? `${formatDuration(plan.riskWindowSeconds)} with less redundancy than after` : 'none'}</dd>
      </dl>
      <table className="plan-table tabular">
        <caption>Space per drive</caption>
        <thead>
          <tr>
            <th scope="col">Drive</th>
            <th scope="col">Used before</th>
            <th scope="col">Used after</th>
            <th scope="col">
              <span className="visually-hidden">Picture</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {plan.perMember.map((m) => (
            <tr key={m.member}>
              <th scope="row">{driveLabel(m.uri)}</th>
              <td>{formatBytes(m.before.usedBytes)}</td>
              <td>{formatBytes(m.after.usedBytes)}</td>
              <td className="plan-bars" aria-hidden="true">
                <span className="plan-bar before" style={{ width: `${(m.before.usedBytes / max) * 100}%` }} />
                <span className="plan-bar after" style={{ width: `${(m.after.usedBytes / max) * 100}%` }} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
