/** Notifications in a live region: newest first, a few at a time, each dismissable; errors stay until dismissed. */
import { useEffect } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { useAppStore } from '../../store/app-store';
import type { Notification } from '../../store/notifications-slice';

const SHOWN = 3;
const INFO_MS = 15_000;

export function NotificationsRegion() {
  const shown = useAppStore(useShallow((s) => s.notifications.slice(0, SHOWN)));
  const total = useAppStore((s) => s.notifications.length);
  return (
    <section className="notifications" aria-label="Notifications">
      <ol aria-live="polite" aria-relevant="additions">
        {shown.map((n) => (
          <NotificationItem key={n.id} notification={n} />
        ))}
      </ol>
      {total > SHOWN ? <p className="muted small">{total - SHOWN} older</p> : null}
    </section>
  );
}

function NotificationItem({ notification: n }: { notification: Notification }) {
  const dismiss = useAppStore((s) => s.dismiss);
  useEffect(() => {
    if (n.level === 'error' || n.level === 'warn') return;
    const timer = setTimeout(() => dismiss(n.id), INFO_MS);
    return () => clearTimeout(timer);
  }, [n, dismiss]);
  return (
    <li className={`notice notice-${n.level}`} role={n.level === 'error' ? 'alert' : 'status'} aria-label={n.title}>
      <div>
        <strong>{n.title}</strong>
        {n.detail ? <p>{n.detail}</p> : null}
      </div>
      <button type="button" className="button button-small" onClick={() => dismiss(n.id)} aria-label={`Dismiss: ${n.title}`}>
        ×
      </button>
    </li>
  );
}
