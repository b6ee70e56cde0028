/**
 * The engine host: the process that owns the engine and answers the contract
 * on a Unix control socket. Electron main, the browser-mode bridge and the CLI
 * are all clients of it.
 *
 * Guarantees:
 * - Every message is validated (size, JSON, envelope, contract version,
 *   parameters) before any handler runs; a bad message gets an error reply on
 *   that connection and nothing else happens.
 * - A message that breaks framing (over MAX_MESSAGE_BYTES) closes only that
 *   connection. A handler that throws becomes an error reply; the host lives on.
 * - Events go to every connected client; a client that does not read its
 *   socket is dropped rather than buffered without bound.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { chmod, unlink } from 'node:fs/promises';
import {
  MAX_MESSAGE_BYTES,
  parseRequest,
  type EventName,
  type Events,
  type ReplyEnvelope,
  type ServerMessage,
} from '../../preload/api.js';
import { createHandlers, RequestFailedError, uptimeMs, type Handlers, type HostContext } from './api-handlers.js';
import { LineFramer, MessageTooLargeError } from './line-framer.js';
import { MemberIoSampler } from './member-io-sampler.js';
import type { PoolRegistry } from './pool-registry.js';

/** A client whose unsent output passes this is too slow to keep (bytes). */
const MAX_CLIENT_BACKLOG_BYTES = 16 * 1024 * 1024;
const STATUS_INTERVAL_MS = 1000;

export interface EngineHostOptions {
  readonly socketPath: string;
  readonly version: string;
  /** The pools this host serves; the daemon owns (starts and closes) it. */
  readonly pools: PoolRegistry;
  readonly log?: (line: string) => void;
  /** Called when a client asks the host to stop (the daemon exits). */
  readonly onShutdownRequested?: () => void;
}

export class EngineHost {
  private readonly server: Server;
  private readonly clients = new Set<Socket>();
  private readonly handlers: Handlers;
  private readonly context: HostContext;
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly log: (line: string) => void;
  private readonly unsubscribe: () => void;
  /** Member I/O rates, sampled while at least one client is connected. */
  private readonly ioRates: MemberIoSampler;

  constructor(private readonly options: EngineHostOptions) {
    this.log = options.log ?? (() => {});
    this.context = {
      version: options.version,
      startedAt: new Date(),
      startedAtMonotonicMs: performance.now(),
      pools: options.pools,
      requestShutdown: () => options.onShutdownRequested?.(),
    };
    this.handlers = createHandlers(this.context);
    this.unsubscribe = options.pools.subscribe((event, data) => this.broadcast(event, data));
    this.ioRates = new MemberIoSampler(() => options.pools.openPools(), (data) => this.broadcast('member-io-rate', data));
    this.server = createServer((socket) => this.accept(socket));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.socketPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    // The directory is already 0700; the socket mode closes it to others too.
    await chmod(this.options.socketPath, 0o600);
    this.statusTimer = setInterval(() => this.broadcast('engine-status', this.status()), STATUS_INTERVAL_MS);
    this.statusTimer.unref();
    this.log(`engine host listening on ${this.options.socketPath}`);
  }

  async close(): Promise<void> {
    clearInterval(this.statusTimer);
    this.ioRates.stop();
    this.unsubscribe();
    for (const socket of this.clients) socket.end();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.clients) socket.destroy();
    await unlink(this.options.socketPath).catch(() => {});
  }

  get clientCount(): number {
    return this.clients.size;
  }

  broadcast<E extends EventName>(event: E, data: Events[E]): void {
    for (const socket of this.clients) this.send(socket, { type: 'event', event, data });
  }

  private status(): Events['engine-status'] {
    return {
      uptimeMs: uptimeMs(this.context),
      startedAt: this.context.startedAt.toISOString(),
      version: this.context.version,
    };
  }

  private accept(socket: Socket): void {
    this.clients.add(socket);
    this.ioRates.start();
    const framer = new LineFramer(MAX_MESSAGE_BYTES);
    socket.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = framer.push(chunk);
      } catch (error) {
        if (error instanceof MessageTooLargeError) {
          this.log(`control client sent a message over ${MAX_MESSAGE_BYTES} bytes; closing that connection`);
          this.send(socket, { type: 'reply', id: null, ok: false, error: { code: 'TOO_LARGE', message: error.message } });
          socket.end();
          socket.pause();
          return;
        }
        throw error;
      }
      for (const line of lines) void this.handleLine(socket, line);
    });
    socket.on('error', () => {}); // a vanished client is normal; 'close' cleans up
    socket.on('close', () => {
      this.clients.delete(socket);
      if (this.clients.size === 0) this.ioRates.stop();
    });
    this.send(socket, { type: 'event', event: 'engine-status', data: this.status() });
  }

  private async handleLine(socket: Socket, line: string): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      this.send(socket, { type: 'reply', id: null, ok: false, error: { code: 'BAD_MESSAGE', message: 'message is not valid JSON' } });
      return;
    }
    const request = parseRequest(raw);
    if (!request.ok) {
      this.send(socket, { type: 'reply', id: request.id, ok: false, error: request.error });
      return;
    }
    let reply: ReplyEnvelope;
    try {
      const handler = this.handlers[request.method] as (params: unknown) => unknown;
      const result = await handler(request.params);
      reply = { type: 'reply', id: request.id, ok: true, result };
    } catch (error) {
      if (error instanceof RequestFailedError) {
        reply = { type: 'reply', id: request.id, ok: false, error: { code: 'FAILED', message: error.message } };
      } else {
        this.log(`request ${request.method} failed unexpectedly: ${(error as Error)?.stack ?? String(error)}`);
        reply = { type: 'reply', id: request.id, ok: false, error: { code: 'INTERNAL', message: `internal error in ${request.method}: ${(error as Error)?.message ?? String(error)}` } };
      }
    }
    this.send(socket, reply);
  }

  private send(socket: Socket, message: ServerMessage): void {
    if (socket.destroyed || socket.writableEnded) return;
    if (socket.writableLength > MAX_CLIENT_BACKLOG_BYTES) {
      this.log('control client is not reading its socket; dropping it');
      socket.destroy();
      return;
    }
    socket.write(JSON.stringify(message) + '\n');
  }
}
