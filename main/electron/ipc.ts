/**
 * The only place that touches ipcMain: relays contract requests from our own
 * window to the engine host and events back. Every message's sender is checked
 * against the window we created and the page we loaded; anything else is
 * refused before it reaches the engine host (which validates the request
 * itself as well).
 */
import { ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron';
import { ContractError, type WireError } from '../../preload/api.js';
import type { ControlClient } from '../service/control-client.js';

/** Channel names; preload/preload.cts uses the same strings. */
export const REQUEST_CHANNEL = 'spindle:request';
export const EVENT_CHANNEL = 'spindle:event';

type InvokeResult = { ok: true; result: unknown } | { ok: false; error: WireError };

export function wireIpc(window: BrowserWindow, client: ControlClient, pageUrl: string): () => void {
  const isOurs = (event: IpcMainInvokeEvent): boolean =>
    event.sender.id === window.webContents.id && event.senderFrame?.url === pageUrl;

  ipcMain.handle(REQUEST_CHANNEL, async (event, method: unknown, params: unknown): Promise<InvokeResult> => {
    if (!isOurs(event)) return { ok: false, error: { code: 'BAD_MESSAGE', message: 'request from an unknown sender' } };
    if (typeof method !== 'string') return { ok: false, error: { code: 'BAD_MESSAGE', message: 'method must be a string' } };
    try {
      return { ok: true, result: await client.requestUnchecked(method, params) };
    } catch (error) {
      if (error instanceof ContractError) return { ok: false, error: { code: error.code, message: error.message } };
      return { ok: false, error: { code: 'INTERNAL', message: (error as Error).message } };
    }
  });

  const unsubscribe = client.onAnyEvent((name, data) => {
    if (!window.isDestroyed()) window.webContents.send(EVENT_CHANNEL, name, data);
  });

  return () => {
    ipcMain.removeHandler(REQUEST_CHANNEL);
    unsubscribe();
  };
}
