/**
 * The layout map as a grid: one column per pool member, one row per chunk
 * (or per group of chunks when a volume has more chunks than rows fit: each
 * aggregated cell shows the worst state in its group, so a degraded chunk is
 * never averaged away). Pure, so it is tested without a canvas.
 */
import type { ColumnRole, MemberStatus, VolumeStatus } from '../../../preload/api';

/** What a cell shows; the healthy kinds are roles, the others states that override the role. */
export type CellKind = 'empty' | 'data' | 'copy' | 'parity-p' | 'parity-q' | 'degraded' | 'rebuilding' | 'lost';

/** Worse kinds win when cells are aggregated. */
const SEVERITY: Record<CellKind, number> = { empty: 0, data: 1, copy: 2, 'parity-p': 3, 'parity-q': 4, degraded: 5, rebuilding: 6, lost: 7 };

export const CELL_LABELS: Record<CellKind, string> = {
  empty: 'no slab',
  data: 'data',
  copy: 'copy',
  'parity-p': 'parity',
  'parity-q': 'second parity',
  degraded: 'degraded (its chunk lost a slab)',
  rebuilding: 'rebuilding',
  lost: 'lost (on a failed drive)',
};

export interface MapColumn {
  readonly uuid: string;
  readonly uri: string;
  readonly state: MemberStatus['state'];
  readonly role: MemberStatus['role'];
}

export interface MapRow {
  /** First and last chunk index in this row (equal unless aggregated). */
  readonly firstChunk: number;
  readonly lastChunk: number;
  readonly cells: readonly CellKind[];
  /** Slab numbers per cell, for a single-chunk row. */
  readonly slabs?: ReadonlyArray<number | undefined>;
}

export interface PerMemberCounts {
  readonly uuid: string;
  readonly slabs: number;
  readonly byKind: Readonly<Partial<Record<CellKind, number>>>;
}

export interface LayoutMapModel {
  readonly columns: readonly MapColumn[];
  readonly rows: readonly MapRow[];
  readonly chunksPerRow: number;
  readonly chunkCount: number;
  readonly degradedChunks: number;
  readonly rebuildingChunks: number;
  readonly perMember: readonly PerMemberCounts[];
}

function cellKind(role: ColumnRole, memberState: MemberStatus['state'], chunkDegraded: boolean): CellKind {
  if (memberState === 'failed' || memberState === 'missing') return 'lost';
  if (memberState === 'resyncing') return 'rebuilding';
  if (chunkDegraded) return 'degraded';
  return role;
}

/** What the map needs of a member (error counters do not change the picture). */
export type MapMember = Pick<MemberStatus, 'uuid' | 'uri' | 'state' | 'role'>;

export function buildLayoutMap(volume: VolumeStatus, members: readonly MapMember[], maxRows: number): LayoutMapModel {
  // Data members first, then spares; members the map mentions but the pool no longer lists go last.
  const columns: MapColumn[] = [...members].sort((a, b) => (a.role === b.role ? 0 : a.role === 'data' ? -1 : 1)).map((m) => ({ uuid: m.uuid, uri: m.uri, state: m.state, role: m.role }));
  const index = new Map(columns.map((c, i) => [c.uuid, i]));
  for (const chunk of volume.chunks) {
    for (const col of chunk.columns) {
      if (!index.has(col.member)) {
        index.set(col.member, columns.length);
        columns.push({ uuid: col.member, uri: col.member, state: col.state, role: 'data' });
      }
    }
  }
  const stateOf = (uuid: string, fallback: MemberStatus['state']) => columns[index.get(uuid)!]?.state ?? fallback;
  const counts = columns.map(() => ({ slabs: 0, byKind: {} as Partial<Record<CellKind, number>> }));
  const chunkRows: MapRow[] = [];
  let degradedChunks = 0;
  let rebuildingChunks = 0;
  for (const chunk of volume.chunks) {
    // The member's current state (from pool status or events) is newer than the map's snapshot.
    const states = chunk.columns.map((c) => stateOf(c.member, c.state));
    const degraded = states.some((s) => s === 'failed' || s === 'missing');
    if (degraded) degradedChunks++;
    if (states.some((s) => s === 'resyncing')) rebuildingChunks++;
    const cells = new Array<CellKind>(columns.length).fill('empty');
    const slabs = new Array<number | undefined>(columns.length).fill(undefined);
    chunk.columns.forEach((c, i) => {
      const at = index.get(c.member)!;
      const kind = cellKind(c.role, states[i]!, degraded);
      cells[at] = kind;
      slabs[at] = c.slab;
      counts[at]!.slabs++;
      counts[at]!.byKind[kind] = (counts[at]!.byKind[kind] ?? 0) + 1;
    });
    chunkRows.push({ firstChunk: chunk.id, lastChunk: chunk.id, cells, slabs });
  }
  const chunksPerRow = Math.max(1, Math.ceil(chunkRows.length / Math.max(1, maxRows)));
  const rows = chunksPerRow === 1 ? chunkRows : aggregate(chunkRows, chunksPerRow, columns.length);
  return {
    columns,
    rows,
    chunksPerRow,
    chunkCount: volume.chunkCount,
    degradedChunks,
    rebuildingChunks,
    perMember: columns.map((c, i) => ({ uuid: c.uuid, ...counts[i]! })),
  };
}

function aggregate(rows: readonly MapRow[], per: number, width: number): MapRow[] {
  const out: MapRow[] = [];
  for (let start = 0; start < rows.length; start += per) {
    const group = rows.slice(start, start + per);
    const cells = new Array<CellKind>(width).fill('empty');
    for (const row of group) {
      row.cells.forEach((kind, i) => {
        if (SEVERITY[kind] > SEVERITY[cells[i]!]) cells[i] = kind;
      });
    }
    out.push({ firstChunk: group[0]!.firstChunk, lastChunk: group[group.length - 1]!.lastChunk, cells });
  }
  return out;
}
