/**
 * Governed rebuilds taking turns between variants, in one process: the way
 * to compare governor changes on a noisy machine (a run of bench jobs gives
 * one governed rebuild, and its rate swings 29-86 MiB/s run to run).
 *
 *   node --import tsx bench/_governed-ab.ts [--gib N] [--rounds N] [--variants a,b] [--delay-ms N] [--trace]
 *
 * Each round: a new spare, a cold page cache, 5 s of fio idle, then fio on
 * and a member failed and rebuilt onto the spare under the governor. Per
 * variant the script sets process.env.SPINDLE_GOVERNOR_VARIANT (for
 * experiments in job-governor.ts; nothing reads it in committed code), or,
 * for the variant "delay", waits --delay-ms between the failure and the
 * rebuild's start (is the start's slowness the failure's, not the job's?).
 * Prints per round: rate, fio p99 during / idle, and the ETA errors.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NbdServer } from '../main/nbd/server.js';
import { fioRandRead } from './_fio-latency.js';
import { benchArg, benchVolumeBytes, dropCache, fillVolume, imageMember, tearDown, watchEta } from './_jobs-bench.js';
import { createPool } from '../main/engine/pool-open.js';
import type { MemberSource, Pool } from '../main/engine/pool.js';

const MiB = 1024 * 1024;
const arg = benchArg;
const VOLUME = benchVolumeBytes(1);
const rounds = Number(arg('rounds') ?? 3);
const variants = (arg('variants') ?? 'base').split(',');
const delayMs = Number(arg('delay-ms') ?? 2000);
const trace = process.argv.includes('--trace');

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'spindle-governed-ab-'));
  const devices: MemberSource[] = [];
  const files: string[] = [];
  let pool: Pool | undefined;
  let server: NbdServer | undefined;
  try {
    const newFile = (name: string): Promise<MemberSource> => imageMember(dir, name, VOLUME + 512 * MiB, { files, devices });
    pool = await createPool({ name: 'ab', members: [await newFile('m0'), await newFile('m1')], spares: [] });
    await pool.setPolicy({ autoRepair: false });
    const volume = await pool.createVolume({ name: 'v', size: VOLUME, layout: 'raid1' });
    await fillVolume(volume);
    server = new NbdServer();
    server.addExport('v', volume);
    const socket = join(dir, 'v.sock');
    await server.listenUnix(socket);
    const uri = `nbd+unix:///v?socket=${socket}`;
    let victim = [...pool.members.values()][1]!.uuid;
    const results = new Map<string, Array<{ rate: number; ratio: number }>>();
    let k = 0;
    for (let r = 0; r < rounds; r++) {
      for (const variant of variants) {
        const spare = (await pool.addMember(await newFile(`s${k++}`), { role: 'spare' })).uuid;
        process.env['SPINDLE_GOVERNOR_VARIANT'] = variant;
        for (const f of files) await dropCache(f);
        const idle = await fioRandRead(uri, 5).finished();
        for (const f of files) await dropCache(f);
        const fg = fioRandRead(uri, 600);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const ticks: string[] = [];
        pool.jobs.governor.trace = trace
          ? (t) => ticks.push(`${t.probe ? 'P' : ''}${(t.p99 / t.target).toFixed(2)}@${(t.jobRate / MiB).toFixed(0)}/${t.limit === Infinity ? '∞' : (t.limit / MiB).toFixed(0)}`)
          : undefined;
        await pool.failMember(victim);
        if (variant === 'delay') await new Promise((resolve) => setTimeout(resolve, delayMs));
        const eta = watchEta(pool);
        const start = performance.now();
        const { id } = await pool.jobs.start({ kind: 'rebuild', member: victim, spare });
        const report = await pool.jobs.wait(id);
        const end = performance.now();
        const during = await fg.stop();
        pool.jobs.governor.trace = undefined;
        if (report.outcome !== 'done') throw new Error(`rebuild ${report.outcome}: ${report.reason}`);
        const rate = report.bytes / MiB / ((end - start) / 1000);
        const ratio = during.p99Ms / idle.p99Ms;
        results.set(variant, [...(results.get(variant) ?? []), { rate, ratio }]);
        console.log(
          `${variant.padEnd(10)} ${rate.toFixed(0).padStart(4)} MiB/s  p99 ${during.p99Ms.toFixed(2)} / ${idle.p99Ms.toFixed(2)} ms = ${ratio.toFixed(2)}  ETA ${eta.errors(end)}`,
        );
        if (trace) console.log(`           ${ticks.join(' ')}`);
        victim = spare;
      }
    }
    for (const [variant, rs] of results) {
      const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
      console.log(
        `${variant.padEnd(10)} mean ${mean(rs.map((x) => x.rate)).toFixed(0)} MiB/s (${rs.map((x) => x.rate.toFixed(0)).join(', ')}), p99 ratio mean ${mean(rs.map((x) => x.ratio)).toFixed(2)}, max ${Math.max(...rs.map((x) => x.ratio)).toFixed(2)}`,
      );
    }
  } finally {
    await tearDown({ server, pool, devices, dir });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
