/**
 * Test fixture for the kill -9 campaign of jobs (jobs-crash.test.ts, and
 * scripts/torture-jobs.mjs): a process that builds a pool on image files,
 * starts a job and writes to the volume while it runs, until it is killed.
 *
 *   node --import tsx jobs-crash.fixture.ts DIR CASE
 *
 * CASE names the job and layout (CRASH_CASES). stdout lines:
 *   job ID            the job is started
 *   W i:v i:v …       these block versions are being written
 *   F i:v i:v …       …and are now acknowledged and flushed (durable)
 *   done OUTCOME      the job finished (writes go on)
 * Each 4 KiB block holds its index and version in its first 8 bytes and a
 * fill derived from both (blockFor), so a torn or misplaced block shows.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobRequest } from './job-types.js';
import type { LayoutName } from './layout.js';
import { openMember } from './member-uri.js';
import { createPool } from './pool-open.js';

export const CRASH_BLOCK = 4096;
export const CRASH_VOLUME_BYTES = 4 * 1024 * 1024;
export const CRASH_SLAB = 16 * 65536 + 64 * 1024;
export const CRASH_METADATA = 1024 * 1024;
export const CRASH_MEMBER_SLABS = 10;

export interface CrashCase {
  readonly layout: LayoutName;
  readonly width?: number;
  readonly members: number;
  readonly spare?: boolean;
  /** Member added before the job (rebalance). */
  readonly added?: boolean;
  /** Fail this member (by index) first. */
  readonly fail?: number;
  readonly job: (uuids: readonly string[]) => JobRequest;
}

export const CRASH_CASES: Readonly<Record<string, CrashCase>> = {
  'rebuild-raid1': { layout: 'raid1', members: 3, spare: true, fail: 0, job: (u) => ({ kind: 'rebuild', member: u[0]! }) },
  // An online member replaced by a spare: a failed raid5 member would test the core's degraded write hole (see jobs-crash.test.ts).
  'rebuild-raid5-online': { layout: 'raid5', width: 4, members: 4, spare: true, job: (u) => ({ kind: 'rebuild', member: u[1]! }) },
  'rebuild-raid6': { layout: 'raid6', width: 5, members: 5, spare: true, fail: 2, job: (u) => ({ kind: 'rebuild', member: u[2]! }) },
  'split-raid1': { layout: 'raid1', members: 4, fail: 0, job: (u) => ({ kind: 'split', member: u[0]! }) },
  'evacuate-raid5': { layout: 'raid5', width: 3, members: 4, job: (u) => ({ kind: 'evacuate', member: u[0]! }) },
  'rebalance-raid1': { layout: 'raid1', members: 3, added: true, job: () => ({ kind: 'rebalance' }) },
  'migrate-raid1-raid5': { layout: 'raid1', members: 4, job: () => ({ kind: 'migrate', volume: 'v', layout: 'raid5', width: 3 }) },
  'migrate-raid5-raid6': { layout: 'raid5', width: 4, members: 5, job: () => ({ kind: 'migrate', volume: 'v', layout: 'raid6', width: 5 }) },
  'scrub-raid6': { layout: 'raid6', width: 4, members: 4, job: () => ({ kind: 'scrub', volume: 'v' }) },
};

export function blockFor(index: number, version: number): Buffer {
  const b = Buffer.alloc(CRASH_BLOCK, (index * 7 + version) & 0xff);
  b.writeUInt32LE(index, 0);
  b.writeUInt32LE(version, 4);
  return b;
}

export const memberFile = (dir: string, i: number): string => join(dir, `m${i}.img`);
export const CRASH_MEMBER_BYTES = CRASH_METADATA + CRASH_MEMBER_SLABS * CRASH_SLAB + 64 * 1024;

async function main(): Promise<void> {
  const [dir, name] = process.argv.slice(2) as [string, string];
  const c = CRASH_CASES[name];
  if (!c) throw new Error(`unknown case ${name}`);
  const count = c.members + (c.spare ? 1 : 0) + (c.added ? 1 : 0);
  for (let i = 0; i < count; i++) {
    const f = await open(memberFile(dir, i), 'w');
    await f.truncate(CRASH_MEMBER_BYTES);
    await f.close();
  }
  const source = async (i: number) => ({ uri: `file:${memberFile(dir, i)}`, device: await openMember(`file:${memberFile(dir, i)}`) });
  const members = await Promise.all(Array.from({ length: c.members }, (_, i) => source(i)));
  const spares = c.spare ? [await source(c.members)] : [];
  const pool = await createPool({ name: 'crash', members, spares, slabSize: CRASH_SLAB, metadataBytes: CRASH_METADATA });
  const volume = await pool.createVolume({ name: 'v', size: CRASH_VOLUME_BYTES, layout: c.layout, width: c.width });
  const blocks = CRASH_VOLUME_BYTES / CRASH_BLOCK;
  const base = Buffer.alloc(CRASH_VOLUME_BYTES);
  for (let i = 0; i < blocks; i++) blockFor(i, 1).copy(base, i * CRASH_BLOCK);
  await volume.write(0, base);
  await volume.flush();
  // The job under test is started by hand (automatic repair would start its own).
  await pool.setPolicy({ autoRepair: false });
  const uuids = members.map((m) => [...pool.members.values()].find((x) => x.label === m.uri)!.uuid);
  if (c.fail !== undefined) await pool.failMember(uuids[c.fail]!);
  if (c.added) await pool.addMember(await source(c.members), { metadataBytes: CRASH_METADATA });
  // Checkpoints every few rows, and a job that lasts a second or two: kills land at every stage.
  pool.jobs.tuning = { checkpointMs: 20, checkpointBytes: 4 * 65536, batchRows: 2, depth: 2, maxRate: 3 * 1024 * 1024 };
  const status = await pool.jobs.start(c.job(uuids));
  process.stdout.write(`job ${status.id}\n`);
  void pool.jobs.wait(status.id).then((r) => process.stdout.write(`done ${r.outcome}${r.reason ? ` ${r.reason}` : ''}\n`));
  let version = 1;
  let x = 12345;
  for (;;) {
    // Distinct blocks per batch: two writes of one block at once could land in either order.
    const batch: Array<[number, number]> = [];
    while (batch.length < 8) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const index = x % blocks;
      if (!batch.some(([i]) => i === index)) batch.push([index, ++version]);
    }
    process.stdout.write(`W ${batch.map(([i, v]) => `${i}:${v}`).join(' ')}\n`);
    await Promise.all(batch.map(([i, v]) => volume.write(i * CRASH_BLOCK, blockFor(i, v))));
    await volume.flush();
    process.stdout.write(`F ${batch.map(([i, v]) => `${i}:${v}`).join(' ')}\n`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
