/**
 * A rebuild end to end over real NBD sockets: five nbdkit `file` servers as
 * members (four data, one spare), a raid5 volume exported by our NBD
 * server and driven by qemu-io; one member's server is killed, the member
 * is rebuilt onto the spare while qemu-io reads and writes, and afterwards
 * another member's server can be killed with every pattern still verifying.
 */
import { open, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdServer } from '../nbd/server.js';
import { cleanupAll, run, startServerPeer, tempDir, type Peer } from '../nbd/test-support.js';
import { openMember } from './member-uri.js';
import { createPool } from './pool-open.js';
import type { Pool } from './pool.js';

const MEMBER_BYTES = 64 * 1024 * 1024;
const SLAB = 8 * 1024 * 1024 + 64 * 1024;
const MiB = 1024 * 1024;

let dir: string;
const servers: Peer[] = [];
let pool: Pool;
let server: NbdServer;
let uri: string;

async function qemuIo(...commands: string[]): Promise<string> {
  const result = await run('qemu-io', ['-f', 'raw', uri, ...commands.flatMap((c) => ['-c', c])], 120_000);
  const output = result.stdout + result.stderr;
  if (result.code !== 0 || /verification failed|error|failed/i.test(output)) throw new Error(`qemu-io ${commands.join('; ')}:\n${output}`);
  return output;
}

beforeAll(async () => {
  dir = await tempDir('spindle-job-nbd-');
  for (let i = 0; i < 5; i++) {
    const image = join(dir, `disk${i}.img`);
    await (await open(image, 'w')).close();
    await truncate(image, MEMBER_BYTES);
    const socket = join(dir, `disk${i}.sock`);
    servers.push(await startServerPeer('nbdkit', ['-f', '-U', socket, 'file', image], socket));
  }
  const sources = await Promise.all(
    servers.map(async (_, i) => {
      const memberUri = `nbd+unix:///?socket=${join(dir, `disk${i}.sock`)}`;
      return { uri: memberUri, device: await openMember(memberUri) };
    }),
  );
  pool = await createPool({ name: 'e2e', members: sources.slice(0, 4), spares: sources.slice(4), slabSize: SLAB });
  await pool.setPolicy({ autoRepair: false });
  const volume = await pool.createVolume({ name: 'vol', size: 48 * MiB, layout: 'raid5' });
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

describe('rebuild onto a spare over NBD', () => {
  it('a killed member server is rebuilt onto the spare while qemu-io reads and writes; redundancy is back afterwards', async () => {
    await qemuIo('write -P 0xa1 0 16M', 'write -P 0xb2 16M 16M', 'write -P 0xc3 32M 16M', 'flush');
    const victim = [...pool.members.values()].find((m) => m.label.includes('disk1.sock'))!;
    await servers[1]!.stop('SIGKILL');
    await qemuIo('read -P 0xa1 0 16M');
    expect(victim.state).toBe('failed');
    expect(pool.volumeState('vol')).toBe('degraded');

    const plan = pool.jobs.plan({ kind: 'rebuild', member: victim.uuid });
    expect(plan.summary).toContain('disk4.sock');
    const { id } = await pool.jobs.start({ kind: 'rebuild', member: victim.uuid });
    // Foreground I/O meanwhile, over NBD.
    await qemuIo('write -P 0xd4 8M 4M', 'read -P 0xb2 16M 16M', 'read -P 0xd4 8M 4M');
    const report = await pool.jobs.wait(id);
    expect(report.outcome, report.reason).toBe('done');
    expect(report.slabsMoved).toBe(plan.slabs);
    expect(pool.volumeState('vol')).toBe('online');
    await qemuIo('read -P 0xa1 0 8M', 'read -P 0xd4 8M 4M', 'read -P 0xa1 12M 4M', 'read -P 0xb2 16M 16M', 'read -P 0xc3 32M 16M');

    // Redundancy is full again: another member's server can go.
    await servers[2]!.stop('SIGKILL');
    await qemuIo('read -P 0xa1 0 8M', 'read -P 0xd4 8M 4M', 'read -P 0xa1 12M 4M', 'read -P 0xb2 16M 16M', 'read -P 0xc3 32M 16M');
    expect(pool.volumeState('vol')).toBe('degraded');
  }, 120_000);
});
