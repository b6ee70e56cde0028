/**
 * NbdClient: a BlockDevice reached over one NBD connection.
 *
 * Theory of operation
 * -------------------
 * connect() runs the handshake as a fixed sequence of steps, each a single
 * option exchange (the spec forbids pipelining options):
 *
 *   GREETING      read NBDMAGIC/IHAVEOPT + flags; refuse oldstyle servers
 *   CLIENT_FLAGS  send FIXED_NEWSTYLE (+NO_ZEROES when offered)
 *   STRUCTURED    OPT_STRUCTURED_REPLY → ACK: structured replies on;
 *                 any error: simple replies only
 *   META_CONTEXT  OPT_SET_META_CONTEXT base:allocation (needs STRUCTURED)
 *                 → remember the context id, or no block status
 *   GO            OPT_GO(name, [BLOCK_SIZE, NAME, DESCRIPTION]) → INFO*, ACK:
 *                 transmission; ERR_UNSUP: fall back to EXPORT_NAME;
 *                 other errors: ABORT and throw
 *   EXPORT_NAME   (old servers) size + flags; a closed socket means the
 *                 export does not exist
 *
 * A server without fixed newstyle gets CLIENT_FLAGS then EXPORT_NAME only.
 *
 * Transmission is pipelined: every call sends its request at once (writes
 * corked until the event loop's check phase, so requests made in answer to
 * every reply read in one poll become one writev: each write wakes the
 * server, and on these VMs a wake-up costs more than the write) and waits on a cookie
 * in the pending table; replies are matched by cookie in whatever order they
 * come. Requests longer than the server's maximum payload are split and
 * reassembled. Receiving streams like the server does: socket reads land in
 * a reused buffer (`onread`), read data is copied to its destination as it
 * arrives, and the rest of a large payload is read by the kernel straight
 * into the caller's buffer (readInto) or the one read() returns. Errors:
 * - the server answers a request with an error: that call rejects with
 *   BlockDeviceError(errno); the connection carries on (ESHUTDOWN also starts
 *   a soft disconnect, as the spec requires);
 * - the connection is lost, or the server breaks the protocol (we then drop
 *   the connection, as the spec allows): every pending and later call
 *   rejects with DisconnectedError.
 * close() waits for in-flight calls, then sends NBD_CMD_DISC and closes.
 */
import net from 'node:net';
import {
  BlockDeviceError,
  DisconnectedError,
  type BlockDevice,
  type BlockDeviceCapabilities,
  type Extent,
  type WriteOptions,
  type WriteZeroesOptions,
} from './block-device.js';
import { ByteQueue } from './byte-queue.js';
import {
  BASE_ALLOCATION,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_CLISERV_MAGIC,
  NBD_DEFAULT_PORT,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_MAGIC,
  NBD_MAX_PAYLOAD,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR_BIT,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_REP_ACK,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  OPTION_REPLY_HEADER_SIZE,
  REQUEST_SIZE,
  commandName,
  decodeErrorPayload,
  decodeExportNameReply,
  decodeGreeting,
  decodeInfoReply,
  decodeMetaContextReply,
  decodeOptionReplyHeader,
  encodeClientFlags,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOption,
  errnoFromWire,
  isOptionReplyError,
  optionName,
  optionReplyName,
  readU64,
  writeU64,
  type BlockSizes,
} from './protocol.js';

export interface NbdClientOptions {
  /** Negotiate structured replies (default true). */
  readonly structuredReplies?: boolean;
  /** Negotiate base:allocation so blockStatus asks the server (default true). */
  readonly blockStatus?: boolean;
  /** Bound on connect plus handshake. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Called once if the connection is lost other than by close(). */
  readonly onDisconnect?: (err: DisconnectedError) => void;
}

/** Where an NBD URI points. */
export type NbdAddress =
  | { readonly transport: 'unix'; readonly socketPath: string; readonly exportName: string }
  | { readonly transport: 'tcp'; readonly host: string; readonly port: number; readonly exportName: string };

/** What the handshake settled. */
export interface NbdExportInfo {
  readonly exportName: string;
  readonly description: string;
  readonly size: number;
  readonly transmissionFlags: number;
  /** As advertised by NBD_INFO_BLOCK_SIZE, or the spec's defaults. */
  readonly blockSizes: BlockSizes;
  readonly structuredReplies: boolean;
  readonly baseAllocation: boolean;
  /** False when the server only knew NBD_OPT_EXPORT_NAME. */
  readonly negotiatedWithGo: boolean;
}

/**
 * Parses `nbd+unix:///EXPORT?socket=PATH` and `nbd://HOST[:PORT]/EXPORT`
 * (the export name is the percent-decoded path without its leading slash;
 * empty means the default export). Throws an Error naming the problem.
 */
export function parseNbdUri(uri: string): NbdAddress {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`not a valid NBD URI: ${JSON.stringify(uri)} (expected nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH)`);
  }
  let exportName: string;
  try {
    exportName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  } catch {
    throw new Error(`NBD URI ${JSON.stringify(uri)}: export name is not valid percent-encoding`);
  }
  switch (url.protocol) {
    case 'nbd+unix:': {
      if (url.host !== '') throw new Error(`NBD URI ${JSON.stringify(uri)}: nbd+unix URIs take no host (use nbd+unix:///EXPORT?socket=PATH)`);
      const socketPath = url.searchParams.get('socket');
      if (!socketPath) throw new Error(`NBD URI ${JSON.stringify(uri)}: missing ?socket=PATH`);
      return { transport: 'unix', socketPath, exportName };
    }
    case 'nbd:': {
      if (url.searchParams.has('socket')) {
        throw new Error(`NBD URI ${JSON.stringify(uri)}: ?socket= needs the nbd+unix:// scheme`);
      }
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      if (!host) throw new Error(`NBD URI ${JSON.stringify(uri)}: missing host (nbd://HOST[:PORT]/EXPORT)`);
      const port = url.port === '' ? NBD_DEFAULT_PORT : Number(url.port);
      if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`NBD URI ${JSON.stringify(uri)}: bad port`);
      return { transport: 'tcp', host, port, exportName };
    }
    case 'nbds:':
    case 'nbds+unix:':
      throw new Error(`NBD URI ${JSON.stringify(uri)}: TLS (nbds) is not supported`);
    default:
      throw new Error(`NBD URI ${JSON.stringify(uri)}: unsupported scheme ${url.protocol} (use nbd:// or nbd+unix://)`);
  }
}

