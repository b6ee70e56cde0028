import { describe, expect, it } from 'vitest';
import type { JobProgress as EngineJobProgress } from '../engine/job-types.js';
import { jobProgress } from './job-views.js';

const engine: EngineJobProgress = {
  id: 'j1',
  kind: 'rebuild',
  state: 'running',
  bytesDone: 10,
  bytesTotal: 100,
  rateBytesPerSecond: 5,
  etaMs: 18_001,
  slabsMoved: 0,
  throttled: true,
};

describe('job progress for the API', () => {
  it('says a running job is held back while the governor holds it, and only then', () => {
    expect(jobProgress('demo', engine, 'Rebuild')).toMatchObject({ pool: 'demo', rate: 5, etaSeconds: 19, heldBack: true });
    expect(jobProgress('demo', { ...engine, throttled: false }, 'Rebuild').heldBack).toBe(false);
    // Paused, a job is not held back by anyone but the user, whatever the governor does.
    expect(jobProgress('demo', { ...engine, state: 'paused' }, 'Rebuild').heldBack).toBe(false);
  });
});
