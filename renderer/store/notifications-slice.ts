/** Notifications people should see: failures, repairs, checksum errors. Newest first, a bounded number kept. */
import type { StateCreator } from 'zustand';

export type NotificationLevel = 'info' | 'success' | 'warn' | 'error';

export interface Notice {
  readonly level: NotificationLevel;
  readonly title: string;
  readonly detail?: string;
  /** Notices with the same key within MERGE_MS replace each other (a burst of errors is one notification). */
  readonly key?: string;
}

export interface Notification extends Notice {
  readonly id: number;
  /** Date.now() when it was raised. */
  readonly at: number;
}

const KEPT = 50;
const MERGE_MS = 30_000;

export interface NotificationsSlice {
  readonly notifications: readonly Notification[];
  notify(notice: Notice): void;
  dismiss(id: number): void;
}

let nextId = 1;

export const createNotificationsSlice: StateCreator<NotificationsSlice, [], [], NotificationsSlice> = (set) => ({
  notifications: [],
  notify: (notice) =>
    set((s) => {
      const now = Date.now();
      const previous = notice.key ? s.notifications.find((n) => n.key === notice.key && now - n.at < MERGE_MS) : undefined;
      const rest = previous ? s.notifications.filter((n) => n !== previous) : s.notifications;
      return { notifications: [{ ...notice, id: previous?.id ?? nextId++, at: now }, ...rest].slice(0, KEPT) };
    }),
  dismiss: (id) => set((s) => ({ notifications: s.notifications.filter((n) => n.id !== id) })),
});
