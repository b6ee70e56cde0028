/**
 * BENCH FIXTURE — not the engine. Installed into the page by bench/ui.ts
 * (page.addInitScript) as `window.spindle`, the same seam the Electron
 * preload uses, so the renderer runs unchanged: a simulated pool of 24
 * drives with 4 volumes and 4 live jobs, pushing job-progress at 10 a second
 * per job, member-io-rate once a second per drive, error counters now and
 * then, and engine-status once a second: the event load of a busy pool.
 *
 * Self-contained on purpose: Playwright sends this function's source to the
 * page, so it may use nothing from outside its body.
 */
export interface FixtureOptions {
  readonly drives: number;
  readonly jobs: number;
  readonly chunksPerVolume: number;
}

export function installBenchFixture(options: FixtureOptions): void {
  const MiB = 1024 * 1024;
  const GiB = 1024 * MiB;
  const slabSize = 256 * MiB;
  const pool = 'bench';
  const listeners = new Map<string, Set<(data: unknown) => void>>();
  const emit = (event: string, data: unknown): void => {
    for (const l of listeners.get(event) ?? []) l(data);
  };
  const uuid = (i: number) => `${(0x1000 + i).toString(16)}aa${'0'.repeat(26)}`.slice(0, 32);
  const spares = 2;
  const members = Array.from({ length: options.drives }, (_, i) => ({
    uuid: uuid(i),
    uri: `nbd+unix:///disk${i}?socket=/run/spindle/helper.sock`,
    role: i >= options.drives - spares ? 'spare' : 'data',
    state: i === 3 ? 'failed' : 'online',
    errors: { read: i === 3 ? 12 : 0, write: 0, checksum: i === 7 ? 2 : 0 },
    slabCount: 40 + (i % 5) * 8,
    freeSlabs: i >= options.drives - spares ? 40 + (i % 5) * 8 : 10 + (i % 7),
    ...(i === 3 ? { reason: 'read errors' } : {}),
  }));
  const data = members.filter((m) => m.role === 'data');
  const layouts = [
    { name: 'vm-images', layout: 'raid6', width: 8, copies: 1 },
    { name: 'photos', layout: 'raid1', width: 2, copies: 2 },
    { name: 'scratch', layout: 'raid0', width: 6, copies: 1 },
    { name: 'archive', layout: 'raid5', width: 10, copies: 1 },
  ];
  const volumes = layouts.map((l) => ({ pool, name: l.name, size: options.chunksPerVolume * slabSize * l.width, layout: l.layout, width: l.width, copies: l.copies, state: 'degraded', export: { exportName: `${pool}/${l.name}`, uri: `nbd+unix:///${pool}/${l.name}?socket=/run/spindle/nbd.sock`, socket: '/run/spindle/nbd.sock' } }));
  const roleOf = (layout: string, col: number, width: number) =>
    layout === 'raid1' ? (col === 0 ? 'data' : 'copy') : layout === 'raid6' ? (col === width - 1 ? 'parity-q' : col === width - 2 ? 'parity-p' : 'data') : layout === 'raid5' ? (col === width - 1 ? 'parity-p' : 'data') : 'data';
  const volumeStatus = (name: string) => {
    const v = layouts.find((l) => l.name === name)!;
    const chunks = Array.from({ length: options.chunksPerVolume }, (_, id) => ({
      id,
      capacity: slabSize * v.width,
      columns: Array.from({ length: v.width }, (_, c) => {
        const m = data[(id * 3 + c) % data.length]!;
        return { member: m.uuid, slab: id, role: roleOf(v.layout, c, v.width), state: m.state };
      }),
    }));
    return { ...volumes.find((x) => x.name === name)!, chunkCount: chunks.length, firstChunk: 0, chunks };
  };
  const summary = { name: pool, uuid: 'b'.repeat(32), health: 'degraded', demo: true, memberCount: members.length, volumeCount: volumes.length, problem: 'member disk3 is failed' };
  const status = () => ({
    ...summary,
    slabSize,
    slabDataBytes: slabSize - MiB,
    members,
    volumes,
    freeSpace: { raid0: 400 * GiB, raid1: 200 * GiB, raid1x3: 133 * GiB, raid10: 200 * GiB, raid5: 360 * GiB, raid6: 320 * GiB },
    policy: { autoRepair: true, latencyBudget: 2 },
  });
  const drives = members.map((m, i) => ({
    id: `wwn-0x5000c500${(0xa0000 + i).toString(16)}`,
    path: `/dev/disk/by-id/ata-BENCH_${i}`,
    uri: m.uri,
    model: i % 3 === 0 ? 'Samsung SSD 870 EVO 2TB' : 'WDC WD140EDFZ-11A0VA0',
    serial: `BN${1000 + i}`,
    size: m.slabCount * slabSize,
    rotational: i % 3 !== 0,
    transport: i % 3 === 0 ? 'nvme' : 'sata',
    state: i === 3 ? 'failed' : i === 11 ? 'failing' : 'online',
    smart: { verdict: i === 11 ? 'failed' : 'passed', temperatureC: 30 + (i % 12), reallocated: i === 11 ? 220 : 0, pending: i === 11 ? 8 : 0, uncorrectable: 0, powerOnHours: 1000 + i * 97, warnings: [] },
    poolName: pool,
    role: m.role,
    memberUuid: m.uuid,
  }));
  const kinds = ['rebuild', 'rebalance', 'migrate', 'scrub', 'evacuate', 'relocate'];
  const jobs = Array.from({ length: options.jobs }, (_, i) => ({
    id: `job-${i + 1}`,
    pool,
    kind: kinds[i % kinds.length]!,
    state: 'running',
    title: `${kinds[i % kinds.length]![0]!.toUpperCase()}${kinds[i % kinds.length]!.slice(1)} of ${volumes[i % volumes.length]!.name}`,
    bytesDone: 0,
    bytesTotal: (40 + i * 10) * GiB,
    rate: 0,
    etaSeconds: null as number | null,
    heldBack: i % 2 === 1,
    action: { kind: 'rebalance' },
    startedAt: new Date().toISOString(),
  }));
  const started = performance.now();
  const replies: Record<string, (p: Record<string, unknown>) => unknown> = {
    version: () => ({ version: 'bench-fixture', contractVersion: 1, pid: 0, uptimeMs: performance.now() - started, startedAt: new Date().toISOString(), nodeVersion: 'n/a' }),
    'pool-list': () => ({ pools: [summary] }),
    'pool-status': () => status(),
    'volume-status': (p) => volumeStatus(String(p.name)),
    'drives-list': () => ({ drives }),
    'job-list': () => ({ jobs }),
  };
  (globalThis as unknown as { spindle: unknown }).spindle = {
    request: (method: string, params: Record<string, unknown>) => {
      const reply = replies[method];
      return reply ? Promise.resolve(structuredClone(reply(params))) : Promise.reject(new Error(`bench fixture: ${method} is not simulated`));
    },
    on: (event: string, listener: (data: unknown) => void) => {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener);
      return () => set.delete(listener);
    },
  };
  // Each job at 10 events a second, staggered like independent timers.
  jobs.forEach((job, i) => {
    setTimeout(() => {
      setInterval(() => {
        const rate = (180 + 40 * Math.sin(performance.now() / 1500 + i)) * MiB;
        job.bytesDone = Math.min(job.bytesTotal, job.bytesDone + rate / 10);
        job.rate = rate;
        job.etaSeconds = (job.bytesTotal - job.bytesDone) / rate;
        const { action: _a, startedAt: _s, ...progress } = job;
        emit('job-progress', progress);
      }, 100);
    }, i * 23);
  });
  setInterval(() => {
    const t = performance.now() / 1000;
    members.forEach((m, i) => {
      if (m.state !== 'online') return;
      emit('member-io-rate', { pool, member: m.uuid, readBytesPerSec: (60 + 50 * Math.sin(t + i)) * MiB, writeBytesPerSec: (30 + 25 * Math.cos(t / 2 + i)) * MiB });
    });
    emit('engine-status', { uptimeMs: performance.now() - started, startedAt: new Date().toISOString(), version: 'bench-fixture' });
  }, 1000);
  setInterval(() => {
    const m = members[7]!;
    m.errors = { ...m.errors, checksum: m.errors.checksum + 1 };
    emit('member-errors', { pool, member: m.uuid, errors: m.errors });
  }, 2500);
}
