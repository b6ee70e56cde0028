/**
 * Our client against real servers: nbdkit (memory, file, and the error,
 * delay and blocksize-policy filters), qemu-nbd and nbd-server.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BlockDeviceError, DisconnectedError } from './block-device.js';
import { NbdClient } from './client.js';
import {
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_OPT_EXPORT_NAME,
  NBD_REP_ERR_UNSUP,
  encodeExportNameReply,
  encodeGreeting,
  encodeOptionReply,
  encodeSimpleReply,
} from './protocol.js';
import { cleanupAll, makeImage, patternBuffer, startServerPeer, tempDir, waitFor, type Peer } from './test-support.js';

const MiB = 1024 * 1024;
let clients: NbdClient[] = [];

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  clients = [];
  await cleanupAll();
});

async function connect(uri: string, opts?: Parameters<typeof NbdClient.connect>[1]): Promise<NbdClient> {
  const c = await NbdClient.connect(uri, opts);
  clients.push(c);
  return c;
}

/** nbdkit in the foreground on a fresh socket: `nbdkit -f -U SOCK ...args`. */
async function nbdkit(...args: string[]): Promise<{ peer: Peer; uri: string; dir: string }> {
  const dir = await tempDir();
  const sock = path.join(dir, 'nbdkit.sock');
  const peer = await startServerPeer('nbdkit', ['-f', '-U', sock, ...args], sock);
  return { peer, uri: `nbd+unix:///?socket=${sock}`, dir };
}

describe('against nbdkit memory', () => {
  it('negotiates structured replies, base:allocation and the advertised capabilities', async () => {
    const k = await nbdkit('memory', '64M');
    const c = await connect(k.uri);
    expect(c.size).toBe(64 * MiB);
    expect(c.info).toMatchObject({ structuredReplies: true, baseAllocation: true, negotiatedWithGo: true });
    expect(c.capabilities).toMatchObject({ readOnly: false, canFlush: true, canTrim: true, canWriteZeroes: true, canMultiConn: true });
  });

  it('write, read, flush, trim, zero, cache and block status all work', async () => {
    const k = await nbdkit('memory', '16M');
    const c = await connect(k.uri);
    const data = patternBuffer(3 * MiB, 11);
    await c.write(MiB, data, { fua: true });
    expect((await c.read(MiB, 3 * MiB)).equals(data)).toBe(true);
    await c.flush();
    await c.cache(0, MiB);
    await c.writeZeroes(MiB, 65536);
    await c.trim(2 * MiB, MiB);
    const back = await c.read(MiB, 3 * MiB);
    expect(back.subarray(0, 65536).equals(Buffer.alloc(65536))).toBe(true);
    expect(back.subarray(65536, MiB).equals(data.subarray(65536, MiB))).toBe(true);
    const extents = await c.blockStatus(0, 16 * MiB);
    expect(extents.reduce((n, e) => n + e.length, 0)).toBe(16 * MiB);
    // The hole before the data, grown by the zeroed (hole-punched) 64 KiB.
    expect(extents[0]).toEqual({ length: MiB + 65536, flags: 3 });
    expect(extents.some((e) => e.flags === 0)).toBe(true);
  });

  it('pipelines hundreds of requests and matches every reply to its call', async () => {
    const k = await nbdkit('memory', '8M');
    const c = await connect(k.uri);
    const blocks = Array.from({ length: 256 }, (_, i) => patternBuffer(4096, i + 1));
    await Promise.all(blocks.map((b, i) => c.write(i * 8192, b)));
    const reads = await Promise.all(blocks.map((_, i) => c.read(i * 8192, 4096)));
    reads.forEach((r, i) => expect(r.equals(blocks[i])).toBe(true));
  });

  it('works with simple replies only (nbdkit --no-sr)', async () => {
    const k = await nbdkit('--no-sr', 'memory', '4M');
    const c = await connect(k.uri);
    expect(c.info.structuredReplies).toBe(false);
    const data = patternBuffer(MiB, 3);
    await c.write(0, data);
    expect((await c.read(0, MiB)).equals(data)).toBe(true);
    // Without base:allocation the whole range is reported allocated.
    expect(await c.blockStatus(0, 4 * MiB)).toEqual([{ length: 4 * MiB, flags: 0 }]);
    await expect(c.read(4 * MiB - 10, 20)).rejects.toMatchObject({ errno: 'EINVAL' });
  });

  it('speaks plain (non-fixed) newstyle with EXPORT_NAME', async () => {
    const k = await nbdkit('--mask-handshake=0', 'memory', '1M');
    const c = await connect(k.uri);
    expect(c.info).toMatchObject({ negotiatedWithGo: false, structuredReplies: false, size: MiB });
    await c.write(0, Buffer.from('plain newstyle'));
    expect((await c.read(0, 14)).toString()).toBe('plain newstyle');
  });

  it('refuses an oldstyle server with a clear error', async () => {
    const k = await nbdkit('--oldstyle', 'memory', '1M');
    await expect(NbdClient.connect(k.uri)).rejects.toThrow(/oldstyle/);
  });
});

