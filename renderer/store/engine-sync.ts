/**
 * The one module that feeds contract events into the store. Started once by
 * main.tsx; returns the function that stops it.
 */
import type { PlatformApi } from '../platform/spindle-api';
import type { useAppStore } from './app-store';

type Store = typeof useAppStore;

export function startEngineSync(platform: PlatformApi, store: Store): () => void {
  const { api } = platform;
  const state = store.getState;

  const fetchVersion = (): void => {
    api.request('version', {}).then(
      (info) => state().setVersionInfo(info),
      (error: Error) => state().setError(error.message),
    );
  };

  const stops = [
    platform.onConnectionChange((connection) => {
      state().setConnection(connection);
      if (connection === 'open') fetchVersion();
    }),
    api.on('engine-status', (status) => state().setStatus(status, performance.now())),
  ];
  return () => {
    for (const stop of stops) stop();
  };
}
