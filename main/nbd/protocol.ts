/**
 * The NBD wire format, defined once and used by the server and the client.
 *
 * Source of truth: doc/proto.md of NetworkBlockDevice/nbd (fixed newstyle
 * handshake, simple and structured replies, base:allocation). Every field is
 * big-endian. Numbers on the wire that can exceed 2^32 (sizes, offsets) are
 * carried as JS numbers: exports larger than 2^53 bytes are out of scope, and
 * an offset whose high word would push it past 2^53 simply fails the range
 * check against the export size.
 *
 * Encoders return fresh Buffers (handshake and error paths) or write into a
 * caller's buffer at an offset (the per-request hot path); decoders read from
 * (buffer, offset) so callers can parse straight out of received socket
 * chunks without copying.
 */
import type { NbdErrno } from './block-device.js';

// ---------------------------------------------------------------------------
// Magic numbers

/** ASCII "NBDMAGIC": first 8 bytes the server sends. */
export const NBD_MAGIC = 0x4e42444d41474943n;
/** ASCII "IHAVEOPT": newstyle server magic, and the prefix of every client option. */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
/** `cliserv_magic` of the oldstyle handshake (we never speak oldstyle). */
export const NBD_CLISERV_MAGIC = 0x00420281861253n;
/** Prefix of every fixed-newstyle option reply. */
export const NBD_REP_MAGIC = 0x3e889045565a9n;
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;
/** Reserved for the EXTENDED_HEADERS extension; recognised only to name it in errors. */
export const NBD_EXTENDED_REQUEST_MAGIC = 0x21e41c71;

// ---------------------------------------------------------------------------
// Handshake flags (server, 16 bits) and client flags (32 bits)

export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

// ---------------------------------------------------------------------------
// Transmission flags (16 bits)

export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_RESIZE = 1 << 9;
export const NBD_FLAG_SEND_CACHE = 1 << 10;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;

// ---------------------------------------------------------------------------
// Options

export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_PEEK_EXPORT = 4;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;
export const NBD_OPT_EXTENDED_HEADERS = 11;

// Option reply types; errors have bit 31 set.
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
export const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = 0x80000001;
export const NBD_REP_ERR_POLICY = 0x80000002;
export const NBD_REP_ERR_INVALID = 0x80000003;
export const NBD_REP_ERR_PLATFORM = 0x80000004;
export const NBD_REP_ERR_TLS_REQD = 0x80000005;
export const NBD_REP_ERR_UNKNOWN = 0x80000006;
export const NBD_REP_ERR_SHUTDOWN = 0x80000007;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
export const NBD_REP_ERR_TOO_BIG = 0x80000009;

// NBD_REP_INFO types.
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

// ---------------------------------------------------------------------------
// Commands, command flags, structured replies

export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;

export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

export const NBD_REPLY_FLAG_DONE = 1 << 0;

export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
/** Bit 15 marks every error chunk type, known or not. */
export const NBD_REPLY_TYPE_ERROR_BIT = 1 << 15;
export const NBD_REPLY_TYPE_ERROR = (1 << 15) | 1;
export const NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) | 2;

// base:allocation flags.
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;

export const BASE_ALLOCATION = 'base:allocation';

// ---------------------------------------------------------------------------
// Sizes

export const HANDSHAKE_GREETING_SIZE = 18;
export const OPTION_HEADER_SIZE = 16;
export const OPTION_REPLY_HEADER_SIZE = 20;
export const EXPORT_NAME_REPLY_SIZE = 134;
export const REQUEST_SIZE = 28;
export const SIMPLE_REPLY_SIZE = 16;
export const STRUCTURED_REPLY_HEADER_SIZE = 20;
/** The spec caps strings (names, descriptions, messages) at 4096 bytes. */
export const NBD_MAX_STRING = 4096;
/**
 * Largest READ/WRITE payload we accept or send: the spec says payloads up to
 * 2^25 must never be treated as a denial of service, so every peer takes them.
 */
export const NBD_MAX_PAYLOAD = 32 * 1024 * 1024;
/** Largest minimum block size the spec allows. */
export const NBD_MAX_MINIMUM_BLOCK_SIZE = 65536;
export const NBD_DEFAULT_PORT = 10809;

// ---------------------------------------------------------------------------
// Errors

