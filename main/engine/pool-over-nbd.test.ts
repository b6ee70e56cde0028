/**
 * The engine end to end over real NBD sockets: four nbdkit `file` servers as
 * members, a raid5 volume exported by our NBD server, driven by qemu-io.
 */
import { open, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdClient } from '../nbd/client.js';
import { NbdServer } from '../nbd/server.js';
import { cleanupAll, qemuIo, startServerPeer, tempDir, type Peer } from '../nbd/test-support.js';
import { openMember } from './member-uri.js';
import { createPool } from './pool-open.js';
import type { Pool } from './pool.js';
import type { Volume } from './volume.js';

const MEMBER_BYTES = 64 * 1024 * 1024;
const SLAB = 8 * 1024 * 1024 + 64 * 1024;
const MiB = 1024 * 1024;

let dir: string;
const servers: Peer[] = [];
const images: string[] = [];
let pool: Pool;
let volume: Volume;
let server: NbdServer;
let uri: string;

beforeAll(async () => {
  dir = await tempDir('spindle-pool-nbd-');
  for (let i = 0; i < 4; i++) {
    const image = join(dir, `disk${i}.img`);
    await (await open(image, 'w')).close();
    await truncate(image, MEMBER_BYTES);
    images.push(image);
    const socket = join(dir, `disk${i}.sock`);
    servers.push(await startServerPeer('nbdkit', ['-f', '-U', socket, 'file', image], socket));
  }
  const members = await Promise.all(servers.map(async (_, i) => {
    const memberUri = `nbd+unix:///?socket=${join(dir, `disk${i}.sock`)}`;
    return { uri: memberUri, device: await openMember(memberUri) };
  }));
  pool = await createPool({ name: 'e2e', members, slabSize: SLAB });
  volume = await pool.createVolume({ name: 'vol', size: 48 * MiB, layout: 'raid5' });
  server = new NbdServer();
  server.addExport('vol', volume);
  const socket = join(dir, 'vol.sock');
  await server.listenUnix(socket);
  uri = `nbd+unix:///vol?socket=${socket}`;
}, 60_000);

afterAll(async () => {
  await server?.close();
  await pool?.close().catch(() => {});
  await cleanupAll();
}, 60_000);

describe('a raid5 pool of four nbdkit members, exported over NBD', () => {
  it('stores what qemu-io writes, pattern-verified', async () => {
    await qemuIo(uri, 'write -P 0xab 0 16M', 'write -P 0xcd 16M 8M', 'flush', 'read -P 0xab 0 16M', 'read -P 0xcd 16M 8M');
  });

  it('is safe over several connections at once (CAN_MULTI_CONN): written on one, flushed on another, read on a third', async () => {
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => NbdClient.connect(uri)));
    expect(a!.capabilities.canMultiConn).toBe(true);
    const data = Buffer.alloc(1 << 20, 0x77);
    await Promise.all([a!.write(32 * MiB, data), b!.write(33 * MiB, data)]);
    await c!.flush();
    expect((await c!.read(32 * MiB, 2 << 20)).equals(Buffer.concat([data, data]))).toBe(true);
    await Promise.all([a!.close(), b!.close(), c!.close()]);
  });

  it('serves the right bytes after bytes are flipped in a member image, counts the error and rewrites the block', async () => {
    const chunk = volume.chunks[0]!;
    // Row 0's first data unit: flip 16 bytes in the middle of its first block, in the image file itself.
    const map = (await import('./raid5.js')).raid5.row(chunk.spec, 0);
    const column = chunk.columns[map.data[0]![0]!]!;
    const index = servers.findIndex((_, i) => column.member.label.includes(`disk${i}.sock`));
    const at = column.member.slabOffset(column.slab, 2000);
    const file = await open(images[index]!, 'r+');
    const before = Buffer.alloc(16);
    await file.read(before, 0, 16, at);
    await file.write(Buffer.from(before.map((b) => b ^ 0xff)), 0, 16, at);
    await file.sync();
    const errorsBefore = column.member.errors.checksum;
    await qemuIo(uri, 'read -P 0xab 0 64k');
    expect(column.member.errors.checksum).toBeGreaterThan(errorsBefore);
    await pool.repairsDone();
    const after = Buffer.alloc(16);
    await file.read(after, 0, 16, at);
    await file.close();
    expect(after.equals(before)).toBe(true);
  });

  it('keeps reading correct data after one member server is killed', async () => {
    await servers[2]!.stop('SIGKILL');
    await qemuIo(uri, 'read -P 0xab 0 16M', 'read -P 0xcd 16M 8M');
    expect([...pool.members.values()].filter((m) => m.state === 'failed')).toHaveLength(1);
    expect(pool.volumeState('vol')).toBe('degraded');
    // Writes go on within redundancy, and read back.
    await qemuIo(uri, 'write -P 0x5a 4M 4M', 'read -P 0x5a 4M 4M', 'read -P 0xab 0 4M');
  });
});
