/**
 * Drives, reconfiguration, plans and jobs through the real control socket:
 * an engine host and its registry in this process, a pool on sparse image
 * files, data written and checked with qemu-io over the volumes' NBD
 * exports. Jobs are held to a few MiB/s (the engine's own maxRate knob)
 * where a test must watch one run, pause or cancel it.
 */
import { readFile, truncate, writeFile, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, qemuIo, run, tempDir } from '../nbd/test-support.js';
import type { Drive, EventName, Events, JobSummary, MemberStatus, Plan, PoolStatus, RequestName } from '../../preload/api.js';
import { openMember } from '../engine/member-uri.js';
import { createPool } from '../engine/pool-open.js';
import { ControlClient } from './control-client.js';
import { EngineHost } from './engine-host.js';
import { PoolRegistry } from './pool-registry.js';
import { ensurePrivateDir } from './runtime-paths.js';

const MiB = 1024 * 1024;
const SLAB = 8 * MiB + 64 * 1024;

let dir: string;
let socketPath: string;
let pools: PoolRegistry;
let host: EngineHost;
let client: ControlClient;
let events: Array<{ event: EventName; data: unknown; at: number }> = [];
const image = (name: string): string => join(dir, `${name}.img`);
const uri = (name: string): string => `file:${image(name)}`;

async function startHost(): Promise<void> {
  pools = new PoolRegistry({ stateDir: join(dir, 'state'), runtimeDir: join(dir, 'run') });
  host = new EngineHost({ socketPath, version: '0.0.0-test', pools });
  await host.listen();
  client = await ControlClient.connect(socketPath);
  client.onAnyEvent((event, data) => events.push({ event, data, at: performance.now() }));
}

async function stopHost(): Promise<void> {
  client.close();
  await host.close();
  await pools.close();
}

function call<T = unknown>(method: RequestName | string, params: unknown): Promise<T> {
  return client.requestUnchecked(method, params) as Promise<T>;
}

async function expectFailure(method: string, params: unknown, code: string, message: RegExp): Promise<void> {
  await expect(call(method, params)).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
}

function eventsOf<E extends EventName>(event: E, match: (data: Events[E]) => boolean = () => true): Array<Events[E] & { at: number }> {
  return events.filter((e) => e.event === event && match(e.data as Events[E])).map((e) => ({ ...(e.data as Events[E]), at: e.at }));
}

async function seen<E extends EventName>(event: E, match: (data: Events[E]) => boolean, timeout = 30_000): Promise<Events[E]> {
  await expect.poll(() => eventsOf(event, match).length, { timeout }).toBeGreaterThan(0);
  return eventsOf(event, match)[0]!;
}

/** Slows every job of the pool to `rate` bytes per second (undefined: full speed). */
async function jobRate(pool: string, rate: number | undefined): Promise<void> {
  const runner = (await pools.pool(pool)).jobs;
  runner.tuning = { ...runner.tuning, maxRate: rate };
}

async function finished(id: string, timeout = 60_000): Promise<Events['job-finished']> {
  return seen('job-finished', (j) => j.id === id, timeout);
}

async function status(pool = 'tank'): Promise<PoolStatus> {
  return call<PoolStatus>('pool-status', { pool });
}

async function makeImages(sizes: Record<string, number>): Promise<void> {
  for (const [name, size] of Object.entries(sizes)) {
    await writeFile(image(name), '');
    await truncate(image(name), size);
  }
}

beforeAll(async () => {
  dir = await tempDir('spindle-jobs-api-');
  await ensurePrivateDir(join(dir, 'run'));
  await ensurePrivateDir(join(dir, 'state'));
  socketPath = join(dir, 'run', 'control.sock');
  await makeImages({ d0: 64 * MiB, d1: 64 * MiB, d2: 64 * MiB, d3: 64 * MiB, s0: 64 * MiB, new0: 96 * MiB, new1: 64 * MiB, tiny: MiB });
  await startHost();
});

afterAll(async () => {
  await stopHost().catch(() => {});
  await cleanupAll();
}, 60_000);

