/** What the person is looking at or deciding: the open layout map, the plan under review, the pool being created. */
import type { StateCreator } from 'zustand';
import type { PlanAction } from '../../preload/api';

export interface PlanRequest {
  readonly pool: string;
  readonly action: PlanAction;
  /** The question in words: "Add disk6.img to pool demo". */
  readonly title: string;
}

export interface UiSlice {
  readonly openMap: { readonly pool: string; readonly volume: string } | undefined;
  readonly planRequest: PlanRequest | undefined;
  /** Member URIs to start a new pool with (from a drop on "New pool"). */
  readonly newPoolRequest: { readonly uris: readonly string[] } | undefined;
  showMap(pool: string, volume: string): void;
  closeMap(): void;
  requestPlan(request: PlanRequest): void;
  closePlan(): void;
  requestNewPool(uris: readonly string[]): void;
  closeNewPool(): void;
}

export const createUiSlice: StateCreator<UiSlice, [], [], UiSlice> = (set) => ({
  openMap: undefined,
  planRequest: undefined,
  newPoolRequest: undefined,
  showMap: (pool, volume) => set({ openMap: { pool, volume } }),
  closeMap: () => set({ openMap: undefined }),
  requestPlan: (planRequest) => set({ planRequest }),
  closePlan: () => set({ planRequest: undefined }),
  requestNewPool: (uris) => set({ newPoolRequest: { uris } }),
  closeNewPool: () => set({ newPoolRequest: undefined }),
});
