/**
 * Drives, plans and jobs through the real `spindle` (run from source, as a
 * user runs it) against a real engine host: the demo pool loses a member,
 * `spindle plan` shows the rebuild, `spindle rebuild` starts it, `spindle
 * jobs --watch` follows it to the end (plain lines and --json), the pool is
 * healthy again and qemu-io finds the data over NBD; then scrub, migrate,
 * add, spare and remove on a small pool of image files; pause, resume and
 * cancel; a terminal's live view; and the usage errors.
 *
 * The engine host runs with SPINDLE_JOB_MAX_RATE so that a job lasts long
 * enough to be watched, paused and cancelled.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuIo } from '../nbd/test-support.js';
import { cliIn, type Run } from './cli-test-support.js';
import type { Drive, JobSummary, Plan, PoolStatus, VolumeStatus } from '../../preload/api.js';

const MiB = 1024 * 1024;
let dir: string;
let env: NodeJS.ProcessEnv;
const { spindle, spindleAsync, onTerminal, json, stopHost } = cliIn(() => ({ dir, env }));






function oneLineFailure(r: Run, code: number, message: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(message);
}

/** Waits (jobs --watch) until no job of the pool runs; then the job as job-list has it. */
function jobAfterWatch(pool: string, id: string): JobSummary | undefined {
  const watched = json<{ jobs: JobSummary[] }>('jobs', '--watch', '--pool', pool).jobs.find((j) => j.id === id);
  // A job that ended before the watch began is not one it watched: job-list has it.
  return watched ?? json<{ jobs: JobSummary[] }>('jobs', '--pool', pool).jobs.find((j) => j.id === id);
}


const scriptSkip = spawnSync('script', ['--version']).status === 0 ? null : 'needs util-linux script(1) to give the CLI a terminal';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spindle-cli-jobs-'));
  env = { ...process.env, SPINDLE_RUNTIME_DIR: join(dir, 'run'), SPINDLE_STATE_DIR: join(dir, 'state'), SPINDLE_JOB_MAX_RATE: '48M' };
  for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) {
    await writeFile(join(dir, `${name}.img`), '');
    await truncate(join(dir, `${name}.img`), 64 * MiB);
  }
});

