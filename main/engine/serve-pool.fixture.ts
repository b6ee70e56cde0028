/**
 * Test fixture: a process that hosts one pool (created on first start,
 * imported after) and exports its volume over NBD, like the engine host
 * does, so a test can kill -9 it mid-write and reimport. Prints "ready" on
 * stdout once serving.
 *
 *   node --import tsx serve-pool.fixture.ts DIR LAYOUT WIDTH MEMBERS [degraded]
 *
 * "degraded": member 1 fails as soon as the volume exists, so every write
 * meets a row with a column gone (the row journal's case); members then get
 * the default metadata reservation, which has room for the journal.
 */
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { NbdServer } from '../nbd/server.js';
import type { LayoutName } from './layout.js';
import { openMember } from './member-uri.js';
import { createPool, importPool } from './pool-open.js';

const [dir, layout, widthText, countText, mode] = process.argv.slice(2) as [string, LayoutName, string, string, string | undefined];
const degraded = mode === 'degraded';
const count = Number(countText);
export const FIXTURE_MEMBER_BYTES = 48 * 1024 * 1024;
export const FIXTURE_SLAB = 4 * 1024 * 1024 + 64 * 1024;
export const FIXTURE_VOLUME_BYTES = 16 * 1024 * 1024;

const uris = Array.from({ length: count }, (_, i) => `file:${join(dir, `m${i}.img`)}`);
const fresh = !existsSync(join(dir, 'm0.img'));
if (fresh) {
  for (let i = 0; i < count; i++) {
    const f = await open(join(dir, `m${i}.img`), 'w');
    await f.truncate(FIXTURE_MEMBER_BYTES);
    await f.close();
  }
}
const members = await Promise.all(uris.map(async (uri) => ({ uri, device: await openMember(uri) })));
const pool = fresh
  ? await createPool({ name: 'crash', members, slabSize: FIXTURE_SLAB, metadataBytes: degraded ? undefined : 1024 * 1024 })
  : (await importPool(members)).pool;
if (fresh) {
  await pool.createVolume({ name: 'v', size: FIXTURE_VOLUME_BYTES, layout, width: Number(widthText) });
  if (degraded) await pool.failMember([...pool.members.keys()][1]!);
}
const server = new NbdServer();
server.addExport('v', pool.volume('v'));
await server.listenUnix(join(dir, 'v.sock'));
process.stdout.write('ready\n');
