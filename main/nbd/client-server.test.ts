/**
 * Our client against our server, over real Unix sockets (and TCP once).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BlockDeviceError, DisconnectedError, type BlockDevice } from './block-device.js';
import { NbdClient } from './client.js';
import { MemoryBlockDevice } from './memory-device.js';
import { NbdServer, type NbdServerOptions } from './server.js';
import { InstrumentedDevice, cleanupAll, patternBuffer, startServerPeer, tempDir, waitFor } from './test-support.js';

const MiB = 1024 * 1024;
let servers: NbdServer[] = [];
let clients: NbdClient[] = [];

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await Promise.all(servers.map((s) => s.close()));
  clients = [];
  servers = [];
  await cleanupAll();
});

async function serve(
  exports: Record<string, BlockDevice | { device: BlockDevice; readOnly?: boolean; description?: string }>,
  options: NbdServerOptions = {},
): Promise<{ server: NbdServer; uri: (name?: string) => string; logs: string[]; sock: string }> {
  const dir = await tempDir();
  const logs: string[] = [];
  const server = new NbdServer({ log: (l) => logs.push(l), ...options });
  servers.push(server);
  for (const [name, e] of Object.entries(exports)) {
    if ('device' in e) server.addExport(name, e.device, { readOnly: e.readOnly, description: e.description });
    else server.addExport(name, e);
  }
  const sock = path.join(dir, 's.sock');
  await server.listenUnix(sock);
  return { server, logs, sock, uri: (name = '') => `nbd+unix:///${encodeURIComponent(name)}?socket=${sock}` };
}

async function connect(uri: string, opts?: Parameters<typeof NbdClient.connect>[1]): Promise<NbdClient> {
  const c = await NbdClient.connect(uri, opts);
  clients.push(c);
  return c;
}

describe('every command end to end', () => {
  it('read, write, flush, trim, write-zeroes, cache and block status', async () => {
    const dev = new InstrumentedDevice(new MemoryBlockDevice(16 * MiB));
    const s = await serve({ '': dev });
    const c = await connect(s.uri());
    const data = patternBuffer(2 * MiB, 1);
    await c.write(MiB, data);
    expect((await c.read(MiB, 2 * MiB)).equals(data)).toBe(true);
    await c.flush();
    await c.trim(MiB, 65536);
    await c.writeZeroes(2 * MiB, 65536, { noHole: true });
    await c.cache(0, MiB);
    expect(await c.blockStatus(0, 4 * MiB)).toEqual([
      { length: MiB + 65536, flags: 3 },
      { length: 2 * MiB - 65536, flags: 0 },
      { length: MiB, flags: 3 },
    ]);
    const back = await c.read(MiB, 2 * MiB);
    expect(back.subarray(0, 65536).equals(Buffer.alloc(65536))).toBe(true);
    expect(back.subarray(MiB, MiB + 65536).equals(Buffer.alloc(65536))).toBe(true);
    expect(back.subarray(65536, MiB).equals(data.subarray(65536, MiB))).toBe(true);
    expect(dev.calls.map((x) => x.op)).toEqual(['write', 'read', 'flush', 'trim', 'writeZeroes', 'cache', 'blockStatus', 'read']);
  });

  it('FUA, NO_HOLE and FAST_ZERO reach the device', async () => {
    const dev = new InstrumentedDevice(new MemoryBlockDevice(MiB));
    const s = await serve({ '': dev });
    const c = await connect(s.uri());
    await c.write(0, Buffer.alloc(512), { fua: true });
    await c.trim(0, 512, { fua: true });
    await c.writeZeroes(0, 512, { noHole: true, fastZero: true, fua: true });
    await c.writeZeroes(0, 512);
    expect(dev.calls.map((x) => x.options)).toEqual([
      { fua: true },
      { fua: true },
      { fua: true, noHole: true, fastZero: true },
      { fua: false, noHole: false, fastZero: false },
    ]);
  });

  it('sparse reads come back as holes and still read as zeroes', async () => {
    const dev = new MemoryBlockDevice(4 * MiB);
    await dev.write(MiB + 100, Buffer.from('island'));
    const s = await serve({ '': dev });
    const c = await connect(s.uri());
    const r = await c.read(0, 4 * MiB);
    const want = Buffer.alloc(4 * MiB);
    want.write('island', MiB + 100);
    expect(r.equals(want)).toBe(true);
  });

  it('readInto fills the caller’s buffer, holes included, with simple and structured replies', async () => {
    const dev = new MemoryBlockDevice(4 * MiB);
    await dev.write(MiB, patternBuffer(MiB, 4));
    const want = await dev.read(0, 4 * MiB);
    const s = await serve({ '': dev });
    for (const structuredReplies of [true, false]) {
      const c = await connect(s.uri(), { structuredReplies });
      const target = Buffer.alloc(3 * MiB, 0xee); // garbage that holes must overwrite
      await c.readInto(MiB / 2, target);
      expect(target.equals(want.subarray(MiB / 2, MiB / 2 + 3 * MiB))).toBe(true);
    }
  });

  it('a device without blockStatus reports the range as one allocated extent', async () => {
    const dev = new InstrumentedDevice(new MemoryBlockDevice(MiB), {}, { blockStatus: false });
    const s = await serve({ '': dev });
    const c = await connect(s.uri());
    expect(c.info.baseAllocation).toBe(true);
    expect(await c.blockStatus(4096, 65536)).toEqual([{ length: 65536, flags: 0 }]);
  });

  it('simple replies work too when the client does not ask for structured ones', async () => {
    const s = await serve({ '': new MemoryBlockDevice(MiB) });
    const c = await connect(s.uri(), { structuredReplies: false });
    expect(c.info.structuredReplies).toBe(false);
    await c.write(0, Buffer.from('simple'));
    expect((await c.read(0, 6)).toString()).toBe('simple');
    await expect(c.read(MiB - 1, 2)).rejects.toMatchObject({ errno: 'EINVAL' });
  });

  it('serves over TCP as well', async () => {
    const server = new NbdServer();
    servers.push(server);
    server.addExport('tcp', new MemoryBlockDevice(MiB));
    const port = await server.listenTcp({ port: 0 });
    const c = await connect(`nbd://127.0.0.1:${port}/tcp`);
    await c.write(10, Buffer.from('tcp'));
    expect((await c.read(10, 3)).toString()).toBe('tcp');
  });
});

describe('large and concurrent requests', () => {
  it('splits requests larger than 32 MiB and reassembles them', async () => {
    const dev = new InstrumentedDevice(new MemoryBlockDevice(48 * MiB));
    const s = await serve({ '': dev });
    const c = await connect(s.uri());
    const data = patternBuffer(40 * MiB + 4096, 2);
    await c.write(4096, data);
    expect((await c.read(4096, data.length)).equals(data)).toBe(true);
    const sizes = dev.calls.filter((x) => x.op === 'write' || x.op === 'read').map((x) => x.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(32 * MiB);
    expect(sizes.length).toBe(4);
  });

  it('replies complete out of order and each reaches its caller', async () => {
    const dev = new InstrumentedDevice(new MemoryBlockDevice(MiB));
    // The first read is slow; the others overtake it.
    dev.delayMs = (call) => (call.op === 'read' && call.offset === 0 ? 300 : 0);
    for (let i = 0; i < 8; i++) await dev.write(i * 4096, Buffer.alloc(4096, i + 1));
    const s = await serve({ '': dev });
    const c = await connect(s.uri());
    const order: number[] = [];
    const reads = Array.from({ length: 8 }, (_, i) => c.read(i * 4096, 4096).then((b) => (order.push(i), b)));
    const got = await Promise.all(reads);
    expect(order[order.length - 1]).toBe(0);
    got.forEach((b, i) => expect(b.equals(Buffer.alloc(4096, i + 1))).toBe(true));
    expect(dev.maxActive).toBeGreaterThan(1);
  });

  it('replies of every size sent in one batch (copied into the batch buffer or by reference) arrive intact, simple and structured', async () => {
    const size = 4 * MiB;
    const dev = new MemoryBlockDevice(size);
    await dev.write(0, patternBuffer(size, 3));
    await dev.write(2 * MiB, Buffer.alloc(256 * 1024)); // zeroes: holes in structured replies
    const s = await serve({ '': dev });
    for (const structuredReplies of [true, false]) {
      const c = await connect(s.uri(), { structuredReplies });
      const model = await dev.read(0, size);
      // 16 KiB is the largest reply copied into the batch buffer; 80 such
      // replies overflow one batch buffer (256 KiB) into the next.
      const lengths = [512, 4096, 12 * 1024, 16 * 1024, 16 * 1024 + 512, 64 * 1024, MiB];
      const reqs: Array<{ offset: number; length: number }> = [];
      for (let i = 0; i < 80; i++) reqs.push({ offset: (i * 37 * 4096) % (size - 16 * 1024), length: 16 * 1024 });
      lengths.forEach((length, i) => reqs.push({ offset: 2 * MiB - 8192 + i * 512, length }));
      const got = await Promise.all(reqs.map((r) => c.read(r.offset, r.length)));
      got.forEach((b, i) => expect(b.equals(model.subarray(reqs[i]!.offset, reqs[i]!.offset + reqs[i]!.length))).toBe(true));
      // Read buffers go back to the pool at once when copied: later replies must not change earlier ones.
      const again = await Promise.all(reqs.map((r) => c.read(r.offset, r.length)));
      again.forEach((b, i) => expect(b.equals(got[i]!)).toBe(true));
      await c.close();
    }
  });

  it('500 mixed concurrent requests leave the device as a sequential model says', async () => {
    const s = await serve({ '': new MemoryBlockDevice(4 * MiB) });
    const c = await connect(s.uri());
    const model = Buffer.alloc(4 * MiB);
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 500; i++) {
      // Disjoint 8 KiB slots so concurrent requests never overlap.
      const off = (i % 512) * 8192;
      const d = patternBuffer(8192, i + 7);
      d.copy(model, off);
      ops.push(c.write(off, d));
    }
    await Promise.all(ops);
    expect((await c.read(0, 4 * MiB)).equals(model)).toBe(true);
  });

  it('one device over several connections: writes on one are seen on the others', async () => {
    const s = await serve({ '': new MemoryBlockDevice(MiB) });
    const cs = await Promise.all([1, 2, 3, 4].map(() => connect(s.uri())));
    await Promise.all(cs.map((c, i) => c.write(i * 4096, Buffer.alloc(4096, i + 1))));
    await cs[0].flush();
    for (const c of cs) {
      const all = await c.read(0, 4 * 4096);
      for (let i = 0; i < 4; i++) expect(all[i * 4096]).toBe(i + 1);
    }
    expect(s.server.connectionCount).toBe(4);
  });

  it('bounds requests in flight per connection (back-pressure) and still finishes them all', async () => {
    const dev = new InstrumentedDevice(new MemoryBlockDevice(MiB));
    dev.delayMs = () => 5;
    const s = await serve({ '': dev }, { maxInFlightRequests: 4, maxInFlightBytes: 64 * 1024 });
    const c = await connect(s.uri());
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => c.read((i % 16) * 16384, 16384)));
    expect(results).toHaveLength(64);
    expect(dev.maxActive).toBeLessThanOrEqual(4);
  });
});

describe('exports and negotiation', () => {
  it('the default export is the one registered under ""; named ones by name', async () => {
    const s = await serve({ '': { device: new MemoryBlockDevice(MiB), description: 'default' }, other: new MemoryBlockDevice(2 * MiB) });
    const a = await connect(s.uri());
    const b = await connect(s.uri('other'));
    expect([a.size, a.info.description, a.info.exportName]).toEqual([MiB, 'default', '']);
    expect([b.size, b.info.exportName]).toEqual([2 * MiB, 'other']);
  });

  it('an unknown export, or no default export, fails connect with a clear message', async () => {
    const s = await serve({ a: new MemoryBlockDevice(MiB) });
    await expect(NbdClient.connect(s.uri('b'))).rejects.toThrow(/ERR_UNKNOWN: no export named "b"/);
    await expect(NbdClient.connect(s.uri())).rejects.toThrow(/no default export; exports: "a"/);
    await waitFor(() => s.server.connectionCount === 0, 'refused connections to close');
  });

  it('advertises capabilities truthfully from the device', async () => {
    const plain = new InstrumentedDevice(new MemoryBlockDevice(MiB), {
      canFlush: false,
      canTrim: false,
      canWriteZeroes: false,
      canFastZero: true,
      canCache: false,
      canMultiConn: false,
    });
    const s = await serve({ '': plain });
    const c = await connect(s.uri());
    expect(c.capabilities).toMatchObject({ canFlush: false, canTrim: false, canWriteZeroes: false, canFastZero: false, canCache: false, canMultiConn: false });
    // The client then emulates write-zeroes with writes, and fast zero fails at once.
    await c.writeZeroes(0, 4096);
    expect(plain.calls.map((x) => x.op)).toEqual(['write']);
    await expect(c.writeZeroes(0, 4096, { fastZero: true })).rejects.toMatchObject({ errno: 'ENOTSUP' });
  });

  it('a read-only export refuses writes; the client knows before asking', async () => {
    const s = await serve({ '': { device: new MemoryBlockDevice(MiB), readOnly: true } });
    const c = await connect(s.uri());
    expect(c.capabilities.readOnly).toBe(true);
    await expect(c.write(0, Buffer.alloc(1))).rejects.toMatchObject({ errno: 'EPERM' });
  });

  it('the client enforces an advertised minimum block size', async () => {
    const dev = new InstrumentedDevice(new MemoryBlockDevice(MiB, { minimumBlockSize: 4096 }));
    const s = await serve({ '': dev });
    const c = await connect(s.uri());
    expect(c.capabilities.minimumBlockSize).toBe(4096);
    await expect(c.read(512, 4096)).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(c.write(0, Buffer.alloc(100))).rejects.toMatchObject({ errno: 'EINVAL' });
    expect(dev.calls).toEqual([]);
  });

  it('addExport refuses bad names, duplicates and invalid block sizes', async () => {
    const server = new NbdServer();
    server.addExport('x', new MemoryBlockDevice(4096));
    expect(() => server.addExport('x', new MemoryBlockDevice(4096))).toThrow(/already exists/);
    expect(() => server.addExport('y'.repeat(5000), new MemoryBlockDevice(4096))).toThrow(/at most 4096/);
    expect(() => server.addExport('z', new MemoryBlockDevice(4096, { minimumBlockSize: 3000 }))).toThrow(/power of two/);
    await server.close();
  });

  it('bad URIs are refused before connecting', async () => {
    await expect(NbdClient.connect('http://x/')).rejects.toThrow(/unsupported scheme/);
    await expect(NbdClient.connect('nbd+unix:///x')).rejects.toThrow(/missing \?socket/);
    await expect(NbdClient.connect('nbd:///x')).rejects.toThrow(/missing host/);
    await expect(NbdClient.connect('nbds://h/x')).rejects.toThrow(/TLS/);
    await expect(NbdClient.connect('not a uri')).rejects.toThrow(/not a valid NBD URI/);
    await expect(NbdClient.connect('nbd://h:99999/')).rejects.toThrow(/not a valid NBD URI|bad port/);
  });
});

describe('errors and endings', () => {
  it('a BlockDeviceError reaches the client with its errno; the connection carries on', async () => {
    const dev = new InstrumentedDevice(new MemoryBlockDevice(MiB));
    dev.failWith = (call) => (call.op === 'write' && call.offset === 0 ? new BlockDeviceError('ENOSPC', 'full') : undefined);
    const s = await serve({ '': dev });
    const c = await connect(s.uri());
    await expect(c.write(0, Buffer.alloc(10))).rejects.toMatchObject({ errno: 'ENOSPC', message: expect.stringMatching(/full/) });
    await c.write(4096, Buffer.alloc(10, 1));
    expect((await c.read(4096, 1))[0]).toBe(1);
    expect(s.logs.filter((l) => /ENOSPC|full/.test(l))).toEqual([]);
  });

  it('any other thrown error becomes EIO with one log line', async () => {
    const dev = new InstrumentedDevice(new MemoryBlockDevice(MiB));
    dev.failWith = (call) => (call.op === 'read' ? new TypeError('disk on fire') : undefined);
    const s = await serve({ '': dev });
    const c = await connect(s.uri());
    const err = await c.read(0, 512).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlockDeviceError);
    expect((err as BlockDeviceError).errno).toBe('EIO');
    expect((err as BlockDeviceError).message).not.toMatch(/fire/);
    expect(s.logs.filter((l) => /disk on fire/.test(l))).toHaveLength(1);
    await c.write(0, Buffer.alloc(1));
  });

  it('close() lets in-flight requests finish, then disconnects; later calls fail', async () => {
    const dev = new InstrumentedDevice(new MemoryBlockDevice(MiB));
    dev.delayMs = () => 50;
    const s = await serve({ '': dev });
    const c = await NbdClient.connect(s.uri());
    const reads = Array.from({ length: 5 }, (_, i) => c.read(i * 512, 512));
    const closing = c.close();
    expect((await Promise.all(reads)).length).toBe(5);
    await closing;
    await expect(c.read(0, 1)).rejects.toBeInstanceOf(DisconnectedError);
    await waitFor(() => s.server.connectionCount === 0, 'the server to drop the connection');
  });

  it('server.close() finishes in-flight requests and closes every connection', async () => {
    const dev = new InstrumentedDevice(new MemoryBlockDevice(MiB));
    dev.delayMs = () => 100;
    const s = await serve({ '': dev });
    const c = await connect(s.uri());
    const lost: DisconnectedError[] = [];
    const c2 = await connect(s.uri(), { onDisconnect: (e) => lost.push(e) });
    const read = c.read(0, 4096);
    await waitFor(() => dev.active === 1, 'the read to reach the device');
    await s.server.close();
    expect((await read).length).toBe(4096);
    expect(s.server.connectionCount).toBe(0);
    await expect(c.read(0, 1)).rejects.toBeInstanceOf(DisconnectedError);
    await waitFor(() => lost.length === 1, 'the idle client to notice');
    await expect(c2.read(0, 1)).rejects.toBeInstanceOf(DisconnectedError);
  });

  it('removeExport closes the connections using it and keeps the others', async () => {
    const s = await serve({ a: new MemoryBlockDevice(MiB), b: new MemoryBlockDevice(MiB) });
    const a = await connect(s.uri('a'));
    const b = await connect(s.uri('b'));
    await s.server.removeExport('a');
    await expect(a.read(0, 1)).rejects.toBeInstanceOf(DisconnectedError);
    expect((await b.read(0, 1)).length).toBe(1);
    await expect(NbdClient.connect(s.uri('a'))).rejects.toThrow(/no export named "a"/);
  });

  it('a server killed mid-request fails every pending and later call with DisconnectedError', async () => {
    const dir = await tempDir();
    const sock = path.join(dir, 'child.sock');
    const here = path.dirname(fileURLToPath(import.meta.url));
    // Our server in its own process with a device that never answers reads.
    const script = path.join(dir, 'server.mts');
    await fsp.writeFile(
      script,
      `import { NbdServer } from ${JSON.stringify(path.join(here, 'server.ts'))};
       import { MemoryBlockDevice } from ${JSON.stringify(path.join(here, 'memory-device.ts'))};
       const dev = new MemoryBlockDevice(1 << 20);
       dev.read = () => new Promise(() => {});
       const s = new NbdServer();
       s.addExport('', dev);
       await s.listenUnix(${JSON.stringify(sock)});`,
    );
    const peer = await startServerPeer(process.execPath, ['--import', 'tsx', script], sock);
    const lost: DisconnectedError[] = [];
    const c = await connect(`nbd+unix:///?socket=${sock}`, { onDisconnect: (e) => lost.push(e) });
    const settled = Promise.allSettled(Array.from({ length: 6 }, (_, i) => c.read(i * 4096, 4096)));
    await waitFor(() => c.inFlight === 6, 'reads in flight');
    await peer.stop('SIGKILL');
    for (const r of await settled) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(DisconnectedError);
    }
    await expect(c.write(0, Buffer.alloc(1))).rejects.toBeInstanceOf(DisconnectedError);
    expect(lost).toHaveLength(1);
  });
});
