/**
 * Automatic repair by pool policy: a failed member is rebuilt onto a spare
 * when there is one, else relocated or split onto free space; a manual pool
 * waits; a rebalance in the way is cancelled.
 */
import { describe, expect, it } from 'vitest';
import type { JobReport } from './job-types.js';
import { deviceMap, expectFullRedundancy, fill, memorySources, newPool } from './jobs-workload.fixture.js';
import type { Pool } from './pool.js';

function nextReport(pool: Pool): Promise<JobReport> {
  return new Promise((resolve) => pool.jobs.once('job-finished', resolve));
}

describe('automatic repair', () => {
  it('rebuilds onto a spare first', async () => {
    const sources = memorySources(3);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    await pool.setPolicy({ autoRepair: true, autoRepairDelayMs: 0 });
    const volume = await pool.createVolume({ name: 'v', size: 3 * 1024 * 1024, layout: 'raid1' });
    const model = await fill(volume, 1);
    const logs: string[] = [];
    pool.on('log', (_level, message) => logs.push(message));
    const finished = nextReport(pool);
    await pool.failMember(volume.chunks[0]!.columns[0]!.member.uuid);
    const report = await finished;
    expect(report.kind).toBe('rebuild');
    expect(report.outcome, report.reason).toBe('done');
    expect(logs.some((l) => /automatic repair started/.test(l))).toBe(true);
    await expectFullRedundancy(pool, deviceMap(sources, spares), [[volume, model]]);
    await pool.close();
  });

  it('without a spare, moves the data to free space on the other members', async () => {
    const sources = memorySources(4);
    const pool = await newPool(sources);
    await pool.setPolicy({ autoRepair: true, autoRepairDelayMs: 0 });
    const volume = await pool.createVolume({ name: 'v', size: 3 * 1024 * 1024, layout: 'raid1' });
    const model = await fill(volume, 2);
    const finished = nextReport(pool);
    await pool.failMember(volume.chunks[0]!.columns[0]!.member.uuid);
    const report = await finished;
    expect(['relocate', 'split']).toContain(report.kind);
    expect(report.outcome, report.reason).toBe('done');
    await expectFullRedundancy(pool, deviceMap(sources), [[volume, model]]);
    await pool.close();
  });

  it('waits out the delay: a member back by then is only resynced', async () => {
    const sources = memorySources(3);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    await pool.setPolicy({ autoRepair: true, autoRepairDelayMs: 300 });
    const volume = await pool.createVolume({ name: 'v', size: 1024 * 1024, layout: 'raid1' });
    const model = await fill(volume, 4);
    const member = volume.chunks[0]!.columns[0]!.member;
    await pool.failMember(member.uuid);
    await pool.returnMember(member.uuid, sources.find((s) => s.uri === member.label)!.device);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(pool.jobs.list()).toEqual([]);
    expect(pool.jobs.reports()).toEqual([]);
    expect((await volume.read(0, volume.size)).equals(model)).toBe(true);
    // Failed for longer than the delay: the repair starts.
    const finished = nextReport(pool);
    await pool.failMember(member.uuid);
    expect((await finished).kind).toBe('rebuild');
    await expect(pool.setPolicy({ autoRepairDelayMs: -1 })).rejects.toThrow(/invalid automatic repair delay -1/);
    await pool.close();
  });

  it('waits for a person when the policy is manual', async () => {
    const sources = memorySources(3);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    expect(pool.state.policy.autoRepair).toBe(false);
    const volume = await pool.createVolume({ name: 'v', size: 1024 * 1024, layout: 'raid1' });
    await pool.failMember(volume.chunks[0]!.columns[0]!.member.uuid);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(pool.jobs.list()).toEqual([]);
    expect(pool.volumeState('v')).toBe('degraded');
    await pool.close();
  });

  it('cancels a rebalance in the way: repairs come first', async () => {
    const sources = memorySources(3);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    pool.jobs.tuning = { ...pool.jobs.tuning, maxRate: 1024 * 1024 };
    const volume = await pool.createVolume({ name: 'v', size: 6 * 1024 * 1024, layout: 'raid1' });
    const model = await fill(volume, 3);
    await pool.addMember(memorySources(1, 12, 'added')[0]!, { metadataBytes: 1024 * 1024 });
    const rebalance = await pool.jobs.start({ kind: 'rebalance' });
    await pool.setPolicy({ autoRepair: true, autoRepairDelayMs: 0 });
    const reports: JobReport[] = [];
    pool.jobs.on('job-finished', (r) => reports.push(r));
    await pool.failMember(volume.chunks[0]!.columns[0]!.member.uuid);
    while (!reports.some((r) => r.kind === 'rebuild')) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(reports.find((r) => r.id === rebalance.id)!.outcome).toBe('cancelled');
    expect(reports.find((r) => r.kind === 'rebuild')!.outcome).toBe('done');
    expect((await volume.read(0, volume.size)).equals(model)).toBe(true);
    expect(pool.volumeState('v')).toBe('online');
    await pool.close();
  });
});
