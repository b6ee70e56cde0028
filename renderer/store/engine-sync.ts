/**
 * The one module that feeds contract events into the store, and refreshes
 * what events only hint at (a member-state event changes a pool's capacity
 * and its volumes' maps too). Started once by main.tsx; `stop()` undoes it.
 *
 * High-rate events (job progress, I/O rates, error counters: tens a second
 * with 24 drives and several jobs) are batched and reach the store ten times
 * a second, on an animation frame: measured with bench/ui.ts, rendering each
 * of 40 job events a second separately cost the main thread about half of
 * every second on this machine.
 * Refreshes after events are debounced per pool for the same reason.
 */
import type { ErrorCounts, Events, JobProgress, SpindleApi } from '../../preload/api';
import { driveLabel } from '../lib/drive-label';
import type { PlatformApi } from '../platform/spindle-api';
import type { useAppStore } from './app-store';
import { ioKey, type IoSample } from './drives-slice';
import { jobFinishedNotice, jobStartedNotice, logNotice, memberErrorsNotice, memberStateNotice } from './notification-rules';

type Store = typeof useAppStore;

export interface EngineSync {
  readonly api: SpindleApi;
  refreshPools(): Promise<void>;
  refreshPool(name: string): Promise<void>;
  refreshVolumeMap(pool: string, volume: string): Promise<void>;
  refreshDrives(): Promise<void>;
  refreshJobs(): Promise<void>;
  stop(): void;
}

const REFRESH_DELAY_MS = 150;
/** Progress, I/O rates and error counters reach the store at most this often (the contract sends ≤ 10 a second per job). */
const FLUSH_INTERVAL_MS = 100;

