/** Every pool, a "New pool" target, and the way in when there is no pool yet (the demo). */
import { useDroppable } from '@dnd-kit/core';
import { useState } from 'react';
import type { DropTarget } from '../../lib/drop-actions';
import { useEngine } from '../../platform/engine-context';
import { useAppStore } from '../../store/app-store';
import { NewPoolDialog } from './new-pool-dialog';
import { PoolCard } from './pool-card';

export function PoolsPanel() {
  const poolList = useAppStore((s) => s.poolList);
  const poolStatus = useAppStore((s) => s.poolStatus);
  const newPool = useAppStore((s) => s.newPoolRequest);
  return (
    <section className="pools" aria-label="Pools">
      {poolList === undefined ? <p className="muted">Loading pools…</p> : null}
      {poolList?.length === 0 ? <EmptyState /> : null}
      {poolList?.map((p) => <PoolCard key={p.name} summary={p} status={poolStatus[p.name]} />)}
      {poolList !== undefined ? <NewPoolTarget /> : null}
      {newPool ? <NewPoolDialog uris={newPool.uris} /> : null}
    </section>
  );
}

function NewPoolTarget() {
  const requestNewPool = useAppStore((s) => s.requestNewPool);
  const { setNodeRef, isOver } = useDroppable({ id: 'new-pool', data: { kind: 'new-pool' } satisfies DropTarget });
  return (
    <div ref={setNodeRef} className={`panel new-pool-target drop-zone${isOver ? ' drop-over' : ''}`} data-testid="new-pool-target">
      <p>
        <strong>New pool</strong>
      </p>
      <p className="muted small">Drop unassigned drives here, or</p>
      <button type="button" className="button" onClick={() => requestNewPool([])}>
        Create a pool…
      </button>
    </div>
  );
}

function EmptyState() {
  const engine = useEngine();
  const notify = useAppStore((s) => s.notify);
  const [busy, setBusy] = useState(false);
  const create = async (): Promise<void> => {
    setBusy(true);
    try {
      const demo = await engine.api.request('demo-create', {});
      notify({ level: 'success', title: 'Demo pool ready', detail: `${demo.images.length} image files in the state folder; try “Simulate failure” on a drive.` });
      await engine.refreshPools();
    } catch (error) {
      notify({ level: 'error', title: 'Could not create the demo pool', detail: (error as Error).message });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="panel empty-state">
      <h2>No pools yet</h2>
      <p>A pool gathers drives and keeps your volumes' data on several of them. Try one safely on image files:</p>
      <button type="button" className="button button-primary button-large" disabled={busy} onClick={() => void create()}>
        {busy ? 'Creating the demo pool…' : 'Create the demo pool'}
      </button>
    </div>
  );
}
