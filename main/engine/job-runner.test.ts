/**
 * The runner: pause, resume and cancel (cancel leaves a consistent pool),
 * paused jobs across a reimport, progress events at a bounded rate, honest
 * ETA (ProgressMeter, on a fake clock), and the governor's decisions.
 */
import { describe, expect, it, vi } from 'vitest';
import { Governor, median, p99 } from './job-governor.js';
import { ProgressMeter } from './job-progress.js';
import type { JobProgress } from './job-types.js';
import { deviceMap, expectFullRedundancy, fill, memorySources, newPool, workload } from './jobs-workload.fixture.js';
import { importPool } from './pool-open.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('job control', () => {
  it('pauses (no progress while paused, persisted), resumes and finishes', async () => {
    const sources = memorySources(3);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    const volume = await pool.createVolume({ name: 'v', size: 4 * 1024 * 1024, layout: 'raid1' });
    const model = await fill(volume, 1);
    const victim = volume.chunks[0]!.columns[1]!.member;
    await pool.failMember(victim.uuid);
    const { id } = await pool.jobs.start({ kind: 'rebuild', member: victim.uuid });
    while (pool.jobs.get(id).bytesDone === 0) await sleep(10);
    await pool.jobs.pause(id);
    expect(pool.jobs.get(id).state).toBe('paused');
    expect(pool.state.jobs.find((j) => j.id === id)!.paused).toBe(true);
    await sleep(50); // the batch under way finishes
    const at = pool.jobs.get(id).bytesDone;
    // Writes go on while paused, and reach the part already copied.
    const ops = await workload(volume, model, sleep(300));
    expect(ops).toBeGreaterThan(0);
    expect(pool.jobs.get(id).bytesDone).toBe(at);
    expect(at).toBeLessThan(pool.jobs.get(id).bytesTotal);
    await pool.jobs.resume(id);
    const done = pool.jobs.wait(id);
    await workload(volume, model, done);
    const report = await done;
    expect(report.outcome).toBe('done');
    await expectFullRedundancy(pool, deviceMap(sources, spares), [[volume, model]]);
    await pool.close();
  });

  it('cancels mid-way: the move under way is undone, the moves done stay, the pool is consistent', async () => {
    const sources = memorySources(4);
    const pool = await newPool(sources);
    const volume = await pool.createVolume({ name: 'v', size: 4 * 1024 * 1024, layout: 'raid1' });
    const model = await fill(volume, 2);
    const leaving = volume.chunks[0]!.columns[0]!.member;
    const freeBefore = new Map([...pool.members.values()].map((m) => [m.uuid, pool.freeSlabs(m.uuid)]));
    const { id } = await pool.jobs.start({ kind: 'evacuate', member: leaving.uuid });
    // Cancel once a move is under way (its target reserved).
    while (!pool.state.jobs.find((j) => j.id === id)?.move || pool.jobs.get(id).bytesDone === 0) await sleep(5);
    const writes = workload(volume, model, sleep(200));
    const report = await pool.jobs.cancel(id);
    await writes;
    expect(report.outcome).toBe('cancelled');
    expect(pool.state.jobs).toEqual([]);
    expect(pool.members.has(leaving.uuid)).toBe(true);
    // Every slab is either where it was or where a finished move put it: no reserved slab is left behind.
    const moved = report.moved.length;
    let freeAfter = 0;
    let freeBeforeTotal = 0;
    for (const m of pool.members.values()) {
      freeAfter += pool.freeSlabs(m.uuid);
      freeBeforeTotal += freeBefore.get(m.uuid)!;
    }
    expect(freeAfter).toBe(freeBeforeTotal);
    expect(pool.freeSlabs(leaving.uuid)).toBe(freeBefore.get(leaving.uuid)! + moved);
    // The evacuated member takes new slabs again.
    const again = await pool.createVolume({ name: 'w', size: 12 * 1024 * 1024, layout: 'raid0', width: 4 });
    expect(again.chunks.some((c) => c.columns.some((col) => col.member === leaving))).toBe(true);
    await pool.deleteVolume('w');
    await expectFullRedundancy(pool, deviceMap(sources), [[volume, model]]);
    await expect(pool.jobs.cancel(id)).rejects.toThrow(/has already finished \(cancelled\)/);
    await expect(pool.jobs.pause('nope')).rejects.toThrow(/no job nope/);
    await pool.close();
  });

  it('a paused job stays paused across close and import, keeps its move, and finishes when resumed', async () => {
    const sources = memorySources(3);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    const volume = await pool.createVolume({ name: 'v', size: 4 * 1024 * 1024, layout: 'raid1' });
    const model = await fill(volume, 3);
    const victim = volume.chunks[0]!.columns[0]!.member;
    await pool.failMember(victim.uuid);
    const { id } = await pool.jobs.start({ kind: 'rebuild', member: victim.uuid });
    while (!pool.state.jobs.find((j) => j.id === id)?.move?.rows) await sleep(5);
    await pool.jobs.pause(id);
    await pool.close();
    const { pool: again } = await importPool([...sources, ...spares]);
    again.jobs.tuning = pool.jobs.tuning;
    const status = again.jobs.get(id);
    expect(status.state).toBe('paused');
    expect(status.bytesDone).toBeGreaterThan(0);
    const v = again.volume('v');
    // Writes while paused after the import still reach the copied rows of the move under way.
    await workload(v, model, sleep(200));
    await again.jobs.resume(id);
    const report = await again.jobs.wait(id);
    expect(report.outcome, report.reason).toBe('done');
    await expectFullRedundancy(again, deviceMap(sources, spares), [[v, model]]);
    await again.close();
  });

  it('reports progress at most ten times a second per job, and a rate and ETA once measured', async () => {
    const sources = memorySources(3);
    const spares = memorySources(1, 12, 'spare');
    const pool = await newPool(sources, spares);
    pool.jobs.tuning = { ...pool.jobs.tuning, batchRows: 1, maxRate: 2 * 1024 * 1024 };
    const volume = await pool.createVolume({ name: 'v', size: 4 * 1024 * 1024, layout: 'raid1' });
    await fill(volume, 4);
    await pool.failMember(volume.chunks[0]!.columns[0]!.member.uuid);
    const events: Array<[number, JobProgress]> = [];
    pool.jobs.on('job-progress', (p) => events.push([performance.now(), p]));
    const { id } = await pool.jobs.start({ kind: 'rebuild', member: volume.chunks[0]!.columns[0]!.member.uuid });
    await pool.jobs.wait(id);
    expect(events.length).toBeGreaterThan(5);
    for (let i = 1; i < events.length; i++) expect(events[i]![0] - events[i - 1]![0]).toBeGreaterThanOrEqual(95);
    const late = events.filter(([, p]) => p.bytesDone > p.bytesTotal * 0.5);
    expect(late.some(([, p]) => p.rateBytesPerSecond > 0 && p.etaMs !== undefined)).toBe(true);
    await pool.close();
  });
});

