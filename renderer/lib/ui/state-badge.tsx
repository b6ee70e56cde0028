/** A state in words with a colour; the words carry the meaning, the colour only helps. */
const TONE: Record<string, 'ok' | 'busy' | 'warn' | 'bad' | 'idle'> = {
  online: 'ok',
  done: 'ok',
  running: 'busy',
  resyncing: 'busy',
  queued: 'idle',
  paused: 'idle',
  cancelled: 'idle',
  unassigned: 'idle',
  degraded: 'warn',
  failing: 'warn',
  missing: 'bad',
  failed: 'bad',
  unavailable: 'bad',
};

export function StateBadge({ state, label }: { state: string; label?: string }) {
  return <span className={`badge tone-${TONE[state] ?? 'idle'}`}>{label ?? state.charAt(0).toUpperCase() + state.slice(1)}</span>;
}
