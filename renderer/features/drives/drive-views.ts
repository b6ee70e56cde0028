/**
 * One list of drives from two sources: the pools' members (always known)
 * and the helper's inventory (when the engine host has one). A member is
 * matched to its inventory entry by member uuid, else by URI; inventory
 * drives that match no member are unassigned.
 */
import type { Drive, ErrorCounts, MemberStatus, PoolStatus, SmartSummary } from '../../../preload/api';
import { driveLabel, drivePath } from '../../lib/drive-label';
import type { DragItem } from '../../lib/drop-actions';

export type DriveDisplayState = 'online' | 'resyncing' | 'degraded' | 'failing' | 'failed' | 'missing';

export interface DriveView {
  /** Stable React key and DOM id part. */
  readonly key: string;
  readonly label: string;
  readonly path: string;
  readonly uri: string;
  readonly model: string;
  readonly serial: string;
  readonly size: number | undefined;
  readonly transport: string;
  readonly state: DriveDisplayState;
  readonly smart: SmartSummary | null;
  readonly errors: ErrorCounts | undefined;
  readonly pool: string | null;
  readonly role: 'data' | 'spare' | null;
  readonly memberUuid: string | null;
  /** Simulated faults are allowed (a demo pool's member). */
  readonly demo: boolean;
  /** Failing, failed, missing, or with errors: it should catch the eye. */
  readonly attention: boolean;
  readonly reason: string | undefined;
  /** Used and total slabs, for members. */
  readonly slabs: { readonly used: number; readonly total: number } | undefined;
}

export function driveViews(pools: readonly PoolStatus[], inventory: readonly Drive[] | undefined): DriveView[] {
  const byUuid = new Map<string, Drive>();
  const byUri = new Map<string, Drive>();
  for (const drive of inventory ?? []) {
    if (drive.memberUuid) byUuid.set(drive.memberUuid, drive);
    byUri.set(drive.uri, drive);
  }
  const used = new Set<Drive>();
  const views: DriveView[] = [];
  for (const pool of pools) {
    for (const member of pool.members) {
      const drive = byUuid.get(member.uuid) ?? byUri.get(member.uri);
      if (drive) used.add(drive);
      views.push(memberView(pool, member, drive));
    }
  }
  for (const drive of inventory ?? []) {
    if (!used.has(drive)) views.push(inventoryView(drive));
  }
  return views;
}

function memberView(pool: PoolStatus, member: MemberStatus, drive: Drive | undefined): DriveView {
  const errors = member.errors;
  const hasErrors = errors.read + errors.write + errors.checksum > 0;
  const state: DriveDisplayState =
    member.state === 'failed' || member.state === 'missing' || member.state === 'resyncing'
      ? member.state
      : drive?.state === 'failing' || drive?.smart?.verdict === 'failed'
        ? 'failing'
        : hasErrors || drive?.state === 'degraded'
          ? 'degraded'
          : 'online';
  return {
    key: `m-${member.uuid}`,
    label: driveLabel(member.uri),
    path: drive?.path ?? drivePath(member.uri),
    uri: member.uri,
    model: drive?.model ?? (member.uri.startsWith('file:') ? 'Image file' : 'NBD device'),
    serial: drive?.serial ?? '—',
    size: drive?.size ?? member.slabCount * pool.slabSize,
    transport: drive?.transport ?? (member.uri.startsWith('file:') ? 'file' : 'nbd'),
    state,
    smart: drive?.smart ?? null,
    errors,
    pool: pool.name,
    role: member.role,
    memberUuid: member.uuid,
    demo: pool.demo,
    attention: state !== 'online' && state !== 'resyncing',
    reason: member.reason,
    slabs: { used: member.slabCount - member.freeSlabs, total: member.slabCount },
  };
}

function inventoryView(drive: Drive): DriveView {
  const state: DriveDisplayState = drive.smart?.verdict === 'failed' ? 'failing' : drive.state;
  return {
    key: `d-${drive.id}`,
    label: drive.model && drive.transport !== 'file' ? drive.model : driveLabel(drive.uri),
    path: drive.path,
    uri: drive.uri,
    model: drive.model ?? (drive.transport === 'file' ? 'Image file' : 'Unknown model'),
    serial: drive.serial ?? '—',
    size: drive.size,
    transport: drive.transport ?? 'unknown',
    state,
    smart: drive.smart,
    errors: undefined,
    pool: drive.poolName,
    role: drive.role,
    memberUuid: drive.memberUuid,
    demo: false,
    attention: state !== 'online',
    reason: drive.unusableReason,
    slabs: undefined,
  };
}

export function dragItemOf(view: DriveView): DragItem {
  return { uri: view.uri, label: view.label, pool: view.pool, memberUuid: view.memberUuid, role: view.role };
}

/**
 * Whether two views show the same thing: the views are rebuilt whenever any
 * pool changes, and comparing them field by field spares the cards whose
 * drive did not change a render.
 */
export function sameDriveView(a: DriveView, b: DriveView): boolean {
  if (a === b) return true;
  for (const key of Object.keys(a) as Array<keyof DriveView>) {
    const x = a[key];
    const y = b[key];
    if (x === y) continue;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
    if (JSON.stringify(x) !== JSON.stringify(y)) return false;
  }
  return true;
}
