/** Where a volume's data lives: its chunks across the pool's drives, with a legend and per-drive counts. */
import { useEffect, useMemo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { driveLabel } from '../../lib/drive-label';
import { useEngine } from '../../platform/engine-context';
import { useAppStore } from '../../store/app-store';
import { volumeKey } from '../../store/pools-slice';
import { CELL_KINDS, LayoutMapCanvas, columnWidth } from './layout-map-canvas';
import { buildLayoutMap, CELL_LABELS, type MapMember } from './map-model';

/** More chunks than this are grouped, so the picture stays one screen high. */
const MAX_ROWS = 96;

export function LayoutMapPanel() {
  const open = useAppStore((s) => s.openMap);
  if (!open) return null;
  return <OpenLayoutMap pool={open.pool} volume={open.volume} />;
}

function OpenLayoutMap({ pool, volume }: { pool: string; volume: string }) {
  const engine = useEngine();
  const close = useAppStore((s) => s.closeMap);
  const map = useAppStore((s) => s.volumeMaps[volumeKey(pool, volume)]);
  // Keyed by what the map shows, so error counters ticking up do not redraw it.
  const memberKeys = useAppStore(useShallow((s) => s.poolStatus[pool]?.members.map((m) => JSON.stringify([m.uuid, m.uri, m.state, m.role])) ?? []));
  const members = useMemo(
    () =>
      memberKeys.map((key) => {
        const [uuid, uri, state, role] = JSON.parse(key) as [string, string, MapMember['state'], MapMember['role']];
        return { uuid, uri, state, role };
      }),
    [memberKeys],
  );
  useEffect(() => {
    void engine.refreshVolumeMap(pool, volume);
  }, [engine, pool, volume]);
  const model = useMemo(() => (map && members.length > 0 ? buildLayoutMap(map, members, MAX_ROWS) : undefined), [map, members]);
  const title = `Layout map of ${pool}/${volume}`;
  const colW = model ? columnWidth(model.columns.length) : 0;

  return (
    <section className="panel layout-map" aria-labelledby="layout-map-title" data-testid="layout-map">
      <div className="panel-head">
        <h2 id="layout-map-title">{title}</h2>
        <button type="button" className="button button-small" onClick={close} aria-label="Close the layout map">
          Close
        </button>
      </div>
      {!model || !map ? (
        <p className="muted">Loading the map…</p>
      ) : (
        <>
          <p className="small tabular" data-testid="layout-map-summary">
            {map.layout}, {model.chunkCount} chunk{model.chunkCount === 1 ? '' : 's'} across {model.columns.filter((c) => model.perMember.find((p) => p.uuid === c.uuid)!.slabs > 0).length} drives
            {model.chunksPerRow > 1 ? `; each row shows ${model.chunksPerRow} chunks (worst state wins)` : ''}.{' '}
            {model.degradedChunks > 0 ? (
              <strong className="text-bad">
                {model.degradedChunks} chunk{model.degradedChunks === 1 ? '' : 's'} degraded
              </strong>
            ) : (
              <span>All chunks fully redundant.</span>
            )}
            {model.rebuildingChunks > 0 ? ` ${model.rebuildingChunks} rebuilding.` : ''}
          </p>
          <div className="map-scroll">
            <div className="map-headers" style={{ width: colW * model.columns.length }} aria-hidden="true">
              {model.columns.map((c) => (
                <span key={c.uuid} className={`map-header state-${c.state}${model.columns.length > 8 ? ' vertical' : ''}`} style={{ width: colW }} title={c.uri}>
                  {driveLabel(c.uri)}
                </span>
              ))}
            </div>
            <LayoutMapCanvas model={model} label={`${title}: ${model.degradedChunks} of ${model.chunkCount} chunks degraded`} />
          </div>
          {map.layout.startsWith('raid5') || map.layout.startsWith('raid6') ? (
            <p className="muted small">Parity rotates from row to row inside each chunk; a cell shows its slab's role in the chunk's first row.</p>
          ) : null}
          <ul className="map-legend small" aria-label="Legend">
            {CELL_KINDS.map((k) => (
              <li key={k}>
                <span className={`swatch swatch-${k}`} aria-hidden="true" />
                {CELL_LABELS[k]}
              </li>
            ))}
          </ul>
          <details className="small">
            <summary>Slabs per drive</summary>
            <table className="map-table tabular">
              <thead>
                <tr>
                  <th scope="col">Drive</th>
                  <th scope="col">State</th>
                  <th scope="col" className="num">
                    Slabs
                  </th>
                  {CELL_KINDS.filter((k) => k !== 'empty').map((k) => (
                    <th key={k} scope="col" className="num">
                      {CELL_LABELS[k].replace(/ \(.*\)$/, '')}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {model.perMember.map((p, i) => (
                  <tr key={p.uuid}>
                    <th scope="row">{driveLabel(model.columns[i]!.uri)}</th>
                    <td>{model.columns[i]!.state}</td>
                    <td className="num">{p.slabs}</td>
                    {CELL_KINDS.filter((k) => k !== 'empty').map((k) => (
                      <td key={k} className="num">
                        {p.byKind[k] ?? 0}
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </>
      )}
    </section>
  );
}