describe('drives, plans and jobs over the control socket', { timeout: 120_000 }, () => {
  it.each([
    ['drives-list', { all: true }],
    ['pool-add-member', { pool: 'tank', members: [] }],
    ['pool-remove-member', { pool: 'tank' }],
    ['pool-set-spare', { pool: 'tank', member: 'abcd' }],
    ['pool-set-policy', { pool: 'tank', policy: { latencyBudget: 20 } }],
    ['pool-set-policy', { pool: 'tank', policy: { scrubIntervalHours: 24 } }],
    ['plan', { pool: 'tank', action: { kind: 'defrag' } }],
    ['plan', { pool: 'tank', action: { kind: 'scrub', volume: '' } }],
    ['job-start', { pool: 'tank', action: { kind: 'migrate', volume: 'v' } }],
    ['job-list', { pool: '../x' }],
    ['job-pause', {}],
    ['job-resume', { id: 'a b' }],
    ['job-cancel', { id: 7 }],
  ])('refuses bad parameters for %s with INVALID_PARAMS', async (method, params) => {
    await expectFailure(method, params, 'INVALID_PARAMS', new RegExp(`^invalid parameters for "${method}": \\S+`));
  });

  it.each([
    ['pool-add-member', { pool: 'nope', members: ['file:/x.img'] }],
    ['pool-remove-member', { pool: 'nope', member: 'abcd' }],
    ['pool-set-spare', { pool: 'nope', member: 'abcd', spare: true }],
    ['pool-set-policy', { pool: 'nope', policy: { autoRepair: false } }],
    ['plan', { pool: 'nope', action: { kind: 'rebalance' } }],
    ['job-start', { pool: 'nope', action: { kind: 'scrub' } }],
    ['job-list', { pool: 'nope' }],
  ])('takes good parameters for %s and says clearly that the pool does not exist', async (method, params) => {
    await expectFailure(method, params, 'FAILED', /^no pool named "nope" \(there are no pools\)$/);
  });

  it.each(['job-pause', 'job-resume', 'job-cancel'])('%s of an unknown job says there is none', async (method) => {
    await expectFailure(method, { id: 'feedbeef' }, 'FAILED', /^no job feedbeef: there are no open pools$/);
  });

  it('makes a pool, volumes with data, and sets its policy (automatic repair off, latency budget 3)', async () => {
    await call('pool-create', { name: 'tank', members: ['d0', 'd1', 'd2', 'd3'].map(uri), spares: [uri('s0')], slabSize: SLAB, demo: true });
    await call('volume-create', { pool: 'tank', name: 'mirror', size: 16 * MiB, layout: 'raid1' });
    await call('volume-create', { pool: 'tank', name: 'parity', size: 24 * MiB, layout: 'raid5' });
    for (const name of ['mirror', 'parity']) {
      const exported = await call<{ export: { uri: string } }>('volume-export', { pool: 'tank', name });
      await qemuIo(exported.export.uri, `write -P 0x5a 0 ${name === 'mirror' ? 16 : 24}M`);
    }
    expect((await status()).policy).toEqual({ autoRepair: true, latencyBudget: 2 });
    const reply = await call<PoolStatus & { policy: unknown }>('pool-set-policy', { pool: 'tank', policy: { autoRepair: false, latencyBudget: 3 } });
    expect(reply).toMatchObject({ name: 'tank', policy: { autoRepair: false, latencyBudget: 3 } });
    expect(await call('pool-set-policy', { pool: 'tank', policy: { latencyBudget: 2.5 } })).toMatchObject({ policy: { autoRepair: false, latencyBudget: 2.5 } });
    expect((await status()).policy).toEqual({ autoRepair: false, latencyBudget: 2.5 });
  });

  it('lists the drives: members and spare with their pool, role and uuid; the helper disks as unassigned, refused ones with the reason', async () => {
    const { drives } = await call<{ drives: Drive[] }>('drives-list', {});
    const pool = await status();
    for (const m of pool.members) {
      expect(drives.find((d) => d.memberUuid === m.uuid)).toMatchObject({ poolName: 'tank', role: m.role, uri: m.uri, path: m.uri.slice(5), transport: 'file', state: 'online', smart: null });
    }
    expect(drives.filter((d) => d.role === 'spare').map((d) => d.uri)).toEqual([uri('s0')]);
    const unassigned = drives.filter((d) => d.poolName === null);
    // This machine's disks, as the helper lists them (the system disk among them, refused).
    for (const d of unassigned) {
      expect(d.uri).toMatch(new RegExp(`^nbd\\+unix:///\\S+\\?socket=${join(dir, 'run', 'helper', 'disks.sock')}$`));
      expect(d.role).toBeNull();
    }
    const logs = eventsOf('log', (l) => /disk helper/.test(l.message));
    expect(unassigned.length > 0 || logs.length > 0, 'either the helper lists disks or a log event says why not').toBe(true);
    // Usable disks first; a refused one says why.
    const firstRefused = unassigned.findIndex((d) => d.unusableReason !== undefined);
    if (firstRefused >= 0) expect(unassigned.slice(firstRefused).every((d) => typeof d.unusableReason === 'string' && d.unusableReason.length > 0)).toBe(true);
    for (const d of unassigned.filter((u) => u.path === '/dev/vda' || u.unusableReason?.includes('running system'))) {
      expect(d.unusableReason).toMatch(/running system|no WWN or serial/);
    }
  });

  it('plans a rebuild as impossible while nothing has failed, and says why', async () => {
    const plan = await call<Plan>('plan', { pool: 'tank', action: { kind: 'rebuild' } });
    expect(plan).toMatchObject({ possible: false, bytesToMove: 0, reason: expect.stringMatching(/no member of pool tank that holds data has failed/) });
    await expectFailure('job-start', { pool: 'tank', action: { kind: 'rebuild' } }, 'FAILED', /^cannot rebuild pool tank: no member of pool tank that holds data has failed/);
  });

  let victim: MemberStatus;

  it('fails a member and plans its rebuild onto the spare: bytes, space per member, redundancy during and after, time, risk window', async () => {
    victim = (await status()).members.find((m) => m.uri === uri('d1'))!;
    await call('member-fail', { pool: 'tank', member: victim.uuid });
    const plan = await call<Plan>('plan', { pool: 'tank', action: { kind: 'rebuild' } });
    expect(plan).toMatchObject({ pool: 'tank', possible: true, action: { kind: 'rebuild' } });
    expect(plan.summary).toMatch(/rebuild .*d1\.img.* onto spare .*s0\.img/);
    const onVictim = victim.slabCount - victim.freeSlabs;
    expect(onVictim).toBeGreaterThan(0);
    expect(plan.bytesToMove).toBe(onVictim * (SLAB - 64 * 1024));
    const spare = plan.perMember.find((m) => m.uri === uri('s0'))!;
    expect(spare.before.usedBytes).toBe(0);
    expect(spare.after.usedBytes).toBe(onVictim * SLAB);
    expect(plan.perMember.find((m) => m.member === victim.uuid)!.after).toEqual({ usedBytes: 0, freeBytes: 0 });
    expect(plan.redundancyDuring).toMatchObject({ failuresTolerated: 0, description: expect.stringMatching(/survives no further member failure/) });
    expect(plan.redundancyAfter).toMatchObject({ failuresTolerated: 1, description: 'every volume survives 1 more member failure' });
    expect(plan.estimatedSeconds).toBeGreaterThanOrEqual(1);
    expect(plan.riskWindowSeconds).toBe(plan.estimatedSeconds);
    expect(plan.notes).toContainEqual(expect.stringMatching(/no job has run on this pool yet/));
    // Onto a named spare that does not exist: impossible, with the reason.
    expect(await call('plan', { pool: 'tank', action: { kind: 'rebuild', spare: 'ffffffff' } })).toMatchObject({ possible: false, reason: 'pool tank has no member "ffffffff" (give its uuid, a prefix of at least 4 characters, or its URI)' });
    // Onto a data member: the engine's refusal.
    expect(await call('plan', { pool: 'tank', action: { kind: 'rebuild', spare: uri('d0') } })).toMatchObject({ possible: false, reason: expect.stringMatching(/is not a spare/) });
  });

  it('rebuilds onto the spare: progress at most 10 a second, member I/O rates, a report; the old member leaves the pool and pools.json; data verified', async () => {
    await jobRate('tank', 8 * MiB);
    events = [];
    const job = await call<JobSummary>('job-start', { pool: 'tank', action: { kind: 'rebuild' } });
    expect(job).toMatchObject({ pool: 'tank', kind: 'rebuild', action: { kind: 'rebuild' }, title: expect.stringMatching(/^Rebuild /), startedAt: expect.any(String) });
    expect(['queued', 'running']).toContain(job.state);
    await expectFailure('job-start', { pool: 'tank', action: { kind: 'rebuild' } }, 'FAILED', new RegExp(`is already being repaired by job ${job.id}`));
    const listed = await call<{ jobs: JobSummary[] }>('job-list', { pool: 'tank' });
    expect(listed.jobs.find((j) => j.id === job.id)).toMatchObject({ kind: 'rebuild', state: expect.stringMatching(/queued|running/) });
    const done = await finished(job.id);
    expect(done).toMatchObject({ id: job.id, state: 'done', kind: 'rebuild', report: { badBlocks: [], blocksLost: 0, membersRemoved: [victim.uuid] } });
    expect(done.report.movedBytes).toBe(done.bytesTotal);
    expect(done.report.movedBytes).toBeGreaterThan(0);
    expect(done.report.elapsedSeconds).toBeGreaterThan(0.5);
    const progress = eventsOf('job-progress', (p) => p.id === job.id);
    expect(progress.length).toBeGreaterThan(2);
    expect(progress.some((p) => p.state === 'running' && p.rate > 0 && p.etaSeconds !== null)).toBe(true);
    for (const p of progress) expect(progressInLastSecond(progress, p.at)).toBeLessThanOrEqual(10);
    // No progress after the end.
    const end = eventsOf('job-finished', (j) => j.id === job.id)[0]!.at;
    expect(progress.every((p) => p.at <= end)).toBe(true);
    const spare = (await status()).members.find((m) => m.uri === uri('s0'))!;
    expect(eventsOf('member-io-rate', (r) => r.member === spare.uuid && r.writeBytesPerSec > 0).length).toBeGreaterThan(0);

    const after = await status();
    expect(after).toMatchObject({ health: 'online', memberCount: 4 });
    expect(after.members.map((m) => m.uri)).not.toContain(uri('d1'));
    expect(spare.role).toBe('data');
    await expect.poll(async () => JSON.parse(await readFile(join(dir, 'state', 'pools.json'), 'utf8')).pools[0].members).toEqual(['d0', 'd2', 'd3', 's0'].map(uri));
    for (const name of ['mirror', 'parity']) {
      const v = await call<{ export: { uri: string } }>('volume-status', { pool: 'tank', name });
      await qemuIo(v.export.uri, `read -P 0x5a 0 ${name === 'mirror' ? 16 : 24}M`);
    }
    const list = await call<{ jobs: JobSummary[] }>('job-list', {});
    expect(list.jobs.find((j) => j.id === job.id)).toMatchObject({ state: 'done', finishedAt: expect.any(String), report: { movedBytes: done.report.movedBytes } });
  });

  it('pauses, resumes and cancels a scrub; the cancelled one is in the list with its report', async () => {
    await jobRate('tank', 4 * MiB);
    events = [];
    const job = await call<JobSummary>('job-start', { pool: 'tank', action: { kind: 'scrub' } });
    expect(job).toMatchObject({ kind: 'scrub', action: { kind: 'scrub' } });
    await seen('job-progress', (p) => p.id === job.id && p.bytesDone > 0);
    const paused = await call<JobSummary>('job-pause', { id: job.id });
    expect(paused).toMatchObject({ id: job.id, state: 'paused' });
    await seen('job-progress', (p) => p.id === job.id && p.state === 'paused');
    // Batches already in flight when it paused still land; then nothing moves.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const at = (await call<{ jobs: JobSummary[] }>('job-list', { pool: 'tank' })).jobs.find((j) => j.id === job.id)!;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const still = (await call<{ jobs: JobSummary[] }>('job-list', { pool: 'tank' })).jobs.find((j) => j.id === job.id)!;
    expect(still).toMatchObject({ state: 'paused', bytesDone: at.bytesDone, rate: 0, etaSeconds: null });
    expect(await call('job-resume', { id: job.id })).toMatchObject({ id: job.id, state: expect.stringMatching(/running|queued/) });
    await seen('job-progress', (p) => p.id === job.id && p.state === 'running' && p.bytesDone > at.bytesDone);
    const cancelled = await call<JobSummary>('job-cancel', { id: job.id });
    expect(cancelled).toMatchObject({ id: job.id, state: 'cancelled', report: { movedBytes: 0, checkedBytes: expect.any(Number) } });
    await finished(job.id);
    await expectFailure('job-cancel', { id: job.id }, 'FAILED', new RegExp(`^job ${job.id} of pool tank has already finished \\(cancelled\\)$`));
    await expectFailure('job-pause', { id: 'feedbeef' }, 'FAILED', /^no job feedbeef in pool tank$/);
    await jobRate('tank', undefined);
  });

  it('scrubs a volume with a corrupted block: the report places the bad block in its volume and says where the good data came from', async () => {
    const damage = await call<{ member: string }>('volume-corrupt', { pool: 'tank', name: 'parity', offset: 5 * MiB + 8192 });
    const plan = await call<Plan>('plan', { pool: 'tank', action: { kind: 'scrub', volume: 'parity' } });
    expect(plan).toMatchObject({ possible: true, redundancyDuring: { failuresTolerated: 1 }, riskWindowSeconds: 0 });
    expect(plan.bytesToMove).toBeGreaterThan(0);
    const job = await call<JobSummary>('job-start', { pool: 'tank', action: { kind: 'scrub', volume: 'parity' } });
    const done = await finished(job.id);
    expect(done.report).toMatchObject({ movedBytes: 0, blocksRepaired: 1, blocksLost: 0 });
    expect(done.report.badBlocks).toEqual([
      { volume: 'parity', offset: 5 * MiB + 8192, bytes: 4096, member: damage.member, repairedFrom: expect.stringMatching(/^parity of row \d+$/) },
    ]);
    expect(await call('plan', { pool: 'tank', action: { kind: 'scrub', volume: 'nothing' } })).toMatchObject({ possible: false, reason: 'pool tank has no volume "nothing"' });
  });

  it('migrates a volume to another layout online', async () => {
    const plan = await call<Plan>('plan', { pool: 'tank', action: { kind: 'migrate', volume: 'mirror', layout: 'raid5' } });
    expect(plan).toMatchObject({ possible: true, summary: expect.stringMatching(/mirror/) });
    const job = await call<JobSummary>('job-start', { pool: 'tank', action: { kind: 'migrate', volume: 'mirror', layout: 'raid5' } });
    expect(job).toMatchObject({ kind: 'migrate', action: { kind: 'migrate', volume: 'mirror', layout: 'raid5' } });
    expect(await finished(job.id)).toMatchObject({ state: 'done' });
    expect((await status()).volumes.find((v) => v.name === 'mirror')).toMatchObject({ layout: 'raid5', state: 'online' });
    const v = await call<{ export: { uri: string } }>('volume-status', { pool: 'tank', name: 'mirror' });
    await qemuIo(v.export.uri, 'read -P 0x5a 0 16M');
    expect(await call('plan', { pool: 'tank', action: { kind: 'migrate', volume: 'mirror', layout: 'raid5' } })).toMatchObject({ possible: false, reason: expect.stringMatching(/is already raid5/) });
    await expectFailure('job-start', { pool: 'tank', action: { kind: 'migrate', volume: 'mirror', layout: 'raid5' } }, 'FAILED', /^cannot migrate volume tank\/mirror to raid5: volume mirror is already raid5/);
  });

  it('plans adding a drive (a forecast the engine then holds to), adds it and rebalances onto it', async () => {
    expect(await call('plan', { pool: 'tank', action: { kind: 'add', members: [uri('d0')] } })).toMatchObject({ possible: false, reason: expect.stringMatching(/d0\.img is already a member of pool tank/) });
    expect(await call('plan', { pool: 'tank', action: { kind: 'add', members: [uri('tiny')] } })).toMatchObject({ possible: false, reason: expect.stringMatching(/too small/) });
    const plan = await call<Plan>('plan', { pool: 'tank', action: { kind: 'add', members: [uri('new0')] } });
    expect(plan).toMatchObject({ possible: true, riskWindowSeconds: 0 });
    expect(plan.bytesToMove).toBeGreaterThan(0);
    const added = plan.perMember.find((m) => m.member === uri('new0'))!;
    expect(added.before.usedBytes).toBe(0);
    expect(added.after.usedBytes).toBe((plan.bytesToMove / (SLAB - 64 * 1024)) * SLAB);
    const job = await call<JobSummary>('job-start', { pool: 'tank', action: { kind: 'add', members: [uri('new0')] } });
    expect(job).toMatchObject({ kind: 'rebalance', action: { kind: 'add', members: [uri('new0')] }, bytesTotal: plan.bytesToMove });
    expect(await finished(job.id)).toMatchObject({ state: 'done', report: { movedBytes: plan.bytesToMove } });
    const after = await status();
    expect(after.members.find((m) => m.uri === uri('new0'))).toMatchObject({ role: 'data', state: 'online' });
    for (const m of after.members) {
      const inPlan = plan.perMember.find((p) => p.member === m.uuid || p.member === m.uri)!;
      expect((m.slabCount - m.freeSlabs) * SLAB, m.uri).toBe(inPlan.after.usedBytes);
    }
    expect(await call('plan', { pool: 'tank', action: { kind: 'rebalance' } })).toMatchObject({ possible: false, reason: expect.stringMatching(/balanced already/) });
  });

  it('asks before erasing a drive that holds another pool\'s label: refused with what it erases, then added with force', async () => {
    await makeImages({ old: 64 * MiB });
    // A member of a pool this engine does not know (another machine's, or one whose state was lost).
    const elsewhere = await createPool({ name: 'elsewhere', members: [{ uri: uri('old'), device: await openMember(uri('old')) }], slabSize: SLAB });
    await elsewhere.close();
    const action = { kind: 'add', members: [uri('old')] };
    const refused = await call<Plan>('plan', { pool: 'tank', action });
    expect(refused).toMatchObject({ possible: false, erases: [expect.stringMatching(/old\.img holds the label of member [0-9a-f-]{36} of another Spindle pool \([0-9a-f-]{36}\), not open here: adding it erases that/)] });
    expect(refused.reason).toMatch(/Add it with force to erase it$/);
    await expectFailure('job-start', { pool: 'tank', action }, 'FAILED', /is member [0-9a-f-]{36} of pool [0-9a-f-]{36}/);
    expect((await status()).members.some((m) => m.uri === uri('old'))).toBe(false);
    const forced = await call<Plan>('plan', { pool: 'tank', action: { ...action, force: true } });
    expect(forced).toMatchObject({ possible: true, erases: refused.erases });
    const job = await call<JobSummary>('job-start', { pool: 'tank', action: { ...action, force: true } });
    expect(await finished(job.id)).toMatchObject({ state: 'done' });
    expect((await status()).members.find((m) => m.uri === uri('old'))).toMatchObject({ role: 'data', state: 'online' });
  });

  it('makes a new drive a spare at once, refuses a data member that holds data, and takes the spare out again', async () => {
    const plan = await call<Plan>('plan', { pool: 'tank', action: { kind: 'spare', member: uri('new1') } });
    expect(plan).toMatchObject({ possible: true, bytesToMove: 0, summary: expect.stringMatching(/as a spare \(nothing moves\)/) });
    const job = await call<JobSummary>('job-start', { pool: 'tank', action: { kind: 'spare', member: uri('new1') } });
    expect(job).toMatchObject({ kind: 'spare', state: 'done', report: { movedBytes: 0 } });
    expect((await status()).members.find((m) => m.uri === uri('new1'))).toMatchObject({ role: 'spare' });
    expect(await call('plan', { pool: 'tank', action: { kind: 'spare', member: uri('new1') } })).toMatchObject({ possible: false, reason: expect.stringMatching(/is already a spare/) });
    expect(await call('plan', { pool: 'tank', action: { kind: 'spare', member: uri('d0') } })).toMatchObject({ possible: false, reason: expect.stringMatching(/holds \d+ slabs? of data: remove it from the pool first/) });
    await expectFailure('pool-set-spare', { pool: 'tank', member: uri('d0'), spare: false }, 'FAILED', /is a data member of pool tank, not a spare/);
    const out = await call<PoolStatus>('pool-set-spare', { pool: 'tank', member: uri('new1'), spare: false });
    expect(out.members.map((m) => m.uri)).not.toContain(uri('new1'));
    const back = await call<PoolStatus>('pool-set-spare', { pool: 'tank', member: uri('new1'), spare: true });
    expect(back.members.find((m) => m.uri === uri('new1'))).toMatchObject({ role: 'spare' });
  });

  it('removes a member: its data moves off, it leaves the pool, the data stays readable', async () => {
    const plan = await call<Plan>('plan', { pool: 'tank', action: { kind: 'remove', member: uri('new0') } });
    expect(plan).toMatchObject({ possible: true, summary: expect.stringMatching(/evacuate .*new0\.img/) });
    const job = await call<JobSummary>('pool-remove-member', { pool: 'tank', member: uri('new0') });
    expect(job).toMatchObject({ kind: 'evacuate', action: { kind: 'remove', member: uri('new0') } });
    expect(await finished(job.id)).toMatchObject({ state: 'done' });
    expect((await status()).members.map((m) => m.uri)).not.toContain(uri('new0'));
    const v = await call<{ export: { uri: string } }>('volume-status', { pool: 'tank', name: 'parity' });
    await qemuIo(v.export.uri, 'read -P 0x5a 0 24M');
    await expectFailure('pool-remove-member', { pool: 'tank', member: uri('new0') }, 'FAILED', /^cannot remove .*new0\.img from pool tank: pool tank has no member/);
  });

  it('adds members directly (pool-add-member), refusing a drive already in the pool', async () => {
    const reply = await call<PoolStatus>('pool-add-member', { pool: 'tank', members: [uri('new0')] });
    expect(reply.members.find((m) => m.uri === uri('new0'))).toMatchObject({ role: 'data', state: 'online', freeSlabs: expect.any(Number) });
    await expectFailure('pool-add-member', { pool: 'tank', members: [uri('new0')] }, 'FAILED', /new0\.img is already a member of pool tank/);
    await expectFailure('pool-add-member', { pool: 'tank', members: [uri('absent')] }, 'FAILED', /absent\.img/);
  });

  it('reports the repair the engine starts by itself (automatic repair on) like any other job', async () => {
    await call('pool-set-policy', { pool: 'tank', policy: { autoRepair: true } });
    const member = (await status()).members.find((m) => m.uri === uri('d2'))!;
    events = [];
    await call('member-fail', { pool: 'tank', member: member.uuid });
    const progress = await seen('job-progress', (p) => p.kind === 'rebuild');
    expect(progress.title).toMatch(/^Rebuild .*d2\.img.* onto spare .*new1\.img/);
    const done = await finished(progress.id);
    expect(done).toMatchObject({ state: 'done', action: { kind: 'rebuild' }, report: { membersRemoved: [member.uuid] } });
    expect((await call<{ jobs: JobSummary[] }>('job-list', { pool: 'tank' })).jobs.find((j) => j.id === progress.id)).toMatchObject({ state: 'done' });
    expect(await status()).toMatchObject({ health: 'online' });
    await call('pool-set-policy', { pool: 'tank', policy: { autoRepair: false } });
  });

  it('resumes an unfinished job after an engine host restart', async () => {
    await jobRate('tank', 2 * MiB);
    const job = await call<JobSummary>('job-start', { pool: 'tank', action: { kind: 'rebalance' } });
    await seen('job-progress', (p) => p.id === job.id && p.bytesDone > 0);
    await stopHost();
    events = [];
    await startHost();
    const listed = (await call<{ jobs: JobSummary[] }>('job-list', {})).jobs.find((j) => j.id === job.id);
    expect(listed).toMatchObject({ kind: 'rebalance', action: { kind: 'rebalance' }, state: expect.stringMatching(/queued|running/) });
    expect(await finished(job.id)).toMatchObject({ state: 'done' });
    expect(await call('plan', { pool: 'tank', action: { kind: 'rebalance' } })).toMatchObject({ possible: false });
  });
});

