/**
 * Jobs benchmark.
 *
 *   npm run bench -- jobs [--gib N] [--skip-btrfs] [--batch-rows N] [--depth N] [--budget F] [--trace]
 *
 * --trace prints each of the governor's decisions during the governed rebuild.
 *
 * Members are image files on this machine's disk (file: members, as the
 * engine host opens them), the volume raid1 of about N GiB (default 1: four
 * whole slabs of the default 256 MiB). Before every measured pass, the page cache of the
 * files it reads is dropped (dd iflag=nocache: those files only, nothing
 * global), so reads come from the disk. Every target, like every fresh
 * destination of cp and btrfs replace, is a never-written file (writing into
 * never-written space is slower on this VM: FIELD-NOTES.md), and every copy
 * ends durable (the rebuild flushes; cp is followed by sync of its target).
 *
 * Measured, in one run:
 * - rebuild: a failed member of the raid1 volume rebuilt onto a spare,
 *   ungoverned (no foreground I/O), vs `cp --sparse=never` of the same
 *   number of bytes from a file to a new file, + sync (target ≥ 0.9×), and
 *   vs `btrfs replace` of the same amount of raid1 data on loop devices
 *   (target ≥ 1.5×; skipped with a reason where btrfs cannot run); and the
 *   ETA the job announced at 10/25/50/75/90 % vs the time it really took. For
 *   reference, dd of the same file with O_DIRECT on both sides: the rebuild
 *   copies around the page cache, and cp (copy_file_range) goes through it.
 *   On this VM the two swing apart: cp ran at 247 MiB/s one hour and 1 GB/s
 *   the next, while direct copies stayed near 400.
 * - scrub: the volume's scrub (every copy read and verified) vs a raw read
 *   of the same member bytes with dd, both members at once (target ≥ 0.9×);
 *   three of each, taking turns, the best of each counting (how fast this
 *   VM's disk answers swings several times over from one read to the next).
 * - governor: fio 4 KiB random reads at QD1 over NBD on the volume, p99
 *   idle vs during a governed rebuild (default budget 2×: target ≤ 2×), and
 *   that rebuild's rate vs the ungoverned one (target ≥ 0.5×).
 *
 * The machine is shared with other engineers' builds and tests: numbers
 * move between runs; the ratios are what matter.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NbdServer } from '../main/nbd/server.js';
import { fioRandRead } from './_fio-latency.js';
import { benchArg, benchVolumeBytes, dropCache, sparseFile, tearDown, watchEta } from './_jobs-bench.js';
import { openMember } from '../main/engine/member-uri.js';
import { createPool } from '../main/engine/pool-open.js';
import type { Pool, MemberSource } from '../main/engine/pool.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const arg = benchArg;
const skipBtrfs = process.argv.includes('--skip-btrfs');
const batchRows = arg('batch-rows');
const depth = arg('depth');
const budget = arg('budget');
const trace = process.argv.includes('--trace');
/** Whole slabs of data (a 256 MiB slab holds a little less than 256 MiB: its checksums are inside). */
const VOLUME = benchVolumeBytes(1);
const gib = (VOLUME / GiB).toFixed(2);
/** Scrubs and dd reads, taking turns; the best of each counts. */
const SCRUB_ROUNDS = 3;

function sh(cmd: string, argv: string[], timeoutMs = 600_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: timeoutMs, maxBuffer: 64 * MiB }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${argv.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(String(stdout));
    });
  });
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const value = await fn();
  return [value, (performance.now() - t) / 1000];
}

const rate = (bytes: number, seconds: number): string => `${(bytes / MiB / seconds).toFixed(0)} MiB/s`;
const ratio = (a: number, b: number): string => (a / b).toFixed(2);

function line(label: string, value: string, extra = ''): void {
  console.log(`  ${label.padEnd(46)} ${value.padStart(12)}  ${extra}`);
}

