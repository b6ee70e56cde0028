/**
 * ServerConnection: one client of the NBD server, from accept to close.
 *
 * Theory of operation
 * -------------------
 * Phase 1, handshake (fixed newstyle only): written as straight-line async
 * code over a ByteQueue, because it is sequential by nature (the client must
 * wait for a final reply before sending the next option). A timer bounds
 * the whole phase so a client that stalls cannot hold a connection open.
 *
 * Phase 2, transmission: event driven, and streaming. Socket reads land in
 * a buffer the connection owns (see NbdServer's use of `onread`); feed()
 * parses requests straight out of it: a header in place (or gathered across
 * reads), a WRITE payload copied into a pooled buffer, and when the rest of
 * a large payload is pending, the next read goes directly into that buffer
 * (receiveBuffer()), so the kernel copies payload bytes once, as nbdkit's
 * recv() does. Each request is validated exactly once, before any device
 * call (see validate()); a request that fails validation is answered with
 * the spec's errno and the stream stays in sync (a WRITE's payload is
 * consumed first), so the connection remains usable. Only a broken stream
 * (bad magic, a WRITE too large to skip) closes the connection, with one
 * log line.
 *
 * Valid requests run concurrently on the device; replies go out in
 * completion order. A reply is always written with consecutive
 * socket.write() calls from one synchronous function, so the bytes of two
 * replies never interleave. Writes are corked and uncorked from setImmediate,
 * which batches every reply completed in one event-loop turn into a single
 * writev. READ data goes into pooled buffers (device.readInto) that return
 * to the pool when that writev has completed.
 *
 * Back-pressure: the payload bytes of requests in flight (READ lengths and
 * WRITE payloads) plus the bytes queued in the socket's send buffer are
 * bounded by maxInFlightBytes (and the request count by
 * maxInFlightRequests). At the bound, before the next header, the unparsed
 * rest of the read is copied aside and reading stops, so a fast client
 * cannot make the server buffer without limit, and a client that stops
 * reading replies stops being served.
 *
 * Ending: NBD_CMD_DISC, the client's EOF, server shutdown and export removal
 * all "drain": no new requests start (on shutdown the ones already received
 * are answered ESHUTDOWN), in-flight ones finish and are answered, then the
 * socket is closed. A drain that takes longer than shutdownTimeoutMs is cut
 * short by destroying the socket.
 */
import type { Socket } from 'node:net';
import { BlockDeviceError, DisconnectedError, type BlockDevice, type Extent, type NbdErrno } from './block-device.js';
import type { BufferPool } from './buffer-pool.js';
import { ByteQueue } from './byte-queue.js';
import {
  BASE_ALLOCATION,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_NO_ZEROES,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_MAX_PAYLOAD,
  NBD_OPTS_MAGIC,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REPLY_FLAG_DONE,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_TOO_BIG,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
  NBD_REQUEST_MAGIC,
  NBD_EXTENDED_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  NBD_REPLY_TYPE_OFFSET_DATA,
  OPTION_HEADER_SIZE,
  REQUEST_SIZE,
  commandName,
  decodeInfoRequest,
  decodeMetaContextRequest,
  encodeBlockStatusChunk,
  encodeErrorChunk,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoString,
  encodeMetaContextReply,
  encodeNoneChunk,
  encodeOffsetHole,
  encodeOptionReply,
  encodeServerReplyData,
  errnoToWire,
  isNbdErrno,
  optionName,
  readU64,
  writeU64,
  type BlockSizes,
} from './protocol.js';

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly log: (line: string) => void;
  readonly handshakeTimeoutMs: number;
  readonly maxInFlightBytes: number;
  readonly maxInFlightRequests: number;
  readonly shutdownTimeoutMs: number;
  shuttingDown(): boolean;
  /** Read buffers shared by the server's connections. */
  readonly pool: BufferPool;
  lookupExport(name: string): ServedExport | undefined;
  exports(): Iterable<ServedExport>;
  connectionClosed(conn: ServerConnection): void;
}

/** One export as the server holds it. */
export interface ServedExport {
  readonly name: string;
  readonly device: BlockDevice;
  readonly description: string;
  readonly readOnly: boolean;
  readonly blockSizes: BlockSizes;
}

/** Option payloads are small (names and queries of at most 4 KiB each). */
const MAX_OPTION_DATA = 64 * 1024;
/** Larger options are skipped and refused; past this we stop listening. */
const MAX_SKIPPABLE_OPTION = 1024 * 1024;
/** A WRITE up to this size can be skipped and refused; larger ones break the stream. */
const MAX_SKIPPABLE_WRITE = 2 * NBD_MAX_PAYLOAD;
/** The spec asks servers not to send more than 2^20 descriptors in one chunk. */
const MAX_EXTENTS = 1 << 20;
/** base:allocation's context id; any nonzero value the client then echoes works. */
const BASE_ALLOCATION_ID = 1;
/** Reads at least this large are scanned for all-zero segments, which go out as holes. */
const HOLE_SEGMENT = 64 * 1024;
const MIN_HOLE = 4096;
const ZERO_SEGMENT = Buffer.alloc(HOLE_SEGMENT);
/** Bytes per socket read: a 1 MiB payload then takes a few reads, not sixteen. */
const RECEIVE_BUFFER = 256 * 1024;
/** A payload remainder at least this big is read straight into place. */
const DIRECT_READ_MIN = 64 * 1024;
const KNOWN_CMD_FLAGS =
  NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_DF | NBD_CMD_FLAG_REQ_ONE | NBD_CMD_FLAG_FAST_ZERO;