const ERRNO_VALUES: Readonly<Record<NbdErrno, number>> = {
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
};
const ERRNO_NAMES = new Map<number, NbdErrno>(
  Object.entries(ERRNO_VALUES).map(([name, value]) => [value, name as NbdErrno]),
);

export function errnoToWire(errno: NbdErrno): number {
  return ERRNO_VALUES[errno];
}

/** The spec tells clients to treat an unknown error value as EINVAL. */
export function errnoFromWire(value: number): NbdErrno {
  return ERRNO_NAMES.get(value) ?? 'EINVAL';
}

export function isNbdErrno(name: unknown): name is NbdErrno {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(ERRNO_VALUES, name);
}

// ---------------------------------------------------------------------------
// Names for logs and error messages

const COMMAND_NAMES = ['READ', 'WRITE', 'DISC', 'FLUSH', 'TRIM', 'CACHE', 'WRITE_ZEROES', 'BLOCK_STATUS'];
const OPTION_NAMES: Record<number, string> = {
  1: 'EXPORT_NAME',
  2: 'ABORT',
  3: 'LIST',
  4: 'PEEK_EXPORT',
  5: 'STARTTLS',
  6: 'INFO',
  7: 'GO',
  8: 'STRUCTURED_REPLY',
  9: 'LIST_META_CONTEXT',
  10: 'SET_META_CONTEXT',
  11: 'EXTENDED_HEADERS',
};
const REPLY_ERROR_NAMES: Record<number, string> = {
  [NBD_REP_ERR_UNSUP]: 'ERR_UNSUP',
  [NBD_REP_ERR_POLICY]: 'ERR_POLICY',
  [NBD_REP_ERR_INVALID]: 'ERR_INVALID',
  [NBD_REP_ERR_PLATFORM]: 'ERR_PLATFORM',
  [NBD_REP_ERR_TLS_REQD]: 'ERR_TLS_REQD',
  [NBD_REP_ERR_UNKNOWN]: 'ERR_UNKNOWN',
  [NBD_REP_ERR_SHUTDOWN]: 'ERR_SHUTDOWN',
  [NBD_REP_ERR_BLOCK_SIZE_REQD]: 'ERR_BLOCK_SIZE_REQD',
  [NBD_REP_ERR_TOO_BIG]: 'ERR_TOO_BIG',
};

export function commandName(cmd: number): string {
  return COMMAND_NAMES[cmd] ?? `CMD_${cmd}`;
}
export function optionName(opt: number): string {
  return OPTION_NAMES[opt] ?? `OPT_${opt}`;
}
export function optionReplyName(rep: number): string {
  if (rep === NBD_REP_ACK) return 'ACK';
  if (rep === NBD_REP_SERVER) return 'SERVER';
  if (rep === NBD_REP_INFO) return 'INFO';
  if (rep === NBD_REP_META_CONTEXT) return 'META_CONTEXT';
  return REPLY_ERROR_NAMES[rep] ?? `REP_0x${rep.toString(16)}`;
}

// ---------------------------------------------------------------------------
// 64-bit helpers: two 32-bit halves are much cheaper than BigInt per request.

const TWO_32 = 0x1_0000_0000;

export function readU64(buf: Uint8Array, offset: number): number {
  const b = buf as Buffer;
  return b.readUInt32BE(offset) * TWO_32 + b.readUInt32BE(offset + 4);
}

export function writeU64(buf: Uint8Array, value: number, offset: number): void {
  const b = buf as Buffer;
  b.writeUInt32BE(Math.floor(value / TWO_32) >>> 0, offset);
  b.writeUInt32BE(value >>> 0, offset + 4);
}

