/** How the pool looks after itself: automatic repair, and how much jobs may slow foreground I/O. */
import { useState, type FormEvent } from 'react';
import { useEngine } from '../../platform/engine-context';
import { useAppStore } from '../../store/app-store';

/** The contract's LATENCY_BUDGET_MIN and _MAX (the renderer takes only types from it; the engine host checks again). */
const LATENCY_BUDGET_MIN = 1.1;
const LATENCY_BUDGET_MAX = 10;

export function PoolPolicyForm({ pool }: { pool: string }) {
  const engine = useEngine();
  const notify = useAppStore((s) => s.notify);
  const current = useAppStore((s) => s.poolStatus[pool]?.policy);
  const [autoRepair, setAutoRepair] = useState(current?.autoRepair ?? true);
  const [budget, setBudget] = useState(String(current?.latencyBudget ?? 2));
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const reply = await engine.api.request('pool-set-policy', { pool, policy: { autoRepair, latencyBudget: Number(budget) } });
      setAutoRepair(reply.policy.autoRepair);
      setBudget(String(reply.policy.latencyBudget));
      notify({ level: 'success', title: `Policy of pool ${pool} saved` });
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <details className="pool-policy small">
      <summary>Policy</summary>
      <form className="inline-form" aria-label={`Policy of pool ${pool}`} onSubmit={(e) => void submit(e)}>
        <label className="checkbox-label">
          <input type="checkbox" checked={autoRepair} onChange={(e) => setAutoRepair(e.target.checked)} />
          Repair automatically when a drive fails (onto the spare, else into free space)
        </label>
        <label>
          Jobs may slow foreground I/O to (× its idle p99 latency)
          <input
            type="number"
            min={LATENCY_BUDGET_MIN}
            max={LATENCY_BUDGET_MAX}
            step={0.1}
            value={budget}
            onChange={(e) => setBudget(e.target.value)}
            className="tabular"
          />
        </label>
        <div className="form-buttons">
          <button type="submit" className="button" disabled={busy}>
            Save policy
          </button>
        </div>
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
      </form>
    </details>
  );
}
