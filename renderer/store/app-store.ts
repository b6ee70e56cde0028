/** The renderer's one store, built from typed slices. The engine is the truth; this is a view of it. */
import { create } from 'zustand';
import { createDrivesSlice, type DrivesSlice } from './drives-slice';
import { createEngineSlice, type EngineSlice } from './engine-slice';
import { createJobsSlice, type JobsSlice } from './jobs-slice';
import { createNotificationsSlice, type NotificationsSlice } from './notifications-slice';
import { createPoolsSlice, type PoolsSlice } from './pools-slice';
import { createUiSlice, type UiSlice } from './ui-slice';

export type AppState = EngineSlice & PoolsSlice & DrivesSlice & JobsSlice & NotificationsSlice & UiSlice;

/** A fresh store (the app has one; tests make their own). */
export function createAppStore() {
  return create<AppState>()((...args) => ({
    ...createEngineSlice(...args),
    ...createPoolsSlice(...args),
    ...createDrivesSlice(...args),
    ...createJobsSlice(...args),
    ...createNotificationsSlice(...args),
    ...createUiSlice(...args),
  }));
}

export const useAppStore = createAppStore();