describe('unused demo images', { timeout: 60_000 }, () => {
  it('lists an image of the demo folder that no pool uses, and serves it when it is added', async () => {
    await mkdir(join(dir, 'state', 'demo'), { recursive: true });
    await writeFile(join(dir, 'state', 'demo', 'disk7.img'), '');
    await truncate(join(dir, 'state', 'demo', 'disk7.img'), 64 * MiB);
    const { drives } = await call<{ drives: Drive[] }>('drives-list', {});
    const drive = drives.find((d) => d.path === join(dir, 'state', 'demo', 'disk7.img'))!;
    expect(drive).toMatchObject({ poolName: null, role: null, transport: 'file', size: 64 * MiB, state: 'online', uri: `nbd+unix:///disk7?socket=${join(dir, 'run', 'demo-disks.sock')}` });
    const reply = await call<PoolStatus>('pool-add-member', { pool: 'tank', members: [drive.uri] });
    expect(reply.members.find((m) => m.uri === drive.uri)).toMatchObject({ state: 'online' });
    const again = await call<{ drives: Drive[] }>('drives-list', {});
    expect(again.drives.find((d) => d.uri === drive.uri)).toMatchObject({ poolName: 'tank', role: 'data' });
  });
});

const rootSkip = process.getuid?.() === 0 ? null : 'needs root for a loop device (losetup)';

