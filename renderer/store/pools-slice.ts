/** Pools as the engine reports them: the list, each pool's status, and the layout maps people opened. */
import type { StateCreator } from 'zustand';
import type { ErrorCounts, MemberStatus, PoolStatus, PoolSummary, VolumeState, VolumeStatus } from '../../preload/api';

export interface PoolsSlice {
  /** Undefined until the first pool-list reply. */
  readonly poolList: readonly PoolSummary[] | undefined;
  readonly poolStatus: Readonly<Record<string, PoolStatus>>;
  /** Layout maps by "pool/volume", every page merged. */
  readonly volumeMaps: Readonly<Record<string, VolumeStatus>>;
  setPoolList(pools: readonly PoolSummary[]): void;
  setPoolStatus(status: PoolStatus): void;
  setVolumeMap(status: VolumeStatus): void;
  applyMemberState(pool: string, member: MemberStatus): void;
  applyMemberErrors(updates: ReadonlyArray<{ pool: string; member: string; errors: ErrorCounts }>): void;
  applyVolumeState(pool: string, volume: string, state: VolumeState): void;
}

export const volumeKey = (pool: string, volume: string): string => `${pool}/${volume}`;

export const createPoolsSlice: StateCreator<PoolsSlice, [], [], PoolsSlice> = (set) => ({
  poolList: undefined,
  poolStatus: {},
  volumeMaps: {},
  setPoolList: (pools) =>
    set((s) => {
      // Statuses of pools that are gone must not linger in the views.
      const known = new Set(pools.map((p) => p.name));
      const poolStatus = Object.fromEntries(Object.entries(s.poolStatus).filter(([name]) => known.has(name)));
      return { poolList: pools, poolStatus };
    }),
  setPoolStatus: (status) =>
    set((s) => ({
      poolStatus: { ...s.poolStatus, [status.name]: status },
      poolList: s.poolList?.map((p) => (p.name === status.name ? summaryOf(status) : p)),
    })),
  setVolumeMap: (status) => set((s) => ({ volumeMaps: { ...s.volumeMaps, [volumeKey(status.pool, status.name)]: status } })),
  applyMemberState: (pool, member) =>
    set((s) => {
      const status = s.poolStatus[pool];
      if (!status) return {};
      const members = status.members.some((m) => m.uuid === member.uuid)
        ? status.members.map((m) => (m.uuid === member.uuid ? member : m))
        : [...status.members, member];
      return { poolStatus: { ...s.poolStatus, [pool]: { ...status, members } } };
    }),
  applyMemberErrors: (updates) =>
    set((s) => {
      let poolStatus = s.poolStatus;
      for (const { pool, member, errors } of updates) {
        const status = poolStatus[pool];
        if (!status) continue;
        const members = status.members.map((m) => (m.uuid === member ? { ...m, errors } : m));
        poolStatus = { ...poolStatus, [pool]: { ...status, members } };
      }
      return poolStatus === s.poolStatus ? {} : { poolStatus };
    }),
  applyVolumeState: (pool, volume, state) =>
    set((s) => {
      const status = s.poolStatus[pool];
      if (!status) return {};
      const volumes = status.volumes.map((v) => (v.name === volume ? { ...v, state } : v));
      return { poolStatus: { ...s.poolStatus, [pool]: { ...status, volumes } } };
    }),
});

function summaryOf(status: PoolStatus): PoolSummary {
  const { name, uuid, health, demo, memberCount, volumeCount, problem } = status;
  return { name, uuid, health, demo, memberCount, volumeCount, ...(problem ? { problem } : {}) };
}
