/**
 * One pool: health, capacity, members (drop a drive here to add it, drag a
 * member out to evacuate it), the spare slot, volumes, and — when degraded —
 * the one prominent Rebuild action.
 */
import { useDraggable, useDroppable } from '@dnd-kit/core';
import { useState } from 'react';
import type { MemberStatus, PoolStatus, PoolSummary } from '../../../preload/api';
import { driveLabel, withDriveLabels } from '../../lib/drive-label';
import type { DragItem, DropTarget } from '../../lib/drop-actions';
import { formatBytes } from '../../lib/format';
import { StateBadge } from '../../lib/ui/state-badge';
import { useAppStore } from '../../store/app-store';
import { CapacityBar } from './capacity-bar';
import { poolCapacity } from './capacity';
import { NewVolumeForm } from './new-volume-form';
import { PoolPolicyForm } from './pool-policy-form';
import { RebuildCallout } from './rebuild-callout';
import { VolumeTable } from './volume-table';

const FREE_LAYOUTS = ['raid0', 'raid1', 'raid1x3', 'raid10', 'raid5', 'raid6'] as const;

export function PoolCard({ summary, status }: { summary: PoolSummary; status: PoolStatus | undefined }) {
  const requestPlan = useAppStore((s) => s.requestPlan);
  const [creating, setCreating] = useState(false);
  const { setNodeRef, isOver } = useDroppable({ id: `pool:${summary.name}`, data: { kind: 'pool', pool: summary.name } satisfies DropTarget });
  const titleId = `pool-title-${summary.name}`;
  const degraded = summary.health === 'degraded' || summary.health === 'failed';
  return (
    <article ref={setNodeRef} className={`panel pool-card health-${summary.health}${isOver ? ' drop-over' : ''}`} aria-labelledby={titleId} data-testid={`pool-${summary.name}`}>
      <div className="panel-head">
        <h2 id={titleId}>
          Pool {summary.name}
          {summary.demo ? <span className="tag">demo</span> : null}
        </h2>
        <StateBadge state={summary.health} />
      </div>
      {summary.problem ? (
        <p className="problem small" title={summary.problem}>
          {withDriveLabels(summary.problem)}
        </p>
      ) : null}
      {degraded && status ? (
        <RebuildCallout pool={summary.name} />
      ) : null}
      {status ? (
        <>
          <CapacityBar capacity={poolCapacity(status)} label={`Space in pool ${summary.name}`} />
          <details className="free-per-layout small">
            <summary>Free space per layout</summary>
            <dl className="facts tabular">
              {FREE_LAYOUTS.map((l) => (
                <div key={l} className="fact-row">
                  <dt>{l}</dt>
                  <dd>{formatBytes(status.freeSpace[l])}</dd>
                </div>
              ))}
            </dl>
          </details>
          <MemberStrip pool={status} />
          <div className="pool-tools">
            <button
              type="button"
              className="button button-small"
              onClick={() => requestPlan({ pool: summary.name, action: { kind: 'rebalance' }, title: `Rebalance pool ${summary.name}` })}
              aria-label={`Rebalance pool ${summary.name}…`}
            >
              Rebalance…
            </button>
            <PoolPolicyForm pool={summary.name} />
          </div>
          <div className="volumes-head">
            <h3>Volumes</h3>
            {!creating ? (
              <button type="button" className="button button-small" onClick={() => setCreating(true)} aria-label={`New volume in pool ${summary.name}`}>
                New volume
              </button>
            ) : null}
          </div>
          {creating ? <NewVolumeForm pool={status} onDone={() => setCreating(false)} /> : null}
          <VolumeTable pool={status} />
        </>
      ) : summary.health === 'unavailable' ? null : (
        <p className="muted">Loading…</p>
      )}
    </article>
  );
}

/** The members as chips (drag one out to evacuate it) and the spare slot (drop a drive to make it the spare). */
function MemberStrip({ pool }: { pool: PoolStatus }) {
  const data = pool.members.filter((m) => m.role === 'data');
  const spares = pool.members.filter((m) => m.role === 'spare');
  const spareSlot = useDroppable({ id: `spare:${pool.name}`, data: { kind: 'spare', pool: pool.name } satisfies DropTarget });
  return (
    <div className="member-strip">
      <ul className="chips" aria-label={`Members of pool ${pool.name}`}>
        {data.map((m) => (
          <MemberChip key={m.uuid} pool={pool.name} member={m} />
        ))}
      </ul>
      <div ref={spareSlot.setNodeRef} className={`spare-slot${spareSlot.isOver ? ' drop-over' : ''}`} data-testid={`spare-slot-${pool.name}`}>
        <span className="muted small">Spare</span>
        {spares.length > 0 ? (
          <ul className="chips" aria-label={`Spares of pool ${pool.name}`}>
            {spares.map((m) => (
              <MemberChip key={m.uuid} pool={pool.name} member={m} />
            ))}
          </ul>
        ) : (
          <span className="muted small">none — drop a drive here</span>
        )}
      </div>
    </div>
  );
}

function MemberChip({ pool, member }: { pool: string; member: MemberStatus }) {
  const label = driveLabel(member.uri);
  const item: DragItem = { uri: member.uri, label, pool, memberUuid: member.uuid, role: member.role };
  const { attributes, listeners, setNodeRef, isDragging } = useDraggable({ id: `chip:${pool}:${member.uuid}`, data: item });
  const fill = member.slabCount > 0 ? (member.slabCount - member.freeSlabs) / member.slabCount : 0;
  return (
    <li className={`chip state-${member.state}${isDragging ? ' dragging' : ''}`}>
      <button ref={setNodeRef} type="button" className="chip-handle" {...listeners} {...attributes} aria-label={`Drag ${label} (${member.state})`} aria-roledescription="draggable drive">
        <span className={`dot dot-${member.state}`} aria-hidden="true" />
        {label}
        <span className="chip-fill" aria-hidden="true">
          <span style={{ width: `${fill * 100}%` }} />
        </span>
      </button>
    </li>
  );
}