describe(`a disk of the machine, through the disk helper${rootSkip ? ` — skipped: ${rootSkip}` : ''}`, { timeout: 90_000 }, () => {
  let loop = '';

  afterAll(async () => {
    // Busy (served, a member) loop devices detach when the last user closes them.
    if (loop) await run('losetup', ['-d', loop]);
  });

  (rootSkip ? it.skip : it)('lists a loop device as an unassigned drive; adding its URI has the helper serve it, and it becomes a member', async () => {
    await makeImages({ loopdisk: 64 * MiB });
    const attached = await run('losetup', ['-f', '--show', image('loopdisk')]);
    expect(attached.code, attached.stderr).toBe(0);
    loop = attached.stdout.trim();
    let drive: Drive | undefined;
    await expect
      .poll(async () => {
        drive = (await call<{ drives: Drive[] }>('drives-list', {})).drives.find((d) => d.path === loop || d.id.includes(basename(loop)) || d.uri.includes(`///${basename(loop)}?`));
        return drive;
      }, { timeout: 20_000 })
      .toBeDefined();
    expect(drive).toMatchObject({ poolName: null, role: null, size: 64 * MiB, uri: `nbd+unix:///${basename(loop)}?socket=${join(dir, 'run', 'helper', 'disks.sock')}` });
    expect(drive!.unusableReason).toBeUndefined();
    const added = await call<PoolStatus>('pool-add-member', { pool: 'tank', members: [drive!.uri] });
    expect(added.members.find((m) => m.uri === drive!.uri)).toMatchObject({ role: 'data', state: 'online' });
    const after = (await call<{ drives: Drive[] }>('drives-list', {})).drives.filter((d) => d.uri === drive!.uri);
    expect(after).toEqual([expect.objectContaining({ poolName: 'tank', role: 'data', id: drive!.id, path: drive!.path })]);
  });
});