describe('ProgressMeter', () => {
  it('gives an ETA within ±20% of the time actually left once 10% is done, on a steady load', () => {
    let now = 0;
    const total = 1000 * 1024 * 1024;
    const meter = new ProgressMeter(0, total, () => now);
    meter.restart();
    // Steady 50 MiB/s in 1 MiB batches with jitter, ~20 s in all.
    const rate = 50 * 1024 * 1024;
    let x = 1;
    const checks: number[] = [];
    while (meter.done < total) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const batch = 1024 * 1024;
      now += ((batch / rate) * 1000) * (0.7 + (x % 600) / 1000);
      meter.advance(batch);
      if (meter.done >= total * 0.1 && meter.done < total) {
        const left = ((total - meter.done) / rate) * 1000;
        checks.push(meter.etaMs! / left);
      }
    }
    expect(checks.length).toBeGreaterThan(800);
    for (const ratio of checks) {
      expect(ratio).toBeGreaterThan(0.8);
      expect(ratio).toBeLessThan(1.2);
    }
  });

  it('claims no rate before half a second of bytes, and counts neither the time before the first bytes nor paused time', () => {
    let now = 0;
    const meter = new ProgressMeter(0, 100, () => now);
    meter.restart();
    // 400 ms of start-up before the first bytes: they open the window.
    now = 400;
    meter.advance(10);
    expect(meter.rate).toBe(0);
    expect(meter.etaMs).toBeUndefined();
    now = 800;
    meter.advance(10);
    expect(meter.rate).toBe(0);
    now = 900;
    meter.advance(10);
    expect(meter.rate).toBeCloseTo(40, 5);
    now = 60_000; // paused for a minute
    meter.restart();
    now = 60_700;
    meter.advance(20);
    expect(meter.rate).toBe(0);
    now = 61_200;
    meter.advance(10);
    expect(meter.rate).toBeCloseTo(20, 5);
    expect(meter.etaMs).toBeCloseTo(2000, 5);
  });

  it('while the governor holds the job back, takes the rate over the last 3 s instead of 10', () => {
    let now = 0;
    const meter = new ProgressMeter(0, 1e9, () => now);
    meter.restart();
    // 10 s at 1 byte per ms, then 3 s at 4.
    for (; now < 10_000; now += 10) meter.advance(10);
    for (; now < 13_000; now += 10) meter.advance(40);
    // Free: the last 10 s, 7 s of the old pace and 3 of the new.
    expect(Math.abs(meter.rate - ((7_000 + 12_000) / 10_000) * 1000)).toBeLessThan(2);
    // Held: the last 3 s, the new pace alone.
    meter.setHeld(true);
    expect(Math.abs(meter.rate - 4000)).toBeLessThan(15);
    // Back to free: the 10 s window again.
    meter.setHeld(false);
    expect(Math.abs(meter.rate - 1900)).toBeLessThan(2);
  });

  it('keeps both windows right when bytes come thousands of times a second (a held job copies 64 KiB at a time)', () => {
    let now = 0;
    const meter = new ProgressMeter(0, 1e12, () => now);
    meter.restart();
    // 4000 advances a second: 10 s at 64 bytes each, then 3 s at 256.
    for (let i = 0; i < 40_000; i++, now += 0.25) meter.advance(64);
    for (let i = 0; i < 12_000; i++, now += 0.25) meter.advance(256);
    meter.setHeld(true);
    expect(meter.rate / (256 * 4000)).toBeCloseTo(1, 2);
    meter.setHeld(false);
    expect(meter.rate / ((7 * 64 + 3 * 256) * 400)).toBeCloseTo(1, 2);
  });

  it('measures afresh after a change of pace: at once before a rate is claimed, else once the new pace has half a second', () => {
    let now = 0;
    const meter = new ProgressMeter(0, 10_000, () => now);
    meter.restart();
    // Held back: a trickle of 1 byte per ms for 100 ms, then let go at 10 bytes per ms.
    for (; now < 100; now += 10) meter.advance(10);
    meter.paceChanged();
    for (; now < 700; now += 10) meter.advance(100);
    // The window opened at the change: 10 bytes/ms, not the mix of both.
    expect(meter.rate).toBeCloseTo(10_000, 5);
    // Held back again, with a rate already claimed: the old window stands for half a second...
    meter.paceChanged();
    for (let until = now + 300; now < until; now += 10) meter.advance(20);
    const mixed = meter.rate;
    expect(mixed).toBeGreaterThan(2000);
    expect(mixed).toBeLessThan(10_000);
    expect(meter.etaMs).toBeDefined();
    // ...then the rate is the new pace's alone.
    for (let until = now + 300; now < until; now += 10) meter.advance(20);
    expect(meter.rate).toBeCloseTo(2000, 5);
    // A restart forgets the change.
    meter.restart();
    now += 1000;
    meter.advance(100);
    now += 500;
    meter.advance(100);
    expect(meter.rate).toBeCloseTo(200, 5);
  });
});

