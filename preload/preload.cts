/**
 * The preload script: exposes `window.spindle` (the contract's SpindleApi) to
 * the sandboxed renderer and nothing else. It carries requests and events
 * between the renderer and main unchanged; main validates every request
 * against the contract before it reaches the engine host, so this script holds
 * no logic that could be bypassed.
 *
 * CommonJS (.cts) because sandboxed preloads cannot load ES modules.
 */
import electron = require('electron');
import type { IpcRendererEvent } from 'electron';
import type { EventName, Events, Replies, RequestName, RequestParams, SpindleApi, WireError } from './api.js';

const { contextBridge, ipcRenderer } = electron;

/** IPC channel names; main/electron/ipc.ts uses the same strings. */
const REQUEST_CHANNEL = 'spindle:request';
const EVENT_CHANNEL = 'spindle:event';

type InvokeResult = { ok: true; result: unknown } | { ok: false; error: WireError };

const api: SpindleApi = {
  async request<N extends RequestName>(method: N, params: RequestParams<N>): Promise<Replies[N]> {
    const reply = (await ipcRenderer.invoke(REQUEST_CHANNEL, method, params)) as InvokeResult;
    if (reply.ok) return reply.result as Replies[N];
    const error = new Error(reply.error.message) as Error & { code: string };
    error.code = reply.error.code;
    throw error;
  },
  on<E extends EventName>(event: E, listener: (data: Events[E]) => void): () => void {
    const handler = (_sender: IpcRendererEvent, name: string, data: unknown): void => {
      if (name === event) listener(data as Events[E]);
    };
    ipcRenderer.on(EVENT_CHANNEL, handler);
    return () => {
      ipcRenderer.removeListener(EVENT_CHANNEL, handler);
    };
  },
};

contextBridge.exposeInMainWorld('spindle', api);
