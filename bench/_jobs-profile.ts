/**
 * A scrub and a rebuild of a raid1 volume on image files, timed, for
 * profiling (`node --cpu-prof --import tsx bench/_jobs-profile.ts`, then
 * bench/_engine-profile.ts on the .cpuprofile).
 *
 *   node --import tsx bench/_jobs-profile.ts [--gib N] [--only scrub|rebuild] [--batch-rows N] [--depth N] [--warm] [--progress]
 *     [--checkpoint-mib N] [--checkpoint-ms N]
 *
 * --progress: prints the rebuild's progress (bytes, rate, ETA) every 100 ms.
 * --warm: no page cache is dropped, so (after the first round) every read
 * comes from memory and what is timed is the CPU's work, not the disk's.
 */
import { mkdtemp, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '../main/engine/checksum.js';
import { dropCache as dropFileCache, fillVolume, tearDown, watchEta } from './_jobs-bench.js';
import { STRIPE_UNIT } from '../main/engine/layout.js';
import { openMember } from '../main/engine/member-uri.js';
import { slabGeometry } from '../main/engine/slab-geometry.js';
import { createPool } from '../main/engine/pool-open.js';
import type { MemberSource, Pool } from '../main/engine/pool.js';

const MiB = 1024 * 1024;
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const slabs = Math.max(1, Math.round(Number(arg('gib') ?? 0.5) * 4));
const only = arg('only');
const VOLUME = slabs * slabGeometry(256 * MiB, STRIPE_UNIT).dataBytes;

const warm = process.argv.includes('--warm');
const dropCache = (file: string): Promise<void> => (warm ? Promise.resolve() : dropFileCache(file));

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'spindle-jobs-profile-'));
  const devices: MemberSource[] = [];
  let pool: Pool | undefined;
  try {
    const files = ['m0', 'm1', 's0'].map((n) => join(dir, `${n}.img`));
    for (const f of files) {
      const h = await open(f, 'w');
      await h.truncate(VOLUME + 512 * MiB);
      await h.close();
    }
    const source = async (f: string): Promise<MemberSource> => {
      const s = { uri: `file:${f}`, device: await openMember(`file:${f}`) };
      devices.push(s);
      return s;
    };
    pool = await createPool({ name: 'prof', members: [await source(files[0]!), await source(files[1]!)], spares: [await source(files[2]!)] });
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
    for (let r = 0; r < rounds && only !== 'rebuild'; r++) {
      if (arg('raw') && r % 2 === 0) await rawRead();
      await scrubOnce();
      if (arg('raw') && r % 2 === 1) await rawRead();
    }
    if (only !== 'scrub') {
      for (const f of files) await dropCache(f);
      const victim = [...pool.members.values()].find((m) => m.label === `file:${files[0]}`)!.uuid;
      const spare = [...pool.members.values()].find((m) => m.label === `file:${files[2]}`)!.uuid;
      await pool.failMember(victim);
      const t = performance.now();
      const cpu = process.cpuUsage();
      const eta = watchEta(pool);
      if (process.argv.includes('--progress')) {
        let last = 0;
        pool.jobs.on('job-progress', (p) => {
          const now = performance.now() - t;
          if (now - last < (now < 600 ? 0 : 100) && p.bytesDone < p.bytesTotal) return;
          last = now;
          console.log(`  ${now.toFixed(0)} ms: ${(p.bytesDone / MiB).toFixed(0)} of ${(p.bytesTotal / MiB).toFixed(0)} MiB, ETA ${p.etaMs === undefined ? '—' : `${p.etaMs.toFixed(0)} ms`}`);
        });
      }
      const { id } = await pool.jobs.start({ kind: 'rebuild', member: victim, spare });
      const report = await pool.jobs.wait(id);
      const end = performance.now();
      const s = (end - t) / 1000;
      const used = process.cpuUsage(cpu);
      console.log(`ETA error (announced vs actual remaining): ${eta.errors(end)}`);
      console.log(
        `rebuild ${report.outcome}: ${(report.bytes / MiB).toFixed(0)} MiB in ${s.toFixed(2)} s = ${(report.bytes / MiB / s).toFixed(0)} MiB/s; CPU ${(used.user / 1e6).toFixed(2)} s user, ${(used.system / 1e6).toFixed(2)} s system`,
      );
    }
  } finally {
    await tearDown({ pool, devices, dir });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
