import { describe, expect, it } from 'vitest';
import { create } from 'zustand';
import { createNotificationsSlice, type NotificationsSlice } from './notifications-slice';

describe('notifications', () => {
  it('keeps the newest first, and merges notices with the same key into one', () => {
    const store = create<NotificationsSlice>()((...a) => createNotificationsSlice(...a));
    const { notify } = store.getState();
    notify({ level: 'warn', key: 'errors:p/d', title: 'Checksum errors found on d', detail: '1 bad block' });
    notify({ level: 'error', title: 'Drive e failed' });
    notify({ level: 'warn', key: 'errors:p/d', title: 'Checksum errors found on d', detail: '2 bad blocks' });
    const list = store.getState().notifications;
    expect(list.map((n) => [n.title, n.detail])).toEqual([
      ['Checksum errors found on d', '2 bad blocks'],
      ['Drive e failed', undefined],
    ]);
    store.getState().dismiss(list[0]!.id);
    expect(store.getState().notifications).toHaveLength(1);
  });
});
