/**
 * NbdServer: serves named BlockDevice exports over NBD on Unix sockets and TCP.
 *
 * The server owns listeners and the export table; each accepted socket is a
 * ServerConnection (see server-connection.ts for the protocol itself). One
 * device may back any number of connections at once; the server adds no
 * locking of its own, so a device that advertises canMultiConn must keep its
 * own cache consistent across concurrent callers (ours do).
 *
 * The server never closes devices: whoever added an export owns its device.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import type { BlockDevice } from './block-device.js';
import { BufferPool } from './buffer-pool.js';
import { ServerConnection, type ConnectionHost, type ServedExport } from './server-connection.js';
import { NBD_MAX_MINIMUM_BLOCK_SIZE, NBD_MAX_PAYLOAD, NBD_MAX_STRING } from './protocol.js';

export interface NbdServerOptions {
  /** One line per notable event (refused clients, invalid requests, device failures). */
  readonly log?: (line: string) => void;
  /** A client must finish option haggling within this time. Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /**
   * Per connection bound on READ/WRITE payload bytes in flight plus unsent
   * reply bytes; past it the server stops reading that socket. Default
   * 64 MiB: two maximum-size requests, plenty for full-speed sequential I/O.
   */
  readonly maxInFlightBytes?: number;
  /** Per connection bound on requests in flight. Default 1024. */
  readonly maxInFlightRequests?: number;
  /** On close(), requests still running after this are abandoned. Default 10 s. */
  readonly shutdownTimeoutMs?: number;
}

export interface ExportOptions {
  readonly description?: string;
  /** Serve read-only even if the device can write. */
  readonly readOnly?: boolean;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

export class NbdServer {
  private readonly exportTable = new Map<string, ServedExport>();
  private readonly listeners: net.Server[] = [];
  private readonly connections = new Set<ServerConnection>();
  private readonly host: ConnectionHost;
  private nextId = 1;
  private closing: Promise<void> | undefined;
  private shuttingDown = false;

  constructor(options: NbdServerOptions = {}) {
    const log = options.log ?? (() => {});
    this.host = {
      log,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      maxInFlightBytes: options.maxInFlightBytes ?? 64 * 1024 * 1024,
      maxInFlightRequests: options.maxInFlightRequests ?? 1024,
      shutdownTimeoutMs: options.shutdownTimeoutMs ?? 10_000,
      // Enough idle buffers for a few connections at full sequential speed.
      pool: new BufferPool(128 * 1024 * 1024),
      shuttingDown: () => this.shuttingDown,
      lookupExport: (name) => this.exportTable.get(name),
      exports: () => this.exportTable.values(),
      connectionClosed: (conn) => this.connections.delete(conn),
    };
  }

  /** Connections currently open (handshaking or transmitting). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Names of the exports, in the order they were added. */
  get exportNames(): string[] {
    return [...this.exportTable.keys()];
  }

  /** Adds an export; "" is the default export that clients get when they name none. */
  addExport(name: string, device: BlockDevice, options: ExportOptions = {}): void {
    if (this.exportTable.has(name)) throw new Error(`export ${JSON.stringify(name)} already exists`);
    if (Buffer.byteLength(name, 'utf8') > NBD_MAX_STRING || name.includes('\0')) {
      throw new Error(`export name must be at most ${NBD_MAX_STRING} bytes of UTF-8 without NUL`);
    }
    const description = options.description ?? '';
    if (Buffer.byteLength(description, 'utf8') > NBD_MAX_STRING || description.includes('\0')) {
      throw new Error(`export description must be at most ${NBD_MAX_STRING} bytes of UTF-8 without NUL`);
    }
    const caps = device.capabilities;
    const minimum = caps.minimumBlockSize;
    if (!isPowerOfTwo(minimum) || minimum > NBD_MAX_MINIMUM_BLOCK_SIZE) {
      throw new Error(`export ${JSON.stringify(name)}: minimum block size ${minimum} must be a power of two ≤ 64 KiB`);
    }
    // The spec wants preferred ≥ max(minimum, 512), a power of two.
    const preferred = Math.max(caps.preferredBlockSize, minimum, 512);
    if (!isPowerOfTwo(preferred) || preferred > NBD_MAX_PAYLOAD) {
      throw new Error(`export ${JSON.stringify(name)}: preferred block size ${caps.preferredBlockSize} must be a power of two`);
    }
    if (!Number.isSafeInteger(device.size) || device.size < 0) throw new Error(`export ${JSON.stringify(name)}: bad size ${device.size}`);
    this.exportTable.set(name, {
      name,
      device,
      description,
      readOnly: options.readOnly ?? false,
      blockSizes: { minimum, preferred, maximum: NBD_MAX_PAYLOAD },
    });
  }

