import { describe, expect, it } from 'vitest';
import type { JobSummary } from '../../preload/api';
import { jobFinishedNotice, jobStartedNotice, logNotice, memberErrorsNotice, memberStateNotice } from './notification-rules';

describe('member state notices', () => {
  it('a failure is an error naming the drive and the reason', () => {
    expect(memberStateNotice('disk2.img', 'demo', 'online', 'failed', 'simulated failure')).toEqual({
      level: 'error',
      title: 'Drive disk2.img failed',
      detail: 'Pool demo is running without it: simulated failure.',
    });
  });
  it('resyncing is a repair that started, and back online after it a repair that finished', () => {
    expect(memberStateNotice('d', 'p', 'failed', 'resyncing')?.title).toBe('Repair started on d');
    expect(memberStateNotice('d', 'p', 'resyncing', 'online')).toMatchObject({ level: 'success', title: 'Repair finished: d is back online' });
  });
  it('says nothing when nothing changed or when a drive is first seen online', () => {
    expect(memberStateNotice('d', 'p', 'online', 'online')).toBeUndefined();
    expect(memberStateNotice('d', 'p', undefined, 'online')).toBeUndefined();
  });
});

describe('member error notices', () => {
  it('new checksum errors raise a notice keyed by the drive, so a burst is one notification', () => {
    const notice = memberErrorsNotice('d', 'p', { read: 0, write: 0, checksum: 1 }, { read: 0, write: 0, checksum: 3 });
    expect(notice).toMatchObject({ level: 'warn', key: 'errors:p/d', title: 'Checksum errors found on d' });
    expect(notice?.detail).toMatch(/^3 bad blocks found on this drive in pool p so far/);
  });
  it('read and write errors without checksum errors are I/O errors', () => {
    expect(memberErrorsNotice('d', 'p', undefined, { read: 1, write: 0, checksum: 0 })?.title).toBe('I/O errors on d');
  });
  it('no notice when the counters did not go up', () => {
    expect(memberErrorsNotice('d', 'p', { read: 1, write: 1, checksum: 1 }, { read: 1, write: 1, checksum: 1 })).toBeUndefined();
  });
});

describe('log and job notices', () => {
  it('read-repair log lines become repair notices; others are not notices', () => {
    expect(logNotice({ level: 'info', message: 'repaired 1 block(s) in chunk 0 row 0', pool: 'demo' })).toMatchObject({ level: 'success', title: 'Repair finished in pool demo' });
    expect(logNotice({ level: 'warn', message: 'repair of chunk 3 row 2 failed: EIO', pool: 'demo' })?.level).toBe('error');
    expect(logNotice({ level: 'info', message: 'created pool demo on 5 member(s)' })).toBeUndefined();
  });

  const job: JobSummary = {
    id: 'job-1', pool: 'demo', kind: 'rebuild', state: 'running', title: 'Rebuild onto disk5.img',
    bytesDone: 0, bytesTotal: 64 * 1024 ** 2, rate: 0, etaSeconds: null, heldBack: false, action: { kind: 'rebuild' }, startedAt: '2025-01-01T00:00:00Z',
  };
  it('a rebuild seen for the first time running is a repair that started', () => {
    expect(jobStartedNotice(job, false)).toMatchObject({ level: 'info', title: 'Repair started: Rebuild onto disk5.img' });
    expect(jobStartedNotice(job, true)).toBeUndefined();
  });
  it('a finished rebuild reports what it moved and repaired', () => {
    const report = { movedBytes: 64 * 1024 ** 2, elapsedSeconds: 12, badBlocks: [{ volume: 'v', offset: 0, bytes: 4096, member: 'm', repairedFrom: 'copy on n' }] };
    expect(jobFinishedNotice({ ...job, state: 'done', report })).toEqual({
      level: 'success',
      title: 'Repair finished: Rebuild onto disk5.img',
      detail: 'Moved 64.0 MiB in 12 s; 1 bad block repaired.',
    });
    expect(jobFinishedNotice({ ...job, state: 'failed', report: { ...report, error: 'no space' } })).toMatchObject({ level: 'error', detail: 'no space' });
  });
});
