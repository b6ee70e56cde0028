/**
 * `window.spindle` for browser mode: the contract over the browser-mode
 * WebSocket bridge. Reconnects with backoff when the bridge or the engine host
 * goes away; requests made while disconnected fail at once with DISCONNECTED
 * rather than hang.
 */
import {
  CONTRACT_VERSION,
  type EventName,
  type Events,
  type Replies,
  type RequestName,
  type RequestParams,
  type ServerMessage,
  type SpindleApi,
} from '../../preload/api';

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface WebSocketApi extends SpindleApi {
  onConnectionChange(listener: (state: ConnectionState) => void): () => void;
}

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

export function createWebSocketApi(url: string): WebSocketApi {
  let socket: WebSocket | undefined;
  let nextId = 1;
  let backoffMs = 250;
  const pending = new Map<number, Pending>();
  const eventListeners = new Map<EventName, Set<(data: unknown) => void>>();
  const connectionListeners = new Set<(state: ConnectionState) => void>();

  const setState = (state: ConnectionState): void => {
    for (const listener of connectionListeners) listener(state);
  };

  const fail = (message: string): void => {
    for (const entry of pending.values()) entry.reject(Object.assign(new Error(message), { code: 'DISCONNECTED' }));
    pending.clear();
  };

  const open = (): void => {
    setState('connecting');
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      backoffMs = 250;
      setState('open');
    };
    ws.onmessage = (message) => {
      let parsed: ServerMessage;
      try {
        parsed = JSON.parse(String(message.data)) as ServerMessage;
      } catch {
        return;
      }
      if (parsed.type === 'event') {
        for (const listener of eventListeners.get(parsed.event) ?? []) listener(parsed.data);
      } else if (parsed.type === 'reply' && parsed.id !== null) {
        const entry = pending.get(parsed.id);
        if (!entry) return;
        pending.delete(parsed.id);
        if (parsed.ok) entry.resolve(parsed.result);
        else entry.reject(Object.assign(new Error(parsed.error.message), { code: parsed.error.code }));
      }
    };
    ws.onclose = () => {
      socket = undefined;
      fail('the connection to the engine host was lost');
      setState('closed');
      setTimeout(open, backoffMs);
      backoffMs = Math.min(backoffMs * 2, 5000);
    };
  };
  open();

  return {
    request<N extends RequestName>(method: N, params: RequestParams<N>): Promise<Replies[N]> {
      if (!socket || socket.readyState !== WebSocket.OPEN) {
        return Promise.reject(Object.assign(new Error('not connected to the engine host'), { code: 'DISCONNECTED' }));
      }
      const id = nextId++;
      const ws = socket;
      return new Promise<Replies[N]>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        ws.send(JSON.stringify({ type: 'request', version: CONTRACT_VERSION, id, method, params }));
      });
    },
    on<E extends EventName>(event: E, listener: (data: Events[E]) => void): () => void {
      let set = eventListeners.get(event);
      if (!set) eventListeners.set(event, (set = new Set()));
      const untyped = listener as (data: unknown) => void;
      set.add(untyped);
      return () => set.delete(untyped);
    },
    onConnectionChange(listener) {
      connectionListeners.add(listener);
      return () => connectionListeners.delete(listener);
    },
  };
}
