import { describe, expect, it } from 'vitest';
import { ByteQueue } from './byte-queue.js';
import * as P from './protocol.js';

const ascii = (n: bigint): string => Buffer.from(n.toString(16).padStart(16, '0'), 'hex').toString('latin1');

describe('protocol constants match doc/proto.md', () => {
  it('magic numbers spell what the spec says', () => {
    expect(ascii(P.NBD_MAGIC)).toBe('NBDMAGIC');
    expect(ascii(P.NBD_OPTS_MAGIC)).toBe('IHAVEOPT');
    expect(P.NBD_CLISERV_MAGIC).toBe(0x00420281861253n);
    expect(P.NBD_REP_MAGIC).toBe(0x3e889045565a9n);
    expect(P.NBD_REQUEST_MAGIC).toBe(0x25609513);
    expect(P.NBD_SIMPLE_REPLY_MAGIC).toBe(0x67446698);
    expect(P.NBD_STRUCTURED_REPLY_MAGIC).toBe(0x668e33ef);
  });

  it('options, replies and info types', () => {
    expect([P.NBD_OPT_EXPORT_NAME, P.NBD_OPT_ABORT, P.NBD_OPT_LIST, P.NBD_OPT_STARTTLS, P.NBD_OPT_INFO, P.NBD_OPT_GO]).toEqual([1, 2, 3, 5, 6, 7]);
    expect([P.NBD_OPT_STRUCTURED_REPLY, P.NBD_OPT_LIST_META_CONTEXT, P.NBD_OPT_SET_META_CONTEXT]).toEqual([8, 9, 10]);
    expect([P.NBD_REP_ACK, P.NBD_REP_SERVER, P.NBD_REP_INFO, P.NBD_REP_META_CONTEXT]).toEqual([1, 2, 3, 4]);
    expect(P.NBD_REP_ERR_UNSUP).toBe(2 ** 31 + 1);
    expect(P.NBD_REP_ERR_INVALID).toBe(2 ** 31 + 3);
    expect(P.NBD_REP_ERR_UNKNOWN).toBe(2 ** 31 + 6);
    expect(P.NBD_REP_ERR_SHUTDOWN).toBe(2 ** 31 + 7);
    expect(P.NBD_REP_ERR_TOO_BIG).toBe(2 ** 31 + 9);
    expect([P.NBD_INFO_EXPORT, P.NBD_INFO_NAME, P.NBD_INFO_DESCRIPTION, P.NBD_INFO_BLOCK_SIZE]).toEqual([0, 1, 2, 3]);
  });

  it('commands, command flags and transmission flags', () => {
    expect([P.NBD_CMD_READ, P.NBD_CMD_WRITE, P.NBD_CMD_DISC, P.NBD_CMD_FLUSH, P.NBD_CMD_TRIM, P.NBD_CMD_CACHE, P.NBD_CMD_WRITE_ZEROES, P.NBD_CMD_BLOCK_STATUS]).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7,
    ]);
    expect([P.NBD_CMD_FLAG_FUA, P.NBD_CMD_FLAG_NO_HOLE, P.NBD_CMD_FLAG_DF, P.NBD_CMD_FLAG_REQ_ONE, P.NBD_CMD_FLAG_FAST_ZERO]).toEqual([1, 2, 4, 8, 16]);
    expect(P.NBD_FLAG_HAS_FLAGS).toBe(1);
    expect(P.NBD_FLAG_READ_ONLY).toBe(2);
    expect(P.NBD_FLAG_SEND_FLUSH).toBe(4);
    expect(P.NBD_FLAG_SEND_FUA).toBe(8);
    expect(P.NBD_FLAG_SEND_TRIM).toBe(32);
    expect(P.NBD_FLAG_SEND_WRITE_ZEROES).toBe(64);
    expect(P.NBD_FLAG_SEND_DF).toBe(128);
    expect(P.NBD_FLAG_CAN_MULTI_CONN).toBe(256);
    expect(P.NBD_FLAG_SEND_CACHE).toBe(1024);
    expect(P.NBD_FLAG_SEND_FAST_ZERO).toBe(2048);
  });

  it('structured reply types and base:allocation flags', () => {
    expect([P.NBD_REPLY_TYPE_NONE, P.NBD_REPLY_TYPE_OFFSET_DATA, P.NBD_REPLY_TYPE_OFFSET_HOLE, P.NBD_REPLY_TYPE_BLOCK_STATUS]).toEqual([0, 1, 2, 5]);
    expect(P.NBD_REPLY_TYPE_ERROR).toBe(2 ** 15 + 1);
    expect(P.NBD_REPLY_TYPE_ERROR_OFFSET).toBe(2 ** 15 + 2);
    expect([P.NBD_STATE_HOLE, P.NBD_STATE_ZERO]).toEqual([1, 2]);
  });

  it('errno values round-trip, and unknown values read as EINVAL', () => {
    const spec = { EPERM: 1, EIO: 5, ENOMEM: 12, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ENOTSUP: 95, ESHUTDOWN: 108 } as const;
    for (const [name, value] of Object.entries(spec)) {
      expect(P.errnoToWire(name as keyof typeof spec)).toBe(value);
      expect(P.errnoFromWire(value)).toBe(name);
    }
    expect(P.errnoFromWire(4242)).toBe('EINVAL');
    expect(P.isNbdErrno('EIO')).toBe(true);
    expect(P.isNbdErrno('toString')).toBe(false);
  });
});

