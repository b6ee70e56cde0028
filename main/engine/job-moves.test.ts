/**
 * The jobs that move slabs between data members — relocate, split,
 * evacuate, rebalance — each under a foreground workload checked against a
 * reference model, with redundancy verified at the end; and their refusals.
 */
import { describe, expect, it } from 'vitest';
import { MemoryBlockDevice } from '../nbd/memory-device.js';
import { deviceMap, expectFullRedundancy, fill, memberBytes, memorySources, newPool, workload } from './jobs-workload.fixture.js';
import type { Pool } from './pool.js';

function usage(pool: Pool): Map<string, number> {
  return new Map([...pool.members.values()].map((m) => [m.label, m.slabCount - pool.freeSlabs(m.uuid)]));
}

describe('relocate', () => {
  it("moves a failed member's slabs onto one member with room, while reads and writes go on", async () => {
    const sources = memorySources(5);
    const pool = await newPool(sources);
    // raid5 over 4 of the 5 members: the fifth is free and shares no chunk with the victim.
    const volume = await pool.createVolume({ name: 'v', size: 3 * 1024 * 1024, layout: 'raid5', width: 4 });
    const model = await fill(volume, 2);
    const used = new Set(volume.chunks.flatMap((c) => c.columns.map((col) => col.member.uuid)));
    const free = [...pool.members.values()].find((m) => !used.has(m.uuid))!;
    const victim = volume.chunks[0]!.columns[1]!.member;
    await pool.failMember(victim.uuid);
    const plan = pool.jobs.plan({ kind: 'relocate', member: victim.label });
    expect(plan.summary).toContain(free.label);
    const { id } = await pool.jobs.start({ kind: 'relocate', member: victim.uuid });
    const done = pool.jobs.wait(id);
    await workload(volume, model, done);
    const report = await done;
    expect(report.outcome, report.reason).toBe('done');
    expect(new Set(report.moved.map((m) => m.to.member))).toEqual(new Set([free.uuid]));
    expect(pool.members.has(victim.uuid)).toBe(false);
    await expectFullRedundancy(pool, deviceMap(sources), [[volume, model]]);
    await pool.close();
  });
});

describe('split', () => {
  it('spreads the slabs when no surviving member has room for all of them, and restores redundancy', async () => {
    const sources = memorySources(5, 6);
    const pool = await newPool(sources);
    // 12 raid1 chunks on 5 members of 6 slabs: each member holds 4 or 5, so 1 or 2 are free on each.
    const volume = await pool.createVolume({ name: 'v', size: 12 * 1024 * 1024, layout: 'raid1' });
    const model = await fill(volume, 3);
    const counts = usage(pool);
    const victim = [...pool.members.values()].sort((a, b) => counts.get(b.label)! - counts.get(a.label)!)[0]!;
    const held = counts.get(victim.label)!;
    await pool.failMember(victim.uuid);
    for (const m of pool.members.values()) if (m !== victim) expect(pool.freeSlabs(m.uuid)).toBeLessThan(held);
    expect(() => pool.jobs.plan({ kind: 'relocate', member: victim.uuid })).toThrow(/no single member can take/);
    const plan = pool.jobs.plan({ kind: 'split', member: victim.uuid });
    expect(plan.members.filter((m) => m.usedSlabsAfter > m.usedSlabsBefore).length).toBeGreaterThan(1);
    const { id } = await pool.jobs.start({ kind: 'split', member: victim.uuid });
    const done = pool.jobs.wait(id);
    await workload(volume, model, done);
    const report = await done;
    expect(report.outcome, report.reason).toBe('done');
    expect(report.slabsMoved).toBe(held);
    expect(new Set(report.moved.map((m) => m.to.member)).size).toBeGreaterThan(1);
    // Each chunk is still on distinct members.
    for (const chunk of volume.chunks) expect(new Set(chunk.columns.map((c) => c.member.uuid)).size).toBe(chunk.columns.length);
    await expectFullRedundancy(pool, deviceMap(sources), [[volume, model]]);
    await pool.close();
  });
});

