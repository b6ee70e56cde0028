/**
 * Pool and volume status as text for people (the CLI without --json): short
 * member ids, sizes in binary units, one table per kind of thing.
 */
import { formatSize } from '../../engine/units.js';
import type { PoolStatus, PoolSummary, VolumeStatus, VolumeSummary } from '../../../preload/api.js';

/** Enough of a uuid to tell members apart, and to type back (fail/restore take prefixes). */
export function shortId(uuid: string): string {
  return uuid.slice(0, 8);
}

/** Columns padded to their widest cell (the last left ragged), each line indented. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>, indent = '  '): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].map((l) => indent + l).join('\n');
}

function health(summary: PoolSummary): string {
  return summary.problem ? `${summary.health} (${summary.problem})` : summary.health;
}

export function poolListText(pools: readonly PoolSummary[]): string {
  if (pools.length === 0) return 'no pools (create one with `spindle pool create`, or try `spindle demo`)';
  return table(
    ['NAME', 'HEALTH', 'MEMBERS', 'VOLUMES', 'UUID'],
    pools.map((p) => [p.name + (p.demo ? ' (demo)' : ''), health(p), String(p.memberCount), String(p.volumeCount), p.uuid]),
  ).replace(/^ {2}/gm, '');
}

export function poolStatusText(status: PoolStatus): string {
  const lines = [
    `pool ${status.name}: ${health(status)}`,
    `  uuid ${status.uuid}, slabs of ${formatSize(status.slabSize)} (${formatSize(status.slabDataBytes)} of data)${status.demo ? ', demo pool' : ''}`,
    `  automatic repair ${status.policy.autoRepair ? 'on' : 'off'}, jobs may slow foreground I/O to ${status.policy.latencyBudget}× its idle p99 latency`,
    'members:',
    table(
      ['ID', 'STATE', 'ROLE', 'SLABS', 'FREE', 'ERRORS r/w/c', 'URI'],
      status.members.map((m) => [
        shortId(m.uuid),
        m.state,
        m.role,
        String(m.slabCount),
        String(m.freeSlabs),
        `${m.errors.read}/${m.errors.write}/${m.errors.checksum}`,
        m.uri + (m.reason ? ` (${m.reason})` : ''),
      ]),
    ),
  ];
  lines.push(status.volumes.length === 0 ? 'volumes: none' : 'volumes:');
  if (status.volumes.length > 0) {
    lines.push(
      table(
        ['NAME', 'LAYOUT', 'WIDTH', 'SIZE', 'STATE', 'EXPORT'],
        status.volumes.map((v) => [v.name, v.layout, String(v.width), formatSize(v.size), v.state, v.export?.uri ?? '-']),
      ),
    );
  }
  lines.push(
    'free space: ' +
      Object.entries(status.freeSpace)
        .map(([layout, bytes]) => `${layout} ${formatSize(bytes)}`)
        .join(', '),
  );
  return lines.join('\n');
}

export function volumeLine(volume: VolumeSummary): string {
  return `volume ${volume.pool}/${volume.name}: ${volume.layout}, width ${volume.width}, ${formatSize(volume.size)}, ${volume.state}`;
}

export function volumeStatusText(status: VolumeStatus): string {
  const lines = [volumeLine(status)];
  if (status.export) lines.push(`  exported at ${status.export.uri}${status.export.tcpUri ? ` and ${status.export.tcpUri}` : ''}`);
  lines.push(`layout map (${status.chunkCount} chunk${status.chunkCount === 1 ? '' : 's'}; member:slab role, row 0):`);
  for (const chunk of status.chunks) {
    const columns = chunk.columns.map((c) => `${shortId(c.member)}:${c.slab} ${c.role}${c.state === 'online' ? '' : ` [${c.state}]`}`);
    lines.push(`  chunk ${chunk.id} (${formatSize(chunk.capacity)}): ${columns.join('  ')}`);
  }
  return lines.join('\n');
}