export function startEngineSync(platform: PlatformApi, store: Store): EngineSync {
  const { api } = platform;
  const state = store.getState;
  const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

  // --- refreshes ---------------------------------------------------------
  const membersOf = (name: string): string => (state().poolStatus[name]?.members ?? []).map((m) => m.uuid).sort().join(' ');
  const refreshPool = async (name: string): Promise<void> => {
    try {
      const known = state().poolStatus[name] !== undefined;
      const before = membersOf(name);
      state().setPoolStatus(await api.request('pool-status', { pool: name }));
      // A drive joined or left the pool (an add, a rebuild or removal that took a member out):
      // the inventory's idea of which pool each drive belongs to changed with it.
      if (known && membersOf(name) !== before) void refreshDrives();
    } catch {
      // An unavailable pool has no status; its summary in the list says why.
    }
    const map = state().openMap;
    if (map?.pool === name) await refreshVolumeMap(map.pool, map.volume);
  };

  const refreshPools = async (): Promise<void> => {
    try {
      const { pools } = await api.request('pool-list', {});
      state().setPoolList(pools);
      await Promise.all(pools.filter((p) => p.health !== 'unavailable').map((p) => refreshPool(p.name)));
    } catch (error) {
      state().setError(message(error));
    }
  };

  const refreshVolumeMap = async (pool: string, volume: string): Promise<void> => {
    try {
      let page = await api.request('volume-status', { pool, name: volume });
      const chunks = [...page.chunks];
      while (page.nextChunk !== undefined) {
        page = await api.request('volume-status', { pool, name: volume, firstChunk: page.nextChunk });
        chunks.push(...page.chunks);
      }
      const { nextChunk: _last, ...rest } = page;
      state().setVolumeMap({ ...rest, firstChunk: 0, chunks });
    } catch (error) {
      state().notify({ level: 'error', title: `Cannot show the layout of ${pool}/${volume}`, detail: message(error) });
    }
  };

  const refreshDrives = async (): Promise<void> => {
    try {
      state().setInventory((await api.request('drives-list', {})).drives);
    } catch (error) {
      state().setInventoryProblem(message(error));
    }
  };

  const refreshJobs = async (): Promise<void> => {
    try {
      state().setJobs((await api.request('job-list', {})).jobs);
    } catch (error) {
      state().setJobsProblem(message(error));
    }
  };

  const pendingRefresh = new Map<string, ReturnType<typeof setTimeout>>();
  const scheduleRefresh = (pool: string): void => {
    if (pendingRefresh.has(pool)) return;
    pendingRefresh.set(
      pool,
      setTimeout(() => {
        pendingRefresh.delete(pool);
        void refreshPool(pool);
      }, REFRESH_DELAY_MS),
    );
  };

  // --- batching of high-rate events ----------------------------------------
  let progress = new Map<string, JobProgress>();
  let rates = new Map<string, IoSample>();
  let errors = new Map<string, { pool: string; member: string; errors: ErrorCounts }>();
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    const [p, r, e] = [progress, rates, errors];
    progress = new Map();
    rates = new Map();
    errors = new Map();
    const s = state();
    if (p.size) s.applyJobProgress([...p.values()]);
    if (r.size) s.pushIoRates([...r].map(([key, sample]) => ({ key, sample })));
    if (e.size) s.applyMemberErrors([...e.values()]);
  };
  const scheduleFlush = (): void => {
    if (flushScheduled) return;
    flushScheduled = true;
    // At most FLUSH_INTERVAL_MS apart, on an animation frame: a screen of jobs and sparklines
    // re-renders ten times a second however many events arrive. rAF does not run in a hidden
    // window; the timer alone keeps the store current there.
    setTimeout(() => {
      if (typeof requestAnimationFrame === 'function' && document.visibilityState === 'visible') requestAnimationFrame(flush);
      else flush();
    }, FLUSH_INTERVAL_MS);
  };

  const memberOf = (pool: string, uuid: string) => state().poolStatus[pool]?.members.find((m) => m.uuid === uuid);
  const labelOf = (pool: string, uuid: string): string => {
    const member = memberOf(pool, uuid);
    return member ? driveLabel(member.uri) : uuid.slice(0, 8);
  };

  // --- events ----------------------------------------------------------------
  const handlers: { [E in keyof Events]?: (data: Events[E]) => void } = {
    'engine-status': (status) => state().setStatus(status, performance.now()),
    'pool-list-changed': ({ pools }) => {
      const before = new Set((state().poolList ?? []).map((p) => p.name));
      state().setPoolList(pools);
      for (const pool of pools) if (pool.health !== 'unavailable') scheduleRefresh(pool.name);
      if (pools.some((p) => !before.has(p.name))) void refreshDrives();
    },
    'member-state': ({ pool, member }) => {
      const before = memberOf(pool, member.uuid);
      const notice = memberStateNotice(driveLabel(member.uri), pool, before?.state, member.state, member.reason);
      state().applyMemberState(pool, member);
      if (notice) state().notify(notice);
      scheduleRefresh(pool);
    },
    'member-errors': (update) => {
      const key = ioKey(update.pool, update.member);
      const before = errors.get(key)?.errors ?? memberOf(update.pool, update.member)?.errors;
      const notice = memberErrorsNotice(labelOf(update.pool, update.member), update.pool, before, update.errors);
      if (notice) state().notify(notice);
      errors.set(key, update);
      scheduleFlush();
    },
    'volume-state': ({ pool, volume, state: volumeState }) => {
      state().applyVolumeState(pool, volume, volumeState);
      scheduleRefresh(pool);
    },
    log: (entry) => {
      const notice = logNotice(entry);
      if (notice) state().notify(notice);
    },
    'job-progress': (job) => {
      const known = state().jobs[job.id] !== undefined || progress.has(job.id);
      const notice = jobStartedNotice(job, known);
      if (notice) state().notify(notice);
      progress.set(job.id, job);
      scheduleFlush();
    },
    'job-finished': (job) => {
      progress.delete(job.id);
      state().applyJobFinished(job);
      state().notify(jobFinishedNotice(job));
      scheduleRefresh(job.pool);
    },
    'member-io-rate': ({ pool, member, readBytesPerSec, writeBytesPerSec }) => {
      rates.set(ioKey(pool, member), { read: readBytesPerSec, write: writeBytesPerSec });
      scheduleFlush();
    },
  };

  const fetchVersion = (): void => {
    api.request('version', {}).then(
      (info) => state().setVersionInfo(info),
      (error: Error) => state().setError(error.message),
    );
  };

  const stops: Array<() => void> = [
    platform.onConnectionChange((connection) => {
      state().setConnection(connection);
      if (connection === 'open') {
        fetchVersion();
        void refreshPools();
        void refreshDrives();
        void refreshJobs();
      }
    }),
  ];
  for (const [event, handler] of Object.entries(handlers) as Array<[keyof Events, (data: never) => void]>) {
    stops.push(api.on(event, handler as (data: unknown) => void));
  }

  return {
    api,
    refreshPools,
    refreshPool,
    refreshVolumeMap,
    refreshDrives,
    refreshJobs,
    stop: () => {
      for (const stop of stops) stop();
      for (const timer of pendingRefresh.values()) clearTimeout(timer);
    },
  };
}