afterAll(async () => {
  await stopHost().catch(() => {});
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('spindle drives, plan, rebuild, jobs --watch, scrub, migrate', { timeout: 240_000 }, () => {
  let photos: string;
  let victim: string;
  let victimUri: string;

  it("lists the demo pool's drives, keeps automatic repair off (the demo's default), and plans no rebuild while all is well", async () => {
    const demo = json<{ created: boolean; unassigned: string[]; pool: PoolStatus }>('demo');
    expect(demo).toMatchObject({ created: true, unassigned: [join(dir, 'state', 'demo', 'disk6.img')], pool: { policy: { autoRepair: false } } });
    const [drives, policy, plan, shown] = await Promise.all([
      spindleAsync('drives', '--json'),
      spindleAsync('pool', 'policy', 'demo', '--auto-repair', 'off', '--latency-budget', '2.5', '--json'),
      spindleAsync('plan', 'demo', 'rebuild'),
      spindleAsync('drives'),
    ]);
    const list = JSON.parse(drives.stdout) as { drives: Drive[] };
    expect(list.drives.filter((d) => d.poolName === 'demo').map((d) => [d.role, d.transport])).toEqual([
      ...Array.from({ length: 5 }, () => ['data', 'file']),
      ['spare', 'file'],
    ]);
    expect(shown.stdout).toMatch(/^DRIVE\s+SIZE\s+STATE\s+POOL\s+ROLE\s+SMART\s+URI\n.*demo\/disk0\.img\s+256 MiB\s+online\s+demo\s+data\s/);
    expect(JSON.parse(policy.stdout)).toMatchObject({ name: 'demo', policy: { autoRepair: false, latencyBudget: 2.5 } });
    oneLineFailure(plan, 1, /^spindle: cannot rebuild pool demo: no member of pool demo that holds data has failed or gone missing/);
    expect(spindle('pool', 'policy', 'demo').stdout).toBe('pool demo: automatic repair off, latency budget 2.5× the idle p99 while jobs run\n');
  });

  it('fails a member holding a volume written over NBD, and plans its rebuild onto the spare', async () => {
    photos = json<{ export: { uri: string } }>('volume', 'export', 'demo/photos').export.uri;
    await qemuIo(photos, 'write -P 0x5a 8M 8M');
    const map = json<VolumeStatus>('volume', 'status', 'demo/photos');
    victim = map.chunks[0]!.columns[0]!.member;
    victimUri = json<PoolStatus>('pool', 'status', 'demo').members.find((m) => m.uuid === victim)!.uri;
    expect(json<{ member: { state: string } }>('fail', 'demo', victim.slice(0, 8)).member.state).toBe('failed');
    const [text, asJson] = await Promise.all([spindleAsync('plan', 'demo', 'rebuild'), spindleAsync('plan', 'demo', 'rebuild', '--json')]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^plan: rebuild disk\d \(\d+ slabs?, [\d.]+ MiB\) onto spare disk5\n {2}data to move: +[\d.]+ MiB\n {2}estimated time: +\d+s\n {2}redundancy during: .*no further member failure\n {2}redundancy after: +every volume survives 1 more member failure\n {2}risk window: +\d+s with less redundancy than after\n/);
    expect(text.stdout).toMatch(new RegExp(`\\n {4}${victim.slice(0, 8)} nbd\\+unix:///disk\\d\\?socket=\\S+ +[\\d.]+ MiB +leaves the pool +-\\n`));
    const plan = JSON.parse(asJson.stdout) as Plan;
    expect(plan).toMatchObject({ pool: 'demo', possible: true, action: { kind: 'rebuild' }, redundancyAfter: { failuresTolerated: 1 } });
    expect(plan.bytesToMove).toBeGreaterThan(0);
  });

  it('rebuilds; jobs --watch follows it to the end (plain lines, and one JSON document); the pool is healthy and the data reads back over NBD', async () => {
    const started = spindle('rebuild', 'demo');
    expect(started.code, started.stderr).toBe(0);
    const id = /^job (\w+) started: Rebuild disk\d .* onto spare disk5 \(follow it with `spindle jobs --watch`\)\n$/.exec(started.stdout)?.[1];
    expect(id, started.stdout).toBeDefined();
    const [plain, asJson] = await Promise.all([spindleAsync('jobs', '--watch'), spindleAsync('jobs', '--watch', '--json')]);
    expect(plain.code, plain.stderr).toBe(0);
    const lines = plain.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(new RegExp(`^job ${id} done: demo: Rebuild disk\\d .* — moved [\\d.]+ MiB, in \\d+s$`));
    for (const line of lines.slice(0, -1)) expect(line).toMatch(new RegExp(`^job ${id}  (queued|running) +\\d+%  [\\d.]+ (B|KiB|MiB) of [\\d.]+ MiB`));
    expect(lines.length).toBeGreaterThan(1);
    expect(asJson.code, asJson.stderr).toBe(0);
    const watched = JSON.parse(asJson.stdout) as { jobs: JobSummary[] };
    expect(watched.jobs).toHaveLength(1);
    expect(watched.jobs[0]).toMatchObject({ id, kind: 'rebuild', state: 'done', report: { badBlocks: [], blocksLost: 0, membersRemoved: [victim] } });
    expect(watched.jobs[0]!.report!.movedBytes).toBeGreaterThan(0);

    const status = json<PoolStatus>('pool', 'status', 'demo');
    expect(status).toMatchObject({ health: 'online', memberCount: 5 });
    expect(status.members.map((m) => m.uuid)).not.toContain(victim);
    await qemuIo(photos, 'read -P 0x5a 8M 8M');
    // The member that left is an unassigned drive again.
    const { drives } = json<{ drives: Drive[] }>('drives');
    expect(drives.filter((d) => d.poolName === null && d.transport === 'file').map((d) => d.path.split('/').pop()).sort()).toEqual(
      [`disk${/disk(\d)/.exec(victimUri)![1]}.img`, 'disk6.img'].sort(),
    );
    const listed = spindle('jobs');
    expect(listed.stdout).toMatch(new RegExp(`^ID\\s+POOL\\s+KIND\\s+STATE\\s+DONE\\s+RATE\\s+ETA\\s+TITLE\\n${id}\\s+demo\\s+rebuild\\s+done\\s+100%`));
  });

  it('pauses, resumes and cancels a scrub; a watch that sees it cancelled ends 1', async () => {
    const job = json<JobSummary>('scrub', 'demo');
    expect(job).toMatchObject({ kind: 'scrub', action: { kind: 'scrub' } });
    expect(json<JobSummary>('jobs', 'pause', job.id)).toMatchObject({ id: job.id, state: 'paused' });
    expect(spindle('jobs').stdout).toMatch(new RegExp(`\\n${job.id}\\s+demo\\s+scrub\\s+paused\\s`));
    // Nothing runs while it is paused: a watch ends at once.
    const idle = spindle('jobs', '--watch');
    expect(idle).toMatchObject({ code: 0 });
    expect(idle.stdout).toMatch(new RegExp(`^job ${job.id}  paused`));
    expect(json<JobSummary>('jobs', 'resume', job.id).state).toMatch(/running|queued/);
    const watching = spindleAsync('jobs', '--watch');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const cancelled = spindle('jobs', 'cancel', job.id);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toMatch(new RegExp(`^job ${job.id} cancelled: demo: Scrub .* — checked [\\d.]+ MiB, in \\d+s\\n$`));
    const watched = await watching;
    expect(watched.code).toBe(1);
    expect(watched.stderr).toBe(`spindle: job ${job.id} cancelled\n`);
    oneLineFailure(spindle('jobs', 'cancel', job.id), 1, new RegExp(`^spindle: job ${job.id} of pool demo has already finished \\(cancelled\\)$`));
    oneLineFailure(spindle('jobs', 'resume', 'feedbeef'), 1, /^spindle: no job feedbeef in pool demo$/);
  });

  (scriptSkip ? it.skip : it)(`on a terminal, shows the plan before starting, and redraws progress bars in place${scriptSkip ? ` — skipped: ${scriptSkip}` : ''}`, async () => {
    const started = await onTerminal('scrub', 'demo', 'photos');
    expect(started.code, started.stdout).toBe(0);
    expect(started.stdout).toMatch(/^plan: scrub volume photos .*\r?\n {2}data to read:[\s\S]*\r?\njob (\w+) started: Scrub/);
    const id = /job (\w+) started/.exec(started.stdout)![1]!;
    const watched = await onTerminal('jobs', '--watch');
    expect(watched.code, watched.stdout).toBe(0);
    expect(watched.stdout).toContain(`\x1b[1A\r\x1b[2Kjob ${id}  running`);
    expect(watched.stdout).toMatch(/\[#+-*\] +\d+%/);
    expect(watched.stdout).toMatch(new RegExp(`job ${id} done: demo: Scrub volume photos .* — checked`));
  });

  it('on a small pool of image files: add with a rebalance, a spare, scrub, migrate, remove', async () => {
    json('pool', 'create', 'small', 'a.img', 'b.img', 'c.img', 'd.img', '--slab-size', '8256K');
    json('volume', 'create', 'small/v', '--size', '16M', '--layout', 'raid1');
    const uri = json<{ export: { uri: string } }>('volume', 'export', 'small/v').export.uri;
    await qemuIo(uri, 'write -P 0xc3 0 16M');

    const addPlan = json<Plan>('plan', 'small', 'add', 'e.img');
    expect(addPlan).toMatchObject({ possible: true, action: { kind: 'add', members: [`file:${join(dir, 'e.img')}`] } });
    const add = json<JobSummary>('pool', 'add', 'small', 'e.img', '--rebalance');
    expect(add).toMatchObject({ kind: 'rebalance', action: { kind: 'add' } });
    const spare = json<JobSummary>('pool', 'spare', 'small', 'f.img');
    expect(spare).toMatchObject({ kind: 'spare', state: 'done' });
    expect(jobAfterWatch('small', add.id)).toMatchObject({ state: 'done' });

    const scrub = json<JobSummary>('scrub', 'small', 'v');
    const migrate = spindle('migrate', 'small/v', '--layout', 'raid5', '--width', '4', '--json');
    // The scrub holds the volume: the migrate waits for it, or is refused while it runs.
    if (migrate.code !== 0) expect(migrate.stderr).toMatch(/^spindle: cannot migrate volume small\/v to raid5: job \w+ \(scrub/);
    expect(jobAfterWatch('small', scrub.id)).toMatchObject({ state: 'done', report: { movedBytes: 0, badBlocks: [] } });
    const migration = migrate.code === 0 ? (JSON.parse(migrate.stdout) as JobSummary) : json<JobSummary>('migrate', 'small/v', '--layout', 'raid5', '--width', '4');
    expect(migration).toMatchObject({ kind: 'migrate', action: { kind: 'migrate', volume: 'v', layout: 'raid5', width: 4 } });
    expect(jobAfterWatch('small', migration.id)).toMatchObject({ state: 'done' });
    expect(json<VolumeStatus>('volume', 'status', 'small/v')).toMatchObject({ layout: 'raid5', width: 4, state: 'online' });
    await qemuIo(uri, 'read -P 0xc3 0 16M');

    const removal = json<JobSummary>('pool', 'remove', 'small', 'a.img');
    expect(removal).toMatchObject({ kind: 'evacuate', action: { kind: 'remove' } });
    expect(jobAfterWatch('small', removal.id)).toMatchObject({ state: 'done' });
    const status = json<PoolStatus>('pool', 'status', 'small');
    expect(status.members.map((m) => [m.uri.split('/').pop(), m.role])).toEqual([
      ['b.img', 'data'],
      ['c.img', 'data'],
      ['d.img', 'data'],
      ['e.img', 'data'],
      ['f.img', 'spare'],
    ]);
    await qemuIo(uri, 'read -P 0xc3 0 16M');
    expect(json<PoolStatus>('pool', 'spare', 'small', 'f.img', '--remove').members).toHaveLength(4);
  });

  it('exits 2 with one line on stderr and nothing on stdout for each usage error', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['plan', 'demo'], /^error: missing required argument 'action'/],
      [['plan', 'demo', 'defrag'], /^spindle: unknown action "defrag": use rebuild \[--spare M\], add M…/],
      [['plan', 'demo', 'migrate', 'photos'], /^spindle: migrate: needs --layout$/],
      [['plan', 'demo', 'rebuild', 'now'], /^spindle: rebuild: expects no arguments, got now$/],
      [['plan', 'demo', 'scrub', '--layout', 'raid5'], /^spindle: scrub: --layout does not go with scrub$/],
      [['plan', 'demo', 'add'], /^spindle: add: expects one or more drives, got nothing$/],
      [['migrate', 'demo/photos'], /^error: required option '--layout <layout>' not specified$/],
      [['migrate', 'demo', '--layout', 'raid5'], /^spindle: "demo" is not POOL\/VOLUME$/],
      [['pool', 'policy', 'demo', '--auto-repair', 'maybe'], /^spindle: --auto-repair takes on or off, not "maybe"$/],
      [['pool', 'policy', 'demo', '--latency-budget', '50'], /^spindle: --latency-budget takes a factor from 1\.1 to 10/],
      [['jobs', 'bogus'], /^spindle: spindle jobs has no command 'bogus': use pause, resume or cancel/],
      [['jobs', 'pause'], /^error: missing required argument 'id'$/],
      [['jobs', 'cancel', 'no such id!', '--json'], /^spindle: invalid parameters for "job-cancel": id: id must be a job id/],
      [['scrub'], /^error: missing required argument 'pool'$/],
      [['rebuild', 'demo', '--spare'], /^error: option '--spare <member>' argument missing$/],
      [['plan', 'demo', 'rebalance', '--force'], /^spindle: rebalance: --force does not go with rebalance$/],
    ];
    const results = await Promise.all(cases.map(([args]) => spindleAsync(...args)));
    for (const [i, [args, message]] of cases.entries()) {
      const r = results[i]!;
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr.trim(), args.join(' ')).toMatch(message);
    }
  });
});