  /**
   * Removes an export: new clients no longer see it; connections using it
   * finish their in-flight requests (later ones get ESHUTDOWN) and close.
   * Resolves once they have closed. The device is left open.
   */
  async removeExport(name: string): Promise<void> {
    const exp = this.exportTable.get(name);
    if (!exp) throw new Error(`no export named ${JSON.stringify(name)}`);
    this.exportTable.delete(name);
    const using = [...this.connections].filter((c) => c.exportName === name);
    for (const c of using) c.shutdown();
    await Promise.all(using.map((c) => c.closed));
  }

  /** Listens on a Unix socket created with mode 0600 (owner only). */
  async listenUnix(path: string): Promise<void> {
    this.checkOpen();
    try {
      await this.listen((srv) => srv.listen(path), true);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || !(await isStaleSocket(path))) {
        throw new Error(`cannot listen on ${path}: ${(err as Error).message}`);
      }
      // A socket file left by a server that died: nobody answers on it, so reuse the path.
      await fsp.unlink(path);
      await this.listen((srv) => srv.listen(path), true);
    }
    await fsp.chmod(path, 0o600);
  }

  /** Listens on TCP (default host 127.0.0.1; port 0 picks a free port). Returns the bound port. */
  async listenTcp(options: { port: number; host?: string }): Promise<number> {
    this.checkOpen();
    const host = options.host ?? '127.0.0.1';
    const srv = await this.listen((s) => s.listen(options.port, host), false);
    const addr = srv.address();
    if (addr === null || typeof addr === 'string') throw new Error('TCP listener has no port');
    return addr.port;
  }

  /**
   * Stops listening, answers requests that arrive from now on with
   * ESHUTDOWN, lets in-flight requests finish, and closes every connection.
   * Devices are not closed.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.shuttingDown = true;
      const stopped = Promise.all(this.listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
      const conns = [...this.connections];
      for (const c of conns) c.shutdown();
      await Promise.all(conns.map((c) => c.closed));
      await stopped;
    })();
    return this.closing;
  }

  private checkOpen(): void {
    if (this.shuttingDown) throw new Error('NBD server is closed');
  }

  private listen(start: (srv: net.Server) => void, unix: boolean): Promise<net.Server> {
    const srv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket, unix));
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      srv.once('error', onError);
      srv.once('listening', () => {
        srv.off('error', onError);
        srv.on('error', (err) => this.host.log(`nbd: listener error: ${err.message}`));
        this.listeners.push(srv);
        resolve(srv);
      });
      // Bind under a restrictive umask so the socket is never world-accessible,
      // even for the moment before chmod. process.umask(mask) throws in worker
      // threads; there the chmod after listening is the guard.
      let oldMask: number | undefined;
      if (unix) {
        try {
          oldMask = process.umask(0o177);
        } catch {
          oldMask = undefined;
        }
      }
      try {
        start(srv);
      } finally {
        if (oldMask !== undefined) process.umask(oldMask);
      }
    });
  }

  private accept(accepted: net.Socket, unix: boolean): void {
    if (this.shuttingDown) {
      accepted.destroy();
      return;
    }
    // The socket's callbacks need the connection, which needs the socket.
    let conn: ServerConnection | undefined = undefined;
    const socket = withReceiveBuffer(
      accepted,
      () => conn?.receiveBuffer(),
      (buf, n) => conn!.onBytes(buf, n),
    );
    if (!unix) socket.setNoDelay(true);
    conn = new ServerConnection(socket, this.host, this.nextId++);
    this.connections.add(conn);
  }
}

/**
 * Re-wraps an accepted socket so that reads land in buffers we choose
 * (Node's documented `onread` option, its buffer given by a function called
 * before each read) instead of a fresh, zero-filled 64 KiB ArrayBuffer per
 * read, which perf showed costing more than the data copy itself; and so
 * that a WRITE payload can be read straight into its final buffer.
 * net.Server offers no `onread`, so the accepted socket (made with
 * pauseOnConnect, so it has not read a byte) hands its handle to a new
 * Socket that has one. If the handle cannot be taken (a Node without the
 * private field), the accepted socket is used as it is, with 'data' events.
 */
function withReceiveBuffer(
  accepted: net.Socket,
  nextBuffer: () => Buffer | undefined,
  onBytes: (buf: Buffer, n: number) => boolean,
): net.Socket {
  const holder = accepted as unknown as { _handle: unknown };
  const handle = holder._handle;
  if (!handle) {
    accepted.resume();
    return accepted;
  }
  holder._handle = null;
  // Node asks for the first read buffer before the connection exists.
  const initial = Buffer.allocUnsafe(64);
  // Destroying the emptied wrapper releases its count in the server and leaves the handle alone.
  accepted.destroy();
  const options = {
    handle,
    allowHalfOpen: true,
    readable: true,
    writable: true,
    onread: { buffer: () => nextBuffer() ?? initial, callback: (n: number, buf: Buffer) => onBytes(buf, n) },
  };
  return new net.Socket(options as net.SocketConstructorOpts);
}

/** True when a path exists, is a socket, and refuses connections. */
async function isStaleSocket(path: string): Promise<boolean> {
  try {
    const st = await fsp.lstat(path);
    if (!st.isSocket()) return false;
  } catch {
    return false;
  }
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
