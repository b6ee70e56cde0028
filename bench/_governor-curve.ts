/**
 * What a rebuild at a fixed rate costs the foreground: fio 4 KiB random
 * reads at QD1 over NBD, p99 idle vs during rebuilds held to fixed rates
 * with the governor out of the way. Tells whether "p99 ≤ 2× idle at ≥ 0.5×
 * the ungoverned rate" is within this machine's reach at all.
 *
 *   node --import tsx bench/_governor-curve.ts [--gib N] [--rates 0,200,100,50] [--held] [--batch-rows N] [--buffered]
 *
 * --rates: MiB/s, 0 for no limit. --held: small batches, as the governor's held-back jobs use
 * (a quarter of --batch-rows, 4 at most). --buffered: copies through the page cache.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NbdServer } from '../main/nbd/server.js';
import { p99 } from '../main/engine/job-governor.js';
import { fioRandRead } from './_fio-latency.js';
import { benchArg, benchVolumeBytes, dropCache, fillVolume, imageMember, tearDown } from './_jobs-bench.js';
import { createPool } from '../main/engine/pool-open.js';
import type { MemberSource, Pool } from '../main/engine/pool.js';

const MiB = 1024 * 1024;
const arg = benchArg;
const VOLUME = benchVolumeBytes(1);
const rates = (arg('rates') ?? '0,200,150,100,50').split(',').map(Number);
const held = process.argv.includes('--held');
const batchRows = arg('batch-rows');
/** Job copies through the page cache, as before writeUncached. */
const buffered = process.argv.includes('--buffered');


async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'spindle-governor-curve-'));
  const devices: MemberSource[] = [];
  let pool: Pool | undefined;
  let server: NbdServer | undefined;
  const files: string[] = [];
  try {
    const newFile = async (name: string): Promise<MemberSource> => {
      const s = await imageMember(dir, name, VOLUME + 512 * MiB, { files, devices });
      if (buffered) Object.assign(s.device, { writeUncached: undefined });
      return s;
    };
    pool = await createPool({ name: 'curve', members: [await newFile('m0'), await newFile('m1')], spares: [] });
    await pool.setPolicy({ autoRepair: false });
    if (batchRows) pool.jobs.tuning = { ...pool.jobs.tuning, batchRows: Number(batchRows) };
    const volume = await pool.createVolume({ name: 'v', size: VOLUME, layout: 'raid1' });
    await fillVolume(volume);
    // The governor out of the way: no pacing, batches as --held says.
    const gov = pool.jobs.governor;
    gov.admit = async () => {};
    // The pieces the governor would judge, kept for their p99 beside fio's.
    let pieces: number[] = [];
    const sample = gov.sample.bind(gov);
    gov.sample = (ms: number) => {
      pieces.push(ms);
      sample(ms);
    };
    const piecesP99 = (): string => {
      const line = `pieces p99 ${p99(pieces).toFixed(3)} (n=${pieces.length})`;
      pieces = [];
      return line;
    };
    Object.defineProperty(gov, 'throttled', { get: () => held });
    server = new NbdServer();
    server.addExport('v', volume);
    const socket = join(dir, 'v.sock');
    await server.listenUnix(socket);
    const uri = `nbd+unix:///v?socket=${socket}`;
    const idleRun = async (): Promise<void> => {
      for (const f of files) await dropCache(f);
      const f = fioRandRead(uri, 600);
      pieces = [];
      await new Promise((r) => setTimeout(r, 5000));
      const r = await f.stop();
      console.log(`idle            p50 ${r.p50Ms.toFixed(3)} p99 ${r.p99Ms.toFixed(3)} ms  ${r.iops.toFixed(0)} IOPS  ${piecesP99()} (1 in 4)`);
    };
    await idleRun();
    let victim = [...pool.members.values()][1]!.uuid;
    let k = 0;
    for (const rate of rates) {
      const spare = await newFile(`s${k++}`);
      const spareUuid = (await pool.addMember(spare, { role: 'spare' })).uuid;
      pool.jobs.tuning = { ...pool.jobs.tuning, ...(rate > 0 ? { maxRate: rate * MiB } : { maxRate: undefined }) };
      for (const f of files) await dropCache(f);
      const f = fioRandRead(uri, 600);
      await new Promise((r) => setTimeout(r, 1000));
      await pool.failMember(victim);
      pieces = [];
      const t = performance.now();
      const { id } = await pool.jobs.start({ kind: 'rebuild', member: victim, spare: spareUuid });
      const report = await pool.jobs.wait(id);
      const s = (performance.now() - t) / 1000;
      const r = await f.stop();
      if (report.outcome !== 'done') throw new Error(`rebuild ${report.outcome}: ${report.reason}`);
      console.log(
        `rate ${String(rate || '∞').padStart(4)} MiB/s  p50 ${r.p50Ms.toFixed(3)} p99 ${r.p99Ms.toFixed(3)} ms  ${r.iops.toFixed(0)} IOPS  rebuild ${(report.bytes / MiB / s).toFixed(0)} MiB/s in ${s.toFixed(1)} s  ${piecesP99()}`,
      );
      victim = spareUuid;
    }
    await idleRun();
  } finally {
    await tearDown({ server, pool, devices, dir });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