describe('codec round trips', () => {
  it('64-bit values split into halves without loss up to 2^53', () => {
    const b = Buffer.alloc(8);
    for (const v of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER]) {
      P.writeU64(b, v, 0);
      expect(b.readBigUInt64BE(0)).toBe(BigInt(v));
      expect(P.readU64(b, 0)).toBe(v);
    }
  });

  it('requests', () => {
    const r = { flags: P.NBD_CMD_FLAG_FUA, type: P.NBD_CMD_WRITE, cookieHi: 0xdeadbeef, cookieLo: 7, offset: 2 ** 41 + 512, length: 65536 };
    const b = P.encodeRequest(r);
    expect(b.length).toBe(P.REQUEST_SIZE);
    expect(P.decodeRequest(b)).toEqual({ ...r, magic: P.NBD_REQUEST_MAGIC });
  });

  it('greeting, client flags and export-name replies', () => {
    const g = P.encodeGreeting(P.NBD_FLAG_FIXED_NEWSTYLE | P.NBD_FLAG_NO_ZEROES);
    expect(g.length).toBe(18);
    expect(P.decodeGreeting(g)).toEqual({ newstyle: true, oldstyle: false, handshakeFlags: 3 });
    const old = Buffer.alloc(18);
    old.writeBigUInt64BE(P.NBD_MAGIC, 0);
    old.writeBigUInt64BE(P.NBD_CLISERV_MAGIC, 8);
    expect(P.decodeGreeting(old).oldstyle).toBe(true);
    expect(() => P.decodeGreeting(Buffer.alloc(18))).toThrow(/NBDMAGIC/);
    expect(P.encodeClientFlags(3).readUInt32BE(0)).toBe(3);
    expect(P.encodeExportNameReply(1 << 30, 0x0d, false).length).toBe(134);
    const short = P.encodeExportNameReply(2 ** 33, 0x0d, true);
    expect(short.length).toBe(10);
    expect(P.decodeExportNameReply(short)).toEqual({ size: 2 ** 33, transmissionFlags: 0x0d });
  });

  it('options and option replies', () => {
    const o = P.encodeOption(P.NBD_OPT_GO, P.encodeInfoRequest('disk', [P.NBD_INFO_BLOCK_SIZE, P.NBD_INFO_NAME]));
    expect(P.decodeOptionHeader(o)).toEqual({ magicOk: true, option: P.NBD_OPT_GO, length: o.length - 16 });
    expect(P.decodeInfoRequest(o.subarray(16))).toEqual({ name: 'disk', infos: [3, 1] });
    const rep = P.encodeOptionReply(P.NBD_OPT_LIST, P.NBD_REP_SERVER, P.encodeServerReplyData('a', 'desc'));
    expect(P.decodeOptionReplyHeader(rep)).toEqual({ magicOk: true, option: 3, type: 2, length: rep.length - 20 });
    expect(P.decodeServerReplyData(rep.subarray(20))).toEqual({ name: 'a', description: 'desc' });
    expect(P.isOptionReplyError(P.NBD_REP_ERR_UNSUP)).toBe(true);
    expect(P.isOptionReplyError(P.NBD_REP_ACK)).toBe(false);
  });

  it('malformed INFO/GO payloads decode as null', () => {
    const good = P.encodeInfoRequest('x', [0]);
    expect(P.decodeInfoRequest(good.subarray(0, good.length - 1))).toBeNull();
    const lying = Buffer.from(good);
    lying.writeUInt32BE(1000, 0);
    expect(P.decodeInfoRequest(lying)).toBeNull();
    expect(P.decodeInfoRequest(Buffer.alloc(3))).toBeNull();
  });

  it('info replies', () => {
    expect(P.decodeInfoReply(P.encodeInfoExport(2 ** 35, 0x4d))).toEqual({ type: 0, size: 2 ** 35, transmissionFlags: 0x4d });
    expect(P.decodeInfoReply(P.encodeInfoString(P.NBD_INFO_NAME, 'n'))).toEqual({ type: 1, name: 'n' });
    expect(P.decodeInfoReply(P.encodeInfoString(P.NBD_INFO_DESCRIPTION, 'd'))).toEqual({ type: 2, description: 'd' });
    expect(P.decodeInfoReply(P.encodeInfoBlockSize({ minimum: 512, preferred: 4096, maximum: 2 ** 25 }))).toEqual({
      type: 3,
      sizes: { minimum: 512, preferred: 4096, maximum: 2 ** 25 },
    });
    expect(() => P.decodeInfoReply(Buffer.from([0, 0, 1]))).toThrow(/length/);
  });

  it('meta context requests and replies', () => {
    const req = P.encodeMetaContextRequest('e', ['base:allocation', 'qemu:dirty-bitmap:x']);
    expect(P.decodeMetaContextRequest(req)).toEqual({ name: 'e', queries: ['base:allocation', 'qemu:dirty-bitmap:x'] });
    expect(P.decodeMetaContextRequest(req.subarray(0, req.length - 1))).toBeNull();
    expect(P.decodeMetaContextRequest(Buffer.concat([req, Buffer.from([0])]))).toBeNull();
    expect(P.decodeMetaContextReply(P.encodeMetaContextReply(9, 'base:allocation'))).toEqual({ id: 9, name: 'base:allocation' });
  });

  it('simple and structured replies', () => {
    const s = P.encodeSimpleReply(5, 1, 2);
    expect(s.readUInt32BE(0)).toBe(P.NBD_SIMPLE_REPLY_MAGIC);
    expect(P.decodeSimpleReply(s)).toEqual({ error: 5, cookieHi: 1, cookieLo: 2 });
    const d = P.encodeOffsetDataHeader(0, 0, 3, 4096, 512);
    expect(P.decodeStructuredHeader(d)).toEqual({ flags: 0, type: 1, cookieHi: 0, cookieLo: 3, length: 520 });
    expect(P.readU64(d, 20)).toBe(4096);
    const h = P.encodeOffsetHole(1, 0, 3, 8192, 4096);
    expect(P.decodeStructuredHeader(h).length).toBe(12);
    expect(h.readUInt32BE(28)).toBe(4096);
    const n = P.encodeNoneChunk(0, 4);
    expect(P.decodeStructuredHeader(n)).toEqual({ flags: 1, type: 0, cookieHi: 0, cookieLo: 4, length: 0 });
    const e = P.encodeErrorChunk(0, 5, 28, 'no space');
    const eh = P.decodeStructuredHeader(e);
    expect(eh.type).toBe(P.NBD_REPLY_TYPE_ERROR);
    expect(P.decodeErrorPayload(eh.type, e.subarray(20))).toEqual({ error: 28, message: 'no space' });
    const b = P.encodeBlockStatusChunk(1, 0, 6, 1, [
      { length: 4096, flags: 3 },
      { length: 512, flags: 0 },
    ]);
    expect(P.decodeStructuredHeader(b).length).toBe(4 + 16);
    expect([b.readUInt32BE(24), b.readUInt32BE(28), b.readUInt32BE(32), b.readUInt32BE(36)]).toEqual([4096, 3, 512, 0]);
  });

  it('error chunk messages are capped at the 4096-byte string limit', () => {
    const e = P.encodeErrorChunk(0, 1, 5, 'x'.repeat(10_000));
    expect(e.readUInt16BE(24)).toBe(P.NBD_MAX_STRING);
  });

  it('names for logs', () => {
    expect(P.commandName(P.NBD_CMD_WRITE_ZEROES)).toBe('WRITE_ZEROES');
    expect(P.commandName(99)).toBe('CMD_99');
    expect(P.optionName(P.NBD_OPT_GO)).toBe('GO');
    expect(P.optionReplyName(P.NBD_REP_ERR_UNKNOWN)).toBe('ERR_UNKNOWN');
  });
});

describe('ByteQueue', () => {
  it('gives views and takes across chunk boundaries without losing bytes', () => {
    const q = new ByteQueue();
    const all = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    q.push(all.subarray(0, 3));
    q.push(all.subarray(3, 10));
    q.push(all.subarray(10, 100));
    expect(q.length).toBe(100);
    const v = q.view(5);
    expect([...v.subarray(q.viewOffset, q.viewOffset + 5)]).toEqual([0, 1, 2, 3, 4]);
    expect([...q.take(2)]).toEqual([0, 1]);
    expect([...q.take(9)]).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    q.skip(80);
    expect(q.length).toBe(9);
    expect([...q.take(9)]).toEqual([91, 92, 93, 94, 95, 96, 97, 98, 99]);
    expect(q.length).toBe(0);
  });

  it('take of bytes inside one chunk is a zero-copy view', () => {
    const q = new ByteQueue();
    const chunk = Buffer.alloc(64, 1);
    q.push(chunk);
    const t = q.take(32);
    expect(t.buffer).toBe(chunk.buffer);
  });
});
