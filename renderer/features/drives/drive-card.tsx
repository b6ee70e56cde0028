/** One drive: what it is, how it is, what it is doing; draggable into and out of pools. */
import { useDraggable } from '@dnd-kit/core';
import { memo, useState } from 'react';
import { moveTargets, type DropTarget } from '../../lib/drop-actions';
import { formatBytes } from '../../lib/format';
import { MenuButton } from '../../lib/ui/menu-button';
import { StateBadge } from '../../lib/ui/state-badge';
import { useEngine } from '../../platform/engine-context';
import { useAppStore } from '../../store/app-store';
import { ioKey } from '../../store/drives-slice';
import { dragItemOf, sameDriveView, type DriveView } from './drive-views';
import { IoSparkline } from './io-sparkline';

export interface DriveCardProps {
  readonly drive: DriveView;
  readonly pools: readonly string[];
  readonly onMove: (drive: DriveView, target: DropTarget) => void;
}

const STATE_WORDS: Record<DriveView['state'], string> = {
  online: 'Online',
  resyncing: 'Resyncing',
  degraded: 'Errors',
  failing: 'Failing',
  failed: 'Failed',
  missing: 'Missing',
};

const SMART_WORDS = { passed: 'Passed', warning: 'Warning', failed: 'Failing', unknown: 'Unknown' } as const;

export const DriveCard = memo(function DriveCard({ drive, pools, onMove }: DriveCardProps) {
  const { attributes, listeners, setNodeRef, isDragging } = useDraggable({ id: `drive:${drive.key}`, data: dragItemOf(drive) });
  const titleId = `drive-title-${drive.key}`;
  const { errors, smart } = drive;
  const errorTotal = errors ? errors.read + errors.write + errors.checksum : 0;
  return (
    <li
      className={`drive-card${drive.attention ? ' drive-attention' : ''}${isDragging ? ' dragging' : ''} state-${drive.state}`}
      aria-labelledby={titleId}
      data-testid={`drive-${drive.label}`}
    >
      <div className="drive-head">
        <button
          ref={setNodeRef}
          type="button"
          className="drag-handle"
          {...listeners}
          {...attributes}
          aria-label={`Drag ${drive.label}`}
          aria-roledescription="draggable drive"
        >
          <span aria-hidden="true">⠿</span>
        </button>
        <div className="drive-name">
          <h3 id={titleId}>{drive.label}</h3>
          <p className="muted small" title={drive.path}>
            {drive.model} · {drive.size !== undefined ? formatBytes(drive.size) : 'size unknown'} · serial {drive.serial}
          </p>
        </div>
        <IoSparkline ioKey={drive.pool && drive.memberUuid ? ioKey(drive.pool, drive.memberUuid) : null} label={`I/O of ${drive.label}`} />
        <StateBadge state={drive.state} label={STATE_WORDS[drive.state]} />
      </div>
      <dl className="drive-facts small">
        <dt>Role</dt>
        <dd>{drive.pool ? `${drive.role === 'spare' ? 'Spare' : 'Data member'} of ${drive.pool}` : 'Unassigned'}</dd>
        {drive.slabs ? (
          <>
            <dt>Slabs</dt>
            <dd className="tabular">
              {drive.slabs.used} of {drive.slabs.total} in use
            </dd>
          </>
        ) : null}
        <dt>SMART</dt>
        <dd className="tabular">
          {smart ? (
            <span className={smart.verdict === 'passed' || smart.verdict === 'unknown' ? '' : 'text-bad'} title={smart.warnings.join('; ') || undefined}>
              {SMART_WORDS[smart.verdict]}
              {smart.temperatureC !== null ? ` · ${smart.temperatureC} °C` : ''}
              {smart.reallocated !== null ? ` · ${smart.reallocated} reallocated` : ''}
              {smart.pending !== null ? ` · ${smart.pending} pending` : ''}
              {smart.uncorrectable ? ` · ${smart.uncorrectable} uncorrectable` : ''}
              {smart.powerOnHours !== null ? ` · ${smart.powerOnHours} h on` : ''}
            </span>
          ) : (
            <span className="muted">{drive.transport === 'file' ? 'none (image file)' : 'not reported'}</span>
          )}
        </dd>
        <dt>Errors</dt>
        <dd className={`tabular${errorTotal > 0 ? ' text-bad' : ''}`} data-testid="drive-errors">
          {!errors ? <span className="muted">not in a pool</span> : errorTotal === 0 ? 'none' : `read ${errors.read} · write ${errors.write} · checksum ${errors.checksum}`}
        </dd>
        {drive.reason ? (
          <>
            <dt>Why</dt>
            <dd className="text-bad">{drive.reason}</dd>
          </>
        ) : null}
      </dl>
      <div className="drive-foot">
        <div className="drive-actions">
          {drive.memberUuid ? <MemberFaultButtons drive={drive} /> : null}
          <MenuButton
            label="Move to…"
            accessibleName={`Move ${drive.label} to…`}
            items={moveTargets(dragItemOf(drive), pools).map(({ target, label }) => ({ label, onSelect: () => onMove(drive, target) }))}
          />
        </div>
      </div>
    </li>
  );
},
(before, after) => before.onMove === after.onMove && before.pools === after.pools && sameDriveView(before.drive, after.drive));

/**
 * Bring a failed or missing member back (any pool: the disk may have been
 * reconnected); on demo pools, also fail one on purpose to watch the repair.
 */
function MemberFaultButtons({ drive }: { drive: DriveView }) {
  const engine = useEngine();
  const notify = useAppStore((s) => s.notify);
  const [busy, setBusy] = useState(false);
  const pool = drive.pool!;
  const member = drive.memberUuid!;
  const run = async (what: 'member-fail' | 'member-restore'): Promise<void> => {
    setBusy(true);
    try {
      await engine.api.request(what, { pool, member });
    } catch (error) {
      notify({ level: 'error', title: `Could not ${what === 'member-fail' ? 'fail' : 'restore'} ${drive.label}`, detail: (error as Error).message });
    } finally {
      setBusy(false);
      void engine.refreshPool(pool);
    }
  };
  const down = drive.state === 'failed' || drive.state === 'missing';
  if (!down && !drive.demo) return null;
  return down ? (
    <button type="button" className="button" disabled={busy} onClick={() => void run('member-restore')} aria-label={`Restore ${drive.label}`}>
      Restore
    </button>
  ) : (
    <button type="button" className="button button-danger" disabled={busy || drive.state === 'resyncing'} onClick={() => void run('member-fail')} aria-label={`Simulate failure of ${drive.label}`}>
      Simulate failure
    </button>
  );
}