interface Pending {
  readonly cmd: number;
  readonly offset: number;
  readonly length: number;
  /** READ into the caller's buffer (readInto) rather than a new one. */
  readonly target: Buffer | undefined;
  /** READ into several buffers in order (readv); then `data` stays undefined. */
  readonly scatter?: Scatter;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  data: Buffer | undefined;
  covered: number;
  extents: Extent[] | undefined;
  error: BlockDeviceError | undefined;
}

/**
 * The destination of a readv: the caller's buffers, back to back. Offsets
 * are relative to the request; a reply may fill it in any order.
 */
class Scatter {
  private readonly starts: number[] = [];

  constructor(private readonly parts: readonly Buffer[]) {
    let at = 0;
    for (const part of parts) {
      this.starts.push(at);
      at += part.length;
    }
  }

  /** The part holding byte `at`, and `at`'s offset inside it. */
  private locate(at: number): [Buffer, number] {
    let i = this.starts.length - 1;
    while (this.starts[i]! > at) i--;
    return [this.parts[i]!, at - this.starts[i]!];
  }

  /** The longest run from `at` (at most `n` bytes) that one part holds. */
  slice(at: number, n: number): Buffer {
    const [part, o] = this.locate(at);
    return part.subarray(o, Math.min(part.length, o + n));
  }

  /** Copies src[from, from+n) to request offset `at`. */
  copyFrom(src: Buffer, from: number, at: number, n: number): void {
    while (n > 0) {
      const into = this.slice(at, n);
      src.copy(into, 0, from, from + into.length);
      from += into.length;
      at += into.length;
      n -= into.length;
    }
  }

  takeFrom(q: ByteQueue, at: number, n: number): void {
    while (n > 0) {
      const into = this.slice(at, n);
      q.takeInto(into, 0, into.length);
      at += into.length;
      n -= into.length;
    }
  }

  zero(at: number, n: number): void {
    while (n > 0) {
      const into = this.slice(at, n);
      into.fill(0);
      at += into.length;
      n -= into.length;
    }
  }
}

/** Bytes per socket read (see connect()). */
const RECEIVE_BUFFER = 256 * 1024;
/** A READ payload remainder at least this big is read straight to its destination. */
const DIRECT_READ_MIN = 32 * 1024;
/**
 * While READs of at least DIRECT_READ_MIN are pending, the socket is read a
 * reply header at a time (16 bytes simple, 20 + 8 for a structured data
 * chunk), so each payload lands in its destination by the kernel's copy
 * alone. One more system call per reply costs less than copying 32 KiB or
 * more out of a shared receive buffer, which on these machines is what
 * limited large reads.
 */
const SIMPLE_HEADER_PEEK = 16;
const STRUCTURED_HEADER_PEEK = 28;
/** Requests without a payload (trim, zero, cache, block status) go out in pieces of at most 1 GiB. */
const MAX_EFFECT_LENGTH = 1 << 30;
/** Largest structured chunk payload we will buffer: a full read plus its error/offset overhead. */
const MAX_CHUNK_PAYLOAD = NBD_MAX_PAYLOAD + 64 * 1024;
const ZERO_FILL = Buffer.alloc(1024 * 1024);
/** Request headers per shared header buffer (a batch needing more takes another): 64 × 28 bytes, small enough for Node's shared allocation pool. */
const HEADER_BATCH = 64 * REQUEST_SIZE;

/** Thrown inside the handshake when the server answers with something we cannot accept. */
class HandshakeError extends Error {}