describe('Governor', () => {
  /** On fake timers: stops the foreground, lets the job's admissions run out, and ends the job. */
  const runOut = async (feed: ReturnType<typeof setInterval>, job: Promise<void>, end: () => void): Promise<void> => {
    clearInterval(feed);
    await vi.advanceTimersByTimeAsync(60_000);
    await job;
    end();
  };

  it('lets a job run unthrottled while there is no foreground I/O, probes the idle latency, then holds the job to the budget', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const governor = new Governor(() => 2);
      const end = governor.begin();
      expect(governor.sampling).toBe(true);
      await vi.advanceTimersByTimeAsync(700);
      expect(governor.throttled).toBe(false);
      // Foreground appears: the first window asks for a probe, during which job I/O waits.
      const feed = setInterval(() => {
        for (let i = 0; i < 20; i++) governor.sample(1 + (i % 3) * 0.1);
      }, 20);
      await vi.advanceTimersByTimeAsync(310);
      expect(governor.throttled).toBe(true);
      let admitted = false;
      const blocked = governor.admit(1024 * 1024).then(() => (admitted = true));
      await vi.advanceTimersByTimeAsync(100);
      expect(admitted).toBe(false);
      await vi.advanceTimersByTimeAsync(400);
      await blocked;
      expect(governor.idleP99).toBeCloseTo(1.2, 5);
      clearInterval(feed);
      // Foreground latency now 5× idle: above the budget, the job's rate is cut…
      const slow = setInterval(() => {
        for (let i = 0; i < 20; i++) governor.sample(6);
      }, 20);
      const job = (async () => {
        for (let i = 0; i < 40; i++) await governor.admit(256 * 1024);
      })();
      await vi.advanceTimersByTimeAsync(700);
      const cut = governor.rateLimit;
      expect(cut).toBeLessThan(Infinity);
      await vi.advanceTimersByTimeAsync(900);
      expect(governor.rateLimit).toBeLessThan(cut);
      clearInterval(slow);
      // …and back within the budget it grows again.
      const fine = setInterval(() => {
        for (let i = 0; i < 20; i++) governor.sample(1.2);
      }, 20);
      const low = governor.rateLimit;
      await vi.advanceTimersByTimeAsync(1000);
      expect(governor.rateLimit).toBeGreaterThan(low);
      clearInterval(fine);
      // No foreground any more: full speed.
      await vi.advanceTimersByTimeAsync(700);
      expect(governor.rateLimit).toBe(Infinity);
      await vi.advanceTimersByTimeAsync(60_000);
      await job;
      end();
      // No job: one foreground piece in 4 is timed, and each round of 1000 timed gives a p99.
      expect([0, 1, 2, 3, 4, 5, 6, 7].map(() => governor.sampling)).toEqual([true, false, false, false, true, false, false, false]);
      for (let i = 0; i < 1000; i++) governor.sample(0.5);
      expect(governor.idleP99).toBe(0.5);
    } finally {
      vi.useRealTimers();
    }
  });

  it('aims a little under the budget: pieces at 1.95× idle (within 2×) hold the job back', async () => {
    // What the governor times is not all a client waits for (see AIM in job-governor.ts).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const governor = new Governor(() => 2);
      const end = governor.begin();
      let ms = 1;
      const feed = setInterval(() => {
        for (let i = 0; i < 20; i++) governor.sample(ms);
      }, 20);
      // The first window probes: the idle p99 is 1 ms.
      await vi.advanceTimersByTimeAsync(1000);
      expect(governor.idleP99).toBe(1);
      expect(governor.rateLimit).toBe(Infinity);
      ms = 1.95;
      const job = (async () => {
        for (let i = 0; i < 40; i++) await governor.admit(256 * 1024);
      })();
      await vi.advanceTimersByTimeAsync(700);
      expect(governor.rateLimit).toBeLessThan(Infinity);
      await runOut(feed, job, end);
    } finally {
      vi.useRealTimers();
    }
  });

  it('takes the idle baseline from foreground I/O with no job; a job begun under foreground I/O begins held, slow, and doubles while within the budget', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const governor = new Governor(() => 2);
      const MiB = 1024 * 1024;
      for (let i = 0; i < 200; i++) {
        void governor.sampling; // the foreground's sign of life
        governor.sample(i % 50 === 0 ? 2 : 1);
      }
      expect(governor.idleP99).toBe(2);
      // Foreground goes on: the job begins held at 8 MiB/s, with no probe (the baseline is fresh).
      let end = governor.begin();
      expect(governor.throttled).toBe(true);
      expect(governor.rateLimit).toBe(8 * MiB);
      // Windows within the budget (p99 3 ms of 4) while the job keeps up with its limit: ×2 each.
      const job = (async () => {
        for (let i = 0; i < 400; i++) await governor.admit(256 * 1024);
      })();
      // Ten foreground pieces every 30 ms, the i-th taking ms(i).
      const feed30 = (ms: (i: number) => number): NodeJS.Timeout =>
        setInterval(() => {
          for (let i = 0; i < 10; i++) governor.sample(ms(i));
        }, 30);
      const feed = feed30((i) => (i === 0 ? 3 : 1));
      await vi.advanceTimersByTimeAsync(310);
      expect(governor.rateLimit).toBe(16 * MiB);
      await vi.advanceTimersByTimeAsync(300);
      // Doubled, or held to twice what the job did in the window if that is less.
      const doubled = governor.rateLimit;
      expect(doubled).toBeGreaterThan(28 * MiB);
      expect(doubled).toBeLessThanOrEqual(32 * MiB);
      // A window over the budget ends slow start: the limit is cut, and no longer doubles.
      clearInterval(feed);
      const slow = feed30(() => 8);
      await vi.advanceTimersByTimeAsync(300);
      const cut = governor.rateLimit;
      expect(cut).toBeLessThan(doubled);
      clearInterval(slow);
      const calm = feed30(() => 1);
      // A window that may still hold the last slow pieces, then a calm one: it grows, by 1.5 at most.
      await vi.advanceTimersByTimeAsync(300);
      const before = governor.rateLimit;
      await vi.advanceTimersByTimeAsync(300);
      expect(governor.rateLimit).toBeGreaterThan(before);
      expect(governor.rateLimit).toBeLessThanOrEqual(before * 1.5);
      clearInterval(calm);
      end();
      await vi.advanceTimersByTimeAsync(60_000);
      await job;
      // Long after the foreground stopped, a job begins at full speed.
      end = governor.begin();
      expect(governor.throttled).toBe(false);
      end();
      // Just after a burst of foreground I/O, it begins held, and runs free at the first look if the burst is over.
      void governor.sampling;
      end = governor.begin();
      expect(governor.rateLimit).toBe(8 * MiB);
      governor.sample(1);
      await vi.advanceTimersByTimeAsync(110);
      expect(governor.throttled).toBe(false);
      end();
      // If it goes on, it stays held.
      void governor.sampling;
      end = governor.begin();
      const goesOn = feed30(() => 1);
      await vi.advanceTimersByTimeAsync(110);
      expect(governor.rateLimit).toBe(8 * MiB);
      clearInterval(goesOn);
      end();
    } finally {
      vi.useRealTimers();
    }
  });

  it('held at the floor and still over budget, probes the idle latency again; the baseline is the median of the probes and the one the job began with', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const governor = new Governor(() => 2);
      for (let i = 0; i < 200; i++) {
        void governor.sampling;
        governor.sample(1);
      }
      const end = governor.begin();
      // Other load came: the foreground is 5× the old baseline whatever the job does.
      const feed = setInterval(() => {
        for (let i = 0; i < 20; i++) governor.sample(5);
      }, 20);
      const job = (async () => {
        for (let i = 0; i < 30; i++) await governor.admit(64 * 1024);
      })();
      await vi.advanceTimersByTimeAsync(6000);
      // The probe found the new idle latency. One probe moves the baseline half-way (the median
      // of it and the baseline the job began with), which puts the foreground within the budget…
      expect(governor.idleP99).toBe(3);
      // …and the next probe, agreeing, moves it all the way: the job is let go faster.
      await vi.advanceTimersByTimeAsync(15_000);
      expect(governor.idleP99).toBe(5);
      await vi.advanceTimersByTimeAsync(2000);
      expect(governor.rateLimit).toBeGreaterThan(2 * 1024 * 1024);
      await runOut(feed, job, end);
    } finally {
      vi.useRealTimers();
    }
  });

  it('p99 is the nearest-rank 99th percentile', () => {
    expect(p99([])).toBe(0);
    expect(p99([5])).toBe(5);
    expect(p99(Array.from({ length: 100 }, (_, i) => i + 1))).toBe(99);
    expect(p99(Array.from({ length: 1000 }, (_, i) => i + 1))).toBe(990);
  });

  it('takes the idle baseline as the median of the last 8 rounds\' p99s: one slow stretch does not move it', () => {
    const governor = new Governor(() => 2);
    const round = (ms: number, slow = 0): void => {
      for (let i = 0; i < 1000; i++) governor.sample(i < slow ? ms * 10 : ms);
    };
    // Until a round is complete, the p99 of what there is.
    for (let i = 0; i < 100; i++) governor.sample(i < 2 ? 9 : 1);
    expect(governor.idleP99).toBe(9);
    for (let i = 0; i < 900; i++) governor.sample(1);
    expect(governor.idleP99).toBe(1);
    for (let r = 0; r < 4; r++) round(1);
    // A round with a slow stretch (20 pieces at 10 ms: its p99 is 10) does not move the median.
    round(1, 20);
    expect(governor.idleP99).toBe(1);
    // Lasting change does, as it becomes most of the last 8 rounds.
    for (let r = 0; r < 3; r++) round(2);
    expect(governor.idleP99).toBe(1.5);
    round(2);
    expect(governor.idleP99).toBe(2);
  });

  it('forgets idle rounds older than 10 s, and after a quiet of that long starts its rounds again', () => {
    let clock = 0;
    const governor = new Governor(() => 2, () => clock);
    const round = (ms: number): void => {
      for (let i = 0; i < 1000; i++) {
        clock += 1;
        governor.sample(ms);
      }
    };
    // A bulk write: slow pieces, for 8 rounds.
    for (let r = 0; r < 8; r++) round(20);
    expect(governor.idleP99).toBe(20);
    // Reads 9 s later (no quiet of 10 s since the last write): the write rounds over 10 s old are gone at once…
    clock += 9_000;
    round(1);
    expect(governor.idleP99).toBe((20 + 1) / 2);
    // …and the last one a round later.
    round(1);
    expect(governor.idleP99).toBe(1);
    // 11 s of quiet, then writes again: the reads' rounds and pieces are forgotten.
    clock += 11_000;
    for (let i = 0; i < 100; i++) governor.sample(7);
    expect(governor.idleP99).toBe(7);
  });

  it('median is the middle value, or the mean of the two middle ones', () => {
    expect(median([])).toBe(0);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