describe('evacuate', () => {
  it('removes an online member: its slabs move away while reads and writes go on', async () => {
    const sources = memorySources(4);
    const pool = await newPool(sources);
    const a = await pool.createVolume({ name: 'a', size: 2 * 1024 * 1024, layout: 'raid1' });
    const b = await pool.createVolume({ name: 'b', size: 2 * 1024 * 1024, layout: 'raid5', width: 3 });
    const models: Array<[typeof a, Buffer]> = [
      [a, await fill(a, 4)],
      [b, await fill(b, 5)],
    ];
    const leaving = a.chunks[0]!.columns[0]!.member;
    const plan = pool.jobs.plan({ kind: 'evacuate', member: leaving.label });
    expect(plan.riskWindowMs).toBe(0);
    expect(plan.redundancy.every((r) => r.during === r.now && r.after === r.now)).toBe(true);
    const { id } = await pool.jobs.start({ kind: 'evacuate', member: leaving.uuid });
    const done = pool.jobs.wait(id);
    await Promise.all([workload(a, models[0]![1], done, 11), workload(b, models[1]![1], done, 12)]);
    const report = await done;
    expect(report.outcome, report.reason).toBe('done');
    expect(report.membersRemoved).toEqual([leaving.uuid]);
    expect(pool.members.has(leaving.uuid)).toBe(false);
    // Its labels are gone: it is no longer a member of any pool.
    const device = sources.find((s) => s.uri === leaving.label)!.device;
    expect((await device.read(0, 8)).toString('latin1')).not.toBe('SPNDLVLN');
    await expectFullRedundancy(pool, deviceMap(sources), models);
    await pool.close();
  });

  it('refuses to remove a member that would break redundancy, and changes nothing', async () => {
    const pool = await newPool(memorySources(4));
    await pool.createVolume({ name: 'v', size: 2 * 1024 * 1024, layout: 'raid5', width: 4 });
    const member = [...pool.members.values()][0]!;
    expect(() => pool.jobs.plan({ kind: 'evacuate', member: member.uuid })).toThrow(/would break the redundancy of chunk \d+ of volume v \(raid5 over 4 members\)/);
    await expect(pool.jobs.start({ kind: 'evacuate', member: member.uuid })).rejects.toMatchObject({ code: 'REDUNDANCY' });
    expect(pool.members.size).toBe(4);
    expect(pool.state.jobs).toEqual([]);
    await pool.failMember(member.uuid);
    expect(() => pool.jobs.plan({ kind: 'evacuate', member: member.uuid })).toThrow(/is failed: evacuate moves data off an online member/);
    await pool.close();
  });
});

describe('rebalance', () => {
  it('evens out usage after a member is added, while reads and writes go on', async () => {
    const sources = memorySources(3);
    const pool = await newPool(sources);
    const volume = await pool.createVolume({ name: 'v', size: 8 * 1024 * 1024, layout: 'raid1' });
    const model = await fill(volume, 6);
    const added = { uri: 'mem:new', device: new MemoryBlockDevice(memberBytes(12)) };
    const member = await pool.addMember(added, { metadataBytes: 1024 * 1024 });
    expect(pool.freeSlabs(member.uuid)).toBe(12);
    const plan = pool.jobs.plan({ kind: 'rebalance' });
    expect(plan.slabs).toBe(4);
    expect(plan.members.find((m) => m.uuid === member.uuid)!.usedSlabsAfter).toBe(4);
    const { id } = await pool.jobs.start({ kind: 'rebalance' });
    const done = pool.jobs.wait(id);
    await workload(volume, model, done);
    const report = await done;
    expect(report.outcome, report.reason).toBe('done');
    expect([...usage(pool).values()]).toEqual([4, 4, 4, 4]);
    expect(() => pool.jobs.plan({ kind: 'rebalance' })).toThrow(/balanced already/);
    await expectFullRedundancy(pool, deviceMap(sources, [added]), [[volume, model]]);
    await pool.close();
  });
});

