/** Creates a volume in a pool: name, size, layout; the pool's free space per layout says what fits. */
import { useState, type FormEvent } from 'react';
import type { PoolStatus, VolumeLayout } from '../../../preload/api';
import { formatBytes } from '../../lib/format';
import { useEngine } from '../../platform/engine-context';

const MiB = 1024 * 1024;
/** The contract's layouts (the renderer takes only types from the contract, so the list is spelled here and checked). */
const VOLUME_LAYOUTS = ['raid0', 'raid1', 'raid1x3', 'raid10', 'raid5', 'raid6'] as const satisfies readonly VolumeLayout[];

export function NewVolumeForm({ pool, onDone }: { pool: PoolStatus; onDone: () => void }) {
  const engine = useEngine();
  const [name, setName] = useState('');
  const [sizeMiB, setSizeMiB] = useState('64');
  const [layout, setLayout] = useState<VolumeLayout>('raid1');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const size = Math.round(Number(sizeMiB) * MiB);
    if (!Number.isFinite(size) || size <= 0) {
      setError('Size must be a positive number of MiB.');
      return;
    }
    setBusy(true);
    try {
      await engine.api.request('volume-create', { pool: pool.name, name, size, layout });
      await engine.refreshPool(pool.name);
      onDone();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="inline-form" onSubmit={(e) => void submit(e)} aria-label={`New volume in pool ${pool.name}`}>
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} required pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}" />
      </label>
      <label>
        Size (MiB)
        <input value={sizeMiB} onChange={(e) => setSizeMiB(e.target.value)} inputMode="numeric" required className="tabular" />
      </label>
      <label>
        Layout
        <select value={layout} onChange={(e) => setLayout(e.target.value as VolumeLayout)}>
          {VOLUME_LAYOUTS.map((l) => (
            <option key={l} value={l}>
              {l} (up to {formatBytes(pool.freeSpace[l])})
            </option>
          ))}
        </select>
      </label>
      <div className="form-buttons">
        <button type="submit" className="button button-primary" disabled={busy}>
          Create volume
        </button>
        <button type="button" className="button" onClick={onDone}>
          Cancel
        </button>
      </div>
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : null}
    </form>
  );
}
