/** Used, free and unavailable raw space in one bar, with the numbers in words beside it. */
import { formatBytes } from '../../lib/format';
import type { Capacity } from './capacity';

export function CapacityBar({ capacity, label }: { capacity: Capacity; label: string }) {
  const { usedBytes, freeBytes, unavailableBytes, totalBytes } = capacity;
  const pct = (n: number) => (totalBytes > 0 ? `${(n / totalBytes) * 100}%` : '0%');
  const usedPct = totalBytes > 0 ? Math.round((usedBytes / totalBytes) * 100) : 0;
  return (
    <div className="capacity">
      <div
        className="capacity-bar"
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={usedPct}
        aria-valuetext={`${formatBytes(usedBytes)} used of ${formatBytes(totalBytes)}`}
      >
        <span className="cap-used" style={{ width: pct(usedBytes) }} />
        <span className="cap-free" style={{ width: pct(freeBytes) }} />
        <span className="cap-unavailable" style={{ width: pct(unavailableBytes) }} />
      </div>
      <p className="capacity-legend small tabular">
        <span className="key key-used" aria-hidden="true" /> {formatBytes(usedBytes)} used
        <span className="key key-free" aria-hidden="true" /> {formatBytes(freeBytes)} free
        {unavailableBytes > 0 ? (
          <>
            <span className="key key-unavailable" aria-hidden="true" /> {formatBytes(unavailableBytes)} on failed drives
          </>
        ) : null}
        <span className="muted"> · {formatBytes(totalBytes)} raw</span>
      </p>
    </div>
  );
}
