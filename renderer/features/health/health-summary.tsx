/** The always-visible line at the top: every pool's health, drives needing attention, jobs running. */
import { useShallow } from 'zustand/react/shallow';
import { StateBadge } from '../../lib/ui/state-badge';
import { useAppStore } from '../../store/app-store';

export function HealthSummary() {
  const pools = useAppStore((s) => s.poolList);
  const connection = useAppStore((s) => s.connection);
  const badDrives = useAppStore((s) =>
    Object.values(s.poolStatus).reduce((n, p) => n + p.members.filter((m) => m.state !== 'online' || m.errors.read + m.errors.write + m.errors.checksum > 0).length, 0),
  );
  const running = useAppStore(useShallow((s) => Object.values(s.jobs).filter((j) => j.state === 'running' || j.state === 'paused' || j.state === 'queued').length));
  const worst = !pools || pools.length === 0 ? undefined : pools.some((p) => p.health === 'failed' || p.health === 'unavailable') ? 'failed' : pools.some((p) => p.health === 'degraded') ? 'degraded' : 'online';
  return (
    <div className={`health-summary health-${worst ?? 'none'}`} role="status" aria-label="Pool health">
      {connection !== 'open' ? (
        <span className="text-bad">{connection === 'connecting' ? 'Connecting to the engine…' : 'Engine disconnected'}</span>
      ) : pools === undefined ? (
        <span className="muted">Loading…</span>
      ) : pools.length === 0 ? (
        <span className="muted">No pools</span>
      ) : (
        <>
          <span className="summary-word">{worst === 'online' ? 'All pools healthy' : worst === 'degraded' ? 'Redundancy reduced' : 'Data at risk'}</span>
          <ul className="summary-pools" aria-label="Pools">
            {pools.map((p) => (
              <li key={p.name}>
                {p.name} <StateBadge state={p.health} />
              </li>
            ))}
          </ul>
          <span className={`tabular ${badDrives > 0 ? 'text-bad' : 'muted'}`} data-testid="drives-attention">
            {badDrives} drive{badDrives === 1 ? '' : 's'} need{badDrives === 1 ? 's' : ''} attention
          </span>
          <span className="tabular muted">
            {running} job{running === 1 ? '' : 's'} running
          </span>
        </>
      )}
    </div>
  );
}