function stringBytes(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

// ---------------------------------------------------------------------------
// Handshake: server side messages

/** S: NBDMAGIC, IHAVEOPT, 16-bit handshake flags. */
export function encodeGreeting(handshakeFlags: number): Buffer {
  const b = Buffer.alloc(HANDSHAKE_GREETING_SIZE);
  b.writeBigUInt64BE(NBD_MAGIC, 0);
  b.writeBigUInt64BE(NBD_OPTS_MAGIC, 8);
  b.writeUInt16BE(handshakeFlags, 16);
  return b;
}

export interface Greeting {
  readonly newstyle: boolean;
  /** Oldstyle only: the cliserv magic was seen instead of IHAVEOPT. */
  readonly oldstyle: boolean;
  readonly handshakeFlags: number;
}

/** Decodes the first 18 bytes a server sends (the 16-bit flags are absent for oldstyle). */
export function decodeGreeting(buf: Buffer, offset = 0): Greeting {
  if (buf.readBigUInt64BE(offset) !== NBD_MAGIC) throw new Error('not an NBD server: bad NBDMAGIC');
  const second = buf.readBigUInt64BE(offset + 8);
  if (second === NBD_CLISERV_MAGIC) return { newstyle: false, oldstyle: true, handshakeFlags: 0 };
  if (second !== NBD_OPTS_MAGIC) throw new Error(`not an NBD server: bad magic 0x${second.toString(16)}`);
  return { newstyle: true, oldstyle: false, handshakeFlags: buf.readUInt16BE(offset + 16) };
}

export function encodeClientFlags(flags: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(flags >>> 0, 0);
  return b;
}

/** C: IHAVEOPT, option, length, data. */
export function encodeOption(option: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(OPTION_HEADER_SIZE + data.length);
  b.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(data.length, 12);
  b.set(data, OPTION_HEADER_SIZE);
  return b;
}

export interface OptionHeader {
  readonly magicOk: boolean;
  readonly option: number;
  readonly length: number;
}

export function decodeOptionHeader(buf: Buffer, offset = 0): OptionHeader {
  return {
    magicOk: buf.readBigUInt64BE(offset) === NBD_OPTS_MAGIC,
    option: buf.readUInt32BE(offset + 8),
    length: buf.readUInt32BE(offset + 12),
  };
}

/** S: REP_MAGIC, option, reply type, length, data. */
export function encodeOptionReply(option: number, type: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(OPTION_REPLY_HEADER_SIZE + data.length);
  b.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(data.length, 16);
  b.set(data, OPTION_REPLY_HEADER_SIZE);
  return b;
}

export interface OptionReplyHeader {
  readonly magicOk: boolean;
  readonly option: number;
  readonly type: number;
  readonly length: number;
}

export function decodeOptionReplyHeader(buf: Buffer, offset = 0): OptionReplyHeader {
  return {
    magicOk: buf.readBigUInt64BE(offset) === NBD_REP_MAGIC,
    option: buf.readUInt32BE(offset + 8),
    type: buf.readUInt32BE(offset + 12),
    length: buf.readUInt32BE(offset + 16),
  };
}

export function isOptionReplyError(type: number): boolean {
  return (type & NBD_REP_FLAG_ERROR) !== 0;
}

/** Reply to NBD_OPT_EXPORT_NAME: size, flags, and 124 zero bytes unless NO_ZEROES was agreed. */
export function encodeExportNameReply(size: number, transmissionFlags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : EXPORT_NAME_REPLY_SIZE);
  writeU64(b, size, 0);
  b.writeUInt16BE(transmissionFlags, 8);
  return b;
}

export function decodeExportNameReply(buf: Buffer, offset = 0): { size: number; transmissionFlags: number } {
  return { size: readU64(buf, offset), transmissionFlags: buf.readUInt16BE(offset + 8) };
}

// ---------------------------------------------------------------------------
// Option payloads

