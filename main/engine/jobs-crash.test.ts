/**
 * kill -9 of a process running a job while it writes to the volume, at a
 * random moment; then import (which resumes the job from its checkpoint),
 * let the job finish, and check: every write acknowledged before the last
 * completed flush is there, every other block holds a version written to it
 * and is not torn, nothing reads as corrupt, no slab is leaked, and each
 * member in turn can fail with every block still readable.
 *
 * One allowance, not the jobs': a parity row that is degraded (a member
 * failed before the crash) and had a write in flight at the kill may read
 * as EIO — the engine core's write hole on degraded rows: the torn write
 * leaves parity disagreeing with the data, and the lost column cannot be
 * rebuilt from it (raid6 sees that through Q and refuses; a degraded raid5
 * could not tell, which is why no crash case here has one). Rows a rebuild
 * had already copied are safe: the spare holds the lost column (slab-move.ts,
 * resync). Never wrong bytes.
 *
 * SPINDLE_CRASH_RUNS sets the number of runs (default 22, spread over the
 * job kinds; SPINDLE_CRASH_CASE picks one); `npm run torture` runs many more.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../nbd/test-support.js';
import { CRASH_BLOCK, CRASH_CASES, CRASH_MEMBER_SLABS, CRASH_VOLUME_BYTES, blockFor, memberFile } from './jobs-crash.fixture.js';
import { openMember } from './member-uri.js';
import { importPool } from './pool-open.js';

const fixture = fileURLToPath(new URL('./jobs-crash.fixture.ts', import.meta.url));
const BLOCKS = CRASH_VOLUME_BYTES / CRASH_BLOCK;
const RUNS = Number(process.env.SPINDLE_CRASH_RUNS ?? 22);
const NAMES = process.env.SPINDLE_CRASH_CASE ? [process.env.SPINDLE_CRASH_CASE] : Object.keys(CRASH_CASES);

interface Outcome {
  readonly resumedFrom: number;
  readonly jobFinishedBeforeKill: boolean;
}

/** One run: start, kill at `killAfterMs` after the job started, import, finish, verify. */
async function crashRun(name: string, killAfterMs: number): Promise<Outcome> {
  const c = CRASH_CASES[name]!;
  const dir = await tempDir('spindle-jobcrash-');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir, name], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d) => {
        out += d;
        if (/^job \S+$/m.test(out)) resolve();
      });
      void exited.then((code) => reject(new Error(`fixture exited (${code}) before its job started: ${err}`)));
    });
    await new Promise((resolve) => setTimeout(resolve, killAfterMs));
    child.kill('SIGKILL');
    await exited;
    const jobId = /^job (\S+)$/m.exec(out)![1]!;
    // What each block may hold: the version of the last completed flush, or one written since.
    const durable = new Uint32Array(BLOCKS).fill(1);
    const since = new Map<number, Set<number>>();
    for (const line of out.split('\n')) {
      const pairs = line.slice(2).split(' ').filter(Boolean).map((p) => p.split(':').map(Number) as [number, number]);
      if (line.startsWith('W ')) for (const [i, v] of pairs) (since.get(i) ?? since.set(i, new Set()).get(i)!).add(v);
      if (line.startsWith('F ')) {
        for (const [i, v] of pairs) {
          durable[i] = v;
          since.get(i)?.delete(v);
          for (const older of since.get(i) ?? []) if (older < v) since.get(i)!.delete(older);
        }
      }
    }
    const count = c.members + (c.spare ? 1 : 0) + (c.added ? 1 : 0);
    const sources = await Promise.all(
      Array.from({ length: count }, async (_, i) => ({ uri: `file:${memberFile(dir, i)}`, device: await openMember(`file:${memberFile(dir, i)}`) })),
    );
    const byUri = new Map(sources.map((s) => [s.uri, s.device]));
    const { pool } = await importPool(sources);
    try {
      const logged = pool.state.jobs.find((j) => j.id === jobId);
      const resumedFrom = logged?.done.bytes ?? 0;
      if (logged) {
        pool.jobs.tuning = { ...pool.jobs.tuning, maxRate: undefined };
        const report = await pool.jobs.wait(jobId);
        expect(report.outcome, `${name}: ${report.reason}`).toBe('done');
      }
      expect(pool.state.jobs).toEqual([]);
      const volume = pool.volume('v');
      const degradedParity = c.fail !== undefined && (c.layout === 'raid5' || c.layout === 'raid6');
      /** The volume bytes of the chunk row holding byte `at`. */
      const rowOf = (at: number): [number, number] => {
        let base = 0;
        for (const chunk of volume.chunks) {
          if (at < base + chunk.capacity) {
            const start = base + Math.floor((at - base) / chunk.rowBytes) * chunk.rowBytes;
            return [start, start + chunk.rowBytes];
          }
          base += chunk.capacity;
        }
        throw new Error(`byte ${at} is beyond the volume`);
      };
      const inFlight = (at: number): boolean => {
        const [start, end] = rowOf(at);
        for (let i = start / CRASH_BLOCK; i < end / CRASH_BLOCK; i++) if ((since.get(i)?.size ?? 0) > 0) return true;
        return false;
      };
      let unreadable = 0;
      const check = async (when: string): Promise<void> => {
        let all: Buffer;
        try {
          all = await volume.read(0, CRASH_VOLUME_BYTES);
        } catch (error) {
          if (!degradedParity) throw error;
          // Block by block, to tell which ones are unreadable.
          all = Buffer.alloc(CRASH_VOLUME_BYTES);
          for (let i = 0; i < BLOCKS; i++) {
            try {
              (await volume.read(i * CRASH_BLOCK, CRASH_BLOCK)).copy(all, i * CRASH_BLOCK);
            } catch (e) {
              if (!/EIO/.test((e as Error).message) || !inFlight(i * CRASH_BLOCK)) throw new Error(`${name} ${when}: block ${i}: ${(e as Error).message}`, { cause: e });
              blockFor(i, durable[i]!).copy(all, i * CRASH_BLOCK);
              unreadable++;
            }
          }
        }
        for (let i = 0; i < BLOCKS; i++) {
          const got = all.subarray(i * CRASH_BLOCK, (i + 1) * CRASH_BLOCK);
          const v = got.readUInt32LE(4);
          const allowed = v === durable[i] || since.get(i)?.has(v);
          if (!allowed || got.readUInt32LE(0) !== i || !got.equals(blockFor(i, v))) {
            throw new Error(`${name} ${when}: block ${i} holds version ${v} (index ${got.readUInt32LE(0)}), durable ${durable[i]}, in flight ${[...(since.get(i) ?? [])].join(',')}`);
          }
        }
      };
      await check('after the job');
      // Nothing is left to repair (unless the core's degraded write hole left a row unreadable), and no slab is leaked.
      let fixed = 0;
      for (const chunk of volume.chunks) for (let row = 0; row < chunk.rows; row++) fixed += await chunk.repairRow(row);
      if (unreadable === 0) expect(fixed, `${name}: blocks repaired after the job`).toBe(0);
      const used = [...pool.state.chunks.values()].reduce((n, chunk) => n + chunk.slabs.length, 0);
      const free = [...pool.members.values()].reduce((n, m) => n + pool.freeSlabs(m.uuid), 0);
      expect(used + free, `${name}: slabs accounted for`).toBe(pool.members.size * CRASH_MEMBER_SLABS);
      // Full redundancy: each member in turn fails, and everything still reads.
      if (unreadable > 0) return { resumedFrom, jobFinishedBeforeKill: !logged };
      for (const member of [...pool.members.values()]) {
        await pool.failMember(member.uuid);
        await check(`with ${member.label} failed`);
        await pool.returnMember(member.uuid, byUri.get(member.label)!);
      }
      return { resumedFrom, jobFinishedBeforeKill: !logged };
    } finally {
      await pool.close();
      await Promise.all(sources.map((s) => s.device.close()));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('kill -9 in the middle of a job', () => {
  it(`${RUNS} runs over ${NAMES.length} kinds of job: the job resumes from its checkpoint and finishes; data and redundancy hold`, async () => {
    let seed = Number(process.env.SPINDLE_CRASH_SEED ?? Date.now() % 100_000);
    const random = (): number => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const outcomes: Array<Outcome & { name: string }> = [];
    for (let run = 0; run < RUNS; run++) {
      const name = NAMES[run % NAMES.length]!;
      const killAfterMs = Math.round(30 + random() * 1200);
      try {
        outcomes.push({ name, ...(await crashRun(name, killAfterMs)) });
      } catch (error) {
        throw new Error(`run ${run} (${name}, killed ${killAfterMs} ms after the job started, seed ${process.env.SPINDLE_CRASH_SEED ?? 'random'}): ${(error as Error).message}`, { cause: error });
      }
    }
    // Most kills land after a checkpoint: those jobs resumed from it, not from zero.
    const resumed = outcomes.filter((o) => o.resumedFrom > 0);
    expect(resumed.length, JSON.stringify(outcomes)).toBeGreaterThanOrEqual(Math.floor(RUNS / 3));
  }, Math.max(120_000, RUNS * 20_000));
});
