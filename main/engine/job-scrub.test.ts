/**
 * scrub: bad blocks planted behind the engine's back (flipped bytes in data
 * and in parity, parity that disagrees with its data while its checksum
 * holds) are found while reads and writes go on, reported with where their
 * good data came from, and repaired on the member.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CHECKSUM_BLOCK } from './checksum-block.js';
import { checksummedReads, crc32c } from './checksum.js';
import type { ChunkIo } from './chunk-io.js';
import { layouts } from './layouts.js';
import { deviceMap, expectFullRedundancy, fill, imageSources, memorySources, newPool, workload } from './jobs-workload.fixture.js';
import { encodeChecksum } from './slab-checksums.js';
import { importPool } from './pool-open.js';
import type { MemberSource, Pool } from './pool.js';

/** Flips a byte of block `block` of row `row` of a column, on the member's device. */
async function flip(chunk: ChunkIo, column: number, row: number, block: number): Promise<{ chunk: number; row: number; block: number; member: string; at: number; good: Buffer }> {
  const { member, slab } = chunk.columns[column]!;
  const at = member.slabOffset(slab, row * 65536 + block * CHECKSUM_BLOCK);
  const good = await member.device!.read(at, CHECKSUM_BLOCK);
  const bad = Buffer.from(good);
  bad[100] ^= 0x5a;
  await member.device!.write(at, bad);
  return { chunk: chunk.id, row, block, member: member.uuid, at, good };
}

async function raw(pool: Pool, member: string, at: number): Promise<Buffer> {
  return pool.members.get(member)!.device!.read(at, CHECKSUM_BLOCK);
}

