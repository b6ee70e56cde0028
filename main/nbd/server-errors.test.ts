/**
 * Bad input, one failure per test, sent by hand over raw sockets: the
 * server must answer with the spec's error (or close only that connection,
 * with one log line, when the stream is broken) and keep serving others.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlockDevice } from './block-device.js';
import { NbdClient } from './client.js';
import { MemoryBlockDevice } from './memory-device.js';
import * as P from './protocol.js';
import { NbdServer, type NbdServerOptions } from './server.js';
import { InstrumentedDevice, RawPeer, cleanupAll, tempDir, waitFor } from './test-support.js';

const EPERM = 1;
const EINVAL = 22;
const ENOSPC = 28;
const EOVERFLOW = 75;
const ESHUTDOWN = 108;
const MiB = 1024 * 1024;

let servers: NbdServer[] = [];
afterEach(async () => {
  await cleanupAll();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

interface Setup {
  server: NbdServer;
  sock: string;
  logs: string[];
  dev: InstrumentedDevice;
  raw(): Promise<RawPeer>;
  /** Opens a fresh raw connection already in transmission on `name`. */
  session(name?: string, structured?: boolean): Promise<RawPeer>;
  /** Proves the server still serves: a new client reads and writes. */
  stillServing(): Promise<void>;
}

async function setup(options: NbdServerOptions = {}, extra: Record<string, { device: BlockDevice; readOnly?: boolean }> = {}): Promise<Setup> {
  const dir = await tempDir();
  const logs: string[] = [];
  const server = new NbdServer({ log: (l) => logs.push(l), ...options });
  servers.push(server);
  const dev = new InstrumentedDevice(new MemoryBlockDevice(MiB));
  server.addExport('', dev);
  for (const [name, e] of Object.entries(extra)) server.addExport(name, e.device, { readOnly: e.readOnly });
  const sock = path.join(dir, 's.sock');
  await server.listenUnix(sock);
  const raw = () => RawPeer.connect(sock);
  return {
    server,
    sock,
    logs,
    dev,
    raw,
    async session(name = '', structured = false) {
      const r = await raw();
      await r.handshake(name, structured);
      return r;
    },
    async stillServing() {
      const c = await NbdClient.connect(`nbd+unix:///?socket=${sock}`);
      await c.write(MiB - 4, Buffer.from('ok!!'));
      expect((await c.read(MiB - 4, 4)).toString()).toBe('ok!!');
      await c.close();
    },
  };
}

function logged(s: Setup, re: RegExp): string[] {
  return s.logs.filter((l) => re.test(l));
}

