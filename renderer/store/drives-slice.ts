/**
 * Drives: the helper's inventory (when the engine host has one) and each
 * member's recent I/O rate for the sparklines. Pool members themselves live
 * in the pools slice; drive-views.ts joins the two.
 */
import type { StateCreator } from 'zustand';
import type { Drive } from '../../preload/api';

/** One second per sample: a minute of history. */
export const IO_HISTORY_SAMPLES = 60;

export interface IoSample {
  readonly read: number;
  readonly write: number;
}

export interface DrivesSlice {
  readonly inventory: readonly Drive[] | undefined;
  /** Why there is no inventory (the engine host cannot list drives yet, or failed to). */
  readonly inventoryProblem: string | undefined;
  /** By "pool/memberUuid"; absent until the first member-io-rate event for the member. */
  readonly ioHistory: Readonly<Record<string, readonly IoSample[]>>;
  setInventory(drives: readonly Drive[]): void;
  setInventoryProblem(problem: string): void;
  pushIoRates(samples: ReadonlyArray<{ key: string; sample: IoSample }>): void;
}

export const ioKey = (pool: string, member: string): string => `${pool}/${member}`;

export const createDrivesSlice: StateCreator<DrivesSlice, [], [], DrivesSlice> = (set) => ({
  inventory: undefined,
  inventoryProblem: undefined,
  ioHistory: {},
  setInventory: (inventory) => set({ inventory, inventoryProblem: undefined }),
  setInventoryProblem: (inventoryProblem) => set({ inventoryProblem }),
  pushIoRates: (samples) =>
    set((s) => {
      if (samples.length === 0) return {};
      const ioHistory = { ...s.ioHistory };
      for (const { key, sample } of samples) {
        const history = ioHistory[key] ?? [];
        ioHistory[key] = history.length >= IO_HISTORY_SAMPLES ? [...history.slice(1 - IO_HISTORY_SAMPLES), sample] : [...history, sample];
      }
      return { ioHistory };
    }),
});
