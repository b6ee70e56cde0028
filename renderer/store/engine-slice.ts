/** What the renderer knows about the engine host: its version and liveness. */
import type { StateCreator } from 'zustand';
import type { EngineStatus, VersionInfo } from '../../preload/api';
import type { ConnectionState } from '../platform/spindle-api';

export interface EngineSlice {
  readonly connection: ConnectionState;
  readonly versionInfo: VersionInfo | undefined;
  readonly status: EngineStatus | undefined;
  /** When the last status arrived (ms, performance.now()). */
  readonly statusReceivedAt: number | undefined;
  readonly lastError: string | undefined;
  setConnection(connection: ConnectionState): void;
  setVersionInfo(info: VersionInfo): void;
  setStatus(status: EngineStatus, receivedAt: number): void;
  setError(message: string | undefined): void;
}

export const createEngineSlice: StateCreator<EngineSlice, [], [], EngineSlice> = (set) => ({
  connection: 'connecting',
  versionInfo: undefined,
  status: undefined,
  statusReceivedAt: undefined,
  lastError: undefined,
  setConnection: (connection) => set({ connection }),
  setVersionInfo: (versionInfo) => set({ versionInfo, lastError: undefined }),
  setStatus: (status, statusReceivedAt) => set({ status, statusReceivedAt }),
  setError: (lastError) => set({ lastError }),
});