describe('scrub', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it.each(['memory devices', 'image files'])('finds and repairs bad data, bad parity and stale parity, reporting where the good data came from (%s)', async (kind) => {
    let sources: MemberSource[];
    if (kind === 'image files') {
      dir = await mkdtemp(path.join(tmpdir(), 'spindle-scrub-'));
      sources = await imageSources(dir, 5);
      // The image files' fast paths: CRCs from the thread pool, and mirrors checked without their bytes.
      if (checksummedReads) expect(sources[0]!.device.crc32cBlocks).toBeDefined();
    } else sources = memorySources(5);
    const pool = await newPool(sources);
    pool.jobs.tuning = { ...pool.jobs.tuning, maxRate: undefined };
    const mirror = await pool.createVolume({ name: 'm', size: 2 * 1024 * 1024, layout: 'raid1' });
    const striped = await pool.createVolume({ name: 'p', size: 3 * 1024 * 1024, layout: 'raid5', width: 4 });
    const double = await pool.createVolume({ name: 'q', size: 3 * 1024 * 1024, layout: 'raid6', width: 5 });
    const models: Array<[typeof mirror, Buffer]> = [];
    for (const [v, seed] of [[mirror, 1], [striped, 2], [double, 3]] as const) models.push([v, await fill(v, seed)]);
    await pool.flush();

    const planted: Array<{ chunk: number; row: number; block: number; member: string; at: number; good: Buffer; from: string }> = [];
    // raid1: a bad copy; the good one is on the other member.
    const m = mirror.chunks[0]!;
    planted.push({ ...(await flip(m, 1, 3, 2)), from: `copy:${m.columns[0]!.member.uuid}` });
    // raid5: bad data and bad parity in different rows.
    const p = striped.chunks[0]!;
    const map5 = layouts.raid5.row(p.spec, 5);
    planted.push({ ...(await flip(p, map5.data[1]![0]!, 5, 0)), from: 'parity' });
    const map7 = layouts.raid5.row(p.spec, 7);
    planted.push({ ...(await flip(p, map7.p!, 7, 3)), from: 'parity' });
    // raid6: two bad columns in one row.
    const q = double.chunks[0]!;
    const map2 = layouts.raid6.row(q.spec, 2);
    planted.push({ ...(await flip(q, map2.data[0]![0]!, 2, 1)), from: 'parity' });
    planted.push({ ...(await flip(q, map2.q!, 2, 1)), from: 'parity' });
    // raid5: parity that disagrees with its data while its own checksum holds (a torn write's leftovers).
    const map9 = layouts.raid5.row(p.spec, 9);
    const pc = p.columns[map9.p!]!;
    const staleAt = pc.member.slabOffset(pc.slab, 9 * 65536);
    const staleGood = await pc.member.device!.read(staleAt, CHECKSUM_BLOCK);
    const stale = Buffer.alloc(CHECKSUM_BLOCK, 0x77);
    await pc.member.device!.write(staleAt, stale);
    (await pool.checksums.table(pc.member, pc.slab, p.id)).set(9 * 16, encodeChecksum(crc32c(stale)));

    const plan = pool.jobs.plan({ kind: 'scrub' });
    expect(plan.bytes).toBe((2 * 2 + 3 * 4 / 3 + 3 * 5 / 3) * 1024 * 1024);
    // No foreground I/O here: a foreground read would find (and have repaired) the planted blocks first.
    const { id } = await pool.jobs.start({ kind: 'scrub' });
    const report = await pool.jobs.wait(id);
    expect(report.outcome, report.reason).toBe('done');
    expect(report.bytes).toBe(plan.bytes);
    expect(report.blocksLost).toBe(0);
    for (const bad of planted) {
      const found = report.badBlocks.find((b) => b.member === bad.member && b.chunk === bad.chunk && b.row === bad.row && b.block === bad.block);
      expect(found, `bad block on ${bad.member}`).toBeDefined();
      expect(found).toMatchObject({ problem: 'checksum', from: bad.from });
    }
    expect(report.badBlocks.find((b) => b.problem === 'parity' && b.member === pc.member.uuid)).toMatchObject({ row: 9, block: 0, from: 'parity' });
    expect(report.blocksRepaired).toBeGreaterThanOrEqual(planted.length + 1);
    // Counted once, though a mirror's rows with a bad block are read twice (checksums first, then bytes).
    const counted = [...pool.members.values()].reduce((sum, m) => sum + m.errors.checksum, 0);
    expect(counted).toBe(report.badBlocks.filter((b) => b.problem === 'checksum').length);
    // Repaired on the members themselves.
    for (const bad of planted) expect((await raw(pool, bad.member, bad.at)).equals(bad.good)).toBe(true);
    expect((await raw(pool, pc.member.uuid, staleAt)).equals(staleGood)).toBe(true);
    const again = await pool.jobs.start({ kind: 'scrub' });
    expect((await pool.jobs.wait(again.id)).badBlocks).toEqual([]);
    await expectFullRedundancy(pool, deviceMap(sources), models);
    await pool.close();
  });

  it('runs while reads and writes go on, every read equal to the model', async () => {
    const sources = memorySources(4);
    const pool = await newPool(sources);
    const a = await pool.createVolume({ name: 'a', size: 2 * 1024 * 1024, layout: 'raid1' });
    const b = await pool.createVolume({ name: 'b', size: 3 * 1024 * 1024, layout: 'raid5', width: 4 });
    const models: Array<[typeof a, Buffer]> = [
      [a, await fill(a, 4)],
      [b, await fill(b, 5)],
    ];
    const { id } = await pool.jobs.start({ kind: 'scrub' });
    const done = pool.jobs.wait(id);
    await Promise.all(models.map(([v, model], i) => workload(v, model, done, 30 + i, 1)));
    const report = await done;
    expect(report.outcome, report.reason).toBe('done');
    expect(report.badBlocks).toEqual([]);
    await expectFullRedundancy(pool, deviceMap(sources), models);
    await pool.close();
  });

  it('finds nothing wrong in never-written blocks, whatever the buffers it reuses held before', async () => {
    const sources = memorySources(3);
    const pool = await newPool(sources);
    // Scrubbed in this order: the full volume's bytes are in the buffers when the sparse one's batches reuse them.
    const full = await pool.createVolume({ name: 'full', size: 2 * 1024 * 1024, layout: 'raid5', width: 3 });
    const sparse = await pool.createVolume({ name: 'sparse', size: 2 * 1024 * 1024, layout: 'raid5', width: 3 });
    const mirror = await pool.createVolume({ name: 'mirror', size: 1024 * 1024, layout: 'raid1' });
    await fill(full, 11);
    // Every third 4 KiB block only: the others stay unwritten (zeroes, unchecked by any checksum of their own).
    for (let at = 0; at < sparse.size; at += 3 * CHECKSUM_BLOCK) await sparse.write(at, Buffer.alloc(CHECKSUM_BLOCK, 0xa5));
    for (let at = 0; at < mirror.size; at += 5 * CHECKSUM_BLOCK) await mirror.write(at, Buffer.alloc(CHECKSUM_BLOCK, 0x3c));
    await pool.flush();
    const { id } = await pool.jobs.start({ kind: 'scrub' });
    const report = await pool.jobs.wait(id);
    expect(report.outcome, report.reason).toBe('done');
    expect(report.badBlocks).toEqual([]);
    expect(report.blocksRepaired).toBe(0);
    await pool.close();
  });

  it('resumes from its cursor after a restart', async () => {
    const sources = memorySources(3);
    const pool = await newPool(sources);
    pool.jobs.tuning = { ...pool.jobs.tuning, maxRate: 8 * 1024 * 1024 };
    const volume = await pool.createVolume({ name: 'v', size: 4 * 1024 * 1024, layout: 'raid1' });
    await fill(volume, 9);
    const { id } = await pool.jobs.start({ kind: 'scrub', volume: 'v' });
    while (!(pool.state.jobs.find((j) => j.id === id)?.done.bytes ?? 0)) await new Promise((r) => setTimeout(r, 5));
    await pool.close();
    const checkpointed = pool.state.jobs.find((j) => j.id === id)!.done.bytes;
    expect(checkpointed).toBeGreaterThan(0);
    const { pool: again } = await importPool(sources);
    const status = again.jobs.get(id);
    expect(status.bytesDone).toBeGreaterThan(0);
    const report = await again.jobs.wait(id);
    expect(report.outcome).toBe('done');
    // Bytes counted once: what was done before the restart and after add up to the whole.
    expect(report.bytes).toBe(8 * 1024 * 1024);
    await again.close();
  });
});
