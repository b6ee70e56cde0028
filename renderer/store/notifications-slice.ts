/** Notifications people should see: failures, repairs, checksum errors. Newest first, a bounded number kept. */
import type { StateCreator } from 'zustand';

export type NotificationLevel = 'info' | 'success' | 'warn' | 'error';

export interface Notice {
  readonly level: NotificationLevel;
  readonly title: string;
  readonly detail?: string;
}

export interface Notification extends Notice {
  readonly id: number;
  /** Date.now() when it was raised. */
  readonly at: number;
}

const KEPT = 50;

export interface NotificationsSlice {
  readonly notifications: readonly Notification[];
  notify(notice: Notice): void;
  dismiss(id: number): void;
}

let nextId = 1;

export const createNotificationsSlice: StateCreator<NotificationsSlice, [], [], NotificationsSlice> = (set) => ({
  notifications: [],
  notify: (notice) => set((s) => ({ notifications: [{ ...notice, id: nextId++, at: Date.now() }, ...s.notifications].slice(0, KEPT) })),
  dismiss: (id) => set((s) => ({ notifications: s.notifications.filter((n) => n.id !== id) })),
});
