/** How the pool looks after itself: automatic rebuild onto the spare, the share of bandwidth jobs may take, scrub interval. */
import { useState, type FormEvent } from 'react';
import { useEngine } from '../../platform/engine-context';
import { useAppStore } from '../../store/app-store';

export function PoolPolicyForm({ pool }: { pool: string }) {
  const engine = useEngine();
  const notify = useAppStore((s) => s.notify);
  const [autoRebuild, setAutoRebuild] = useState(true);
  const [share, setShare] = useState('25');
  const [scrubDays, setScrubDays] = useState('30');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const reply = await engine.api.request('pool-set-policy', {
        pool,
        policy: { autoRebuild, jobIoShare: Number(share) / 100, scrubIntervalHours: Math.round(Number(scrubDays) * 24) },
      });
      setAutoRebuild(reply.policy.autoRebuild);
      setShare(String(Math.round(reply.policy.jobIoShare * 100)));
      setScrubDays(String(reply.policy.scrubIntervalHours / 24));
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
          <input type="checkbox" checked={autoRebuild} onChange={(e) => setAutoRebuild(e.target.checked)} />
          Rebuild onto the spare automatically
        </label>
        <label>
          Jobs may use (% of bandwidth)
          <input type="number" min={5} max={100} value={share} onChange={(e) => setShare(e.target.value)} className="tabular" />
        </label>
        <label>
          Scrub every (days, 0 = never)
          <input type="number" min={0} max={365} value={scrubDays} onChange={(e) => setScrubDays(e.target.value)} className="tabular" />
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