describe('refusals', () => {
  it('a job on a failed volume, conflicting jobs, and changes to volumes and members a job uses', async () => {
    const sources = memorySources(4);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    const volume = await pool.createVolume({ name: 'v', size: 2 * 1024 * 1024, layout: 'raid1' });
    await fill(volume, 7);
    await pool.flush();
    const [x, y] = volume.chunks[0]!.columns.map((c) => c.member);
    await pool.failMember(x!.uuid);
    await pool.failMember(y!.uuid);
    expect(pool.volumeState('v')).toBe('failed');
    expect(() => pool.jobs.plan({ kind: 'rebuild', member: x!.uuid })).toThrow(/volume v has failed/);
    expect(() => pool.jobs.plan({ kind: 'scrub', volume: 'v' })).toThrow(/volume v has failed/);
    await pool.returnMember(y!.uuid, sources.find((s) => s.uri === y!.label)!.device);

    pool.jobs.tuning = { ...pool.jobs.tuning, maxRate: 256 * 1024 };
    const rebuild = await pool.jobs.start({ kind: 'rebuild', member: x!.uuid });
    await expect(pool.jobs.start({ kind: 'scrub', volume: 'v' })).rejects.toThrow(new RegExp(`job ${rebuild.id} \\(rebuild mem:\\d.*\\) already works on volume v`));
    await expect(pool.jobs.start({ kind: 'split', member: x!.uuid })).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(pool.deleteVolume('v')).rejects.toThrow(/volume v is in use by job/);
    await expect(pool.growVolume('v', 4 * 1024 * 1024)).rejects.toMatchObject({ code: 'BUSY' });
    await expect(pool.returnMember(x!.uuid, sources.find((s) => s.uri === x!.label)!.device)).rejects.toThrow(/in use by job/);
    pool.jobs.tuning = { ...pool.jobs.tuning, maxRate: undefined };
    expect((await pool.jobs.wait(rebuild.id)).outcome).toBe('done');
    await pool.close();
  });

  it("a person's rebuild goes first: the job in its way is cancelled (the plan says so); other jobs still wait their turn", async () => {
    const sources = memorySources(3);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    await pool.setPolicy({ autoRepair: false });
    const volume = await pool.createVolume({ name: 'v', size: 6 * 1024 * 1024, layout: 'raid1' });
    const model = await fill(volume, 9);
    await pool.addMember(memorySources(1, 12, 'added')[0]!, { metadataBytes: 1024 * 1024 });
    pool.jobs.tuning = { ...pool.jobs.tuning, maxRate: 256 * 1024 };
    const rebalance = await pool.jobs.start({ kind: 'rebalance' });
    await expect(pool.jobs.start({ kind: 'scrub', volume: 'v' })).rejects.toMatchObject({ code: 'CONFLICT' });
    const victim = volume.chunks[0]!.columns[0]!.member;
    await pool.failMember(victim.uuid);
    const plan = pool.jobs.plan({ kind: 'rebuild', member: victim.uuid });
    expect(plan.notes).toContainEqual(expect.stringMatching(new RegExp(`^starting it cancels job ${rebalance.id} \\(rebalance`)));
    pool.jobs.tuning = { ...pool.jobs.tuning, maxRate: undefined };
    const rebuild = await pool.jobs.start({ kind: 'rebuild', member: victim.uuid });
    expect((await pool.jobs.wait(rebalance.id)).outcome).toBe('cancelled');
    expect((await pool.jobs.wait(rebuild.id)).outcome).toBe('done');
    expect((await volume.read(0, volume.size)).equals(model)).toBe(true);
    expect(pool.volumeState('v')).toBe('online');
    await pool.close();
  });

  it('a member already failing is refused as a target', async () => {
    const sources = memorySources(5);
    const pool = await newPool(sources);
    const volume = await pool.createVolume({ name: 'v', size: 3 * 1024 * 1024, layout: 'raid5', width: 4 });
    const used = new Set(volume.chunks.flatMap((c) => c.columns.map((col) => col.member.uuid)));
    const spareRoom = [...pool.members.values()].find((m) => !used.has(m.uuid))!;
    spareRoom.errors.write = 3;
    const victim = volume.chunks[0]!.columns[0]!.member;
    await pool.failMember(victim.uuid);
    expect(() => pool.jobs.plan({ kind: 'relocate', member: victim.uuid, target: spareRoom.uuid })).toThrow(/already failing \(0 read, 3 write, 0 checksum errors\)/);
    await pool.close();
  });
});

