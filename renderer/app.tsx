/** The app shell: features composed at the top level; features do not import each other. */
import { useCallback } from 'react';
import { DrivesDnd, useApplyMove } from './app-dnd';
import { DrivesPanel } from './features/drives/drives-panel';
import { dragItemOf, type DriveView } from './features/drives/drive-views';
import { EngineStatusPanel } from './features/engine-status/engine-status-panel';
import { HealthSummary } from './features/health/health-summary';
import { JobsPanel } from './features/jobs/jobs-panel';
import { LayoutMapPanel } from './features/layout-map/layout-map-panel';
import { NotificationsRegion } from './features/notifications/notifications-region';
import { PlanPreview } from './features/plan-preview/plan-preview-dialog';
import { PoolsPanel } from './features/pools/pools-panel';
import type { DropTarget } from './lib/drop-actions';

export function App() {
  const apply = useApplyMove();
  const onMove = useCallback((drive: DriveView, target: DropTarget) => apply(dragItemOf(drive), target), [apply]);
  return (
    <div className="app">
      <header className="app-header">
        <h1>Spindle</h1>
        <HealthSummary />
      </header>
      <DrivesDnd>
        <main className="app-main">
          <div className="column column-main">
            <PoolsPanel />
            <LayoutMapPanel />
            <JobsPanel />
          </div>
          <div className="column column-side">
            <DrivesPanel onMove={onMove} />
            <EngineStatusPanel />
          </div>
        </main>
      </DrivesDnd>
      <NotificationsRegion />
      <PlanPreview />
    </div>
  );
}
