/**
 * A drive's read and write rate over the last minute, from member-io-rate
 * events. Until the engine reports a rate the box stays empty (same size, so
 * nothing moves when data starts to arrive): no made-up curve.
 */
import { memo } from 'react';
import { useAppStore } from '../../store/app-store';
import type { IoSample } from '../../store/drives-slice';
import { IO_HISTORY_SAMPLES } from '../../store/drives-slice';
import { formatRate } from '../../lib/format';

const WIDTH = 120;
const HEIGHT = 28;

function points(history: readonly IoSample[], pick: (s: IoSample) => number, max: number): string {
  const step = WIDTH / (IO_HISTORY_SAMPLES - 1);
  const offset = IO_HISTORY_SAMPLES - history.length;
  return history.map((s, i) => `${((offset + i) * step).toFixed(1)},${(HEIGHT - 2 - (pick(s) / max) * (HEIGHT - 4)).toFixed(1)}`).join(' ');
}

export const IoSparkline = memo(function IoSparkline({ ioKey, label }: { ioKey: string | null; label: string }) {
  const history = useAppStore((s) => (ioKey ? s.ioHistory[ioKey] : undefined));
  if (!history || history.length === 0) {
    return (
      <div className="sparkline sparkline-empty" role="img" aria-label={`${label}: no I/O rate reported`}>
        <span>no I/O data</span>
      </div>
    );
  }
  const last = history[history.length - 1]!;
  const max = Math.max(1, ...history.map((s) => Math.max(s.read, s.write)));
  return (
    <div className="sparkline" role="img" aria-label={`${label}: reading ${formatRate(last.read)}, writing ${formatRate(last.write)}`}>
      <svg width={WIDTH} height={HEIGHT} viewBox={`0 0 ${WIDTH} ${HEIGHT}`} aria-hidden="true">
        <polyline className="spark-read" points={points(history, (s) => s.read, max)} />
        <polyline className="spark-write" points={points(history, (s) => s.write, max)} />
      </svg>
      <span className="spark-values tabular" aria-hidden="true">
        <span className="spark-read-text">R {formatRate(last.read)}</span>
        <span className="spark-write-text">W {formatRate(last.write)}</span>
      </span>
    </div>
  );
});
