/** Every drive, grouped by pool, unassigned drives last (and a place to drop members to evacuate them). */
import { useDroppable } from '@dnd-kit/core';
import { useMemo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import type { DropTarget } from '../../lib/drop-actions';
import { useAppStore } from '../../store/app-store';
import { DriveCard } from './drive-card';
import { driveViews, type DriveView } from './drive-views';

export function DrivesPanel({ onMove }: { onMove: (drive: DriveView, target: DropTarget) => void }) {
  const statuses = useAppStore(useShallow((s) => Object.values(s.poolStatus)));
  const inventory = useAppStore((s) => s.inventory);
  const inventoryProblem = useAppStore((s) => s.inventoryProblem);
  const poolNames = useAppStore(useShallow((s) => (s.poolList ?? []).filter((p) => p.health !== 'unavailable').map((p) => p.name)));
  const drives = useMemo(() => driveViews(statuses, inventory), [statuses, inventory]);
  const groups = useMemo(() => {
    const byPool = new Map<string, DriveView[]>();
    for (const d of drives) {
      const key = d.pool ?? '';
      byPool.set(key, [...(byPool.get(key) ?? []), d]);
    }
    return byPool;
  }, [drives]);
  const attention = drives.filter((d) => d.attention).length;

  return (
    <section className="panel drives-panel" aria-labelledby="drives-title">
      <div className="panel-head">
        <h2 id="drives-title">Drives</h2>
        <span className="muted small tabular" data-testid="drives-count">
          {drives.length} drive{drives.length === 1 ? '' : 's'}
          {attention > 0 ? <strong className="text-bad">{` · ${attention} need${attention === 1 ? 's' : ''} attention`}</strong> : null}
        </span>
      </div>
      {[...groups].filter(([pool]) => pool !== '').map(([pool, list]) => (
        <div key={pool} className="drive-group">
          <h3 className="group-title">Pool {pool}</h3>
          <ul className="drive-list" aria-label={`Drives of pool ${pool}`}>
            {list.map((d) => (
              <DriveCard key={d.key} drive={d} pools={poolNames} onMove={onMove} />
            ))}
          </ul>
        </div>
      ))}
      <UnassignedDrives drives={groups.get('') ?? []} problem={inventoryProblem} pools={poolNames} onMove={onMove} />
    </section>
  );
}

function UnassignedDrives({ drives, problem, pools, onMove }: { drives: readonly DriveView[]; problem: string | undefined; pools: readonly string[]; onMove: (drive: DriveView, target: DropTarget) => void }) {
  const { setNodeRef, isOver, active } = useDroppable({ id: 'unassigned', data: { kind: 'unassigned' } satisfies DropTarget });
  const draggingMember = Boolean((active?.data.current as { pool?: string | null } | undefined)?.pool);
  return (
    <div ref={setNodeRef} className={`drive-group drop-zone${isOver ? ' drop-over' : ''}${draggingMember ? ' drop-ready' : ''}`} data-testid="unassigned-drives">
      <h3 className="group-title">Unassigned drives</h3>
      {draggingMember ? <p className="drop-hint">Drop here to evacuate the drive and remove it from its pool</p> : null}
      {drives.length > 0 ? (
        <ul className="drive-list" aria-label="Unassigned drives">
          {drives.map((d) => (
            <DriveCard key={d.key} drive={d} pools={pools} onMove={onMove} />
          ))}
        </ul>
      ) : (
        <p className="muted small">{problem ? `No drive inventory: the engine host says “${problem}”.` : 'None: every drive the host sees is in a pool.'}</p>
      )}
    </div>
  );
}
