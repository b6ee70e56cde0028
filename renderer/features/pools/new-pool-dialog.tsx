/** Starts a pool from drives (dropped on "New pool", or typed as URIs); says what will happen before it does. */
import { useState, type FormEvent } from 'react';
import { driveLabel } from '../../lib/drive-label';
import { ModalDialog } from '../../lib/ui/modal-dialog';
import { useEngine } from '../../platform/engine-context';
import { useAppStore } from '../../store/app-store';

export function NewPoolDialog({ uris }: { uris: readonly string[] }) {
  const engine = useEngine();
  const close = useAppStore((s) => s.closeNewPool);
  const notify = useAppStore((s) => s.notify);
  const [name, setName] = useState('');
  const [members, setMembers] = useState(uris.join('\n'));
  const [spare, setSpare] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const list = members.split('\n').map((l) => l.trim()).filter(Boolean);
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    try {
      await engine.api.request('pool-create', { name, members: list, ...(spare.trim() ? { spares: [spare.trim()] } : {}) });
      notify({ level: 'success', title: `Created pool ${name}`, detail: `On ${list.length} drive${list.length === 1 ? '' : 's'}.` });
      await engine.refreshPools();
      close();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <ModalDialog title="New pool" onClose={close}>
      <form className="stack-form" onSubmit={(e) => void submit(e)}>
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required autoFocus pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}" />
        </label>
        <label>
          Drives (one member URI a line: file:/PATH, nbd+unix:///EXPORT?socket=PATH, nbd://HOST:PORT/EXPORT)
          <textarea value={members} onChange={(e) => setMembers(e.target.value)} rows={4} required />
        </label>
        <label>
          Spare (optional)
          <input value={spare} onChange={(e) => setSpare(e.target.value)} />
        </label>
        <p className="plan-summary" role="note">
          {list.length > 0
            ? `Creates pool ${name || '…'} on ${list.map(driveLabel).join(', ')}${spare.trim() ? ` with ${driveLabel(spare.trim())} as its spare` : ''}. Everything on these drives is lost.`
            : 'Name at least one drive.'}
        </p>
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        <div className="form-buttons">
          <button type="submit" className="button button-primary" disabled={busy || list.length === 0}>
            Confirm
          </button>
          <button type="button" className="button" onClick={close}>
            Cancel
          </button>
        </div>
      </form>
    </ModalDialog>
  );
}
