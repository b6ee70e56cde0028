/**
 * Keyboard dragging that jumps from one drop target to the next instead of
 * nudging the drive 25 px per key press. How far the Unassigned zone sits
 * below the pools depends on how many drives a machine has; stepping there
 * pixel by pixel took dozens of presses (and raced the smooth scrolling of the
 * page), while a jump takes one press per target, whatever the layout.
 */
import type { KeyboardCoordinateGetter } from '@dnd-kit/core';

export interface Rect { left: number; top: number; width: number; height: number }
export type Direction = 'up' | 'down' | 'left' | 'right';

const directionOfKey: Record<string, Direction> = { ArrowUp: 'up', ArrowDown: 'down', ArrowLeft: 'left', ArrowRight: 'right' };

const center = (r: Rect) => ({ x: r.left + r.width / 2, y: r.top + r.height / 2 });

/**
 * The target nearest to `from` whose centre lies in `direction` (beyond a
 * pixel, so the target under the drive is never picked again). Distance along
 * the direction counts once, sideways distance twice: Down prefers what is
 * straight below over what is just as far but off to the side.
 */
export function nextDropTarget<Id>(from: Rect, direction: Direction, targets: Iterable<[Id, Rect]>, current?: Id): Id | undefined {
  const c = center(from);
  let best: Id | undefined;
  let bestScore = Infinity;
  for (const [id, rect] of targets) {
    if (id === current) continue;
    const t = center(rect);
    const dx = t.x - c.x;
    const dy = t.y - c.y;
    const along = direction === 'down' ? dy : direction === 'up' ? -dy : direction === 'right' ? dx : -dx;
    const sideways = direction === 'down' || direction === 'up' ? Math.abs(dx) : Math.abs(dy);
    if (along <= 1) continue;
    const score = along + 2 * sideways;
    if (score < bestScore) { bestScore = score; best = id; }
  }
  return best;
}

/** Where to put the dragged drive so its centre sits on the target's centre. */
export function coordinatesOver(dragged: Rect, target: Rect): { x: number; y: number } {
  const t = center(target);
  return { x: t.x - dragged.width / 2, y: t.y - dragged.height / 2 };
}

/** The dnd-kit keyboard sensor's coordinate getter built from the two above. */
export const jumpBetweenDropTargets: KeyboardCoordinateGetter = (event, { context }) => {
  const direction = directionOfKey[event.code];
  if (!direction) return undefined;
  event.preventDefault();
  const { collisionRect, droppableRects, droppableContainers, over } = context;
  if (!collisionRect) return undefined;
  const targets: [string | number, Rect][] = [];
  for (const container of droppableContainers.getEnabled()) {
    const rect = droppableRects.get(container.id);
    if (rect) targets.push([container.id, rect]);
  }
  const next = nextDropTarget(collisionRect, direction, targets, over?.id);
  const rect = next === undefined ? undefined : droppableRects.get(next);
  return rect ? coordinatesOver(collisionRect, rect) : undefined;
};
