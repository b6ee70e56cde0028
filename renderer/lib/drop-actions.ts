/**
 * What moving a drive somewhere means, for drag and drop and for its
 * keyboard alternative alike: a plan to review, a new pool to fill in, or a
 * refusal in words. Nothing changes until the person confirms the plan.
 */
import type { PlanAction } from '../../preload/api';

export interface DragItem {
  readonly uri: string;
  readonly label: string;
  /** The pool the drive belongs to, and its member uuid and role there. */
  readonly pool: string | null;
  readonly memberUuid: string | null;
  readonly role: 'data' | 'spare' | null;
}

export type DropTarget =
  | { readonly kind: 'pool'; readonly pool: string }
  | { readonly kind: 'spare'; readonly pool: string }
  | { readonly kind: 'new-pool' }
  /** Out of any pool: evacuate it. */
  | { readonly kind: 'unassigned' };

export type DropOutcome =
  | { readonly kind: 'plan'; readonly pool: string; readonly action: PlanAction; readonly title: string }
  | { readonly kind: 'new-pool'; readonly uris: readonly string[] }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'nothing' };

export function dropOutcome(item: DragItem, target: DropTarget): DropOutcome {
  const elsewhere = (where: string): DropOutcome => ({
    kind: 'refused',
    reason: `${item.label} belongs to pool ${item.pool}; remove it from there before ${where}.`,
  });
  switch (target.kind) {
    case 'pool':
      if (item.pool === target.pool) return { kind: 'nothing' };
      if (item.pool) return elsewhere(`adding it to pool ${target.pool}`);
      return { kind: 'plan', pool: target.pool, action: { kind: 'add', members: [item.uri] }, title: `Add ${item.label} to pool ${target.pool}` };
    case 'spare':
      if (item.pool === target.pool && item.role === 'spare') return { kind: 'nothing' };
      if (item.pool && item.pool !== target.pool) return elsewhere(`making it a spare of pool ${target.pool}`);
      return {
        kind: 'plan',
        pool: target.pool,
        action: { kind: 'spare', member: item.memberUuid ?? item.uri },
        title: `Make ${item.label} the spare of pool ${target.pool}`,
      };
    case 'new-pool':
      if (item.pool) return elsewhere('starting a new pool with it');
      return { kind: 'new-pool', uris: [item.uri] };
    case 'unassigned':
      if (!item.pool || !item.memberUuid) return { kind: 'nothing' };
      return {
        kind: 'plan',
        pool: item.pool,
        action: { kind: 'remove', member: item.memberUuid },
        title: item.role === 'spare' ? `Remove the spare ${item.label} from pool ${item.pool}` : `Evacuate ${item.label} and remove it from pool ${item.pool}`,
      };
  }
}

/** The targets a drive can be moved to, for the keyboard's "Move to…" menu, with their names. */
export function moveTargets(item: DragItem, pools: readonly string[]): Array<{ target: DropTarget; label: string }> {
  if (item.pool) {
    const out: Array<{ target: DropTarget; label: string }> = [
      { target: { kind: 'unassigned' }, label: item.role === 'spare' ? `Remove from pool ${item.pool}` : `Evacuate and remove from pool ${item.pool}` },
    ];
    if (item.role === 'data') out.push({ target: { kind: 'spare', pool: item.pool }, label: `Make it the spare of pool ${item.pool}` });
    return out;
  }
  return [
    ...pools.map((pool) => ({ target: { kind: 'pool', pool } as const, label: `Add to pool ${pool}` })),
    ...pools.map((pool) => ({ target: { kind: 'spare', pool } as const, label: `Make it the spare of pool ${pool}` })),
    { target: { kind: 'new-pool' } as const, label: 'Start a new pool with it' },
  ];
}