/** NBD_REP_SERVER payload: name length, name, then an optional description. */
export function encodeServerReplyData(name: string, description = ''): Buffer {
  const n = stringBytes(name);
  const d = stringBytes(description);
  const b = Buffer.alloc(4 + n.length + d.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  d.copy(b, 4 + n.length);
  return b;
}

export function decodeServerReplyData(data: Buffer): { name: string; description: string } {
  if (data.length < 4) throw new Error('NBD_REP_SERVER reply too short');
  const len = data.readUInt32BE(0);
  if (len > data.length - 4) throw new Error('NBD_REP_SERVER name length exceeds reply');
  return {
    name: data.toString('utf8', 4, 4 + len),
    description: data.toString('utf8', 4 + len),
  };
}

/** INFO and GO share this payload: name, then a list of NBD_INFO_* requests. */
export function encodeInfoRequest(name: string, infos: readonly number[]): Buffer {
  const n = stringBytes(name);
  const b = Buffer.alloc(4 + n.length + 2 + 2 * infos.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(infos.length, 4 + n.length);
  infos.forEach((info, i) => b.writeUInt16BE(info, 6 + n.length + 2 * i));
  return b;
}

/** Returns null when the payload is malformed (the server answers NBD_REP_ERR_INVALID). */
export function decodeInfoRequest(data: Buffer): { name: string; infos: number[] } | null {
  if (data.length < 6) return null;
  const len = data.readUInt32BE(0);
  if (len > data.length - 6 || len > NBD_MAX_STRING) return null;
  const count = data.readUInt16BE(4 + len);
  if (data.length !== 6 + len + 2 * count) return null;
  const infos: number[] = [];
  for (let i = 0; i < count; i++) infos.push(data.readUInt16BE(6 + len + 2 * i));
  const name = data.toString('utf8', 4, 4 + len);
  return { name, infos };
}

export function encodeInfoExport(size: number, transmissionFlags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(NBD_INFO_EXPORT, 0);
  writeU64(b, size, 2);
  b.writeUInt16BE(transmissionFlags, 10);
  return b;
}

export function encodeInfoString(type: typeof NBD_INFO_NAME | typeof NBD_INFO_DESCRIPTION, value: string): Buffer {
  const s = stringBytes(value);
  const b = Buffer.alloc(2 + s.length);
  b.writeUInt16BE(type, 0);
  s.copy(b, 2);
  return b;
}

export interface BlockSizes {
  readonly minimum: number;
  readonly preferred: number;
  readonly maximum: number;
}

export function encodeInfoBlockSize(sizes: BlockSizes): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
  b.writeUInt32BE(sizes.minimum, 2);
  b.writeUInt32BE(sizes.preferred, 6);
  b.writeUInt32BE(sizes.maximum >>> 0, 10);
  return b;
}

export type InfoReply =
  | { readonly type: typeof NBD_INFO_EXPORT; readonly size: number; readonly transmissionFlags: number }
  | { readonly type: typeof NBD_INFO_NAME; readonly name: string }
  | { readonly type: typeof NBD_INFO_DESCRIPTION; readonly description: string }
  | { readonly type: typeof NBD_INFO_BLOCK_SIZE; readonly sizes: BlockSizes }
  | { readonly type: 'unknown'; readonly info: number };

/** Decodes an NBD_REP_INFO payload; throws on a length the spec forbids. */
export function decodeInfoReply(data: Buffer): InfoReply {
  if (data.length < 2) throw new Error('NBD_REP_INFO reply too short');
  const info = data.readUInt16BE(0);
  switch (info) {
    case NBD_INFO_EXPORT:
      if (data.length !== 12) throw new Error(`NBD_INFO_EXPORT has length ${data.length}, expected 12`);
      return { type: NBD_INFO_EXPORT, size: readU64(data, 2), transmissionFlags: data.readUInt16BE(10) };
    case NBD_INFO_NAME:
      return { type: NBD_INFO_NAME, name: data.toString('utf8', 2) };
    case NBD_INFO_DESCRIPTION:
      return { type: NBD_INFO_DESCRIPTION, description: data.toString('utf8', 2) };
    case NBD_INFO_BLOCK_SIZE:
      if (data.length !== 14) throw new Error(`NBD_INFO_BLOCK_SIZE has length ${data.length}, expected 14`);
      return {
        type: NBD_INFO_BLOCK_SIZE,
        sizes: { minimum: data.readUInt32BE(2), preferred: data.readUInt32BE(6), maximum: data.readUInt32BE(10) },
      };
    default:
      return { type: 'unknown', info };
  }
}

/** LIST_META_CONTEXT and SET_META_CONTEXT payload: export name and query strings. */
export function encodeMetaContextRequest(name: string, queries: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  const n = stringBytes(name);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(n.length, 0);
  parts.push(head, n);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(queries.length, 0);
  parts.push(count);
  for (const q of queries) {
    const qb = stringBytes(q);
    const ql = Buffer.alloc(4);
    ql.writeUInt32BE(qb.length, 0);
    parts.push(ql, qb);
  }
  return Buffer.concat(parts);
}

/** Returns null when the payload is syntactically invalid. */
export function decodeMetaContextRequest(data: Buffer): { name: string; queries: string[] } | null {
  if (data.length < 8) return null;
  const len = data.readUInt32BE(0);
  if (len > NBD_MAX_STRING || len > data.length - 8) return null;
  const name = data.toString('utf8', 4, 4 + len);
  let pos = 4 + len;
  const count = data.readUInt32BE(pos);
  pos += 4;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    if (pos + 4 > data.length) return null;
    const ql = data.readUInt32BE(pos);
    pos += 4;
    if (ql > NBD_MAX_STRING || ql > data.length - pos) return null;
    queries.push(data.toString('utf8', pos, pos + ql));
    pos += ql;
  }
  if (pos !== data.length) return null;
  return { name, queries };
}

