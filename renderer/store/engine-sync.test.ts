/**
 * engine-sync over an in-memory contract endpoint: what reaches the store
 * when the connection opens and when events arrive. The endpoint answers
 * from fixed data; the engine host itself is exercised by the e2e specs.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EventName, Events, JobProgress, MemberStatus, PoolStatus, Replies, RequestName, SpindleApi } from '../../preload/api';
import type { ConnectionState } from '../platform/websocket-api';
import { createAppStore } from './app-store';
import { ioKey } from './drives-slice';
import { startEngineSync } from './engine-sync';

const member = (uuid: string, over: Partial<MemberStatus> = {}): MemberStatus => ({
  uuid, uri: `file:/d/${uuid}.img`, role: 'data', state: 'online', errors: { read: 0, write: 0, checksum: 0 }, slabCount: 8, freeSlabs: 4, ...over,
});

const poolStatus: PoolStatus = {
  name: 'demo', uuid: 'p', health: 'online', demo: true, memberCount: 2, volumeCount: 0, slabSize: 1 << 20, slabDataBytes: 1 << 19,
  members: [member('a'), member('b')], volumes: [], freeSpace: { raid0: 0, raid1: 0, raid1x3: 0, raid10: 0, raid5: 0, raid6: 0 },
  policy: { autoRepair: true, latencyBudget: 2 },
};

function endpoint() {
  const listeners = new Map<string, Set<(data: unknown) => void>>();
  const calls: string[] = [];
  const replies: Partial<{ [N in RequestName]: () => Replies[N] }> = {
    version: () => ({ version: '1.2.3', contractVersion: 1, pid: 1, uptimeMs: 5, startedAt: 'now', nodeVersion: '20' }),
    'pool-list': () => ({ pools: [poolStatus] }),
    'pool-status': () => poolStatus,
  };
  const api: SpindleApi = {
    request: (method, _params) => {
      calls.push(method);
      const reply = replies[method] as (() => unknown) | undefined;
      return reply ? Promise.resolve(reply() as never) : Promise.reject(new Error(`not available yet: ${method}`));
    },
    on: (event, listener) => {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener as (data: unknown) => void);
      return () => set.delete(listener as (data: unknown) => void);
    },
  };
  let connection: (state: ConnectionState) => void = () => {};
  const platform = { api, onConnectionChange: (l: (state: ConnectionState) => void) => ((connection = l), () => {}) };
  const emit = <E extends EventName>(event: E, data: Events[E]) => {
    for (const l of listeners.get(event) ?? []) l(data);
  };
  return { platform, calls, emit, open: () => connection('open') };
}

describe('engine-sync', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('on connecting, loads version, pools with their status, and says why drives and jobs are unavailable', async () => {
    const store = createAppStore();
    const e = endpoint();
    startEngineSync(e.platform, store);
    e.open();
    await vi.runAllTimersAsync();
    const s = store.getState();
    expect(s.connection).toBe('open');
    expect(s.versionInfo?.version).toBe('1.2.3');
    expect(s.poolList?.map((p) => p.name)).toEqual(['demo']);
    expect(s.poolStatus.demo?.members).toHaveLength(2);
    expect(s.inventoryProblem).toBe('not available yet: drives-list');
    expect(s.jobsProblem).toBe('not available yet: job-list');
  });

  it('a member failure updates the member at once, notifies, and refreshes the pool once for a burst', async () => {
    const store = createAppStore();
    const e = endpoint();
    startEngineSync(e.platform, store);
    e.open();
    await vi.runAllTimersAsync();
    e.calls.length = 0;
    e.emit('member-state', { pool: 'demo', member: member('a', { state: 'failed', reason: 'gone' }) });
    e.emit('volume-state', { pool: 'demo', volume: 'v', state: 'degraded' });
    expect(store.getState().poolStatus.demo?.members[0]?.state).toBe('failed');
    expect(store.getState().notifications[0]).toMatchObject({ level: 'error', title: 'Drive a.img failed' });
    await vi.runAllTimersAsync();
    expect(e.calls).toEqual(['pool-status']);
  });

  it('batches high-rate events: the latest job progress and every I/O sample, in one update', async () => {
    const store = createAppStore();
    const e = endpoint();
    startEngineSync(e.platform, store);
    e.open();
    await vi.runAllTimersAsync();
    let updates = 0;
    store.subscribe(() => updates++);
    const progress = (bytesDone: number): JobProgress => ({ id: 'job-1', pool: 'demo', kind: 'rebuild', state: 'running', title: 'Rebuild', bytesDone, bytesTotal: 100, rate: 10, etaSeconds: 1, heldBack: false });
    e.emit('job-progress', progress(10));
    e.emit('job-progress', progress(20));
    e.emit('member-io-rate', { pool: 'demo', member: 'a', readBytesPerSec: 5, writeBytesPerSec: 6 });
    e.emit('member-errors', { pool: 'demo', member: 'b', errors: { read: 0, write: 0, checksum: 1 } });
    const notified = updates;
    await vi.advanceTimersByTimeAsync(300);
    const s = store.getState();
    expect(s.jobs['job-1']?.bytesDone).toBe(20);
    expect(s.ioHistory[ioKey('demo', 'a')]).toEqual([{ read: 5, write: 6 }]);
    expect(s.poolStatus.demo?.members[1]?.errors.checksum).toBe(1);
    // The notices (job started, checksum errors) are immediate; the data arrives in one flush of three slices.
    expect(s.notifications.map((n) => n.title)).toEqual(['Checksum errors found on b.img', 'Repair started: Rebuild']);
    expect(updates - notified).toBe(3);
  });
});