const EMPTY: Buffer = Buffer.alloc(0);
/**
 * Reply headers, and READ data of replies up to INLINE_DATA_MAX bytes, are
 * copied into one pooled buffer per batch (BATCH_BUFFER bytes; another when
 * full), which goes to the socket as one write: a 4 KiB read's reply costs a
 * 4 KiB copy instead of two socket.write() calls (each a trip through the
 * stream machinery and one more iovec). Larger data goes out by reference.
 */
const INLINE_DATA_MAX = 16 * 1024;
const BATCH_BUFFER = 256 * 1024;

const E_PERM = errnoToWire('EPERM');
const E_IO = errnoToWire('EIO');
const E_INVAL = errnoToWire('EINVAL');
const E_NOSPC = errnoToWire('ENOSPC');
const E_OVERFLOW = errnoToWire('EOVERFLOW');
const E_SHUTDOWN = errnoToWire('ESHUTDOWN');

const enum Phase {
  Handshake,
  Transmission,
  Closed,
}

/** Thrown inside the handshake to end it (the socket is already being closed). */
class HandshakeEnded extends Error {}

/** Transmission flags for an export, as advertised in INFO/GO/EXPORT_NAME replies. */
export function transmissionFlagsFor(exp: ServedExport, structuredReplies: boolean): number {
  const c = exp.device.capabilities;
  const ro = exp.readOnly || c.readOnly;
  let f = NBD_FLAG_HAS_FLAGS;
  if (ro) f |= NBD_FLAG_READ_ONLY;
  if (c.canFlush) f |= NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA;
  if (!ro && c.canTrim) f |= NBD_FLAG_SEND_TRIM;
  if (!ro && c.canWriteZeroes) {
    f |= NBD_FLAG_SEND_WRITE_ZEROES;
    if (c.canFastZero) f |= NBD_FLAG_SEND_FAST_ZERO;
  }
  if (structuredReplies) f |= NBD_FLAG_SEND_DF;
  if (c.canMultiConn) f |= NBD_FLAG_CAN_MULTI_CONN;
  if (c.canCache && typeof exp.device.cache === 'function') f |= NBD_FLAG_SEND_CACHE;
  return f;
}

export class ServerConnection {
  readonly id: number;
  readonly closed: Promise<void>;
  private readonly socket: Socket;
  private readonly host: ConnectionHost;
  private readonly q = new ByteQueue();
  private phase = Phase.Handshake;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private waiter: { n: number; resolve: () => void; reject: (e: Error) => void } | undefined;
  private resolveClosed!: () => void;

  // Negotiated state.
  private structured = false;
  private metaExport: string | undefined;
  private metaBaseAllocation = false;
  private exp: ServedExport | undefined;
  private device!: BlockDevice;
  private size = 0;
  private tflags = 0;
  private minBlock = 1;
  private blockStatusOn = false;

  // Transmission state.
  private inFlight = 0;
  private inFlightBytes = 0;
  private paused = false;
  private corked = false;
  private readEnded = false;
  private draining = false;
  private shutdownReplies = false;
  /** Bytes of an oversized WRITE still to discard (its reply goes out after). */
  private skipRemaining = 0;
  /** Where socket reads land (see receiveBuffer()). */
  private readonly recvBuf = Buffer.allocUnsafe(RECEIVE_BUFFER);
  /** The payload slice handed out for the next read, if any. */
  private direct: Buffer | undefined;
  /** Received bytes not yet parsed, kept while reading is paused. */
  private stash: Buffer | undefined;
  /** A request header split across reads, gathered here. */
  private readonly hdr = Buffer.allocUnsafe(REQUEST_SIZE);
  private hdrFill = 0;
  // The request being received.
  private flags = 0;
  private type = 0;
  private cookieHi = 0;
  private cookieLo = 0;
  private offset = 0;
  private length = 0;
  /** Its WRITE payload: a view of a pooled buffer, filled as bytes arrive. */
  private payload: Buffer | undefined;
  private payloadPooled: Buffer | undefined;
  private payloadLength = 0;
  private payloadLeft = 0;

  /** Pooled read buffers referenced by the writes of the current batch. */
  private batchBuffers: Buffer[] = [];
  /** This batch's buffer of headers and inlined data (see INLINE_DATA_MAX): bytes [batchFrom, batchAt) are not yet handed to the socket. */
  private batch: Buffer | undefined;
  private batchFrom = 0;
  private batchAt = 0;

  private readonly uncork = (): void => {
    this.corked = false;
    if (this.socket.destroyed) {
      this.batch = undefined;
      return;
    }
    this.flushBatch();
    this.batch = undefined;
    // One callback per batch, after the last write: once it runs, every
    // buffer the batch referenced has reached the kernel and can be reused.
    if (this.batchBuffers.length > 0) {
      const buffers = this.batchBuffers;
      this.batchBuffers = [];
      const pool = this.host.pool;
      this.socket.write(EMPTY, () => {
        for (const b of buffers) pool.give(b);
      });
    }
    this.socket.uncork();
  };

