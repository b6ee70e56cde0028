import { describe, expect, it } from 'vitest';
import type { JobSummary, Plan } from '../../../preload/api.js';
import { readableLabels } from '../job-views.js';
import { CliError } from './command-support.js';
import { parseAction } from './job-commands.js';
import { formatSeconds, jobLine, jobsText, planText, reportLine } from './job-text.js';

const MiB = 1024 * 1024;

const job: JobSummary = {
  id: '1a2b3c4d',
  pool: 'demo',
  kind: 'rebuild',
  state: 'running',
  title: 'Rebuild disk1 (3 slabs, 96 MiB) onto spare disk5',
  bytesDone: 24 * MiB,
  bytesTotal: 96 * MiB,
  rate: 12 * MiB,
  etaSeconds: 6,
  heldBack: false,
  action: { kind: 'rebuild' },
  startedAt: '2025-01-01T00:00:00.000Z',
};

describe('job and plan text', () => {
  it('draws a job as a bar on a terminal and as words elsewhere, with rate and ETA while it runs', () => {
    expect(jobLine(job, { bar: true })).toBe('job 1a2b3c4d  running    [######------------------]  25%  24 MiB of 96 MiB  12 MiB/s  ETA 6s  demo: Rebuild disk1 (3 slabs, 96 MiB) onto spare disk5');
    expect(jobLine({ ...job, state: 'paused', rate: 0, etaSeconds: null }, { bar: false })).toBe('job 1a2b3c4d  paused     25%  24 MiB of 96 MiB  demo: Rebuild disk1 (3 slabs, 96 MiB) onto spare disk5');
    expect(jobLine({ ...job, etaSeconds: null }, { bar: false })).toContain('ETA ?');
    // Held back by the governor: the line says why the job is slower than it could be.
    expect(jobsText([{ ...job, heldBack: true }]).split('\n')[1]).toContain('12 MiB/s (held back)');
    expect(jobLine({ ...job, heldBack: true }, { bar: false })).toBe('job 1a2b3c4d  running    25%  24 MiB of 96 MiB  12 MiB/s  ETA 6s  (held back for foreground I/O)  demo: Rebuild disk1 (3 slabs, 96 MiB) onto spare disk5');
  });

  it('says what a finished job did', () => {
    const done = { ...job, state: 'done' as const, report: { movedBytes: 96 * MiB, elapsedSeconds: 65.2, badBlocks: [{ volume: 'v', offset: 0, bytes: 4096, member: 'm', repairedFrom: 'parity of row 0' }], blocksRepaired: 1, blocksLost: 0 } };
    expect(reportLine(done)).toBe('job 1a2b3c4d done: demo: Rebuild disk1 (3 slabs, 96 MiB) onto spare disk5 — moved 96 MiB, in 1m 5s, 1 bad block(s) repaired');
    expect(formatSeconds(3 * 3600 + 125)).toBe('3h 2m');
  });

  it('prints an impossible plan as its reason, and a possible one with a table of members', () => {
    const still: Plan = {
      pool: 'demo', action: { kind: 'rebuild' }, possible: false, reason: 'nothing failed', summary: 'rebuild pool demo', bytesToMove: 0, perMember: [],
      redundancyDuring: { failuresTolerated: 1, description: 'x' }, redundancyAfter: { failuresTolerated: 1, description: 'x' }, estimatedSeconds: 0, riskWindowSeconds: 0,
    };
    expect(planText(still)).toBe('cannot rebuild pool demo: nothing failed');
    const text = planText({
      ...still,
      possible: true,
      summary: 'rebuild disk1 onto spare disk5',
      bytesToMove: 64 * MiB,
      perMember: [
        { member: '3792eaa8-1111-2222-3333-444455556666', uri: 'disk1', before: { usedBytes: 64 * MiB, freeBytes: 0 }, after: { usedBytes: 0, freeBytes: 0 } },
        { member: 'file:/x/new.img', uri: 'file:/x/new.img', before: { usedBytes: 0, freeBytes: 64 * MiB }, after: { usedBytes: 64 * MiB, freeBytes: 0 } },
      ],
      riskWindowSeconds: 2,
      notes: ['a note'],
    });
    expect(text).toContain('  risk window:       2s with less redundancy than after');
    expect(text).toMatch(/\n {4}3792eaa8 disk1 +64 MiB +leaves the pool +-\n {4}\(new\) file:\/x\/new\.img +0 B +64 MiB +0 B\n {2}note: a note$/);
  });

  it('names drives on local sockets by their export', () => {
    expect(readableLabels('rebuild nbd+unix:///disk1?socket=/run/x/demo-disks.sock (3 slabs) onto spare nbd+unix:///disk5?socket=/run/x/demo-disks.sock')).toBe('rebuild disk1 (3 slabs) onto spare disk5');
  });
});

describe('spindle plan ACTION', () => {
  it('reads each action', () => {
    expect(parseAction('rebuild', [], { spare: '5f3a' })).toEqual({ kind: 'rebuild', spare: '5f3a' });
    expect(parseAction('add', ['/a.img', 'nbd://h/x'], {})).toEqual({ kind: 'add', members: ['file:/a.img', 'nbd://h/x'] });
    expect(parseAction('migrate', ['v'], { layout: 'raid6', width: 5 })).toEqual({ kind: 'migrate', volume: 'v', layout: 'raid6', width: 5 });
    expect(parseAction('scrub', [], {})).toEqual({ kind: 'scrub' });
    expect(parseAction('spare', ['/b.img'], {})).toEqual({ kind: 'spare', member: 'file:/b.img' });
  });

  it.each([
    ['remove', [], {}, /^remove: expects one member, got nothing$/],
    ['rebalance', ['x'], {}, /^rebalance: expects no arguments, got x$/],
    ['add', ['a.img'], { width: 3 }, /^add: --width does not go with add$/],
    ['fix', [], {}, /^unknown action "fix"/],
  ] as const)('refuses %s %j as a usage error', (name, args, options, message) => {
    let caught: unknown;
    try {
      parseAction(name, args, options);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CliError);
    expect(caught).toMatchObject({ exitCode: 2, message: expect.stringMatching(message) });
  });
});
