/**
 * A client of the engine host's control socket: typed requests with replies
 * matched by id, and events. Used by the CLI and Electron main.
 */
import { connect, type Socket } from 'node:net';
import {
  CONTRACT_VERSION,
  ContractError,
  MAX_MESSAGE_BYTES,
  type EventName,
  type Events,
  type Replies,
  type RequestName,
  type RequestParams,
  type ServerMessage,
} from '../../preload/api.js';
import { LineFramer } from './line-framer.js';

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };
type AnyEventListener = (event: EventName, data: unknown) => void;

export class ControlClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<AnyEventListener>();
  private readonly closeListeners = new Set<() => void>();
  private closed = false;

  private constructor(private readonly socket: Socket) {
    const framer = new LineFramer(MAX_MESSAGE_BYTES);
    socket.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = framer.push(chunk);
      } catch (error) {
        socket.destroy(error as Error);
        return;
      }
      for (const line of lines) this.dispatch(line);
    });
    socket.on('error', () => {});
    socket.on('close', () => this.handleClose());
  }

  /** Connects to the engine host; rejects with the socket error (ENOENT, ECONNREFUSED) if none listens. */
  static connect(socketPath: string, timeoutMs = 5000): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(Object.assign(new Error(`timed out connecting to the engine host at ${socketPath}`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ControlClient(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  request<N extends RequestName>(method: N, params: RequestParams<N>): Promise<Replies[N]> {
    return this.requestUnchecked(method, params) as Promise<Replies[N]>;
  }

  /** For relays (Electron IPC): sends whatever the caller got; the host validates it. */
  requestUnchecked(method: string, params: unknown): Promise<unknown> {
    if (this.closed) return Promise.reject(new ContractError({ code: 'DISCONNECTED', message: 'the engine host connection is closed' }));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(JSON.stringify({ type: 'request', version: CONTRACT_VERSION, id, method, params }) + '\n');
    });
  }

  on<E extends EventName>(event: E, listener: (data: Events[E]) => void): () => void {
    const any: AnyEventListener = (name, data) => {
      if (name === event) listener(data as Events[E]);
    };
    return this.onAnyEvent(any);
  }

  onAnyEvent(listener: AnyEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onClose(listener: () => void): void {
    this.closeListeners.add(listener);
  }

  close(): void {
    this.socket.end();
  }

  private dispatch(line: string): void {
    let message: ServerMessage;
    try {
      message = JSON.parse(line) as ServerMessage;
    } catch {
      return; // the host only sends JSON; ignore garbage rather than crash the client
    }
    if (message.type === 'event') {
      for (const listener of this.listeners) listener(message.event, message.data);
      return;
    }
    if (message.type !== 'reply' || message.id === null) return;
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    if (message.ok) pending.resolve(message.result);
    else pending.reject(new ContractError(message.error));
  }

  private handleClose(): void {
    if (this.closed) return;
    this.closed = true;
    const error = new ContractError({ code: 'DISCONNECTED', message: 'the engine host closed the connection' });
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    for (const listener of this.closeListeners) listener();
  }
}