  constructor(socket: Socket, host: ConnectionHost, id: number) {
    this.socket = socket;
    this.host = host;
    this.id = id;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    // Sockets made with an `onread` buffer (see NbdServer) deliver bytes to
    // onBytes() directly; plain sockets emit 'data'.
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk, chunk.length));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.onError(err));
    socket.on('close', () => this.onClose());
    socket.on('drain', () => this.maybeResume());
    this.handshakeTimer = setTimeout(() => {
      this.log(`handshake not finished after ${host.handshakeTimeoutMs} ms; closing`);
      this.socket.destroy();
    }, host.handshakeTimeoutMs);
    this.handshake().catch((err: unknown) => {
      if (!(err instanceof HandshakeEnded)) {
        this.log(`handshake failed: ${(err as Error)?.message ?? String(err)}`);
        this.socket.destroy();
      }
    });
  }

  /** Name of the export in use (undefined during the handshake). */
  get exportName(): string | undefined {
    return this.exp?.name;
  }

  /** Server shutdown or export removal: stop taking requests, answer ESHUTDOWN, finish, close. */
  shutdown(): void {
    if (this.phase === Phase.Closed) return;
    if (this.phase === Phase.Handshake) {
      this.socket.destroy();
      return;
    }
    this.shutdownReplies = true;
    // Requests already received (kept while paused) are answered ESHUTDOWN.
    const stash = this.stash;
    this.stash = undefined;
    if (stash) this.feed(stash, 0, stash.length);
    this.beginDrain();
  }

  // -------------------------------------------------------------------------
  // Socket events

  /**
   * The buffer for the socket's next read: the rest of a WRITE payload
   * being received, when there is enough of it to be worth a read of its
   * own (the kernel then copies it straight into place), else the
   * connection's receive buffer.
   */
  receiveBuffer(): Buffer {
    if (this.payloadLeft >= DIRECT_READ_MIN && this.phase === Phase.Transmission) {
      const at = this.payloadLength - this.payloadLeft;
      this.direct = this.payload!.subarray(at, this.payloadLength);
      return this.direct;
    }
    this.direct = undefined;
    return this.recvBuf;
  }

  /**
   * Received bytes, buf[0..n). The buffer may be reused for the next read as
   * soon as this returns, so nothing may keep a reference to it. Returns
   * false to stop reading (back-pressure).
   */
  onBytes(buf: Buffer, n: number): boolean {
    if (buf === this.direct) {
      // Already in place: the read went straight into the WRITE payload.
      this.direct = undefined;
      this.payloadLeft -= n;
      if (this.payloadLeft === 0) this.request(this.payload!);
      return true;
    }
    if (this.phase === Phase.Transmission) return this.feed(buf, 0, n);
    if (this.phase === Phase.Handshake) {
      this.q.push(Buffer.from(buf.subarray(0, n)));
      if (this.waiter && this.q.length >= this.waiter.n) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve();
      }
    }
    return true;
  }

  private onEnd(): void {
    this.readEnded = true;
    if (this.phase === Phase.Handshake) {
      this.socket.destroy();
      return;
    }
    // While paused no EOF is read, so every received request has been taken by now.
    if (this.phase !== Phase.Transmission || this.draining) return;
    if (this.hdrFill > 0 || this.payloadLeft > 0 || this.skipRemaining > 0) {
      const got = this.hdrFill > 0 ? this.hdrFill : this.payloadLength - this.payloadLeft;
      this.log(`client closed the connection in the middle of a request (${got} bytes of it received)`);
    }
    this.beginDrain();
  }

  private onError(err: NodeJS.ErrnoException): void {
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      if (this.phase === Phase.Transmission && !this.draining) this.log(`connection reset by the client (${err.code})`);
    } else {
      this.log(`socket error: ${err.message}`);
    }
  }

  private onClose(): void {
    this.phase = Phase.Closed;
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.drainTimer);
    this.q.clear();
    this.stash = undefined;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(new HandshakeEnded());
    }
    this.host.connectionClosed(this);
    this.resolveClosed();
  }

  private log(line: string): void {
    this.host.log(`nbd: conn ${this.id}: ${line}`);
  }

  // -------------------------------------------------------------------------
  // Handshake

  private need(n: number): Promise<void> {
    if (this.q.length >= n) return Promise.resolve();
    if (this.phase === Phase.Closed || this.readEnded) return Promise.reject(new HandshakeEnded());
    return new Promise((resolve, reject) => (this.waiter = { n, resolve, reject }));
  }

  private send(buf: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(buf);
  }

  private reply(option: number, type: number, data?: Uint8Array): void {
    this.send(encodeOptionReply(option, type, data));
  }

  private replyError(option: number, type: number, message: string): void {
    this.reply(option, type, Buffer.from(message, 'utf8'));
  }

  /** Ends the handshake with one log line and a hard disconnect. */
  private refuse(why: string): never {
    this.log(why);
    this.socket.destroy();
    throw new HandshakeEnded();
  }

  private async handshake(): Promise<void> {
    this.send(encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));
    await this.need(4);
    const clientFlags = this.q.take(4).readUInt32BE(0);
    if (clientFlags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
      this.refuse(`unknown client flags 0x${clientFlags.toString(16)}; closing`);
    }
    if (!(clientFlags & NBD_FLAG_C_FIXED_NEWSTYLE)) {
      this.refuse('client does not support fixed newstyle negotiation; refusing it');
    }
    const noZeroes = (clientFlags & NBD_FLAG_C_NO_ZEROES) !== 0;

    for (;;) {
      await this.need(OPTION_HEADER_SIZE);
      const header = this.q.take(OPTION_HEADER_SIZE);
      if (header.readBigUInt64BE(0) !== NBD_OPTS_MAGIC) this.refuse('bad option magic (not IHAVEOPT); closing');
      const option = header.readUInt32BE(8);
      const length = header.readUInt32BE(12);
      if (length > MAX_OPTION_DATA) {
        if (length > MAX_SKIPPABLE_OPTION) this.refuse(`option ${optionName(option)} with ${length} bytes of data; closing`);
        await this.need(length);
        this.q.skip(length);
        this.replyError(option, NBD_REP_ERR_TOO_BIG, `option data of ${length} bytes is too large`);
        continue;
      }
      await this.need(length);
      const data = this.q.take(length);
      if (this.host.shuttingDown() && option !== NBD_OPT_ABORT) {
        this.replyError(option, NBD_REP_ERR_SHUTDOWN, 'server is shutting down');
        continue;
      }
      switch (option) {
        case NBD_OPT_EXPORT_NAME: {
          const name = data.toString('utf8');
          const exp = this.host.lookupExport(name);
          // EXPORT_NAME cannot carry an error: the spec says to drop the connection.
          if (!exp) this.refuse(`client asked for unknown export "${name}" with EXPORT_NAME; closing`);
          const flags = transmissionFlagsFor(exp, this.structured);
          this.send(encodeExportNameReply(exp.device.size, flags, noZeroes));
          this.enterTransmission(exp, flags, name);
          return;
        }
        case NBD_OPT_ABORT:
          this.reply(option, NBD_REP_ACK);
          this.socket.destroySoon();
          throw new HandshakeEnded();
        case NBD_OPT_LIST:
          if (length !== 0) {
            this.replyError(option, NBD_REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
            break;
          }
          for (const exp of this.host.exports()) this.reply(option, NBD_REP_SERVER, encodeServerReplyData(exp.name, exp.description));
          this.reply(option, NBD_REP_ACK);
          break;
        case NBD_OPT_INFO:
        case NBD_OPT_GO: {
          const req = decodeInfoRequest(data);
          if (!req) {
            this.replyError(option, NBD_REP_ERR_INVALID, `malformed ${optionName(option)} request`);
            break;
          }
          const exp = this.host.lookupExport(req.name);
          if (!exp) {
            this.replyError(option, NBD_REP_ERR_UNKNOWN, this.unknownExportMessage(req.name));
            break;
          }
          const flags = transmissionFlagsFor(exp, this.structured);
          this.reply(option, NBD_REP_INFO, encodeInfoExport(exp.device.size, flags));
          if (req.infos.includes(NBD_INFO_NAME)) this.reply(option, NBD_REP_INFO, encodeInfoString(NBD_INFO_NAME, exp.name));
          if (req.infos.includes(NBD_INFO_DESCRIPTION) && exp.description) {
            this.reply(option, NBD_REP_INFO, encodeInfoString(NBD_INFO_DESCRIPTION, exp.description));
          }
          // Always sent: the client learns our constraints even if it did not ask.
          this.reply(option, NBD_REP_INFO, encodeInfoBlockSize(exp.blockSizes));
          this.reply(option, NBD_REP_ACK);
          if (option === NBD_OPT_GO) {
            this.enterTransmission(exp, flags, req.name);
            return;
          }
          break;
        }
        case NBD_OPT_STRUCTURED_REPLY:
          if (length !== 0) this.replyError(option, NBD_REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          else if (this.structured) this.replyError(option, NBD_REP_ERR_INVALID, 'structured replies already negotiated');
          else {
            this.structured = true;
            this.reply(option, NBD_REP_ACK);
          }
          break;
        case NBD_OPT_LIST_META_CONTEXT:
        case NBD_OPT_SET_META_CONTEXT:
          this.metaContextOption(option, data);
          break;
        default:
          this.replyError(option, NBD_REP_ERR_UNSUP, `option ${optionName(option)} is not supported`);
      }
    }
  }

  private unknownExportMessage(name: string): string {
    const names = [...this.host.exports()].map((e) => JSON.stringify(e.name));
    return name === ''
      ? `there is no default export; exports: ${names.join(', ') || 'none'}`
      : `no export named ${JSON.stringify(name)}`;
  }

  private metaContextOption(option: number, data: Buffer): void {
    const set = option === NBD_OPT_SET_META_CONTEXT;
    if (set) {
      // SET replaces the selection even when it fails.
      this.metaExport = undefined;
      this.metaBaseAllocation = false;
      if (!this.structured) {
        this.replyError(option, NBD_REP_ERR_INVALID, 'negotiate structured replies before metadata contexts');
        return;
      }
    }
    const req = decodeMetaContextRequest(data);
    if (!req) {
      this.replyError(option, NBD_REP_ERR_INVALID, `malformed ${optionName(option)} request`);
      return;
    }
    if (!this.host.lookupExport(req.name)) {
      this.replyError(option, NBD_REP_ERR_UNKNOWN, this.unknownExportMessage(req.name));
      return;
    }
    if (req.queries.some((q) => !q.includes(':'))) {
      this.replyError(option, NBD_REP_ERR_INVALID, 'a metadata context query must start with a namespace and a colon');
      return;
    }
    const matches = set
      ? req.queries.some((q) => q === BASE_ALLOCATION)
      : req.queries.length === 0 || req.queries.some((q) => q === 'base:' || q === BASE_ALLOCATION);
    if (matches) this.reply(option, NBD_REP_META_CONTEXT, encodeMetaContextReply(set ? BASE_ALLOCATION_ID : 0, BASE_ALLOCATION));
    if (set) {
      this.metaExport = req.name;
      this.metaBaseAllocation = matches;
    }
    this.reply(option, NBD_REP_ACK);
  }

  private enterTransmission(exp: ServedExport, flags: number, requestedName: string): void {
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.exp = exp;
    this.device = exp.device;
    this.size = exp.device.size;
    this.tflags = flags;
    this.minBlock = exp.blockSizes.minimum;
    this.blockStatusOn = this.structured && this.metaBaseAllocation && this.metaExport === requestedName;
    this.phase = Phase.Transmission;
    if (this.host.shuttingDown()) {
      this.shutdown();
      return;
    }
    // Bytes that came with the last option belong to the first requests.
    if (this.q.length > 0) {
      const rest = this.q.take(this.q.length);
      this.q.clear();
      this.feed(rest, 0, rest.length);
    }
    if (this.readEnded) this.onEnd();
  }

  // -------------------------------------------------------------------------
  // Transmission: parsing

  /**
   * Takes requests out of received bytes buf[pos..end), which may end
   * anywhere: inside a header, inside a WRITE payload. A header is parsed
   * in place when whole, else gathered in `hdr`; a WRITE payload is copied
   * straight into a pooled buffer. At the in-flight bound the unread rest is
   * copied aside (`stash`) and reading stops until replies free room.
   */
  private feed(buf: Buffer, pos: number, end: number): boolean {
    while (pos < end) {
      if (this.phase !== Phase.Transmission || this.draining) return true;
      if (this.skipRemaining > 0) {
        const n = Math.min(this.skipRemaining, end - pos);
        this.skipRemaining -= n;
        pos += n;
        if (this.skipRemaining === 0) {
          this.sendError(NBD_CMD_WRITE, this.cookieHi, this.cookieLo, E_OVERFLOW, `write longer than the ${NBD_MAX_PAYLOAD}-byte maximum`);
        }
        continue;
      }
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, end - pos);
        buf.copy(this.payload!, this.payloadLength - this.payloadLeft, pos, pos + n);
        this.payloadLeft -= n;
        pos += n;
        if (this.payloadLeft === 0) this.request(this.payload!);
        continue;
      }
      // Refusals during shutdown start no device work, so the bounds do not apply.
      if (
        this.hdrFill === 0 &&
        !this.shutdownReplies &&
        (this.inFlightBytes >= this.host.maxInFlightBytes ||
          this.inFlight >= this.host.maxInFlightRequests ||
          this.socket.writableLength >= this.host.maxInFlightBytes)
      ) {
        this.stash = Buffer.from(buf.subarray(pos, end));
        if (!this.paused) {
          this.paused = true;
          this.socket.pause();
        }
        return false;
      }
      let h: Buffer;
      let o: number;
      if (this.hdrFill === 0 && end - pos >= REQUEST_SIZE) {
        h = buf;
        o = pos;
        pos += REQUEST_SIZE;
      } else {
        const n = Math.min(REQUEST_SIZE - this.hdrFill, end - pos);
        buf.copy(this.hdr, this.hdrFill, pos, pos + n);
        this.hdrFill += n;
        pos += n;
        if (this.hdrFill < REQUEST_SIZE) return true;
        this.hdrFill = 0;
        h = this.hdr;
        o = 0;
      }
      if (!this.header(h, o)) return true;
    }
    return true;
  }

  /** Takes one request header; false when the stream is broken and the connection closing. */
  private header(b: Buffer, o: number): boolean {
    const magic = b.readUInt32BE(o);
    if (magic !== NBD_REQUEST_MAGIC) {
      this.fatal(`bad request magic 0x${magic.toString(16).padStart(8, '0')}${describeMagic(magic)}; closing`);
      return false;
    }
    this.flags = b.readUInt16BE(o + 4);
    this.type = b.readUInt16BE(o + 6);
    this.cookieHi = b.readUInt32BE(o + 8);
    this.cookieLo = b.readUInt32BE(o + 12);
    this.offset = readU64(b, o + 16);
    const length = (this.length = b.readUInt32BE(o + 24));
    if (this.type === NBD_CMD_WRITE && length > 0) {
      if (length > NBD_MAX_PAYLOAD) {
        if (length > MAX_SKIPPABLE_WRITE) {
          this.fatal(`WRITE of ${length} bytes is too large to skip; closing`);
          return false;
        }
        this.log(`invalid request: WRITE of ${length} bytes exceeds the ${NBD_MAX_PAYLOAD}-byte maximum; skipping its payload`);
        this.skipRemaining = length;
        return true;
      }
      this.payloadPooled = this.host.pool.take(length);
      this.payload = this.payloadPooled.length === length ? this.payloadPooled : this.payloadPooled.subarray(0, length);
      this.payloadLength = length;
      this.payloadLeft = length;
      return true;
    }
    if (this.type === NBD_CMD_DISC) {
      this.beginDrain();
      return true;
    }
    this.request(EMPTY);
    return true;
  }

  /** A whole request is here (its payload too): validate it once, then run it or refuse it. */
  private request(payload: Buffer): void {
    const pooled = this.payloadPooled;
    this.payload = undefined;
    this.payloadPooled = undefined;
    const error = this.validate(this.type, this.flags, this.offset, this.length);
    if (error !== 0) {
      if (pooled) this.host.pool.give(pooled);
      this.sendError(this.type, this.cookieHi, this.cookieLo, error, this.lastInvalid);
      return;
    }
    this.dispatch(this.type, this.flags, this.cookieHi, this.cookieLo, this.offset, this.length, payload, pooled);
  }

  /** After a reply or a 'drain': continue with stashed bytes and reading once below the bounds. */
  private maybeResume(): void {
    if (!this.paused || this.draining || this.phase !== Phase.Transmission) return;
    const stash = this.stash;
    this.stash = undefined;
    if (stash && !this.feed(stash, 0, stash.length)) return;
    this.paused = false;
    this.socket.resume();
  }

  private lastInvalid = '';

  /**
   * The one place requests are checked. Returns 0 or a wire errno, and
   * leaves the reason in lastInvalid (logged, and sent as the error
   * chunk's message when structured replies are on).
   */
  private validate(type: number, flags: number, offset: number, length: number): number {
    const tf = this.tflags;
    if (this.shutdownReplies) return this.invalid(E_SHUTDOWN, 'server is shutting down');
    if (type > NBD_CMD_BLOCK_STATUS) return this.invalid(E_INVAL, `unknown command ${type}`);
    const name = commandName(type);
    if (flags & ~KNOWN_CMD_FLAGS) return this.invalid(E_INVAL, `${name}: unknown flags 0x${flags.toString(16)}`);
    if (flags & NBD_CMD_FLAG_FUA && !(tf & NBD_FLAG_SEND_FUA)) return this.invalid(E_INVAL, `${name}: FUA was not advertised`);
    if (flags & NBD_CMD_FLAG_NO_HOLE && type !== NBD_CMD_WRITE_ZEROES) return this.invalid(E_INVAL, `${name}: NO_HOLE is only for WRITE_ZEROES`);
    if (flags & NBD_CMD_FLAG_FAST_ZERO && (type !== NBD_CMD_WRITE_ZEROES || !(tf & NBD_FLAG_SEND_FAST_ZERO))) {
      return this.invalid(E_INVAL, `${name}: FAST_ZERO is only for WRITE_ZEROES when advertised`);
    }
    if (flags & NBD_CMD_FLAG_DF && (type !== NBD_CMD_READ || !(tf & NBD_FLAG_SEND_DF))) {
      return this.invalid(E_INVAL, `${name}: DF is only for READ with structured replies`);
    }
    if (flags & NBD_CMD_FLAG_REQ_ONE && type !== NBD_CMD_BLOCK_STATUS) return this.invalid(E_INVAL, `${name}: REQ_ONE is only for BLOCK_STATUS`);
    const writes = type === NBD_CMD_WRITE || type === NBD_CMD_TRIM || type === NBD_CMD_WRITE_ZEROES;
    if (writes && tf & NBD_FLAG_READ_ONLY) return this.invalid(E_PERM, `${name} on a read-only export`);
    switch (type) {
      case NBD_CMD_FLUSH:
        if (!(tf & NBD_FLAG_SEND_FLUSH)) return this.invalid(E_INVAL, 'FLUSH was not advertised');
        if (offset !== 0 || length !== 0) return this.invalid(E_INVAL, 'FLUSH with nonzero offset or length');
        return 0;
      case NBD_CMD_TRIM:
        if (!(tf & NBD_FLAG_SEND_TRIM)) return this.invalid(E_INVAL, 'TRIM was not advertised');
        break;
      case NBD_CMD_WRITE_ZEROES:
        if (!(tf & NBD_FLAG_SEND_WRITE_ZEROES)) return this.invalid(E_INVAL, 'WRITE_ZEROES was not advertised');
        break;
      case NBD_CMD_CACHE:
        if (!(tf & NBD_FLAG_SEND_CACHE)) return this.invalid(E_INVAL, 'CACHE was not advertised');
        break;
      case NBD_CMD_BLOCK_STATUS:
        if (!this.blockStatusOn) return this.invalid(E_INVAL, 'BLOCK_STATUS without base:allocation negotiated');
        if (length === 0) return this.invalid(E_INVAL, 'BLOCK_STATUS of length 0');
        break;
      case NBD_CMD_READ:
        if (length > NBD_MAX_PAYLOAD) return this.invalid(E_OVERFLOW, `READ of ${length} bytes exceeds the ${NBD_MAX_PAYLOAD}-byte maximum`);
        break;
    }
    if (offset + length > this.size) {
      const errno = type === NBD_CMD_WRITE || type === NBD_CMD_WRITE_ZEROES ? E_NOSPC : E_INVAL;
      return this.invalid(errno, `${name} ${offset}+${length} is beyond the end of the export (${this.size} bytes)`);
    }
    if (this.minBlock > 1 && (offset % this.minBlock !== 0 || length % this.minBlock !== 0)) {
      return this.invalid(E_INVAL, `${name} ${offset}+${length} is not aligned to the ${this.minBlock}-byte minimum block size`);
    }
    return 0;
  }

  private invalid(errno: number, why: string): number {
    this.lastInvalid = why;
    if (errno !== E_SHUTDOWN) this.log(`invalid request: ${why}`);
    return errno;
  }

  // -------------------------------------------------------------------------
  // Transmission: running requests

  private dispatch(
    type: number,
    flags: number,
    cookieHi: number,
    cookieLo: number,
    offset: number,
    length: number,
    payload: Buffer,
    payloadPooled: Buffer | undefined,
  ): void {
    // Zero-length requests are legal but meaningless: answer without the device.
    if (length === 0 && type !== NBD_CMD_FLUSH) {
      if (payloadPooled) this.host.pool.give(payloadPooled);
      if (type === NBD_CMD_READ && this.structured) this.out(encodeNoneChunk(cookieHi, cookieLo));
      else this.sendOk(cookieHi, cookieLo);
      return;
    }
    const cost = type === NBD_CMD_READ || type === NBD_CMD_WRITE ? length : 0;
    this.inFlight++;
    this.inFlightBytes += cost;
    const dev = this.device;
    const fua = (flags & NBD_CMD_FLAG_FUA) !== 0;
    let p: Promise<unknown>;
    let pooled: Buffer | undefined;
    let view: Buffer | undefined;
    try {
      switch (type) {
        case NBD_CMD_READ:
          if (dev.readInto) {
            pooled = this.host.pool.take(length);
            view = pooled.length === length ? pooled : pooled.subarray(0, length);
            p = dev.readInto(offset, view);
          } else {
            p = dev.read(offset, length);
          }
          break;
        case NBD_CMD_WRITE:
          p = dev.write(offset, payload, fua ? FUA : NO_FUA);
          break;
        case NBD_CMD_FLUSH:
          p = dev.flush();
          break;
        case NBD_CMD_TRIM:
          p = dev.trim(offset, length, fua ? FUA : NO_FUA);
          break;
        case NBD_CMD_CACHE:
          p = dev.cache!(offset, length);
          break;
        case NBD_CMD_WRITE_ZEROES:
          p = dev.writeZeroes(offset, length, {
            fua,
            noHole: (flags & NBD_CMD_FLAG_NO_HOLE) !== 0,
            fastZero: (flags & NBD_CMD_FLAG_FAST_ZERO) !== 0,
          });
          break;
        default: // NBD_CMD_BLOCK_STATUS
          p = dev.blockStatus ? dev.blockStatus(offset, length) : Promise.resolve([{ length, flags: 0 }]);
      }
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (result) => {
        // The device is done with the payload (BlockDevice.write borrows it): reuse it.
        if (payloadPooled) this.host.pool.give(payloadPooled);
        this.finish(cost);
        if (this.phase === Phase.Closed) return;
        if (type === NBD_CMD_READ) this.sendRead(flags, cookieHi, cookieLo, offset, length, view ?? result, pooled);
        else if (type === NBD_CMD_BLOCK_STATUS) this.sendBlockStatus(flags, cookieHi, cookieLo, length, result);
        else this.sendOk(cookieHi, cookieLo);
        this.afterReply();
      },
      (err: unknown) => {
        if (payloadPooled) this.host.pool.give(payloadPooled);
        this.finish(cost);
        if (this.phase === Phase.Closed) return;
        const [errno, message] = this.deviceError(type, offset, length, err);
        this.sendError(type, cookieHi, cookieLo, errno, message);
        this.afterReply();
      },
    );
  }

  private finish(cost: number): void {
    this.inFlight--;
    this.inFlightBytes -= cost;
  }

  private afterReply(): void {
    if (this.draining) {
      if (this.inFlight === 0) this.closeAfterWrites();
    } else if (this.paused) {
      this.maybeResume();
    }
  }

  private deviceError(type: number, offset: number, length: number, err: unknown): [number, string] {
    const e = err as { name?: unknown; errno?: unknown; message?: unknown };
    if (err instanceof BlockDeviceError || (e?.name === 'BlockDeviceError' && isNbdErrno(e.errno))) {
      return [errnoToWire(e.errno as NbdErrno), String(e.message)];
    }
    const what = err instanceof DisconnectedError ? 'device is gone' : 'device failed';
    this.log(`${commandName(type)} ${offset}+${length}: ${what}: ${String(e?.message ?? err)}; replying EIO`);
    return [E_IO, 'input/output error'];
  }

  // -------------------------------------------------------------------------
  // Transmission: replies

  /** Corks the socket until the end of this event-loop turn (setImmediate), so the turn's replies go out in one writev. */
  private cork(): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(this.uncork);
    }
  }

  /** Queues bytes for the socket, batched until the end of this event-loop turn. */
  private out(buf: Buffer): void {
    if (this.socket.destroyed) return;
    this.cork();
    this.flushBatch();
    this.socket.write(buf);
  }

  /**
   * Reserves n bytes (n ≤ BATCH_BUFFER) at the end of this turn's batch
   * buffer and returns their offset in this.batch; the caller fills them at
   * once. The socket must not be destroyed.
   */
  private room(n: number): number {
    this.cork();
    let b = this.batch;
    if (b === undefined || this.batchAt + n > b.length) {
      this.flushBatch();
      b = this.batch = this.host.pool.take(BATCH_BUFFER);
      // Back to the pool once the batch's writes are done, like read buffers.
      this.batchBuffers.push(b);
      this.batchFrom = this.batchAt = 0;
    }
    const at = this.batchAt;
    this.batchAt = at + n;
    return at;
  }

  /** Hands the batch buffer's pending bytes to the (corked) socket, keeping their order with what is written next. */
  private flushBatch(): void {
    if (this.batch !== undefined && this.batchAt > this.batchFrom) {
      this.socket.write(this.batch.subarray(this.batchFrom, this.batchAt));
      this.batchFrom = this.batchAt;
    }
  }

  /** A simple reply header (16 bytes) with the given error, followed by `data` (copied) when given. */
  private simpleReply(cookieHi: number, cookieLo: number, error: number, data?: Buffer): void {
    if (this.socket.destroyed) return;
    const n = data ? data.length : 0;
    const at = this.room(16 + n);
    const h = this.batch!;
    h.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, at);
    h.writeUInt32BE(error, at + 4);
    h.writeUInt32BE(cookieHi, at + 8);
    h.writeUInt32BE(cookieLo, at + 12);
    if (data) data.copy(h, at + 16);
  }

  private sendOk(cookieHi: number, cookieLo: number): void {
    this.simpleReply(cookieHi, cookieLo, 0);
  }

  private sendError(type: number, cookieHi: number, cookieLo: number, errno: number, message: string): void {
    if (this.structured) {
      this.out(encodeErrorChunk(cookieHi, cookieLo, errno, message));
      return;
    }
    this.simpleReply(cookieHi, cookieLo, errno);
  }

  private sendRead(
    flags: number,
    cookieHi: number,
    cookieLo: number,
    offset: number,
    length: number,
    result: unknown,
    pooled: Buffer | undefined,
  ): void {
    const data = result as Uint8Array;
    if (!(data instanceof Uint8Array) || data.length !== length) {
      this.log(`READ ${offset}+${length}: device returned ${data instanceof Uint8Array ? `${data.length} bytes` : typeof result}; replying EIO`);
      this.sendError(NBD_CMD_READ, cookieHi, cookieLo, E_IO, 'input/output error');
      return;
    }
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
    if (this.socket.destroyed) return;
    // Replies of up to INLINE_DATA_MAX bytes are copied into the batch buffer.
    const inline = length <= INLINE_DATA_MAX;
    if (!this.structured) {
      this.simpleReply(cookieHi, cookieLo, 0, inline ? buf : undefined);
      if (!inline) this.out(buf);
    } else if (flags & NBD_CMD_FLAG_DF || length < MIN_HOLE) {
      this.sendData(NBD_REPLY_FLAG_DONE, cookieHi, cookieLo, offset, buf, 0, length);
    } else {
      this.sendRuns(cookieHi, cookieLo, offset, length, buf);
    }
    // An inlined reply's read buffer is free at once; one written by
    // reference goes back once the batch that writes it is done.
    if (pooled) {
      if (inline) this.host.pool.give(pooled);
      else this.batchBuffers.push(pooled);
    }
  }

  private sendRuns(cookieHi: number, cookieLo: number, offset: number, length: number, buf: Buffer): void {
    // Split into runs of data and of zeroes at 64 KiB boundaries of the
    // export; memcmp stops at the first nonzero byte, so dense data costs
    // almost nothing to check, and zero runs go out as 32-byte holes.
    let runStart = 0;
    let runZero = false;
    let pos = 0;
    let first = true;
    while (pos < length) {
      const abs = offset + pos;
      const segEnd = Math.min(length, pos + (HOLE_SEGMENT - (abs % HOLE_SEGMENT)));
      const n = segEnd - pos;
      const zero = n >= MIN_HOLE && buf.compare(ZERO_SEGMENT, 0, n, pos, segEnd) === 0;
      if (first) {
        runZero = zero;
        first = false;
      } else if (zero !== runZero) {
        this.sendRun(0, cookieHi, cookieLo, offset, buf, runStart, pos, runZero);
        runStart = pos;
        runZero = zero;
      }
      pos = segEnd;
    }
    this.sendRun(NBD_REPLY_FLAG_DONE, cookieHi, cookieLo, offset, buf, runStart, length, runZero);
  }

  private sendRun(
    flags: number,
    cookieHi: number,
    cookieLo: number,
    offset: number,
    buf: Buffer,
    start: number,
    end: number,
    zero: boolean,
  ): void {
    if (zero) this.out(encodeOffsetHole(flags, cookieHi, cookieLo, offset + start, end - start));
    else this.sendData(flags, cookieHi, cookieLo, offset, buf, start, end);
  }

  private sendData(flags: number, cookieHi: number, cookieLo: number, offset: number, buf: Buffer, start: number, end: number): void {
    if (this.socket.destroyed) return;
    const inline = end - start <= INLINE_DATA_MAX;
    const at = this.room(inline ? 28 + end - start : 28);
    const h = this.batch!;
    h.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, at);
    h.writeUInt16BE(flags, at + 4);
    h.writeUInt16BE(NBD_REPLY_TYPE_OFFSET_DATA, at + 6);
    h.writeUInt32BE(cookieHi, at + 8);
    h.writeUInt32BE(cookieLo, at + 12);
    h.writeUInt32BE(end - start + 8, at + 16);
    writeU64(h, offset + start, at + 20);
    if (inline) buf.copy(h, at + 28, start, end);
    else this.out(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
  }

  private sendBlockStatus(flags: number, cookieHi: number, cookieLo: number, length: number, result: unknown): void {
    const extents = result as Extent[];
    const out: { length: number; flags: number }[] = [];
    const reqOne = (flags & NBD_CMD_FLAG_REQ_ONE) !== 0;
    let total = 0;
    if (Array.isArray(extents)) {
      for (const e of extents) {
        const elen = Number(e?.length);
        if (!(elen > 0)) continue;
        const len = Math.min(Math.floor(elen), length - total);
        const f = (e.flags >>> 0) & 3;
        const last = out[out.length - 1];
        if (last && last.flags === f) last.length += len;
        else out.push({ length: len, flags: f });
        total += len;
        if (total >= length || reqOne || out.length >= MAX_EXTENTS) break;
      }
    }
    if (out.length === 0 || out[0].length === 0) {
      this.log(`BLOCK_STATUS: device returned no usable extents; replying EIO`);
      this.sendError(NBD_CMD_BLOCK_STATUS, cookieHi, cookieLo, E_IO, 'input/output error');
      return;
    }
    if (reqOne) out.length = 1;
    this.out(encodeBlockStatusChunk(NBD_REPLY_FLAG_DONE, cookieHi, cookieLo, BASE_ALLOCATION_ID, out));
  }

  // -------------------------------------------------------------------------
  // Ending

  private fatal(why: string): void {
    this.log(why);
    this.phase = Phase.Closed;
    this.socket.destroy();
  }

  private beginDrain(): void {
    if (this.draining || this.phase !== Phase.Transmission) return;
    this.draining = true;
    this.socket.pause();
    if (this.inFlight === 0) {
      this.closeAfterWrites();
      return;
    }
    this.drainTimer = setTimeout(() => {
      this.log(`${this.inFlight} request(s) still running ${this.host.shutdownTimeoutMs} ms after close; dropping the connection`);
      this.socket.destroy();
    }, this.host.shutdownTimeoutMs);
  }

  private closeAfterWrites(): void {
    clearTimeout(this.drainTimer);
    if (this.corked) this.uncork();
    // destroySoon: end our side once queued replies are written, then release the fd.
    this.socket.destroySoon();
  }
}

const FUA = { fua: true } as const;
const NO_FUA = { fua: false } as const;

function describeMagic(magic: number): string {
  if (magic === NBD_EXTENDED_REQUEST_MAGIC) return ' (extended headers were not negotiated)';
  if (magic === 0x12560953) return ' (pre-2.1.116 request magic)';
  return '';
}
