/**
 * The one way the renderer reaches the engine: `window.spindle` from the
 * Electron preload, or the WebSocket bridge in browser mode.
 */
import type { SpindleApi } from '../../preload/api';
import { createWebSocketApi, type ConnectionState } from './websocket-api';

declare global {
  interface Window {
    spindle?: SpindleApi;
  }
}

export interface PlatformApi {
  readonly api: SpindleApi;
  /** Electron's IPC is always connected; browser mode reports its WebSocket. */
  onConnectionChange(listener: (state: ConnectionState) => void): () => void;
}

export function platformApi(): PlatformApi {
  if (window.spindle) {
    const api = window.spindle;
    return {
      api,
      onConnectionChange(listener) {
        listener('open');
        return () => {};
      },
    };
  }
  const token = new URLSearchParams(window.location.search).get('token') ?? '';
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const api = createWebSocketApi(`${scheme}//${window.location.host}/bridge?token=${encodeURIComponent(token)}`);
  return { api, onConnectionChange: (listener) => api.onConnectionChange(listener) };
}

export type { ConnectionState };