describe('against nbdkit file', () => {
  it('reads the image and writes through to it', async () => {
    const dir = await tempDir();
    const img = path.join(dir, 'img');
    const data = await makeImage(img, 8 * MiB, 21);
    const k = await nbdkit('file', img);
    const c = await connect(k.uri);
    expect((await c.read(0, 8 * MiB)).equals(data)).toBe(true);
    await c.write(4096, Buffer.from('written by NbdClient'));
    await c.flush();
    expect((await fsp.readFile(img)).subarray(4096, 4096 + 20).toString()).toBe('written by NbdClient');
  });
});

describe('against faulty and slow disks', () => {
  it('an EIO from the server rejects only that request; the connection keeps working', async () => {
    const k0 = await tempDir();
    const trigger = path.join(k0, 'fail-now');
    const k = await nbdkit('--filter=error', 'memory', '4M', 'error=EIO', 'error-pread-rate=1', `error-pread-file=${trigger}`);
    const c = await connect(k.uri);
    await c.write(0, Buffer.alloc(4096, 9));
    expect((await c.read(0, 4096))[0]).toBe(9);
    await fsp.writeFile(trigger, '');
    const results = await Promise.allSettled([c.read(0, 4096), c.read(8192, 4096), c.write(65536, Buffer.alloc(512, 1)), c.read(4096, 512)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled', 'rejected']);
    for (const r of results) {
      if (r.status === 'rejected') {
        expect(r.reason).toBeInstanceOf(BlockDeviceError);
        expect(r.reason.errno).toBe('EIO');
      }
    }
    await fsp.rm(trigger);
    expect((await c.read(0, 4096))[0]).toBe(9);
    expect((await c.read(65536, 512))[0]).toBe(1);
  });

  it('big reads (read header by header, payload straight into place) mixed with errors, holes and small reads', async () => {
    // Big reads switch the receiver to reading one reply header at a time;
    // error chunks and hole chunks are shorter than a data header, so the
    // receiver reads into the next reply's header. Every caller must still
    // get its own bytes or its own error.
    const k = await nbdkit('--filter=error', 'memory', '8M', 'error=EIO', 'error-pread-rate=0.2');
    const c = await connect(k.uri);
    const data = patternBuffer(4 * MiB, 5);
    await c.write(0, data); // the upper 4 MiB stay holes
    const expected = Buffer.concat([data, Buffer.alloc(4 * MiB)]);
    const sizes = [4096, 32 * 1024, 65536, 200 * 1024, MiB];
    const requests = Array.from({ length: 300 }, (_, i) => {
      const length = sizes[i % sizes.length]!;
      const offset = ((i * 7919 * 4096) % (8 * MiB - length)) & ~4095;
      const into = i % 2 === 0 ? Buffer.alloc(length, 0xee) : undefined;
      const read = into ? c.readInto(offset, into).then(() => into) : c.read(offset, length);
      return read.then(
        (got) => ({ ok: got.equals(expected.subarray(offset, offset + length)), error: undefined }),
        (error: unknown) => ({ ok: false, error }),
      );
    });
    const results = await Promise.all(requests);
    const failed = results.filter((r) => r.error !== undefined);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThan(results.length);
    for (const r of failed) expect((r.error as BlockDeviceError).errno).toBe('EIO');
    expect(results.filter((r) => r.error === undefined).every((r) => r.ok)).toBe(true);
  });

  it('readv and writev move back-to-back parts in one request each, mixed with errors and plain reads', async () => {
    const k = await nbdkit('--filter=error', 'memory', '8M', 'error=EIO', 'error-pread-rate=0.15');
    const c = await connect(k.uri);
    const data = patternBuffer(8 * MiB, 9);
    // writev: parts of many sizes (4 KiB to 200 KiB) written back to back.
    const partSizes = [4096, 65536, 8192, 200 * 1024, 65536, 12288];
    for (let at = 0; at < 8 * MiB; ) {
      const parts: Buffer[] = [];
      for (let i = 0; at < 8 * MiB && i < partSizes.length; i++) {
        const n = Math.min(partSizes[(i + at / 4096) % partSizes.length]!, 8 * MiB - at);
        parts.push(data.subarray(at, at + n));
        at += n;
      }
      await c.writev(at - parts.reduce((n, p) => n + p.length, 0), parts);
    }
    const requests = Array.from({ length: 200 }, (_, i) => {
      const offset = ((i * 104729 * 4096) % (7 * MiB)) & ~4095;
      const sizes = i % 3 === 0 ? [65536, 65536, 65536] : i % 3 === 1 ? [4096, 98304, 8192, 40960] : [MiB];
      const targets = sizes.map((n) => Buffer.alloc(n, 0xee));
      const total = sizes.reduce((a, b) => a + b, 0);
      return c.readv(offset, targets).then(
        () => ({ ok: Buffer.concat(targets).equals(data.subarray(offset, offset + total)), error: undefined as unknown }),
        (error: unknown) => ({ ok: false, error }),
      );
    });
    const results = await Promise.all([...requests, ...[0, 3, 5].map((m) => c.read(m * MiB, MiB).then(() => ({ ok: true, error: undefined }), (error: unknown) => ({ ok: false, error })))]);
    const failed = results.filter((r) => r.error !== undefined);
    expect(failed.length).toBeGreaterThan(0);
    for (const r of failed) expect((r.error as BlockDeviceError).errno).toBe('EIO');
    expect(results.filter((r) => r.error === undefined).every((r) => r.ok)).toBe(true);
  });

  it('readv through holes (structured hole chunks land in the right parts)', async () => {
    const k = await nbdkit('memory', '4M');
    const c = await connect(k.uri);
    await c.write(MiB, patternBuffer(64 * 1024, 3));
    const targets = [Buffer.alloc(MiB - 4096, 0xee), Buffer.alloc(8192, 0xee), Buffer.alloc(60 * 1024, 0xee), Buffer.alloc(MiB, 0xee)];
    await c.readv(4096, targets);
    const expected = Buffer.alloc(4 * MiB);
    patternBuffer(64 * 1024, 3).copy(expected, MiB);
    expect(Buffer.concat(targets).equals(expected.subarray(4096, 4096 + 2 * MiB + 64 * 1024))).toBe(true);
  });

  it('replies that come back out of order reach the right callers', async () => {
    const k = await nbdkit('--filter=delay', 'memory', '4M', 'wdelay=1');
    const c = await connect(k.uri);
    const order: string[] = [];
    const slowWrite = c.write(MiB, Buffer.alloc(4096, 0x42)).then(() => order.push('write'));
    const reads = Array.from({ length: 8 }, (_, i) => c.read(i * 4096, 4096).then((b) => (order.push(`read${i}`), b)));
    const got = await Promise.all(reads);
    await slowWrite;
    expect(order[order.length - 1]).toBe('write');
    for (const b of got) expect(b.equals(Buffer.alloc(4096))).toBe(true);
    expect((await c.read(MiB, 4096)).equals(Buffer.alloc(4096, 0x42))).toBe(true);
  });

  it('obeys a server minimum block size and splits at its maximum payload', async () => {
    const k = await nbdkit('--filter=blocksize-policy', 'memory', '8M', 'blocksize-minimum=4096', 'blocksize-maximum=1M', 'blocksize-error-policy=error');
    const c = await connect(k.uri);
    expect(c.info.blockSizes).toMatchObject({ minimum: 4096, maximum: MiB });
    await expect(c.read(512, 4096)).rejects.toMatchObject({ errno: 'EINVAL' });
    const data = patternBuffer(5 * MiB, 5);
    await c.write(0, data);
    expect((await c.read(0, 5 * MiB)).equals(data)).toBe(true);
  });

  it('a server killed mid-request fails every pending and later call with DisconnectedError', async () => {
    const k = await nbdkit('--filter=delay', 'memory', '4M', 'rdelay=10');
    const lost: DisconnectedError[] = [];
    const c = await connect(k.uri, { onDisconnect: (e) => lost.push(e) });
    const settled = Promise.allSettled(Array.from({ length: 10 }, (_, i) => c.read(i * 4096, 4096)));
    await waitFor(() => c.inFlight === 10, 'requests to be in flight');
    await k.peer.stop('SIGKILL');
    const results = await settled;
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(DisconnectedError);
    }
    await expect(c.read(0, 1)).rejects.toBeInstanceOf(DisconnectedError);
    await expect(c.flush()).rejects.toBeInstanceOf(DisconnectedError);
    expect(lost).toHaveLength(1);
  });
});

describe('against qemu-nbd', () => {
  it('reads, writes, trims and reports allocation', async () => {
    const dir = await tempDir();
    const img = path.join(dir, 'img');
    await fsp.writeFile(img, '');
    await fsp.truncate(img, 16 * MiB);
    const sock = path.join(dir, 'q.sock');
    await startServerPeer('qemu-nbd', ['-k', sock, '-f', 'raw', '--cache=writeback', '-t', '-e', '4', img], sock);
    const c = await connect(`nbd+unix:///?socket=${sock}`);
    expect(c.info.structuredReplies).toBe(true);
    expect(c.size).toBe(16 * MiB);
    const data = patternBuffer(2 * MiB, 31);
    await c.write(4 * MiB, data, { fua: true });
    expect((await c.read(4 * MiB, 2 * MiB)).equals(data)).toBe(true);
    const map = await c.blockStatus(0, 16 * MiB);
    expect(map.reduce((n, e) => n + e.length, 0)).toBe(16 * MiB);
    const at = (off: number) => {
      let pos = 0;
      for (const e of map) {
        if (off < pos + e.length) return e.flags;
        pos += e.length;
      }
      return -1;
    };
    expect(at(0) & 1).toBe(1); // never written: a hole
    expect(at(4 * MiB) & 1).toBe(0); // written: data
    await c.trim(4 * MiB, MiB);
    await c.writeZeroes(5 * MiB, MiB, { noHole: true });
    expect((await c.read(5 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    await c.flush();
  });

  it('a second connection sees the first one’s flushed writes', async () => {
    const dir = await tempDir();
    const img = path.join(dir, 'img');
    await makeImage(img, 4 * MiB, 3);
    const sock = path.join(dir, 'q.sock');
    await startServerPeer('qemu-nbd', ['-k', sock, '-f', 'raw', '-t', '-e', '4', img], sock);
    const a = await connect(`nbd+unix:///?socket=${sock}`);
    const b = await connect(`nbd+unix:///?socket=${sock}`);
    await a.write(0, Buffer.from('from a'));
    await a.flush();
    expect((await b.read(0, 6)).toString()).toBe('from a');
  });
});

describe('against nbd-server', () => {
  it('reads and writes an export with simple replies', async () => {
    const dir = await tempDir();
    const img = path.join(dir, 'img');
    const data = await makeImage(img, 4 * MiB, 41);
    const sock = path.join(dir, 'ns.sock');
    const conf = path.join(dir, 'nbd-server.conf');
    await fsp.writeFile(conf, `[generic]\n    unixsock = ${sock}\n[disk]\n    exportname = ${img}\n`);
    // -d keeps nbd-server in the foreground (it then serves one client).
    await startServerPeer('nbd-server', ['-C', conf, '-d'], sock, 'file');
    const c = await NbdClient.connect(`nbd+unix:///disk?socket=${sock}`);
    clients.push(c);
    expect(c.size).toBe(4 * MiB);
    expect((await c.read(0, 4 * MiB)).equals(data)).toBe(true);
    await c.write(MiB, Buffer.from('nbd-server'));
    await c.flush();
    expect((await c.read(MiB, 10)).toString()).toBe('nbd-server');
    await c.close();
  });
});

describe('handshake fallbacks and errors', () => {
  it('falls back to EXPORT_NAME when GO is unsupported', async () => {
    const dir = await tempDir();
    const sock = path.join(dir, 'fake.sock');
    // A minimal old server: fixed newstyle, every option but EXPORT_NAME is
    // unsupported, and it answers one READ with 'A's.
    const fake = net.createServer((s) => {
      let buf = Buffer.alloc(0);
      let stage = 0;
      s.write(encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE));
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          if (stage === 0) {
            if (buf.length < 4) return;
            buf = buf.subarray(4);
            stage = 1;
          } else if (stage === 1) {
            if (buf.length < 16 || buf.length < 16 + buf.readUInt32BE(12)) return;
            const opt = buf.readUInt32BE(8);
            buf = buf.subarray(16 + buf.readUInt32BE(12));
            if (opt === NBD_OPT_EXPORT_NAME) {
              s.write(encodeExportNameReply(65536, 1, false));
              stage = 2;
            } else {
              s.write(encodeOptionReply(opt, NBD_REP_ERR_UNSUP));
            }
          } else {
            if (buf.length < 28) return;
            const cookie = buf.readUInt32BE(12);
            const len = buf.readUInt32BE(24);
            buf = buf.subarray(28);
            s.write(Buffer.concat([encodeSimpleReply(0, 0, cookie), Buffer.alloc(len, 'A')]));
          }
        }
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => fake.listen(sock, r));
    try {
      const c = await connect(`nbd+unix:///?socket=${sock}`);
      expect(c.info).toMatchObject({ negotiatedWithGo: false, structuredReplies: false, size: 65536 });
      expect((await c.read(0, 8)).toString()).toBe('AAAAAAAA');
      c.close().catch(() => {});
    } finally {
      await new Promise<void>((r) => {
        fake.close(() => r());
        for (const c of clients) void c.close().catch(() => {});
      });
    }
  });

  it('an unknown export fails connect with the export name in the message', async () => {
    const k = await nbdkit('--filter=exportname', 'memory', '1M', 'exportname=only', 'exportname-strict=true');
    await expect(NbdClient.connect(k.uri.replace(':///', ':///nope'))).rejects.toThrow(/"nope"/);
  });

  it('a missing socket fails with the path in the message', async () => {
    const dir = await tempDir();
    await expect(NbdClient.connect(`nbd+unix:///?socket=${dir}/none.sock`)).rejects.toThrow(/none\.sock/);
  });
});