export class NbdClient implements BlockDevice {
  readonly size: number;
  readonly capabilities: BlockDeviceCapabilities;
  readonly info: NbdExportInfo;
  private readonly socket: net.Socket;
  private readonly q: ByteQueue;
  private readonly pending = new Map<number, Pending>();
  private readonly maxPayload: number;
  private readonly align: number;
  private readonly contextId: number;
  private readonly onDisconnect: ((err: DisconnectedError) => void) | undefined;
  private nextCookie = 1;
  private corked = false;
  private dead: DisconnectedError | undefined;
  private closing: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];
  private protocolFault: string | undefined;
  /** READs of at least DIRECT_READ_MIN sent and not yet settled. */
  private bigReads = 0;
  private readonly headerBuf = Buffer.allocUnsafe(STRUCTURED_HEADER_PEEK);

  /** This batch's request headers, back to back: [headersFrom, headersAt) not yet handed to the socket. */
  private headers: Buffer | undefined;
  private headersFrom = 0;
  private headersAt = 0;

  private readonly uncork = (): void => {
    this.corked = false;
    if (this.socket.destroyed) {
      this.headers = undefined;
      return;
    }
    this.flushHeaders();
    this.headers = undefined;
    this.socket.uncork();
  };

  private constructor(socket: net.Socket, q: ByteQueue, info: NbdExportInfo, contextId: number, opts: NbdClientOptions, recvBuf: Buffer) {
    this.socket = socket;
    this.recvBuf = recvBuf;
    this.q = q;
    this.info = info;
    this.size = info.size;
    this.contextId = contextId;
    this.onDisconnect = opts.onDisconnect;
    const f = info.transmissionFlags;
    // Cap at 32 MiB even when a server advertises "no limit" (0xffffffff).
    this.maxPayload = Math.max(1, Math.min(info.blockSizes.maximum, NBD_MAX_PAYLOAD));
    this.align = info.negotiatedWithGo ? info.blockSizes.minimum : 1;
    this.capabilities = {
      readOnly: (f & NBD_FLAG_READ_ONLY) !== 0,
      canFlush: (f & NBD_FLAG_SEND_FLUSH) !== 0,
      canTrim: (f & NBD_FLAG_SEND_TRIM) !== 0,
      canWriteZeroes: (f & NBD_FLAG_SEND_WRITE_ZEROES) !== 0,
      canFastZero: (f & NBD_FLAG_SEND_FAST_ZERO) !== 0,
      canCache: (f & NBD_FLAG_SEND_CACHE) !== 0,
      canMultiConn: (f & NBD_FLAG_CAN_MULTI_CONN) !== 0,
      minimumBlockSize: info.blockSizes.minimum,
      preferredBlockSize: info.blockSizes.preferred,
    };
    socket.on('close', () => this.onClose());
    socket.on('error', () => {
      // 'close' follows and reports the loss to every caller.
    });
    socket.on('end', () => {
      if (!this.closing) this.protocolFault ??= 'server closed the connection';
      this.socket.destroy();
    });
    if (this.q.length > 0) this.parse();
  }

  /** Connects to an `nbd://` or `nbd+unix://` URI and negotiates the export it names. */
  static async connect(uri: string, options: NbdClientOptions = {}): Promise<NbdClient> {
    const address = parseNbdUri(uri);
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    const q = new ByteQueue();
    // Reads land in one reused buffer (Node's onread) rather than a fresh,
    // zero-filled 64 KiB ArrayBuffer each; the handshake copies what it gets
    // into `q`, and the client, once made, takes the receiver over.
    const recvBuf = Buffer.allocUnsafe(RECEIVE_BUFFER);
    const receiver = {
      onBytes: (buf: Buffer, n: number): void => onData(Buffer.from(buf.subarray(0, n))),
      nextBuffer: (): Buffer => recvBuf,
    };
    const onread = {
      // Asked before every read: lets the client read data straight into place.
      buffer: () => receiver.nextBuffer(),
      callback: (n: number, buf: Buffer): boolean => {
        receiver.onBytes(buf, n);
        return true;
      },
    };
    const socket =
      address.transport === 'unix'
        ? net.connect({ path: address.socketPath, onread })
        : net.connect({ host: address.host, port: address.port, noDelay: true, onread });
    const where = address.transport === 'unix' ? address.socketPath : `${address.host}:${address.port}`;
    let waiter: { n: number; resolve: () => void } | undefined;
    let failure: Error | undefined;
    let fail: (err: Error) => void = () => {};
    const failed = new Promise<never>((_, reject) => {
      fail = (err) => {
        failure ??= err;
        reject(failure);
      };
    });
    failed.catch(() => {});
    const onData = (chunk: Buffer): void => {
      q.push(chunk);
      if (waiter && q.length >= waiter.n) {
        const w = waiter;
        waiter = undefined;
        w.resolve();
      }
    };
    let connected = false;
    const onError = (err: Error): void =>
      fail(new Error(connected ? `NBD handshake with ${where} failed: ${err.message}` : `cannot connect to NBD server at ${where}: ${err.message}`));
    const onClose = (): void => fail(new HandshakeError(`NBD server at ${where} closed the connection during the handshake`));
    socket.on('error', onError);
    socket.on('close', onClose);
    const timer = setTimeout(
      () => fail(new Error(`NBD handshake with ${where} did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const need = (n: number): Promise<void> =>
      q.length >= n ? Promise.resolve() : Promise.race([new Promise<void>((resolve) => (waiter = { n, resolve })), failed]);

    try {
      await Promise.race([new Promise<void>((resolve) => socket.once('connect', () => resolve())), failed]);
      connected = true;
      const result = await handshake(socket, q, need, address.exportName, options);
      socket.off('error', onError);
      socket.off('close', onClose);
      clearTimeout(timer);
      const client = new NbdClient(socket, q, result.info, result.contextId, options, recvBuf);
      receiver.onBytes = (buf, n) => client.onBytes(buf, n);
      receiver.nextBuffer = () => client.nextBuffer();
      return client;
    } catch (err) {
      clearTimeout(timer);
      socket.destroy();
      throw err instanceof Error ? err : new Error(String(err));
    }
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  // -------------------------------------------------------------------------
  // BlockDevice

  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length, false);
    if (length === 0) return Buffer.alloc(0);
    if (length <= this.maxPayload) return this.submit(NBD_CMD_READ, 0, offset, length) as Promise<Buffer>;
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(offset, buf);
    return buf;
  }

  /** Reads target.length bytes at offset straight from the socket into target. */
  readInto(offset: number, target: Buffer): Promise<void> {
    const length = target.length;
    try {
      this.check(offset, length, false);
    } catch (error) {
      return Promise.reject(error);
    }
    if (length === 0) return Promise.resolve();
    // One request: its promise as it is (it resolves with `target`, which callers ignore).
    if (length <= this.maxPayload) return this.submit(NBD_CMD_READ, 0, offset, length, undefined, target) as Promise<void>;
    return this.readIntoParts(offset, target);
  }

  private async readIntoParts(offset: number, target: Buffer): Promise<void> {
    const length = target.length;
    const parts: Promise<unknown>[] = [];
    const step = this.splitStep(this.maxPayload);
    for (let pos = 0; pos < length; pos += step) {
      const n = Math.min(step, length - pos);
      parts.push(this.submit(NBD_CMD_READ, 0, offset + pos, n, undefined, target.subarray(pos, pos + n)));
    }
    await Promise.all(parts);
  }

  /**
   * Reads the bytes at `offset` into `targets`, one after the other, in one
   * request: the engine reads a member's run of stripe units this way, each
   * unit landing in its own place in the volume's reply.
   */
  async readv(offset: number, targets: readonly Buffer[]): Promise<void> {
    const length = targets.reduce((n, t) => n + t.length, 0);
    this.check(offset, length, false);
    if (length === 0) return;
    if (length > this.maxPayload) {
      // Rare (runs are far below 32 MiB): one request per target.
      let at = offset;
      await Promise.all(targets.map((t) => ((at += t.length), this.readInto(at - t.length, t))));
      return;
    }
    await this.submit(NBD_CMD_READ, 0, offset, length, undefined, undefined, new Scatter(targets));
  }

  /** Writes `parts`, back to back from `offset`, in one request (their bytes go out in one writev). */
  async writev(offset: number, parts: readonly Uint8Array[], options?: WriteOptions): Promise<void> {
    const length = parts.reduce((n, p) => n + p.length, 0);
    this.check(offset, length, true);
    if (length === 0) return;
    if (length > this.maxPayload) {
      let at = offset;
      await Promise.all(parts.map((p) => ((at += p.length), this.write(at - p.length, p, options))));
      return;
    }
    const { flags, flushAfter } = this.fuaFlags(options?.fua);
    await this.submit(NBD_CMD_WRITE, flags, offset, length, parts);
    if (flushAfter) await this.flush();
  }

  async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    this.check(offset, data.length, true);
    if (data.length === 0) return;
    const { flags, flushAfter } = this.fuaFlags(options?.fua);
    if (data.length <= this.maxPayload) {
      await this.submit(NBD_CMD_WRITE, flags, offset, data.length, data);
    } else {
      const parts: Promise<unknown>[] = [];
      const step = this.splitStep(this.maxPayload);
      for (let pos = 0; pos < data.length; pos += step) {
        const part = data.subarray(pos, Math.min(pos + step, data.length));
        parts.push(this.submit(NBD_CMD_WRITE, flags, offset + pos, part.length, part));
      }
      await Promise.all(parts);
    }
    if (flushAfter) await this.flush();
  }

  /** Without SEND_FLUSH the server has nothing we could flush: resolves at once. */
  async flush(): Promise<void> {
    this.checkAlive();
    if (!this.capabilities.canFlush) return;
    await this.submit(NBD_CMD_FLUSH, 0, 0, 0);
  }

  /**
   * Discards a range. Without SEND_TRIM it zeroes the range instead when the
   * server can write zeroes cheaply, and otherwise does nothing (a discard is
   * only a hint; reads of the range are then the old data).
   */
  async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    this.check(offset, length, true);
    if (length === 0) return;
    if (!this.capabilities.canTrim) {
      if (this.capabilities.canWriteZeroes) await this.writeZeroes(offset, length, options);
      return;
    }
    const { flags, flushAfter } = this.fuaFlags(options?.fua);
    await this.effect(NBD_CMD_TRIM, flags, offset, length);
    if (flushAfter) await this.flush();
  }

  /** Without SEND_WRITE_ZEROES, writes zero buffers (or fails ENOTSUP at once when fastZero). */
  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    this.check(offset, length, true);
    if (length === 0) return;
    if (!this.capabilities.canWriteZeroes || (options?.fastZero && !this.capabilities.canFastZero)) {
      if (options?.fastZero) throw new BlockDeviceError('ENOTSUP', 'server cannot zero faster than it writes');
      const parts: Promise<void>[] = [];
      const step = this.splitStep(Math.min(ZERO_FILL.length, this.maxPayload));
      for (let pos = 0; pos < length; pos += step) {
        parts.push(this.write(offset + pos, ZERO_FILL.subarray(0, Math.min(step, length - pos)), options));
      }
      await Promise.all(parts);
      return;
    }
    const fua = this.fuaFlags(options?.fua);
    let flags = fua.flags;
    if (options?.noHole) flags |= NBD_CMD_FLAG_NO_HOLE;
    if (options?.fastZero) flags |= NBD_CMD_FLAG_FAST_ZERO;
    await this.effect(NBD_CMD_WRITE_ZEROES, flags, offset, length);
    if (fua.flushAfter) await this.flush();
  }

  /** A prefetch hint; without SEND_CACHE it does nothing. */
  async cache(offset: number, length: number): Promise<void> {
    this.check(offset, length, false);
    if (length === 0 || !this.capabilities.canCache) return;
    await this.effect(NBD_CMD_CACHE, 0, offset, length);
  }

  /**
   * The allocation map of exactly [offset, offset+length): asks again where
   * the server answered for less, and trims what it said beyond. Without
   * base:allocation the whole range is reported allocated (flags 0), which the
   * spec defines as always safe.
   */
  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.check(offset, length, false);
    if (length === 0) return [];
    if (!this.info.baseAllocation) return [{ length, flags: 0 }];
    const out: { length: number; flags: number }[] = [];
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const ask = Math.min(end - pos, this.splitStep(MAX_EFFECT_LENGTH));
      const extents = (await this.submit(NBD_CMD_BLOCK_STATUS, 0, pos, ask)) as Extent[];
      for (const e of extents) {
        const n = Math.min(e.length, end - pos);
        if (n <= 0) break;
        const last = out[out.length - 1];
        if (last && last.flags === e.flags) last.length += n;
        else out.push({ length: n, flags: e.flags });
        pos += n;
      }
    }
    return out;
  }

  /** Waits for calls in flight, sends NBD_CMD_DISC and closes. Later calls reject with DisconnectedError. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.pending.size > 0 && !this.dead) {
        await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      }
      if (!this.dead && !this.socket.destroyed) {
        const h = Buffer.allocUnsafe(REQUEST_SIZE);
        encodeHeader(h, 0, NBD_CMD_DISC, 0, 0, 0, 0);
        this.socket.end(h);
        const timer = setTimeout(() => this.socket.destroy(), 5000);
        await new Promise<void>((resolve) => {
          if (this.socket.destroyed) resolve();
          else this.socket.once('close', () => resolve());
        });
        clearTimeout(timer);
      }
      this.dead ??= new DisconnectedError('NBD client is closed');
    })();
    return this.closing;
  }

  // -------------------------------------------------------------------------
  // Requests

  private check(offset: number, length: number, writes: boolean): void {
    this.checkAlive();
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new BlockDeviceError('EINVAL', `bad range ${offset}+${length}`);
    }
    if (offset + length > this.size) {
      throw new BlockDeviceError(writes ? 'ENOSPC' : 'EINVAL', `range ${offset}+${length} is beyond the end of the export (${this.size} bytes)`);
    }
    if (this.align > 1 && (offset % this.align !== 0 || length % this.align !== 0)) {
      throw new BlockDeviceError('EINVAL', `range ${offset}+${length} is not aligned to the server's ${this.align}-byte minimum block size`);
    }
    if (writes && this.capabilities.readOnly) throw new BlockDeviceError('EPERM', 'export is read-only');
  }

  private checkAlive(): void {
    if (this.dead) throw this.dead;
    if (this.closing) throw new DisconnectedError('NBD client is closing');
  }

  /** Largest piece ≤ limit that keeps every piece aligned to the minimum block size. */
  private splitStep(limit: number): number {
    return Math.max(this.align, limit - (limit % this.align));
  }

  private fuaFlags(fua: boolean | undefined): { flags: number; flushAfter: boolean } {
    if (!fua) return { flags: 0, flushAfter: false };
    if (this.info.transmissionFlags & NBD_FLAG_SEND_FUA) return { flags: NBD_CMD_FLAG_FUA, flushAfter: false };
    return { flags: 0, flushAfter: this.capabilities.canFlush };
  }

  /** A command without payload, split into pieces the server will accept. */
  private async effect(cmd: number, flags: number, offset: number, length: number): Promise<void> {
    if (length <= MAX_EFFECT_LENGTH) {
      await this.submit(cmd, flags, offset, length);
      return;
    }
    const parts: Promise<unknown>[] = [];
    const step = this.splitStep(MAX_EFFECT_LENGTH);
    for (let pos = 0; pos < length; pos += step) parts.push(this.submit(cmd, flags, offset + pos, Math.min(step, length - pos)));
    await Promise.all(parts);
  }

  private submit(
    cmd: number,
    flags: number,
    offset: number,
    length: number,
    payload?: Uint8Array | readonly Uint8Array[],
    target?: Buffer,
    scatter?: Scatter,
  ): Promise<unknown> {
    if (this.dead) return Promise.reject(this.dead);
    let cookie = this.nextCookie;
    while (this.pending.has(cookie)) cookie = (cookie + 1) >>> 0;
    this.nextCookie = (cookie + 1) >>> 0;
    const promise = new Promise<unknown>((resolve, reject) => {
      this.pending.set(cookie, { cmd, offset, length, target, scatter, resolve, reject, data: target, covered: 0, extents: undefined, error: undefined });
    });
    if (cmd === NBD_CMD_READ && length >= DIRECT_READ_MIN) this.bigReads++;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(this.uncork);
    }
    // Headers of one batch share a buffer and one socket.write (a READ has
    // nothing else to send); a payload follows its header in order.
    let h = this.headers;
    if (h === undefined || this.headersAt + REQUEST_SIZE > h.length) {
      this.flushHeaders();
      h = this.headers = Buffer.allocUnsafe(HEADER_BATCH);
      this.headersFrom = this.headersAt = 0;
    }
    encodeHeader(h, this.headersAt, cmd, flags, cookie, offset, length);
    this.headersAt += REQUEST_SIZE;
    if (payload) {
      this.flushHeaders();
      if (payload instanceof Uint8Array) this.socket.write(payload);
      else for (const part of payload) this.socket.write(part);
    }
    return promise;
  }

  private flushHeaders(): void {
    if (this.headers !== undefined && this.headersAt > this.headersFrom) {
      this.socket.write(this.headers.subarray(this.headersFrom, this.headersAt));
      this.headersFrom = this.headersAt;
    }
  }

  // -------------------------------------------------------------------------
  // Replies

  /** Bytes the parser needs queued before it can take its next step. */
  private want = 4;
  private readonly recvBuf: Buffer;
  /** The destination slice handed out for the next read, if any. */
  private direct: Buffer | undefined;

  /**
   * The buffer for the socket's next read: the rest of a READ payload being
   * received, when big enough to be worth a read of its own (the kernel
   * then copies it straight to its destination), else the receive buffer.
   */
  private nextBuffer(): Buffer {
    const st = this.stream;
    if (st && st.left >= DIRECT_READ_MIN && this.q.length === 0 && !this.dead) {
      const into = st.p.scatter ? st.p.scatter.slice(st.at, st.left) : st.p.data!.subarray(st.at, st.at + st.left);
      if (into.length >= DIRECT_READ_MIN) {
        this.direct = into;
        return into;
      }
    }
    this.direct = undefined;
    if (this.bigReads > 0 && !st && !this.dead) {
      const peek = this.info.structuredReplies ? STRUCTURED_HEADER_PEEK : SIMPLE_HEADER_PEEK;
      const need = this.q.length > 0 ? this.want - this.q.length : peek;
      if (need > 0) return this.headerBuf.subarray(0, Math.min(need, peek));
    }
    return this.recvBuf;
  }

  /**
   * Received bytes buf[0..n), in a buffer reused by the next read. Read data
   * goes from here straight to its destination; headers and other small
   * parts are copied into the queue, only as much as the parser needs next.
   */
  private onBytes(buf: Buffer, n: number): void {
    if (buf === this.direct) {
      this.direct = undefined;
      const st = this.stream!;
      st.at += n;
      st.left -= n;
      if (st.left === 0) {
        this.stream = undefined;
        if (st.done) this.finishReply(st.cookie, st.p);
      }
      return;
    }
    let pos = 0;
    while (pos < n && !this.dead) {
      const st = this.stream;
      if (st && this.q.length === 0) {
        const k = Math.min(st.left, n - pos);
        if (st.p.scatter) st.p.scatter.copyFrom(buf, pos, st.at, k);
        else buf.copy(st.p.data!, st.at, pos, pos + k);
        st.at += k;
        st.left -= k;
        pos += k;
        if (st.left === 0) {
          this.stream = undefined;
          if (st.done) this.finishReply(st.cookie, st.p);
        }
        continue;
      }
      const k = Math.min(n - pos, Math.max(this.want - this.q.length, 64));
      this.q.push(Buffer.from(buf.subarray(pos, pos + k)));
      pos += k;
      this.parse();
    }
  }

  /** A READ payload being copied to its destination as it arrives. */
  private stream: { p: Pending; cookie: number; at: number; left: number; done: boolean } | undefined;

  /**
   * Takes replies off the queue. Read data is never held back until a whole
   * reply has arrived: once a header is parsed, payload bytes are copied to
   * their destination chunk by chunk, while they are still in the CPU cache.
   */
  private parse(): void {
    const q = this.q;
    this.want = 4;
    while (!this.dead) {
      const st = this.stream;
      if (st) {
        const n = Math.min(st.left, q.length);
        if (n > 0) {
          if (st.p.scatter) st.p.scatter.takeFrom(q, st.at, n);
          else q.takeInto(st.p.data!, st.at, n);
          st.at += n;
          st.left -= n;
        }
        if (st.left > 0) return; // onBytes() copies the rest straight in
        this.stream = undefined;
        if (st.done && !this.finishReply(st.cookie, st.p)) return;
        continue;
      }
      if (q.length < 4) return this.need(4);
      const b = q.view(4);
      const magic = b.readUInt32BE(q.viewOffset);
      if (magic === NBD_SIMPLE_REPLY_MAGIC) {
        if (q.length < 16) return this.need(16);
        const h = q.view(16);
        const o = q.viewOffset;
        const error = h.readUInt32BE(o + 4);
        const cookieHi = h.readUInt32BE(o + 8);
        const cookieLo = h.readUInt32BE(o + 12);
        const p = cookieHi === 0 ? this.pending.get(cookieLo) : undefined;
        if (!p) return this.fault(`simple reply for unknown cookie ${cookieHi}:${cookieLo}`);
        q.skip(16);
        if (p.cmd === NBD_CMD_READ && error === 0) {
          if (this.info.structuredReplies) return this.fault('simple reply with data to a READ after structured replies were negotiated');
          p.covered = p.length;
          if (!p.data && !p.scatter && q.contiguous(p.length)) {
            p.data = q.take(p.length);
          } else {
            if (!p.scatter) p.data ??= Buffer.allocUnsafe(p.length);
            this.stream = { p, cookie: cookieLo, at: 0, left: p.length, done: true };
            continue;
          }
        } else if (error !== 0) {
          p.error = new BlockDeviceError(errnoFromWire(error), `${commandName(p.cmd)} ${p.offset}+${p.length} failed on the server`);
        }
        this.settle(cookieLo, p);
      } else if (magic === NBD_STRUCTURED_REPLY_MAGIC) {
        if (!this.info.structuredReplies) return this.fault('structured reply chunk although structured replies were not negotiated');
        if (q.length < 20) return this.need(20);
        const h = q.view(20);
        const o = q.viewOffset;
        const flags = h.readUInt16BE(o + 4);
        const type = h.readUInt16BE(o + 6);
        const cookieHi = h.readUInt32BE(o + 8);
        const cookieLo = h.readUInt32BE(o + 12);
        const length = h.readUInt32BE(o + 16);
        if (length > MAX_CHUNK_PAYLOAD) return this.fault(`structured reply chunk of ${length} bytes`);
        const p = cookieHi === 0 ? this.pending.get(cookieLo) : undefined;
        if (!p) return this.fault(`structured reply for unknown cookie ${cookieHi}:${cookieLo}`);
        const done = (flags & NBD_REPLY_FLAG_DONE) !== 0;
        if (type === NBD_REPLY_TYPE_OFFSET_DATA && p.cmd === NBD_CMD_READ && length >= 9) {
          if (q.length < 28) return this.need(28);
          q.skip(20);
          const ob = q.view(8);
          const rel = readU64(ob, q.viewOffset) - p.offset;
          q.skip(8);
          const n = length - 8;
          if (rel < 0 || rel + n > p.length || p.covered + n > p.length) return this.fault('content chunk outside the request');
          p.covered += n;
          const whole = rel === 0 && n === p.length;
          if (!p.data && !p.scatter && whole && q.contiguous(n)) {
            p.data = q.take(n); // a view of the socket chunk: no copy at all
            if (done && !this.finishReply(cookieLo, p)) return;
            continue;
          }
          // Zeroed unless this one chunk fills it all, so no gap can leak old memory.
          if (!p.scatter) p.data ??= whole ? Buffer.allocUnsafe(p.length) : Buffer.alloc(p.length);
          this.stream = { p, cookie: cookieLo, at: rel, left: n, done };
          continue;
        }
        if (q.length < 20 + length) return this.need(20 + length);
        q.skip(20);
        const problem = this.chunk(p, type, q.take(length));
        if (problem) return this.fault(problem);
        if (done && !this.finishReply(cookieLo, p)) return;
      } else {
        return this.fault(`bad reply magic 0x${magic.toString(16)}`);
      }
    }
  }

  private need(n: number): void {
    this.want = n;
  }

  /** The final chunk of a structured reply arrived: check the reply is whole, then settle it. */
  private finishReply(cookie: number, p: Pending): boolean {
    if (!p.error && p.cmd === NBD_CMD_READ && p.covered !== p.length) {
      this.fault(`READ ${p.offset}+${p.length} finished with only ${p.covered} bytes described`);
      return false;
    }
    if (!p.error && p.cmd === NBD_CMD_BLOCK_STATUS && !p.extents) {
      this.fault('BLOCK_STATUS finished without a base:allocation chunk');
      return false;
    }
    this.settle(cookie, p);
    return true;
  }

  /** Applies one structured chunk to its request; returns a description of a protocol violation, if any. */
  private chunk(p: Pending, type: number, payload: Buffer): string | undefined {
    switch (type) {
      case NBD_REPLY_TYPE_NONE:
        return payload.length === 0 ? undefined : 'NONE chunk with a payload';
      case NBD_REPLY_TYPE_OFFSET_DATA:
      case NBD_REPLY_TYPE_OFFSET_HOLE: {
        if (p.cmd !== NBD_CMD_READ) return `content chunk in reply to ${commandName(p.cmd)}`;
        const hole = type === NBD_REPLY_TYPE_OFFSET_HOLE;
        if (hole ? payload.length !== 12 : payload.length < 9) return `content chunk of bad length ${payload.length}`;
        const rel = readU64(payload, 0) - p.offset;
        const n = hole ? payload.readUInt32BE(8) : payload.length - 8;
        if (rel < 0 || n === 0 || rel + n > p.length || p.covered + n > p.length) return 'content chunk outside the request';
        if (p.scatter) {
          if (hole) p.scatter.zero(rel, n);
          else p.scatter.copyFrom(payload, 8, rel, n);
        } else if (!hole && rel === 0 && n === p.length && !p.data) {
          p.data = payload.subarray(8);
        } else {
          p.data ??= Buffer.alloc(p.length);
          if (hole) p.data.fill(0, rel, rel + n);
          else payload.copy(p.data, rel, 8);
        }
        p.covered += n;
        return undefined;
      }
      case NBD_REPLY_TYPE_BLOCK_STATUS: {
        if (p.cmd !== NBD_CMD_BLOCK_STATUS) return `block status chunk in reply to ${commandName(p.cmd)}`;
        if (payload.length < 12 || (payload.length - 4) % 8 !== 0) return `block status chunk of bad length ${payload.length}`;
        if (payload.readUInt32BE(0) !== this.contextId) return undefined; // a context we did not ask for
        const extents: Extent[] = [];
        for (let at = 4; at < payload.length; at += 8) {
          const length = payload.readUInt32BE(at);
          if (length === 0) return 'block status extent of length 0';
          extents.push({ length, flags: payload.readUInt32BE(at + 4) });
        }
        p.extents = extents;
        return undefined;
      }
      default: {
        if (!(type & NBD_REPLY_TYPE_ERROR_BIT)) return `unknown structured reply type ${type}`;
        const e = decodeErrorPayload(type, payload);
        if (!e) return `malformed error chunk (type 0x${type.toString(16)})`;
        const errno = errnoFromWire(e.error === 0 ? 22 : e.error);
        p.error ??= new BlockDeviceError(errno, `${commandName(p.cmd)} ${p.offset}+${p.length}: ${e.message || 'failed on the server'}`);
        return undefined;
      }
    }
  }

  private settle(cookie: number, p: Pending): void {
    this.pending.delete(cookie);
    if (p.cmd === NBD_CMD_READ && p.length >= DIRECT_READ_MIN) this.bigReads--;
    if (p.error) {
      p.reject(p.error);
      if (p.error.errno === 'ESHUTDOWN') void this.close().catch(() => {});
    } else if (p.cmd === NBD_CMD_READ) {
      p.resolve(p.data);
    } else if (p.cmd === NBD_CMD_BLOCK_STATUS) {
      p.resolve(p.extents);
    } else {
      p.resolve(undefined);
    }
    if (this.pending.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** The server broke the protocol: drop the connection (the spec's hard disconnect). */
  private fault(why: string): void {
    this.protocolFault ??= `NBD protocol error from server: ${why}`;
    this.socket.destroy();
    this.onClose();
  }

  private onClose(): void {
    if (this.dead) return;
    const lost = !this.closing || this.protocolFault !== undefined;
    this.dead = new DisconnectedError(this.protocolFault ?? (this.closing ? 'NBD client is closed' : 'connection to NBD server lost'));
    this.q.clear();
    this.stream = undefined;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(this.dead);
    for (const w of this.idleWaiters) w();
    this.idleWaiters = [];
    if (lost && this.onDisconnect) this.onDisconnect(this.dead);
  }
}

function encodeHeader(h: Buffer, at: number, cmd: number, flags: number, cookie: number, offset: number, length: number): void {
  h.writeUInt32BE(NBD_REQUEST_MAGIC, at);
  h.writeUInt16BE(flags, at + 4);
  h.writeUInt16BE(cmd, at + 6);
  h.writeUInt32BE(0, at + 8);
  h.writeUInt32BE(cookie, at + 12);
  writeU64(h, offset, at + 16);
  h.writeUInt32BE(length, at + 24);
}

// ---------------------------------------------------------------------------
// Handshake

async function handshake(
  socket: net.Socket,
  q: ByteQueue,
  need: (n: number) => Promise<void>,
  exportName: string,
  options: NbdClientOptions,
): Promise<{ info: NbdExportInfo; contextId: number }> {
  // GREETING
  await need(16);
  const peek = q.view(16);
  if (peek.readBigUInt64BE(q.viewOffset) !== NBD_MAGIC) throw new HandshakeError('not an NBD server (no NBDMAGIC greeting)');
  if (peek.readBigUInt64BE(q.viewOffset + 8) === NBD_CLISERV_MAGIC) throw new HandshakeError('server uses the oldstyle NBD handshake, which is not supported');
  await need(18);
  const greeting = decodeGreeting(q.take(18));
  const fixed = (greeting.handshakeFlags & NBD_FLAG_FIXED_NEWSTYLE) !== 0;
  const noZeroes = (greeting.handshakeFlags & NBD_FLAG_NO_ZEROES) !== 0;

  // CLIENT_FLAGS
  socket.write(encodeClientFlags((fixed ? NBD_FLAG_C_FIXED_NEWSTYLE : 0) | (noZeroes ? NBD_FLAG_C_NO_ZEROES : 0)));

  const readReply = async (option: number): Promise<{ type: number; data: Buffer }> => {
    await need(OPTION_REPLY_HEADER_SIZE);
    const h = decodeOptionReplyHeader(q.take(OPTION_REPLY_HEADER_SIZE));
    if (!h.magicOk) throw new HandshakeError('bad option reply magic from server');
    if (h.option !== option) throw new HandshakeError(`server answered option ${optionName(h.option)} while we asked ${optionName(option)}`);
    if (h.length > 16 * 1024 * 1024) throw new HandshakeError(`option reply of ${h.length} bytes`);
    await need(h.length);
    return { type: h.type, data: q.take(h.length) };
  };
  const replyMessage = (r: { type: number; data: Buffer }): string =>
    `${optionReplyName(r.type)}${r.data.length ? `: ${r.data.toString('utf8')}` : ''}`;

  let structured = false;
  let contextId = 0;
  let baseAllocation = false;

  if (fixed) {
    // STRUCTURED
    if (options.structuredReplies !== false) {
      socket.write(encodeOption(NBD_OPT_STRUCTURED_REPLY));
      const r = await readReply(NBD_OPT_STRUCTURED_REPLY);
      structured = r.type === NBD_REP_ACK;
      if (!structured && !isOptionReplyError(r.type)) throw new HandshakeError(`unexpected ${optionReplyName(r.type)} to STRUCTURED_REPLY`);
    }

    // META_CONTEXT
    if (structured && options.blockStatus !== false) {
      socket.write(encodeOption(NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest(exportName, [BASE_ALLOCATION])));
      for (;;) {
        const r = await readReply(NBD_OPT_SET_META_CONTEXT);
        if (r.type === NBD_REP_META_CONTEXT) {
          const ctx = decodeMetaContextReply(r.data);
          if (ctx.name === BASE_ALLOCATION) {
            contextId = ctx.id;
            baseAllocation = true;
          }
        } else if (r.type === NBD_REP_ACK) {
          break;
        } else if (isOptionReplyError(r.type)) {
          baseAllocation = false;
          break;
        } else {
          throw new HandshakeError(`unexpected ${optionReplyName(r.type)} to SET_META_CONTEXT`);
        }
      }
    }

    // GO
    socket.write(encodeOption(NBD_OPT_GO, encodeInfoRequest(exportName, [NBD_INFO_BLOCK_SIZE, NBD_INFO_NAME, NBD_INFO_DESCRIPTION])));
    let size: number | undefined;
    let tflags = 0;
    let sizes: BlockSizes | undefined;
    let name = exportName;
    let description = '';
    for (;;) {
      const r = await readReply(NBD_OPT_GO);
      if (r.type === NBD_REP_INFO) {
        const info = decodeInfoReply(r.data);
        if (info.type === NBD_INFO_EXPORT) {
          size = info.size;
          tflags = info.transmissionFlags;
        } else if (info.type === NBD_INFO_BLOCK_SIZE) {
          sizes = info.sizes;
        } else if (info.type === NBD_INFO_NAME) {
          name = info.name;
        } else if (info.type === NBD_INFO_DESCRIPTION) {
          description = info.description;
        }
      } else if (r.type === NBD_REP_ACK) {
        if (size === undefined) throw new HandshakeError('server accepted GO without sending NBD_INFO_EXPORT');
        const blockSizes = checkBlockSizes(sizes);
        return {
          info: { exportName: name, description, size, transmissionFlags: tflags, blockSizes, structuredReplies: structured, baseAllocation, negotiatedWithGo: true },
          contextId,
        };
      } else if (r.type === NBD_REP_ERR_UNSUP) {
        break; // an old server: fall back to EXPORT_NAME
      } else if (isOptionReplyError(r.type)) {
        socket.write(encodeOption(NBD_OPT_ABORT));
        throw new HandshakeError(`server refused export ${JSON.stringify(exportName)}: ${replyMessage(r)}`);
      } else {
        throw new HandshakeError(`unexpected ${optionReplyName(r.type)} to GO`);
      }
    }
  }

  // EXPORT_NAME
  socket.write(encodeOption(NBD_OPT_EXPORT_NAME, Buffer.from(exportName, 'utf8')));
  try {
    await need(10);
  } catch (err) {
    if (err instanceof HandshakeError) {
      throw new HandshakeError(`server closed the connection on NBD_OPT_EXPORT_NAME: export ${JSON.stringify(exportName)} probably does not exist`);
    }
    throw err;
  }
  const r = decodeExportNameReply(q.take(10));
  if (!noZeroes) {
    await need(124);
    q.skip(124);
  }
  return {
    info: {
      exportName,
      description: '',
      size: r.size,
      transmissionFlags: r.transmissionFlags,
      blockSizes: { minimum: 1, preferred: 4096, maximum: NBD_MAX_PAYLOAD },
      structuredReplies: structured,
      baseAllocation,
      negotiatedWithGo: false,
    },
    contextId,
  };
}

/** Block sizes as sent, or the spec's defaults; nonsense values are refused rather than obeyed. */
function checkBlockSizes(sizes: BlockSizes | undefined): BlockSizes {
  if (!sizes) return { minimum: 1, preferred: 4096, maximum: NBD_MAX_PAYLOAD };
  const pow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
  if (!pow2(sizes.minimum) || sizes.minimum > 65536 || !pow2(sizes.preferred) || sizes.maximum < sizes.minimum) {
    throw new HandshakeError(`server sent invalid block sizes ${sizes.minimum}/${sizes.preferred}/${sizes.maximum}`);
  }
  return sizes;
}