describe('a disk helper that cannot run', { timeout: 60_000 }, () => {
  it('leaves the machine\'s disks out of drives-list and says why in a log event, once', async () => {
    const own = join(dir, 'nohelper');
    await ensurePrivateDir(join(own, 'run'));
    await ensurePrivateDir(join(own, 'state'));
    const registry = new PoolRegistry({ stateDir: join(own, 'state'), runtimeDir: join(own, 'run'), helperLaunch: { command: join(own, 'no-such-helper'), args: [] } });
    const otherHost = new EngineHost({ socketPath: join(own, 'run', 'control.sock'), version: '0.0.0-test', pools: registry });
    await otherHost.listen();
    const other = await ControlClient.connect(join(own, 'run', 'control.sock'));
    const logs: string[] = [];
    other.on('log', (entry) => logs.push(entry.message));
    try {
      expect(await other.request('drives-list', {})).toEqual({ drives: [] });
      expect(await other.request('drives-list', {})).toEqual({ drives: [] });
      await expect.poll(() => logs).toEqual([expect.stringMatching(/^the disk helper cannot run \(cannot start the disk helper .*no-such-helper.*ENOENT.*\): the machine's disks are not listed, only pool members and demo images$/)]);
    } finally {
      other.close();
      await otherHost.close();
      await registry.close();
    }
  });
});

/** Progress events of the same job in the second before `at`. */
function progressInLastSecond(all: ReadonlyArray<{ at: number }>, at: number): number {
  return all.filter((p) => p.at > at - 1000 && p.at <= at).length;
}
