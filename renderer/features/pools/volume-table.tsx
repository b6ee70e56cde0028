/** A pool's volumes: layout, size, state, NBD address; export, layout map and (demo) corruption. */
import { useState } from 'react';
import type { PoolStatus, VolumeLayout, VolumeSummary } from '../../../preload/api';
import { formatBytes } from '../../lib/format';
import { shortAddress } from '../../lib/short-address';
import { CopyButton } from '../../lib/ui/copy-button';
import { MenuButton } from '../../lib/ui/menu-button';
import { StateBadge } from '../../lib/ui/state-badge';
import { useEngine } from '../../platform/engine-context';
import { useAppStore } from '../../store/app-store';

/** The demo writes sample data into the first 4 MiB of each volume: corrupt there so a read finds it. */
const CORRUPT_WITHIN = 4 * 1024 * 1024;
const LAYOUTS = ['raid0', 'raid1', 'raid1x3', 'raid10', 'raid5', 'raid6'] as const satisfies readonly VolumeLayout[];

export function VolumeTable({ pool }: { pool: PoolStatus }) {
  if (pool.volumes.length === 0) return <p className="muted small">No volumes yet.</p>;
  return (
    <table className="volume-table">
      <caption className="visually-hidden">Volumes of pool {pool.name}</caption>
      <thead>
        <tr>
          <th scope="col">Volume</th>
          <th scope="col">Layout</th>
          <th scope="col" className="num">
            Size
          </th>
          <th scope="col">State</th>
          <th scope="col">NBD export</th>
          <th scope="col">
            <span className="visually-hidden">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {pool.volumes.map((v) => (
          <VolumeRow key={v.name} pool={pool} volume={v} />
        ))}
      </tbody>
    </table>
  );
}

function VolumeRow({ pool, volume }: { pool: PoolStatus; volume: VolumeSummary }) {
  const engine = useEngine();
  const notify = useAppStore((s) => s.notify);
  const showMap = useAppStore((s) => s.showMap);
  const requestPlan = useAppStore((s) => s.requestPlan);
  const [busy, setBusy] = useState(false);
  const id = `${pool.name}/${volume.name}`;
  const act = async (what: string, run: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    try {
      await run();
    } catch (error) {
      notify({ level: 'error', title: `Could not ${what} ${id}`, detail: (error as Error).message });
    } finally {
      setBusy(false);
      void engine.refreshPool(pool.name);
    }
  };
  const corrupt = () =>
    act('corrupt a block of', async () => {
      const offset = Math.floor((Math.random() * Math.min(CORRUPT_WITHIN, volume.size)) / 4096) * 4096;
      const done = await engine.api.request('volume-corrupt', { pool: pool.name, name: volume.name, offset });
      notify({
        level: 'info',
        title: `Corrupted one copy of the block at ${formatBytes(offset)} in ${id}`,
        detail: `Simulated damage at byte offset ${offset}, on member ${done.member.slice(0, 8)} (slab ${done.slab}). The next read of that block finds it by its checksum, serves the good copy and repairs the bad one.`,
      });
    });
  return (
    <tr data-testid={`volume-${id}`}>
      <th scope="row">{volume.name}</th>
      <td>{volume.layout}</td>
      <td className="num tabular">{formatBytes(volume.size)}</td>
      <td>
        <StateBadge state={volume.state} />
      </td>
      <td className="export-cell">
        {volume.export ? (
          <span className="export-address">
            <code title={volume.export.uri}>{shortAddress(volume.export.tcpUri ?? volume.export.uri)}</code>
            <CopyButton text={volume.export.tcpUri ?? volume.export.uri} what={`NBD address of ${id}`} />
          </span>
        ) : (
          <button type="button" className="button button-small" disabled={busy} aria-label={`Export ${id} over NBD`} onClick={() => void act('export', () => engine.api.request('volume-export', { pool: pool.name, name: volume.name }))}>
            Export
          </button>
        )}
      </td>
      <td className="row-actions">
        <button type="button" className="button button-small" aria-label={`Show layout map of ${id}`} onClick={() => showMap(pool.name, volume.name)}>
          Layout map
        </button>
        <MenuButton
          label="Migrate…"
          accessibleName={`Change the layout of ${id}`}
          items={LAYOUTS.filter((l) => l !== volume.layout).map((layout) => ({
            label: `Migrate to ${layout}`,
            onSelect: () => requestPlan({ pool: pool.name, action: { kind: 'migrate', volume: volume.name, layout }, title: `Migrate ${id} to ${layout}` }),
          }))}
        />
        {pool.demo ? (
          <button type="button" className="button button-small button-danger" disabled={busy} aria-label={`Corrupt a block of ${id}`} onClick={() => void corrupt()}>
            Corrupt a block
          </button>
        ) : null}
      </td>
    </tr>
  );
}

