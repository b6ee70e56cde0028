/** The engine host's version, uptime and connection, live. */
import { useAppStore } from '../../store/app-store';
import { formatUptime } from './format-uptime';

export function EngineStatusPanel() {
  const connection = useAppStore((s) => s.connection);
  const versionInfo = useAppStore((s) => s.versionInfo);
  const status = useAppStore((s) => s.status);
  const lastError = useAppStore((s) => s.lastError);

  return (
    <section className="panel" aria-labelledby="engine-status-title">
      <h2 id="engine-status-title">Engine</h2>
      <dl className="facts">
        <dt>Connection</dt>
        <dd>
          <span className={`badge badge-${connection}`} role="status" aria-label="Engine connection">
            {connection === 'open' ? 'Connected' : connection === 'connecting' ? 'Connecting…' : 'Disconnected'}
          </span>
        </dd>
        <dt>Version</dt>
        <dd data-testid="engine-version">{versionInfo ? versionInfo.version : '—'}</dd>
        <dt>Uptime</dt>
        <dd data-testid="engine-uptime" aria-live="off" className="tabular">
          {status ? formatUptime(status.uptimeMs) : '—'}
        </dd>
        <dt>Process</dt>
        <dd>{versionInfo ? `pid ${versionInfo.pid}, Node ${versionInfo.nodeVersion}` : '—'}</dd>
      </dl>
      {lastError ? (
        <p className="error" role="alert">
          {lastError}
        </p>
      ) : null}
    </section>
  );
}
