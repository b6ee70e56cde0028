/**
 * Dragging drives between pools: one DndContext around the features, and the
 * one place a drop (or its keyboard alternative, "Move to…") becomes a plan
 * to review, the new-pool form, or a refusal in words. Pointer and keyboard
 * sensors both work (Space picks a drive up, each arrow press carries it to
 * the next drop target that way, Space drops).
 */
import { DndContext, KeyboardSensor, PointerSensor, useSensor, useSensors, type Announcements, type DragEndEvent } from '@dnd-kit/core';
import { useCallback, type ReactNode } from 'react';
import { dropOutcome, type DragItem, type DropTarget } from './lib/drop-actions';
import { jumpBetweenDropTargets } from './lib/keyboard-drop-targets';
import { useAppStore } from './store/app-store';

export function useApplyMove(): (item: DragItem, target: DropTarget) => void {
  return useCallback((item, target) => {
    const s = useAppStore.getState();
    const outcome = dropOutcome(item, target);
    if (outcome.kind === 'plan') s.requestPlan({ pool: outcome.pool, action: outcome.action, title: outcome.title });
    else if (outcome.kind === 'new-pool') s.requestNewPool(outcome.uris);
    else if (outcome.kind === 'refused') s.notify({ level: 'warn', title: 'Cannot move the drive there', detail: outcome.reason });
  }, []);
}

const targetName = (target: DropTarget | undefined): string =>
  !target ? 'nowhere' : target.kind === 'pool' ? `pool ${target.pool}` : target.kind === 'spare' ? `the spare slot of ${target.pool}` : target.kind === 'new-pool' ? 'New pool' : 'Unassigned drives';

const announcements: Announcements = {
  onDragStart: ({ active }) => `Picked up ${(active.data.current as DragItem).label}.`,
  onDragOver: ({ active, over }) => `${(active.data.current as DragItem).label} is over ${targetName(over?.data.current as DropTarget | undefined)}.`,
  onDragEnd: ({ active, over }) => `${(active.data.current as DragItem).label} was dropped on ${targetName(over?.data.current as DropTarget | undefined)}.`,
  onDragCancel: ({ active }) => `Moving ${(active.data.current as DragItem).label} was cancelled.`,
};

export function DrivesDnd({ children }: { children: ReactNode }) {
  const apply = useApplyMove();
  const sensors = useSensors(useSensor(PointerSensor, { activationConstraint: { distance: 4 } }), useSensor(KeyboardSensor, { coordinateGetter: jumpBetweenDropTargets }));
  const onDragEnd = ({ active, over }: DragEndEvent): void => {
    if (!over) return;
    apply(active.data.current as DragItem, over.data.current as DropTarget);
  };
  return (
    <DndContext
      sensors={sensors}
      onDragEnd={onDragEnd}
      accessibility={{
        announcements,
        screenReaderInstructions: {
          draggable: 'To move a drive, press Space to pick it up, use the arrow keys to carry it from target to target: a pool, its spare slot, New pool or Unassigned drives, and press Space again to drop it; Escape cancels. Or use its “Move to…” menu.',
        },
      }}
    >
      {children}
    </DndContext>
  );
}
