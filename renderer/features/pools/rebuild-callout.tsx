/**
 * The one prominent action on a degraded pool: Rebuild starts the engine's
 * recommended rebuild at once (the spare first, else relocate or split into
 * free space); its plan is one click away, beside it.
 */
import { useState } from 'react';
import { useEngine } from '../../platform/engine-context';
import { useAppStore } from '../../store/app-store';

export function RebuildCallout({ pool }: { pool: string }) {
  const engine = useEngine();
  const requestPlan = useAppStore((s) => s.requestPlan);
  const notify = useAppStore((s) => s.notify);
  const [busy, setBusy] = useState(false);
  const rebuild = async (): Promise<void> => {
    setBusy(true);
    try {
      const job = await engine.api.request('job-start', { pool, action: { kind: 'rebuild' } });
      useAppStore.getState().setJobs([job]);
    } catch (error) {
      notify({ level: 'error', title: `Could not start the rebuild of pool ${pool}`, detail: (error as Error).message });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="rebuild-callout" role="group" aria-label={`Pool ${pool} needs a rebuild`}>
      <p>
        <strong>Redundancy is reduced.</strong> Rebuild to get it back: onto the spare when there is one, else into free space on the other drives.
      </p>
      <div className="callout-buttons">
        <button type="button" className="button button-primary button-large" disabled={busy} onClick={() => void rebuild()}>
          Rebuild
        </button>
        <button
          type="button"
          className="button button-small"
          onClick={() => requestPlan({ pool, action: { kind: 'rebuild' }, title: `Rebuild pool ${pool}` })}
          aria-label={`Show the rebuild plan of pool ${pool}`}
        >
          Show the plan
        </button>
      </div>
    </div>
  );
}