describe('bad blocks met on the way', () => {
  it('are repaired in the copy from where good data is, and reported so', async () => {
    const sources = memorySources(5);
    const pool = await newPool(sources);
    pool.jobs.tuning = { ...pool.jobs.tuning, maxRate: undefined };
    const mirror = await pool.createVolume({ name: 'm', size: 1024 * 1024, layout: 'raid1' });
    const striped = await pool.createVolume({ name: 'p', size: 3 * 1024 * 1024, layout: 'raid5', width: 4 });
    const models: Array<[typeof mirror, Buffer]> = [
      [mirror, await fill(mirror, 21)],
      [striped, await fill(striped, 22)],
    ];
    await pool.flush();
    // The member to evacuate holds a bad block in each volume's slab.
    const leaving = striped.chunks[0]!.columns[0]!.member;
    const flip = async (chunk: typeof mirror.chunks[0], row: number): Promise<void> => {
      const column = chunk.columns.find((c) => c.member === leaving)!;
      const at = leaving.slabOffset(column.slab, row * 65536 + 4096);
      const byte = await leaving.device!.read(at, 1);
      await leaving.device!.write(at, Buffer.from([byte[0]! ^ 1]));
    };
    await flip(striped.chunks[0]!, 2);
    const mirrorChunk = mirror.chunks.find((c) => c.columns.some((col) => col.member === leaving));
    if (mirrorChunk) await flip(mirrorChunk, 3);
    const { id } = await pool.jobs.start({ kind: 'evacuate', member: leaving.uuid });
    const report = await pool.jobs.wait(id);
    expect(report.outcome, report.reason).toBe('done');
    expect(report.badBlocks).toContainEqual({ chunk: striped.chunks[0]!.id, row: 2, block: 1, member: leaving.uuid, problem: 'checksum', from: 'parity' });
    if (mirrorChunk) {
      const other = mirrorChunk.columns.find((c) => c.member !== leaving)!.member;
      expect(report.badBlocks).toContainEqual({ chunk: mirrorChunk.id, row: 3, block: 1, member: leaving.uuid, problem: 'checksum', from: `copy:${other.uuid}` });
    }
    expect(report.blocksRepaired).toBe(mirrorChunk ? 2 : 1);
    expect(report.blocksLost).toBe(0);
    // Each bad block counted once against its member (the move's first look at a batch counts nothing).
    expect(leaving.errors.checksum).toBe(mirrorChunk ? 2 : 1);
    await expectFullRedundancy(pool, deviceMap(sources), models);
    await pool.close();
  });

  it('with no good copy left, a block stays unreadable (EIO) on its new place, never wrong bytes', async () => {
    const sources = memorySources(3);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    const volume = await pool.createVolume({ name: 'v', size: 1024 * 1024, layout: 'raid1' });
    const model = await fill(volume, 23);
    await pool.flush();
    const [lost, survivor] = volume.chunks[0]!.columns;
    // The survivor's copy of one block rots, then the other copy's member dies.
    const at = survivor!.member.slabOffset(survivor!.slab, 5 * 65536);
    const byte = await survivor!.member.device!.read(at, 1);
    await survivor!.member.device!.write(at, Buffer.from([byte[0]! ^ 0x80]));
    await pool.failMember(lost!.member.uuid);
    const { id } = await pool.jobs.start({ kind: 'rebuild', member: lost!.member.uuid });
    const report = await pool.jobs.wait(id);
    expect(report.outcome, report.reason).toBe('done');
    expect(report.blocksLost).toBe(1);
    await expect(volume.read(5 * 65536, 4096)).rejects.toThrow(/EIO/);
    // Everything else reads right, from either copy.
    expect((await volume.read(0, 5 * 65536)).equals(model.subarray(0, 5 * 65536))).toBe(true);
    expect((await volume.read(5 * 65536 + 4096, 65536)).equals(model.subarray(5 * 65536 + 4096, 6 * 65536 + 4096))).toBe(true);
    await pool.failMember(survivor!.member.uuid);
    await expect(volume.read(5 * 65536, 4096)).rejects.toThrow(/EIO/);
    expect((await volume.read(0, 5 * 65536)).equals(model.subarray(0, 5 * 65536))).toBe(true);
    await pool.close();
  });
});