describe('handshake failures', () => {
  it('a client without fixed newstyle is refused and closed with one log line', async () => {
    const s = await setup();
    const r = await s.raw();
    await r.read(18);
    r.send(P.encodeClientFlags(0));
    await r.closedByServer();
    expect(logged(s, /fixed newstyle/)).toHaveLength(1);
    await s.stillServing();
  });

  it('unknown client flag bits close the connection', async () => {
    const s = await setup();
    const r = await s.raw();
    await r.read(18);
    r.send(P.encodeClientFlags(P.NBD_FLAG_C_FIXED_NEWSTYLE | 0x80));
    await r.closedByServer();
    expect(logged(s, /unknown client flags 0x81/)).toHaveLength(1);
    await s.stillServing();
  });

  it('a bad option magic closes the connection', async () => {
    const s = await setup();
    const r = await s.raw();
    await r.read(18);
    r.send(P.encodeClientFlags(1));
    const bad = P.encodeOption(P.NBD_OPT_GO, P.encodeInfoRequest('', []));
    bad.write('NOTMAGIC', 0, 'latin1');
    r.send(bad);
    await r.closedByServer();
    expect(logged(s, /bad option magic/)).toHaveLength(1);
    await s.stillServing();
  });

  it('unknown options and STARTTLS get ERR_UNSUP, and the handshake goes on', async () => {
    const s = await setup();
    const r = await s.raw();
    await r.read(18);
    r.send(P.encodeClientFlags(1));
    for (const opt of [0x1234, P.NBD_OPT_STARTTLS, P.NBD_OPT_EXTENDED_HEADERS]) {
      r.send(P.encodeOption(opt, Buffer.from('junk')));
      const rep = await r.optionReply();
      expect(rep).toMatchObject({ option: opt, type: P.NBD_REP_ERR_UNSUP });
    }
    r.send(P.encodeOption(P.NBD_OPT_GO, P.encodeInfoRequest('', [])));
    let rep;
    do rep = await r.optionReply();
    while (rep.type === P.NBD_REP_INFO);
    expect(rep.type).toBe(P.NBD_REP_ACK);
  });

  it('GO on an unknown export gets ERR_UNKNOWN; a second GO on a real one succeeds', async () => {
    const s = await setup();
    const r = await s.raw();
    await r.read(18);
    r.send(P.encodeClientFlags(1));
    r.send(P.encodeOption(P.NBD_OPT_GO, P.encodeInfoRequest('missing', [])));
    const rep = await r.optionReply();
    expect(rep.type).toBe(P.NBD_REP_ERR_UNKNOWN);
    expect(rep.data.toString()).toMatch(/no export named "missing"/);
    r.send(P.encodeOption(P.NBD_OPT_INFO, P.encodeInfoRequest('', [P.NBD_INFO_NAME])));
    const infos = [];
    let x;
    while ((x = await r.optionReply()).type === P.NBD_REP_INFO) infos.push(P.decodeInfoReply(x.data));
    expect(x.type).toBe(P.NBD_REP_ACK);
    expect(infos.map((i) => i.type)).toEqual([P.NBD_INFO_EXPORT, P.NBD_INFO_NAME, P.NBD_INFO_BLOCK_SIZE]);
  });

  it('EXPORT_NAME of an unknown export closes the connection (it cannot carry an error)', async () => {
    const s = await setup();
    const r = await s.raw();
    await r.read(18);
    r.send(P.encodeClientFlags(1), P.encodeOption(P.NBD_OPT_EXPORT_NAME, Buffer.from('nope')));
    await r.closedByServer();
    expect(logged(s, /unknown export "nope"/)).toHaveLength(1);
    await s.stillServing();
  });

  it('malformed option payloads get ERR_INVALID', async () => {
    const s = await setup();
    const r = await s.raw();
    await r.read(18);
    r.send(P.encodeClientFlags(1));
    r.send(P.encodeOption(P.NBD_OPT_LIST, Buffer.from('x')));
    expect((await r.optionReply()).type).toBe(P.NBD_REP_ERR_INVALID);
    r.send(P.encodeOption(P.NBD_OPT_GO, Buffer.from([0, 0, 0, 9, 1])));
    expect((await r.optionReply()).type).toBe(P.NBD_REP_ERR_INVALID);
    r.send(P.encodeOption(P.NBD_OPT_SET_META_CONTEXT, P.encodeMetaContextRequest('', ['base:allocation'])));
    expect((await r.optionReply()).type).toBe(P.NBD_REP_ERR_INVALID); // before STRUCTURED_REPLY
    r.send(P.encodeOption(P.NBD_OPT_STRUCTURED_REPLY, Buffer.from('x')));
    expect((await r.optionReply()).type).toBe(P.NBD_REP_ERR_INVALID);
    r.send(P.encodeOption(P.NBD_OPT_LIST_META_CONTEXT, Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 50])));
    expect((await r.optionReply()).type).toBe(P.NBD_REP_ERR_INVALID);
  });

  it('an oversized option is skipped with ERR_TOO_BIG; an absurd one closes the connection', async () => {
    const s = await setup();
    const r = await s.raw();
    await r.read(18);
    r.send(P.encodeClientFlags(1), P.encodeOption(0x99, Buffer.alloc(100 * 1024)));
    expect((await r.optionReply()).type).toBe(P.NBD_REP_ERR_TOO_BIG);
    r.send(P.encodeOption(P.NBD_OPT_LIST));
    expect((await r.optionReply()).type).toBe(P.NBD_REP_SERVER);
    const h = P.encodeOption(P.NBD_OPT_GO);
    h.writeUInt32BE(0x7fffffff, 12);
    r.send(h);
    await r.closedByServer();
    expect(logged(s, /2147483647 bytes of data/)).toHaveLength(1);
  });

  it('ABORT is acknowledged and the connection closed', async () => {
    const s = await setup();
    const r = await s.raw();
    await r.read(18);
    r.send(P.encodeClientFlags(1), P.encodeOption(P.NBD_OPT_ABORT));
    expect((await r.optionReply()).type).toBe(P.NBD_REP_ACK);
    await r.closedByServer();
    await waitFor(() => s.server.connectionCount === 0, 'the connection to go');
  });

  it('a handshake that stalls is timed out', async () => {
    // Long enough that the well-behaved client below finishes in time even on a loaded machine.
    const s = await setup({ handshakeTimeoutMs: 1500 });
    const idle = await s.raw();
    const midOption = await s.raw();
    await midOption.read(18);
    midOption.send(P.encodeClientFlags(1), P.encodeOption(P.NBD_OPT_GO).subarray(0, 10));
    await idle.closedByServer();
    await midOption.closedByServer();
    expect(logged(s, /handshake not finished after 1500 ms/)).toHaveLength(2);
    await s.stillServing();
  });

  it('LIST_META_CONTEXT lists base:allocation; SET_META_CONTEXT ignores unknown contexts', async () => {
    const s = await setup();
    const r = await s.raw();
    await r.read(18);
    r.send(P.encodeClientFlags(1), P.encodeOption(P.NBD_OPT_STRUCTURED_REPLY));
    expect((await r.optionReply()).type).toBe(P.NBD_REP_ACK);
    r.send(P.encodeOption(P.NBD_OPT_LIST_META_CONTEXT, P.encodeMetaContextRequest('', ['base:'])));
    const a = await r.optionReply();
    expect(a.type).toBe(P.NBD_REP_META_CONTEXT);
    expect(P.decodeMetaContextReply(a.data).name).toBe('base:allocation');
    expect((await r.optionReply()).type).toBe(P.NBD_REP_ACK);
    r.send(P.encodeOption(P.NBD_OPT_SET_META_CONTEXT, P.encodeMetaContextRequest('', ['qemu:dirty-bitmap:x', 'base:nothing'])));
    expect((await r.optionReply()).type).toBe(P.NBD_REP_ACK);
  });
});