export function encodeMetaContextReply(id: number, name: string): Buffer {
  const s = stringBytes(name);
  const b = Buffer.alloc(4 + s.length);
  b.writeUInt32BE(id >>> 0, 0);
  s.copy(b, 4);
  return b;
}

export function decodeMetaContextReply(data: Buffer): { id: number; name: string } {
  if (data.length < 4) throw new Error('NBD_REP_META_CONTEXT reply too short');
  return { id: data.readUInt32BE(0), name: data.toString('utf8', 4) };
}

// ---------------------------------------------------------------------------
// Transmission: requests

export interface Request {
  readonly flags: number;
  readonly type: number;
  /** Cookie as two 32-bit halves: opaque to the server, echoed in every reply. */
  readonly cookieHi: number;
  readonly cookieLo: number;
  readonly offset: number;
  readonly length: number;
}

/** Writes a 28-byte request header into `buf` at `at`. */
export function encodeRequestInto(buf: Buffer, at: number, r: Request): void {
  buf.writeUInt32BE(NBD_REQUEST_MAGIC, at);
  buf.writeUInt16BE(r.flags, at + 4);
  buf.writeUInt16BE(r.type, at + 6);
  buf.writeUInt32BE(r.cookieHi >>> 0, at + 8);
  buf.writeUInt32BE(r.cookieLo >>> 0, at + 12);
  writeU64(buf, r.offset, at + 16);
  buf.writeUInt32BE(r.length >>> 0, at + 24);
}

export function encodeRequest(r: Request): Buffer {
  const b = Buffer.allocUnsafe(REQUEST_SIZE);
  encodeRequestInto(b, 0, r);
  return b;
}

/** Decodes a request header; `magicOk` false means the stream is out of sync. */
export function decodeRequest(buf: Buffer, at = 0): Request & { readonly magic: number } {
  return {
    magic: buf.readUInt32BE(at),
    flags: buf.readUInt16BE(at + 4),
    type: buf.readUInt16BE(at + 6),
    cookieHi: buf.readUInt32BE(at + 8),
    cookieLo: buf.readUInt32BE(at + 12),
    offset: readU64(buf, at + 16),
    length: buf.readUInt32BE(at + 24),
  };
}

// ---------------------------------------------------------------------------
// Transmission: replies

/** Writes a 16-byte simple reply header. */
export function encodeSimpleReplyInto(buf: Buffer, at: number, error: number, cookieHi: number, cookieLo: number): void {
  buf.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, at);
  buf.writeUInt32BE(error >>> 0, at + 4);
  buf.writeUInt32BE(cookieHi >>> 0, at + 8);
  buf.writeUInt32BE(cookieLo >>> 0, at + 12);
}

export function encodeSimpleReply(error: number, cookieHi: number, cookieLo: number): Buffer {
  const b = Buffer.allocUnsafe(SIMPLE_REPLY_SIZE);
  encodeSimpleReplyInto(b, 0, error, cookieHi, cookieLo);
  return b;
}

/** Writes a 20-byte structured reply chunk header. */
export function encodeStructuredHeaderInto(
  buf: Buffer,
  at: number,
  flags: number,
  type: number,
  cookieHi: number,
  cookieLo: number,
  length: number,
): void {
  buf.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, at);
  buf.writeUInt16BE(flags, at + 4);
  buf.writeUInt16BE(type, at + 6);
  buf.writeUInt32BE(cookieHi >>> 0, at + 8);
  buf.writeUInt32BE(cookieLo >>> 0, at + 12);
  buf.writeUInt32BE(length >>> 0, at + 16);
}