/** A deterministic 4 MiB block of data, different per index (no compressible runs). */
function block(index: number): Buffer {
  const b = Buffer.allocUnsafe(4 * MiB);
  let x = (index * 2654435761) >>> 0 || 1;
  for (let i = 0; i < b.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

/** Rebuilds `victim` onto `spare`, with the ETA it announced at 10, 25, 50, 75 and 90 % vs what was left. */
async function rebuild(pool: Pool, victim: string, spare: string): Promise<{ bytes: number; seconds: number; eta: string }> {
  await pool.failMember(victim);
  const eta = watchEta(pool);
  const start = performance.now();
  const { id } = await pool.jobs.start({ kind: 'rebuild', member: victim, spare });
  const report = await pool.jobs.wait(id);
  const end = performance.now();
  const errors = eta.errors(end);
  if (report.outcome !== 'done') throw new Error(`rebuild ${report.outcome}: ${report.reason}`);
  return { bytes: report.bytes, seconds: (end - start) / 1000, eta: errors };
}

async function btrfsReplace(dir: string, source: string): Promise<{ seconds: number } | string> {
  if (skipBtrfs) return 'skipped (--skip-btrfs)';
  for (const tool of ['mkfs.btrfs', 'btrfs', 'losetup', 'mount']) {
    if (!['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, tool)))) return `skipped: ${tool} is not installed`;
  }
  if (!readFileSync('/proc/filesystems', 'utf8').includes('btrfs')) {
    await sh('modprobe', ['btrfs']).catch(() => '');
    if (!readFileSync('/proc/filesystems', 'utf8').includes('btrfs')) return 'skipped: this kernel has no btrfs';
  }
  if (process.getuid?.() !== 0) return 'skipped: loop devices and mount need root';
  const images = [0, 1, 2].map((i) => join(dir, `btrfs${i}.img`));
  const loops: string[] = [];
  const mnt = join(dir, 'mnt');
  let mounted = false;
  try {
    // 4 GiB sparse images: smaller ones run out of room for replace (FIELD-NOTES.md).
    for (const image of images) await sparseFile(image, Math.max(4, 4 * Math.ceil(VOLUME / GiB)) * GiB);
    for (const image of images) loops.push((await sh('losetup', ['-f', '--show', image])).trim());
    await sh('mkfs.btrfs', ['-f', '-q', '-d', 'raid1', '-m', 'raid1', loops[0]!, loops[1]!]);
    await mkdir(mnt, { recursive: true });
    await sh('mount', ['-o', `device=${loops[0]},device=${loops[1]}`, loops[0]!, mnt]);
    mounted = true;
    await sh('dd', [`if=${source}`, `of=${join(mnt, 'data')}`, 'bs=4M', 'conv=fsync', 'status=none']);
    await sh('sync', ['-f', mnt]);
    for (const image of images) await dropCache(image);
    const [, seconds] = await timed(() => sh('btrfs', ['replace', 'start', '-B', '-f', loops[0]!, loops[2]!, mnt]));
    return { seconds };
  } catch (error) {
    return `skipped: ${(error as Error).message.split('\n')[0]}`;
  } finally {
    if (mounted) await sh('umount', [mnt]).catch(() => '');
    await sh('btrfs', ['device', 'scan', '--forget']).catch(() => '');
    for (const loop of loops) await sh('losetup', ['-d', loop]).catch(() => '');
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'spindle-bench-jobs-'));
  const devices: MemberSource[] = [];
  let server: NbdServer | undefined;
  let pool: Pool | undefined;
  try {
    console.log(`jobs: raid1 volume of ${gib} GiB on image files, 256 MiB slabs (a shared, noisy 2-core machine: compare ratios, not absolutes)`);
    const memberBytes = VOLUME + 512 * MiB;
    const files = ['m0', 'm1', 's0', 's1'].map((n) => join(dir, `${n}.img`));
    for (const f of files) await sparseFile(f, memberBytes);
    const source = async (f: string): Promise<MemberSource> => {
      const s = { uri: `file:${f}`, device: await openMember(`file:${f}`) };
      devices.push(s);
      return s;
    };
    pool = await createPool({ name: 'bench', members: [await source(files[0]!), await source(files[1]!)], spares: [await source(files[2]!)] });
    await pool.setPolicy({ autoRepair: false, ...(budget ? { latencyBudget: Number(budget) } : {}) });
    if (batchRows) pool.jobs.tuning = { ...pool.jobs.tuning, batchRows: Number(batchRows) };
    if (depth) pool.jobs.tuning = { ...pool.jobs.tuning, depth: Number(depth) };
    const volume = await pool.createVolume({ name: 'v', size: VOLUME, layout: 'raid1' });
    // The same bytes go into the volume and into the file cp copies.
    const plain = join(dir, 'plain.bin');
    const plainFile = await open(plain, 'w');
    for (let at = 0; at < VOLUME; at += 4 * MiB) {
      const b = block(at / (4 * MiB)).subarray(0, Math.min(4 * MiB, VOLUME - at));
      await volume.write(at, b);
      await plainFile.write(b, 0, b.length, at);
    }
    await volume.flush();
    await plainFile.sync();
    await plainFile.close();
    const uuid = (f: string): string => [...pool!.members.values()].find((m) => m.label === `file:${f}`)!.uuid;

    // ---- rebuild vs cp vs btrfs replace
    for (const f of [...files, plain]) await dropCache(f);
    const ungoverned = await rebuild(pool, uuid(files[0]!), uuid(files[2]!));
    await dropCache(plain);
    const copy = join(dir, 'copy.bin');
    const [, cpSeconds] = await timed(async () => {
      await sh('cp', ['--sparse=never', plain, copy]);
      await sh('sync', [copy]);
    });
    await rm(copy, { force: true });
    // The same copy around the page cache, as the rebuild writes (and reads its source): what
    // this machine's disk gives a copy without the cache, for comparison with cp's through it.
    await dropCache(plain);
    const [, directSeconds] = await timed(() =>
      sh('dd', [`if=${plain}`, `of=${copy}`, 'bs=4M', 'iflag=direct', 'oflag=direct', 'conv=fsync', 'status=none']),
    );
    await rm(copy, { force: true });
    const btrfs = await btrfsReplace(dir, plain);
    console.log('rebuild (a failed raid1 member onto a spare, no foreground I/O)');
    line(`rebuild ${(ungoverned.bytes / GiB).toFixed(2)} GiB`, rate(ungoverned.bytes, ungoverned.seconds), `${ungoverned.seconds.toFixed(2)} s`);
    line(`cp --sparse=never ${gib} GiB + sync`, rate(VOLUME, cpSeconds), `ratio ${ratio(ungoverned.bytes / ungoverned.seconds, VOLUME / cpSeconds)} (target ≥ 0.9)`);
    line(`dd iflag=direct oflag=direct ${gib} GiB`, rate(VOLUME, directSeconds), `ratio ${ratio(ungoverned.bytes / ungoverned.seconds, VOLUME / directSeconds)} (for reference: the copy without the page cache)`);
    if (typeof btrfs === 'string') line('btrfs replace', '—', btrfs);
    else line(`btrfs replace (${gib} GiB of raid1 data)`, rate(VOLUME, btrfs.seconds), `ratio ${ratio(ungoverned.bytes / ungoverned.seconds, VOLUME / btrfs.seconds)} (target ≥ 1.5)`);
    line('ETA error (announced vs actual remaining)', '', ungoverned.eta);

    // ---- scrub vs raw read
    // How fast this VM's disk answers swings 2-8× from one read to the next (the
    // first reader after the writes above is slower still), so the scrub and dd
    // take turns, SCRUB_ROUNDS each, each after the files' cache is dropped, and
    // the best of each counts: both sides get the same chances.
    const live = [files[1]!, files[2]!];
    const offset = [...pool.members.values()][0]!.dataOffset;
    const rawRead = async (): Promise<number> => {
      for (const f of live) await dropCache(f);
      // The same bytes: each member's slabs (from its data offset on), both members at once.
      const [, seconds] = await timed(() =>
        Promise.all(live.map((f) => sh('dd', [`if=${f}`, 'of=/dev/null', 'bs=64K', `skip=${offset / (64 * 1024)}`, `count=${VOLUME / (64 * 1024)}`, 'status=none']))),
      );
      return seconds;
    };
    const scrubOnce = async (): Promise<{ bytes: number; seconds: number; bad: number }> => {
      for (const f of live) await dropCache(f);
      const scrub = await pool!.jobs.start({ kind: 'scrub', volume: 'v' });
      const [report, seconds] = await timed(() => pool!.jobs.wait(scrub.id));
      if (report.outcome !== 'done') throw new Error(`scrub ${report.outcome}: ${report.reason}`);
      return { bytes: report.bytes, seconds, bad: report.badBlocks.length };
    };
    const scrubs: Array<{ bytes: number; seconds: number; bad: number }> = [];
    const raws: number[] = [];
    for (let r = 0; r < SCRUB_ROUNDS; r++) {
      // Turns alternate who goes first.
      if (r % 2 === 0) raws.push(await rawRead());
      scrubs.push(await scrubOnce());
      if (r % 2 === 1) raws.push(await rawRead());
    }
    const bestScrub = scrubs.reduce((a, b) => (b.bytes / b.seconds > a.bytes / a.seconds ? b : a));
    const rawSeconds = Math.min(...raws);
    console.log('scrub (every copy read and verified)');
    line(`scrub ${(bestScrub.bytes / GiB).toFixed(2)} GiB`, rate(bestScrub.bytes, bestScrub.seconds), `${bestScrub.seconds.toFixed(2)} s, ${bestScrub.bad} bad blocks`);
    line(`raw read (dd, both members at once)`, rate(2 * VOLUME, rawSeconds), `ratio ${ratio(bestScrub.bytes / bestScrub.seconds, (2 * VOLUME) / rawSeconds)} (target ≥ 0.9)`);
    line('', '', `best of ${SCRUB_ROUNDS} each, taking turns; scrub ${scrubs.map((x) => rate(x.bytes, x.seconds).trim()).join(', ')}; dd ${raws.map((x) => rate(2 * VOLUME, x).trim()).join(', ')}`);

    // ---- governor: foreground p99 idle vs during a governed rebuild
    await pool.addMember(await source(files[3]!), { role: 'spare' });
    server = new NbdServer();
    server.addExport('v', volume);
    const socket = join(dir, 'v.sock');
    await server.listenUnix(socket);
    const uri = `nbd+unix:///v?socket=${socket}`;
    // Idle and during start alike, from a cold page cache, and last about as long (the
    // governed rebuild takes a few seconds): a long idle run is mostly warm-cache reads,
    // and comparing its p99 with a cold start's blames the job for the cache.
    for (const f of files) await dropCache(f);
    const idle = await fioRandRead(uri, 5).finished();
    for (const f of files) await dropCache(f);
    const fg = fioRandRead(uri, 600);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (trace) {
      pool.jobs.governor.trace = (t) =>
        console.log(
          `    ${t.probe ? 'probe' : '     '} n=${t.samples} p99 ${t.p99.toFixed(2)} / ${t.target.toFixed(2)} ms, job ${rate(t.jobRate, 1)}, limit ${t.limit === Infinity ? '∞' : rate(t.limit, 1)}`,
        );
    }
    const governed = await rebuild(pool, uuid(files[1]!), uuid(files[3]!));
    pool.jobs.governor.trace = undefined;
    const during = await fg.stop();
    console.log(`governor (fio 4 KiB random reads, QD1, over NBD; budget ${pool.state.policy.latencyBudget ?? 2}× the idle p99)`);
    line('foreground p99 idle', `${idle.p99Ms.toFixed(2)} ms`, `${idle.iops.toFixed(0)} IOPS`);
    line('foreground p99 during the governed rebuild', `${during.p99Ms.toFixed(2)} ms`, `${during.iops.toFixed(0)} IOPS, ratio ${ratio(during.p99Ms, idle.p99Ms)} (target ≤ 2)`);
    line("the governor's own idle p99 (engine side)", `${(pool.jobs.governor.idleP99 ?? NaN).toFixed(2)} ms`, 'row lock wait + member I/O of each foreground piece');
    line('governed rebuild', rate(governed.bytes, governed.seconds), `ratio to ungoverned ${ratio(governed.bytes / governed.seconds, ungoverned.bytes / ungoverned.seconds)} (target ≥ 0.5)`);
    line('ETA error of the governed rebuild (steady foreground)', '', governed.eta);
  } finally {
    await tearDown({ server, pool, devices, dir });
  }
}

main().catch((error: unknown) => {
  console.error(`bench jobs: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
