import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BulkReadOptions } from '../nbd/block-device.js';
import type { MemberSource } from './pool.js';
import { JobError } from './job-types.js';
import { deviceMap, expectFullRedundancy, fill, imageSources, memorySources, newPool, workload } from './jobs-workload.fixture.js';
import { CRC32C_IMPLEMENTATION } from './checksum.js';
import { openMember } from './member-uri.js';
import { importPool } from './pool-open.js';
import type { Pool } from './pool.js';

describe('rebuild onto a spare', () => {
  for (const c of [
    { layout: 'raid1' as const, members: 3 },
    { layout: 'raid5' as const, members: 4 },
    { layout: 'raid6' as const, members: 5 },
    { layout: 'raid10' as const, members: 4 },
  ]) {
    it(`${c.layout}: a failed member's slabs are rebuilt while reads and writes go on; redundancy is full at the end`, async () => {
      const sources = memorySources(c.members);
      const spares = memorySources(1, 12, 'spare');
      const pool = await newPool(sources, spares);
      const volume = await pool.createVolume({ name: 'v', size: 3 * 1024 * 1024, layout: c.layout });
      const model = await fill(volume, 1);
      const victim = volume.chunks[0]!.columns[0]!.member;
      const spare = [...pool.members.values()].find((m) => m.label === 'spare:0')!;
      await pool.failMember(victim.uuid);
      const plan = pool.jobs.plan({ kind: 'rebuild', member: victim.label });
      expect(plan.slabs).toBeGreaterThan(0);
      expect(plan.summary).toContain('spare:0');
      expect(plan.members.find((m) => m.uuid === spare.uuid)!.usedSlabsAfter).toBe(plan.slabs);
      expect(plan.members.find((m) => m.uuid === victim.uuid)!.remains).toBe(false);
      const full = c.layout === 'raid6' ? 2 : 1;
      expect(plan.redundancy.find((r) => r.volume === 'v')).toMatchObject({ now: full - 1, during: full - 1, after: full });
      expect(plan.riskWindowMs).toBeGreaterThan(0);
      const progress: number[] = [];
      pool.jobs.on('job-progress', (p) => progress.push(p.bytesDone));
      const status = await pool.jobs.start({ kind: 'rebuild', member: victim.uuid });
      const done = pool.jobs.wait(status.id);
      const ops = await workload(volume, model, done);
      const report = await done;
      expect(report.outcome, report.reason).toBe('done');
      expect(ops).toBeGreaterThan(0);
      expect(report.slabsMoved).toBe(plan.slabs);
      expect(report.moved.every((m) => m.from.member === victim.uuid && m.to.member === spare.uuid)).toBe(true);
      expect(report.membersRemoved).toEqual([victim.uuid]);
      expect(pool.members.has(victim.uuid)).toBe(false);
      expect(pool.state.members.find((m) => m.uuid === spare.uuid)!.role).toBe('data');
      expect(pool.volumeState('v')).toBe('online');
      expect(progress.length).toBeGreaterThan(0);
      expect(pool.jobs.list()).toEqual([]);
      await expectFullRedundancy(pool, deviceMap(sources, spares), [[volume, model]]);
      await pool.close();
      // The new layout is what import finds.
      const { pool: again, missing } = await importPool([...sources, ...spares].filter((s) => s.uri !== victim.label));
      expect(missing).toEqual([]);
      expect((await again.volume('v').read(0, model.length)).equals(model)).toBe(true);
      await again.close();
    });
  }

  it('raid1 on image files: the copy goes around the page cache (writeUncached) while reads and writes go on, and reads back right after reimport', async (ctx) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'spindle-rebuild-files-'));
    const opened: MemberSource[] = [];
    try {
      const sources = await imageSources(dir, 2);
      const spares = await imageSources(dir, 1, 's');
      opened.push(...sources, ...spares);
      const spareDevice = spares[0]!.device;
      if (!spareDevice.writeUncached || !sources[0]!.device.readIntoCrc32c) return ctx.skip(`spindle-crc32c's native reads and writes are not here (${CRC32C_IMPLEMENTATION})`);
      let uncached = 0;
      const write = spareDevice.writeUncached.bind(spareDevice);
      Object.assign(spareDevice, { writeUncached: (offset: number, data: Uint8Array) => (uncached++, write(offset, data)) });
      // The surviving copy is read around the page cache too.
      let uncachedReads = 0;
      for (const s of sources) {
        const read = s.device.readIntoCrc32c!.bind(s.device);
        Object.assign(s.device, {
          readIntoCrc32c: (offset: number, target: Buffer, blockBytes: number, crcs: Uint32Array, how?: BulkReadOptions) => (
            how?.uncached && uncachedReads++, read(offset, target, blockBytes, crcs, how)
          ),
        });
      }
      const pool = await newPool(sources, spares);
      const volume = await pool.createVolume({ name: 'v', size: 3 * 1024 * 1024, layout: 'raid1' });
      const model = await fill(volume, 5);
      const victim = [...pool.members.values()].find((m) => m.label === sources[0]!.uri)!;
      await pool.failMember(victim.uuid);
      const { id } = await pool.jobs.start({ kind: 'rebuild', member: victim.uuid });
      const done = pool.jobs.wait(id);
      expect(await workload(volume, model, done)).toBeGreaterThan(0);
      const report = await done;
      expect(report.outcome, report.reason).toBe('done');
      expect(uncached).toBeGreaterThan(0);
      expect(uncachedReads).toBeGreaterThan(0);
      await expectFullRedundancy(pool, deviceMap(sources, spares), [[volume, model]]);
      await pool.close();
      for (const s of opened) await s.device.close();
      opened.length = 0;
      // What the direct writes put on the spare is on the file: a fresh open of the survivors reads it.
      const again = [await openMember(sources[1]!.uri), await openMember(spares[0]!.uri)];
      const { pool: imported, missing } = await importPool([
        { uri: sources[1]!.uri, device: again[0]! },
        { uri: spares[0]!.uri, device: again[1]! },
      ]);
      expect(missing).toEqual([]);
      await imported.failMember([...imported.members.values()].find((m) => m.label === sources[1]!.uri)!.uuid);
      expect((await imported.volume('v').read(0, model.length)).equals(model)).toBe(true);
      await imported.close();
      for (const d of again) await d.close();
    } finally {
      for (const s of opened) await s.device.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('raid1, partly written: the spare gets the same bytes and the same unwritten blocks as the surviving copy', async () => {
    const sources = memorySources(2);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    // The full volume's slabs move first: the sparse one's batches then reuse buffers that held its bytes.
    const full = await pool.createVolume({ name: 'full', size: 1024 * 1024, layout: 'raid1' });
    const sparse = await pool.createVolume({ name: 'sparse', size: 2 * 1024 * 1024, layout: 'raid1' });
    const fullModel = await fill(full, 31);
    const sparseModel = Buffer.alloc(sparse.size);
    for (let at = 4096; at < sparse.size; at += 7 * 4096) {
      const block = Buffer.alloc(4096, (at / 4096) & 0xff);
      await sparse.write(at, block);
      block.copy(sparseModel, at);
    }
    await pool.flush();
    const victim = sources[0]!.uri;
    const victimUuid = [...pool.members.values()].find((m) => m.label === victim)!.uuid;
    await pool.failMember(victimUuid);
    const { id } = await pool.jobs.start({ kind: 'rebuild', member: victimUuid });
    const report = await pool.jobs.wait(id);
    expect(report.outcome, report.reason).toBe('done');
    expect(report.badBlocks).toEqual([]);
    for (const chunk of [...full.chunks, ...sparse.chunks]) {
      const [a, b] = chunk.columns;
      const ta = await pool.checksums.table(a!.member, a!.slab, chunk.id);
      const tb = await pool.checksums.table(b!.member, b!.slab, chunk.id);
      expect(Buffer.from(ta.entries.buffer).equals(Buffer.from(tb.entries.buffer)), `chunk ${chunk.id} tables`).toBe(true);
    }
    await expectFullRedundancy(pool, deviceMap(sources, spares), [
      [full, fullModel],
      [sparse, sparseModel],
    ]);
    await pool.close();
  });

  it('refuses a spare too small for the data, a member that is not a spare, and a pool without one', async () => {
    const sources = memorySources(3);
    const small = memorySources(1, 1, 'small');
    const pool = await newPool(sources, small);
    await pool.createVolume({ name: 'v', size: 8 * 1024 * 1024, layout: 'raid1' });
    const victim = pool.volume('v').chunks[0]!.columns[0]!.member;
    await pool.failMember(victim.uuid);
    const before = JSON.stringify([...pool.state.chunks.values()]);
    expect(() => pool.jobs.plan({ kind: 'rebuild', member: victim.uuid })).toThrow(/spare small:0 is too small/);
    await expect(pool.jobs.start({ kind: 'rebuild', member: victim.uuid })).rejects.toMatchObject({ code: 'SPARE_TOO_SMALL' });
    const other = [...pool.members.values()].find((m) => m.label === 'mem:2')!;
    expect(() => pool.jobs.plan({ kind: 'rebuild', member: victim.uuid, spare: other.uuid })).toThrow(/not a spare/);
    expect(() => pool.jobs.plan({ kind: 'rebuild', member: 'nobody' })).toThrow(/no member "nobody"/);
    expect(() => pool.jobs.plan({ kind: 'frobnicate' } as never)).toThrow(/unknown job kind "frobnicate"/);
    expect(JSON.stringify([...pool.state.chunks.values()])).toBe(before);
    expect(pool.state.jobs).toEqual([]);
    await pool.close();

    const bare = await newPool(memorySources(2));
    await bare.createVolume({ name: 'v', size: 1024 * 1024, layout: 'raid1' });
    const [first] = [...bare.members.values()];
    await bare.failMember(first!.uuid);
    let error: unknown;
    try {
      bare.jobs.plan({ kind: 'rebuild', member: first!.uuid });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(JobError);
    expect((error as Error).message).toMatch(/has no spare/);
    await bare.close();
  });
});

/** Resolves once the job has done `fraction` of its bytes (or has finished). */
async function progressed(pool: Pool, id: string, fraction: number): Promise<void> {
  for (;;) {
    const job = pool.jobs.list().find((j) => j.id === id);
    if (!job || job.bytesDone >= job.bytesTotal * fraction) return;
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('a second failure during a rebuild', () => {
  for (const c of [
    { layout: 'raid6' as const, members: 5, copies: undefined },
    { layout: 'raid1' as const, members: 3, copies: 3 },
  ]) {
    it(`${c.layout}${c.copies ? `×${c.copies}` : ''}: within redundancy it is survived and the rebuild finishes`, async () => {
      const sources = memorySources(c.members);
      const spares = [...memorySources(1, 12, 'spare'), ...memorySources(1, 12, 'second')];
      const pool = await newPool(sources, spares);
      const volume = await pool.createVolume({ name: 'v', size: 6 * 1024 * 1024, layout: c.layout, copies: c.copies });
      const model = await fill(volume, 5);
      const [first, second] = volume.chunks[0]!.columns.map((col) => col.member);
      await pool.failMember(first!.uuid);
      const spare = [...pool.members.values()].find((m) => m.label === 'spare:0')!;
      const { id } = await pool.jobs.start({ kind: 'rebuild', member: first!.uuid, spare: spare.uuid });
      const done = pool.jobs.wait(id);
      const failSecond = (async () => {
        await progressed(pool, id, 1 / 3);
        expect(pool.jobs.list().map((j) => j.id)).toEqual([id]);
        await pool.failMember(second!.uuid);
      })();
      await workload(volume, model, done);
      await failSecond;
      const report = await done;
      expect(report.outcome, report.reason).toBe('done');
      expect(pool.volumeState('v')).toBe('degraded');
      expect((await volume.read(0, volume.size)).equals(model)).toBe(true);
      // The second member is rebuilt too, and redundancy is full again.
      const next = await pool.jobs.start({ kind: 'rebuild', member: second!.uuid });
      expect((await pool.jobs.wait(next.id)).outcome).toBe('done');
      await expectFullRedundancy(pool, deviceMap(sources, spares), [[volume, model]]);
      await pool.close();
    });
  }

  it('raid5: beyond redundancy the volume fails with a clear reason and returns EIO, never wrong data', async () => {
    const sources = memorySources(4);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    const volume = await pool.createVolume({ name: 'v', size: 6 * 1024 * 1024, layout: 'raid5', width: 4 });
    const model = await fill(volume, 6);
    const [first, second] = volume.chunks[1]!.columns.map((col) => col.member);
    await pool.failMember(first!.uuid);
    const { id } = await pool.jobs.start({ kind: 'rebuild', member: first!.uuid });
    await progressed(pool, id, 1 / 3);
    await pool.failMember(second!.uuid);
    const report = await pool.jobs.wait(id);
    expect(report.outcome).toBe('failed');
    expect(report.reason).toMatch(/lost more members than raid5 survives|has failed/);
    expect(pool.volumeState('v')).toBe('failed');
    await expect(volume.read(0, 4096)).rejects.toThrow(/EIO.*has failed: more members are lost than its layout survives/);
    // Nothing was left reserved.
    expect(pool.state.jobs).toEqual([]);
    const used = [...pool.state.chunks.values()].reduce((n, chunk) => n + chunk.slabs.length, 0);
    const free = [...pool.members.values()].reduce((n, m) => n + pool.freeSlabs(m.uuid), 0);
    expect(used + free).toBe(pool.members.size * 12);
    // Chunk by chunk, what can still be read is the model, and what cannot is EIO.
    for (const chunk of volume.chunks) {
      for (let row = 0; row < chunk.rows; row++) {
        const at = volume.chunks.indexOf(chunk) * chunk.capacity + row * chunk.rowBytes;
        const got = await chunk.readRow(row, 0, chunk.rowBytes).catch((e: Error) => e);
        if (got instanceof Error) expect(got.message).toMatch(/EIO/);
        else expect(got.equals(model.subarray(at, at + chunk.rowBytes))).toBe(true);
      }
    }
    await pool.close();
  });
});