describe('request failures keep the connection usable', () => {
  it('an unknown command gets EINVAL', async () => {
    const s = await setup();
    const r = await s.session();
    r.request(42, 0, 512, 1);
    expect(await r.simpleReply()).toMatchObject({ error: EINVAL, cookie: 1 });
    r.request(P.NBD_CMD_READ, 0, 4, 2);
    expect(await r.simpleReply(4)).toMatchObject({ error: 0, cookie: 2 });
    expect(logged(s, /unknown command 42/)).toHaveLength(1);
  });

  it('reads and trims past the end get EINVAL; writes and write-zeroes get ENOSPC', async () => {
    const s = await setup();
    const r = await s.session();
    r.request(P.NBD_CMD_READ, MiB - 4, 8, 1);
    r.request(P.NBD_CMD_TRIM, MiB, 1, 2);
    r.request(P.NBD_CMD_WRITE, MiB - 4, 8, 3, 0, Buffer.alloc(8, 0xaa));
    r.request(P.NBD_CMD_WRITE_ZEROES, 2 ** 40, 512, 4);
    r.request(P.NBD_CMD_READ, MiB - 8, 8, 5);
    expect(await r.simpleReply()).toMatchObject({ error: EINVAL, cookie: 1 });
    expect(await r.simpleReply()).toMatchObject({ error: EINVAL, cookie: 2 });
    expect(await r.simpleReply()).toMatchObject({ error: ENOSPC, cookie: 3 });
    expect(await r.simpleReply()).toMatchObject({ error: ENOSPC, cookie: 4 });
    // The refused WRITE's payload was consumed, not taken as a request, and not written.
    const ok = await r.simpleReply(8);
    expect(ok).toMatchObject({ error: 0, cookie: 5 });
    expect(ok.data.equals(Buffer.alloc(8))).toBe(true);
    expect(s.dev.calls.map((c) => c.op)).toEqual(['read']);
  });

  it('an offset near 2^64 is out of range, not wrapped around', async () => {
    const s = await setup();
    const r = await s.session();
    const req = P.encodeRequest({ flags: 0, type: P.NBD_CMD_READ, cookieHi: 0, cookieLo: 1, offset: 0, length: 512 });
    req.writeBigUInt64BE(0xfffffffffffffe00n, 16);
    r.send(req);
    expect(await r.simpleReply()).toMatchObject({ error: EINVAL });
  });

  it('a READ longer than 32 MiB gets EOVERFLOW', async () => {
    const s = await setup({}, { big: { device: new MemoryBlockDevice(64 * MiB) } });
    const r = await s.session('big', true);
    r.request(P.NBD_CMD_READ, 0, 33 * MiB, 9);
    const c = await r.chunk();
    expect(c).toMatchObject({ cookie: 9, type: P.NBD_REPLY_TYPE_ERROR, error: EOVERFLOW, flags: P.NBD_REPLY_FLAG_DONE });
    expect(P.decodeErrorPayload(c.type, c.payload)?.message).toMatch(/exceeds/);
  });

  it('a WRITE longer than 32 MiB is skipped and refused; the next request works', async () => {
    const s = await setup({}, { big: { device: new MemoryBlockDevice(64 * MiB) } });
    const r = await s.session('big');
    r.request(P.NBD_CMD_WRITE, 0, 40 * MiB, 1, 0, Buffer.alloc(40 * MiB, 1));
    r.request(P.NBD_CMD_READ, 0, 16, 2);
    expect(await r.simpleReply()).toMatchObject({ error: EOVERFLOW, cookie: 1 });
    const next = await r.simpleReply(16);
    expect(next).toMatchObject({ error: 0, cookie: 2 });
    expect(next.data.equals(Buffer.alloc(16))).toBe(true);
  });

  it('a WRITE too large to skip closes only that connection', async () => {
    const s = await setup();
    const r = await s.session();
    r.request(P.NBD_CMD_WRITE, 0, 0xfffffff0, 1);
    await r.closedByServer();
    expect(logged(s, /too large to skip/)).toHaveLength(1);
    await s.stillServing();
  });

  it('unaligned requests on an export with a 512-byte minimum block get EINVAL', async () => {
    const s = await setup({}, { aligned: { device: new MemoryBlockDevice(MiB, { minimumBlockSize: 512 }) } });
    const r = await s.session('aligned');
    r.request(P.NBD_CMD_READ, 100, 512, 1);
    r.request(P.NBD_CMD_WRITE, 0, 100, 2, 0, Buffer.alloc(100));
    r.request(P.NBD_CMD_READ, 512, 512, 3);
    expect(await r.simpleReply()).toMatchObject({ error: EINVAL, cookie: 1 });
    expect(await r.simpleReply()).toMatchObject({ error: EINVAL, cookie: 2 });
    expect(await r.simpleReply(512)).toMatchObject({ error: 0, cookie: 3 });
  });

  it('writes and trims on a read-only export get EPERM', async () => {
    const s = await setup({}, { ro: { device: new MemoryBlockDevice(MiB), readOnly: true } });
    const r = await s.session('ro');
    r.request(P.NBD_CMD_WRITE, 0, 4, 1, 0, Buffer.from('nope'));
    r.request(P.NBD_CMD_TRIM, 0, 4, 2);
    r.request(P.NBD_CMD_WRITE_ZEROES, 0, 4, 3);
    r.request(P.NBD_CMD_READ, 0, 4, 4);
    expect(await r.simpleReply()).toMatchObject({ error: EPERM, cookie: 1 });
    expect(await r.simpleReply()).toMatchObject({ error: EPERM, cookie: 2 });
    expect(await r.simpleReply()).toMatchObject({ error: EPERM, cookie: 3 });
    expect((await r.simpleReply(4)).data.equals(Buffer.alloc(4))).toBe(true);
  });

  it('flags that do not belong to the command get EINVAL', async () => {
    const s = await setup();
    const r = await s.session();
    const cases: [number, number][] = [
      [P.NBD_CMD_READ, P.NBD_CMD_FLAG_NO_HOLE],
      [P.NBD_CMD_READ, P.NBD_CMD_FLAG_DF], // DF needs structured replies
      [P.NBD_CMD_READ, P.NBD_CMD_FLAG_REQ_ONE],
      [P.NBD_CMD_TRIM, P.NBD_CMD_FLAG_FAST_ZERO],
      [P.NBD_CMD_READ, 0x100],
    ];
    cases.forEach(([cmd, flags], i) => r.request(cmd, 0, 512, i + 1, flags));
    for (let i = 0; i < cases.length; i++) expect(await r.simpleReply()).toMatchObject({ error: EINVAL, cookie: i + 1 });
    expect(s.dev.calls).toEqual([]);
  });

  it('FLUSH with an offset and BLOCK_STATUS without a negotiated context get EINVAL', async () => {
    const s = await setup();
    const r = await s.session();
    r.request(P.NBD_CMD_FLUSH, 4096, 0, 1);
    r.request(P.NBD_CMD_BLOCK_STATUS, 0, 4096, 2);
    expect(await r.simpleReply()).toMatchObject({ error: EINVAL, cookie: 1 });
    expect(await r.simpleReply()).toMatchObject({ error: EINVAL, cookie: 2 });
  });

  it('zero-length requests succeed without reaching the device', async () => {
    const s = await setup();
    const r = await s.session();
    r.request(P.NBD_CMD_READ, 0, 0, 1);
    r.request(P.NBD_CMD_WRITE, 0, 0, 2);
    r.request(P.NBD_CMD_TRIM, 0, 0, 3);
    for (let i = 1; i <= 3; i++) expect(await r.simpleReply()).toMatchObject({ error: 0, cookie: i });
    expect(s.dev.calls).toEqual([]);
  });
});