/** Header of an OFFSET_DATA chunk (20-byte chunk header + 8-byte offset); the data follows. */
export function encodeOffsetDataHeader(
  flags: number,
  cookieHi: number,
  cookieLo: number,
  offset: number,
  dataLength: number,
): Buffer {
  const b = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE + 8);
  encodeStructuredHeaderInto(b, 0, flags, NBD_REPLY_TYPE_OFFSET_DATA, cookieHi, cookieLo, dataLength + 8);
  writeU64(b, offset, 20);
  return b;
}

export function encodeOffsetHole(flags: number, cookieHi: number, cookieLo: number, offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE + 12);
  encodeStructuredHeaderInto(b, 0, flags, NBD_REPLY_TYPE_OFFSET_HOLE, cookieHi, cookieLo, 12);
  writeU64(b, offset, 20);
  b.writeUInt32BE(length >>> 0, 28);
  return b;
}

export function encodeNoneChunk(cookieHi: number, cookieLo: number): Buffer {
  const b = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE);
  encodeStructuredHeaderInto(b, 0, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, cookieHi, cookieLo, 0);
  return b;
}

/** An NBD_REPLY_TYPE_ERROR chunk (final), with a human-readable message. */
export function encodeErrorChunk(cookieHi: number, cookieLo: number, error: number, message: string): Buffer {
  let msg = stringBytes(message);
  if (msg.length > NBD_MAX_STRING) msg = msg.subarray(0, NBD_MAX_STRING);
  const b = Buffer.alloc(STRUCTURED_REPLY_HEADER_SIZE + 6 + msg.length);
  encodeStructuredHeaderInto(b, 0, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookieHi, cookieLo, 6 + msg.length);
  b.writeUInt32BE(error >>> 0, 20);
  b.writeUInt16BE(msg.length, 24);
  msg.copy(b, 26);
  return b;
}

/** An NBD_REPLY_TYPE_BLOCK_STATUS chunk: context id then (length, flags) pairs. */
export function encodeBlockStatusChunk(
  flags: number,
  cookieHi: number,
  cookieLo: number,
  contextId: number,
  extents: readonly { readonly length: number; readonly flags: number }[],
): Buffer {
  const payload = 4 + 8 * extents.length;
  const b = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE + payload);
  encodeStructuredHeaderInto(b, 0, flags, NBD_REPLY_TYPE_BLOCK_STATUS, cookieHi, cookieLo, payload);
  b.writeUInt32BE(contextId >>> 0, 20);
  let at = 24;
  for (const e of extents) {
    b.writeUInt32BE(e.length >>> 0, at);
    b.writeUInt32BE(e.flags >>> 0, at + 4);
    at += 8;
  }
  return b;
}

export interface StructuredReplyHeader {
  readonly flags: number;
  readonly type: number;
  readonly cookieHi: number;
  readonly cookieLo: number;
  readonly length: number;
}

export function decodeStructuredHeader(buf: Buffer, at = 0): StructuredReplyHeader {
  return {
    flags: buf.readUInt16BE(at + 4),
    type: buf.readUInt16BE(at + 6),
    cookieHi: buf.readUInt32BE(at + 8),
    cookieLo: buf.readUInt32BE(at + 12),
    length: buf.readUInt32BE(at + 16),
  };
}

export function decodeSimpleReply(buf: Buffer, at = 0): { error: number; cookieHi: number; cookieLo: number } {
  return { error: buf.readUInt32BE(at + 4), cookieHi: buf.readUInt32BE(at + 8), cookieLo: buf.readUInt32BE(at + 12) };
}

/** Payload of an error chunk (ERROR or ERROR_OFFSET, or an unknown type with bit 15). */
export function decodeErrorPayload(
  type: number,
  payload: Buffer,
): { error: number; message: string; offset?: number } | null {
  if (payload.length < 6) return null;
  const error = payload.readUInt32BE(0);
  const msgLen = payload.readUInt16BE(4);
  if (msgLen > payload.length - 6) return null;
  const message = payload.toString('utf8', 6, 6 + msgLen);
  if (type === NBD_REPLY_TYPE_ERROR_OFFSET) {
    if (payload.length !== 6 + msgLen + 8) return null;
    return { error, message, offset: readU64(payload, 6 + msgLen) };
  }
  return { error, message };
}
