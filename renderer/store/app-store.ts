/** The renderer's one store, built from typed slices. The engine is the truth; this is a view of it. */
import { create } from 'zustand';
import { createEngineSlice, type EngineSlice } from './engine-slice';

export type AppState = EngineSlice;

export const useAppStore = create<AppState>()((...args) => ({
  ...createEngineSlice(...args),
}));