describe('broken streams close only their own connection', () => {
  it('a bad request magic closes the connection with one log line', async () => {
    const s = await setup();
    const r = await s.session();
    const other = await s.session();
    const bad = P.encodeRequest({ flags: 0, type: P.NBD_CMD_READ, cookieHi: 0, cookieLo: 1, offset: 0, length: 4 });
    bad.writeUInt32BE(0x12345678, 0);
    r.send(bad);
    await r.closedByServer();
    expect(logged(s, /bad request magic 0x12345678/)).toHaveLength(1);
    other.request(P.NBD_CMD_READ, 0, 4, 7);
    expect(await other.simpleReply(4)).toMatchObject({ error: 0, cookie: 7 });
    await s.stillServing();
  });

  it('a truncated WRITE payload followed by EOF: the server closes and writes nothing', async () => {
    const s = await setup();
    const r = await s.session();
    r.request(P.NBD_CMD_WRITE, 0, 4096, 1, 0, Buffer.alloc(1000, 1));
    r.socket.end();
    await r.closedByServer();
    expect(logged(s, /middle of a request/)).toHaveLength(1);
    expect(s.dev.calls).toEqual([]);
    await waitFor(() => s.server.connectionCount === 0, 'the connection to go');
    await s.stillServing();
  });

  it('a client vanishing with a request in flight does not disturb the server', async () => {
    const s = await setup();
    s.dev.delayMs = (c) => (c.op === 'read' ? 200 : 0);
    const r = await s.session();
    r.request(P.NBD_CMD_READ, 0, 4096, 1);
    await waitFor(() => s.dev.active === 1, 'the read to reach the device');
    r.destroy();
    await waitFor(() => s.server.connectionCount === 0, 'the connection to go');
    await waitFor(() => s.dev.active === 0, 'the read to finish');
    await s.stillServing();
  });
});

