/**
 * A scrub and a rebuild of a raid1 volume on image files, timed, for
 * profiling (`node --cpu-prof --import tsx bench/_jobs-profile.ts`, then
 * bench/_engine-profile.ts on the .cpuprofile).
 *
 *   node --import tsx bench/_jobs-profile.ts [--gib N] [--only scrub|rebuild|migrate] [--batch-rows N] [--depth N] [--warm] [--progress] [--again] [--prealloc]
 *     [--checkpoint-mib N] [--checkpoint-ms N]
 *
 * --progress: prints the job's progress (bytes, ETA) every 100 ms.
 * --only migrate: raid1 -> raid5 over the three files instead of a rebuild;
 * --again then migrates back and forth once more in the same (warm) process.
 * --prealloc: the files are written through with zeroes first. On our test VM,
 * writes into never-written file space are slower, and a first migrate's
 * first groups write there while later ones reuse the slabs the first freed:
 * its rate climbs for seconds and its early ETAs come out long.
 * --warm: no page cache is dropped, so (after the first round) every read
 * comes from memory and what is timed is the CPU's work, not the disk's.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '../main/engine/checksum.js';
import type { JobProgress } from '../main/engine/job-types.js';
import { benchArg, benchVolumeBytes, dropCache as dropFileCache, fillVolume, sparseFile, tearDown, watchEta } from './_jobs-bench.js';
import { openMember } from '../main/engine/member-uri.js';
import { createPool } from '../main/engine/pool-open.js';
import type { MemberSource, Pool } from '../main/engine/pool.js';

const MiB = 1024 * 1024;
const arg = benchArg;
const only = arg('only');
const VOLUME = benchVolumeBytes(0.5);

const warm = process.argv.includes('--warm');
/** Every file written through (zeroes) before the pool is made: no job writes into never-written space. */
const prealloc = process.argv.includes('--prealloc');
const dropCache = (file: string): Promise<void> => (warm ? Promise.resolve() : dropFileCache(file));

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'spindle-jobs-profile-'));
  const devices: MemberSource[] = [];
  let pool: Pool | undefined;
  try {
    const files = ['m0', 'm1', 's0'].map((n) => join(dir, `${n}.img`));
    for (const f of files) {
      await sparseFile(f, VOLUME + 512 * MiB);
      if (prealloc) execFileSync('dd', ['if=/dev/zero', `of=${f}`, 'bs=4M', `count=${Math.ceil((VOLUME + 512 * MiB) / (4 * MiB))}`, 'conv=notrunc,fsync', 'status=none']);
    }
    const source = async (f: string): Promise<MemberSource> => {
      const s = { uri: `file:${f}`, device: await openMember(`file:${f}`) };
      devices.push(s);
      return s;
    };
    // A migrate's raid5 spans all three files; a rebuild's third is its spare.
    const third = await source(files[2]!);
    const firstTwo = [await source(files[0]!), await source(files[1]!)];
    pool = await createPool({ name: 'prof', members: only === 'migrate' ? [...firstTwo, third] : firstTwo, spares: only === 'migrate' ? [] : [third] });
    await pool.setPolicy({ autoRepair: false });
    if (arg('batch-rows')) pool.jobs.tuning = { ...pool.jobs.tuning, batchRows: Number(arg('batch-rows')) };
    if (arg('depth')) pool.jobs.tuning = { ...pool.jobs.tuning, depth: Number(arg('depth')) };
    if (arg('checkpoint-mib')) pool.jobs.tuning = { ...pool.jobs.tuning, checkpointBytes: Number(arg('checkpoint-mib')) * MiB };
    if (arg('checkpoint-ms')) pool.jobs.tuning = { ...pool.jobs.tuning, checkpointMs: Number(arg('checkpoint-ms')) };
    const volume = await pool.createVolume({ name: 'v', size: VOLUME, layout: 'raid1' });
    await fillVolume(volume);
    for (const f of files) await dropCache(f);
    const p = pool;
    const rawRead = async (): Promise<void> => {
      // The ceiling: the same bytes of both members read by plain preads into reused buffers, CRC per 4 KiB.
      const chunk = Number(arg('raw')) * MiB;
      const depth = Number(arg('depth') ?? 3);
      const offset = [...p.members.values()][0]!.dataOffset;
      const t = performance.now();
      await Promise.all(
        files.slice(0, 2).map(async (f) => {
          const h = await open(f, 'r');
          const bufs = Array.from({ length: depth }, () => Buffer.allocUnsafeSlow(chunk));
          let at = 0;
          await Promise.all(
            bufs.map(async (buf) => {
              while (at < VOLUME) {
                const mine = at;
                at += chunk;
                const { bytesRead } = await h.read(buf, 0, Math.min(chunk, VOLUME - mine), offset + mine);
                const u = new Uint8Array(buf.buffer, 0, bytesRead);
                for (let i = 0; i < bytesRead; i += 4096) crc32c(u.subarray(i, i + 4096));
              }
            }),
          );
          await h.close();
        }),
      );
      const s = (performance.now() - t) / 1000;
      console.log(`raw ${(2 * VOLUME / MiB).toFixed(0)} MiB in ${s.toFixed(2)} s = ${((2 * VOLUME) / MiB / s).toFixed(0)} MiB/s`);
      for (const f of files) await dropCache(f);
    };
    const scrubOnce = async (): Promise<void> => {
      const t = performance.now();
      const { id } = await p.jobs.start({ kind: 'scrub', volume: 'v' });
      const report = await p.jobs.wait(id);
      const s = (performance.now() - t) / 1000;
      console.log(`scrub ${report.outcome}: ${(report.bytes / MiB).toFixed(0)} MiB in ${s.toFixed(2)} s = ${(report.bytes / MiB / s).toFixed(0)} MiB/s, ${report.badBlocks.length} bad`);
      for (const f of files) await dropCache(f);
    };
    // Rounds alternate which goes first: the first reader after the writes is slow on this VM.
    const rounds = Number(arg('rounds') ?? 1);
    for (let r = 0; r < rounds && only !== 'rebuild' && only !== 'migrate'; r++) {
      if (arg('raw') && r % 2 === 0) await rawRead();
      await scrubOnce();
      if (arg('raw') && r % 2 === 1) await rawRead();
    }
    // One job, timed, with its ETA at the marks (and its progress every 100 ms with --progress).
    const timedJob = async (kind: string, start: () => Promise<{ id: string }>): Promise<void> => {
      for (const f of files) await dropCache(f);
      const t = performance.now();
      const cpu = process.cpuUsage();
      const eta = watchEta(p);
      let last = 0;
      const print = (progress: JobProgress): void => {
        const now = performance.now() - t;
        if (now - last < (now < 600 ? 0 : 100) && progress.bytesDone < progress.bytesTotal) return;
        last = now;
        console.log(`  ${now.toFixed(0)} ms: ${(progress.bytesDone / MiB).toFixed(0)} of ${(progress.bytesTotal / MiB).toFixed(0)} MiB, ETA ${progress.etaMs === undefined ? '—' : `${progress.etaMs.toFixed(0)} ms`}`);
      };
      if (process.argv.includes('--progress')) p.jobs.on('job-progress', print);
      const { id } = await start();
      const report = await p.jobs.wait(id);
      p.jobs.off('job-progress', print);
      const end = performance.now();
      const s = (end - t) / 1000;
      const used = process.cpuUsage(cpu);
      console.log(`ETA error (announced vs actual remaining): ${eta.errors(end)}`);
      console.log(
        `${kind} ${report.outcome}: ${(report.bytes / MiB).toFixed(0)} MiB in ${s.toFixed(2)} s = ${(report.bytes / MiB / s).toFixed(0)} MiB/s; CPU ${(used.user / 1e6).toFixed(2)} s user, ${(used.system / 1e6).toFixed(2)} s system`,
      );
    };
    if (only === 'migrate') {
      await timedJob('migrate raid1 -> raid5', () => p.jobs.start({ kind: 'migrate', volume: 'v', layout: 'raid5', width: 3 }));
      if (process.argv.includes('--again')) {
        await timedJob('migrate raid5 -> raid1', () => p.jobs.start({ kind: 'migrate', volume: 'v', layout: 'raid1' }));
        await timedJob('migrate raid1 -> raid5 (again)', () => p.jobs.start({ kind: 'migrate', volume: 'v', layout: 'raid5', width: 3 }));
      }
    } else if (only !== 'scrub') {
      const victim = [...pool.members.values()].find((m) => m.label === `file:${files[0]}`)!.uuid;
      const spare = [...pool.members.values()].find((m) => m.label === `file:${files[2]}`)!.uuid;
      await pool.failMember(victim);
      await timedJob('rebuild', () => p.jobs.start({ kind: 'rebuild', member: victim, spare }));
    }
  } finally {
    await tearDown({ pool, devices, dir });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