describe('replies', () => {
  it('structured READ: zero runs go out as holes, data as data; DF forces one data chunk', async () => {
    const s = await setup();
    await s.dev.write(65536, Buffer.alloc(65536, 5));
    const r = await s.session('', true);
    r.request(P.NBD_CMD_READ, 0, 3 * 65536, 1);
    const chunks = [await r.chunk(), await r.chunk(), await r.chunk()];
    expect(chunks.map((c) => [c.type, c.flags])).toEqual([
      [P.NBD_REPLY_TYPE_OFFSET_HOLE, 0],
      [P.NBD_REPLY_TYPE_OFFSET_DATA, 0],
      [P.NBD_REPLY_TYPE_OFFSET_HOLE, P.NBD_REPLY_FLAG_DONE],
    ]);
    expect(chunks[1].payload.subarray(8).equals(Buffer.alloc(65536, 5))).toBe(true);
    r.request(P.NBD_CMD_READ, 0, 3 * 65536, 2, P.NBD_CMD_FLAG_DF);
    const one = await r.chunk();
    expect([one.type, one.flags, one.payload.length]).toEqual([P.NBD_REPLY_TYPE_OFFSET_DATA, P.NBD_REPLY_FLAG_DONE, 8 + 3 * 65536]);
  });

  it('BLOCK_STATUS with REQ_ONE returns exactly one extent no longer than asked', async () => {
    const s = await setup();
    const r = await s.session('', true);
    r.request(P.NBD_CMD_BLOCK_STATUS, 0, 4096, 1, P.NBD_CMD_FLAG_REQ_ONE);
    const c = await r.chunk();
    expect(c.type).toBe(P.NBD_REPLY_TYPE_BLOCK_STATUS);
    expect(c.payload.length).toBe(12);
    expect([c.payload.readUInt32BE(4), c.payload.readUInt32BE(8)]).toEqual([4096, 3]);
  });

  it('the bytes of concurrent replies never interleave', async () => {
    const s = await setup();
    for (let i = 0; i < 64; i++) await s.dev.write(i * 8192, Buffer.alloc(8192, i + 1));
    let n = 0;
    s.dev.delayMs = () => [7, 0, 3, 11, 1][n++ % 5];
    const r = await s.session('', true);
    for (let i = 0; i < 64; i++) r.request(P.NBD_CMD_READ, i * 8192, 8192, i + 1);
    const seen = new Set<number>();
    for (let i = 0; i < 64; i++) {
      const c = await r.chunk();
      expect(c.type).toBe(P.NBD_REPLY_TYPE_OFFSET_DATA);
      expect(c.payload.subarray(8).equals(Buffer.alloc(8192, c.cookie))).toBe(true);
      seen.add(c.cookie);
    }
    expect(seen.size).toBe(64);
  });

  it('DISC: in-flight requests are answered, then the server closes', async () => {
    const s = await setup();
    s.dev.delayMs = () => 100;
    const r = await s.session();
    r.request(P.NBD_CMD_READ, 0, 4, 1);
    r.request(P.NBD_CMD_DISC, 0, 0, 2);
    expect(await r.simpleReply(4)).toMatchObject({ error: 0, cookie: 1 });
    await r.closedByServer();
  });

  it('a client that half-closes after its requests still gets every reply, even past the in-flight bound', async () => {
    const s = await setup({ maxInFlightRequests: 2 });
    s.dev.delayMs = () => 20;
    const r = await s.session();
    for (let i = 1; i <= 10; i++) r.request(P.NBD_CMD_READ, i * 4, 4, i);
    r.socket.end();
    const cookies = [];
    for (let i = 0; i < 10; i++) cookies.push((await r.simpleReply(4)).cookie);
    expect(cookies.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await r.closedByServer();
    expect(s.dev.maxActive).toBeLessThanOrEqual(2);
    expect(logged(s, /middle of a request/)).toEqual([]);
  });

  it('requests waiting when the server shuts down get ESHUTDOWN; the one running finishes', async () => {
    const s = await setup({ maxInFlightRequests: 1 });
    s.dev.delayMs = () => 200;
    const r = await s.session();
    // One write, so both arrive in one read: the second waits behind the in-flight bound.
    const req = (offset: number, cookie: number) => P.encodeRequest({ flags: 0, type: P.NBD_CMD_READ, cookieHi: 0, cookieLo: cookie, offset, length: 4 });
    r.send(Buffer.concat([req(0, 1), req(4, 2)]));
    await waitFor(() => s.dev.active === 1, 'the first read to start');
    const closing = s.server.close();
    const replies = [await r.simpleReply(4), await r.simpleReply(4)].sort((a, b) => a.cookie - b.cookie);
    expect(replies.map((x) => [x.cookie, x.error])).toEqual([
      [1, 0],
      [2, ESHUTDOWN],
    ]);
    await r.closedByServer();
    await closing;
  });
});

describe('back-pressure', () => {
  it('the in-flight byte bound limits concurrent device reads', async () => {
    const s = await setup({ maxInFlightBytes: 32 * 1024, maxInFlightRequests: 1000 });
    s.dev.delayMs = () => 10;
    const r = await s.session();
    for (let i = 1; i <= 20; i++) r.request(P.NBD_CMD_READ, 0, 16384, i);
    for (let i = 0; i < 20; i++) expect((await r.simpleReply(16384)).error).toBe(0);
    expect(s.dev.maxActive).toBe(2);
  });

  it('a client that stops reading replies stops being served, and is served again when it reads', async () => {
    const big = new InstrumentedDevice(new MemoryBlockDevice(4 * MiB));
    const s = await setup({ maxInFlightBytes: 4 * MiB }, { big: { device: big } });
    const r = await s.session('big');
    r.socket.pause(); // read no replies
    const N = 200;
    for (let i = 1; i <= N; i++) r.request(P.NBD_CMD_READ, 0, MiB, i);
    // The server must stop taking requests once its unsent replies reach the bound.
    let last = -1;
    await waitFor(async () => {
      const now = big.calls.length;
      const stable = now > 0 && now === last;
      last = now;
      await new Promise((res) => setTimeout(res, 250));
      return stable;
    }, 'the server to stop taking requests');
    expect(big.calls.length).toBeLessThan(N / 4);
    r.socket.resume();
    for (let i = 0; i < N; i++) expect((await r.simpleReply(MiB)).error).toBe(0);
    expect(big.calls.length).toBe(N);
  });
});
