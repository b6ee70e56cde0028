/**
 * What the jobs benchmarks share (bench/jobs.ts, bench/_jobs-profile.ts,
 * bench/_governor-curve.ts): dropping a file's cached pages, the ETA a job
 * announced against the time it really took, and the teardown.
 */
import { execFile } from 'node:child_process';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openMember } from '../main/engine/member-uri.js';
import type { JobProgress } from '../main/engine/job-types.js';
import { STRIPE_UNIT } from '../main/engine/layout.js';
import { slabGeometry } from '../main/engine/slab-geometry.js';
import type { MemberSource, Pool } from '../main/engine/pool.js';
import type { Volume } from '../main/engine/volume.js';
import type { NbdServer } from '../main/nbd/server.js';

/** The value after `--name` on the command line. */
export function benchArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** The volume size `--gib` asks for (default `gib`), in whole 256 MiB slabs of data. */
export function benchVolumeBytes(gib: number): number {
  const slabs = Math.max(1, Math.round(Number(benchArg('gib') ?? gib) * 4));
  return slabs * slabGeometry(256 * 1024 * 1024, STRIPE_UNIT).dataBytes;
}

/** Makes (or empties) `path` as a sparse file of `bytes`: an image file for a member. */
export async function sparseFile(path: string, bytes: number): Promise<void> {
  const f = await open(path, 'w');
  await f.truncate(bytes);
  await f.close();
}

/** A new sparse image file `dir/name.img` of `bytes`, opened as a member; noted in `files` and `devices` (for dropCache and tearDown). */
export async function imageMember(dir: string, name: string, bytes: number, opened: { files: string[]; devices: MemberSource[] }): Promise<MemberSource> {
  const f = join(dir, `${name}.img`);
  opened.files.push(f);
  await sparseFile(f, bytes);
  const s = { uri: `file:${f}`, device: await openMember(`file:${f}`) };
  opened.devices.push(s);
  return s;
}

/** Drops this file's pages from the page cache (GNU dd's nocache; nothing else is touched). */
export function dropCache(file: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], (error, _stdout, stderr) =>
      error ? reject(new Error(`dd nocache of ${file}: ${error.message}\n${stderr}`)) : resolve(),
    ),
  );
}

/** Writes the whole volume, 4 MiB at a time (each 4 KiB block starts with its offset), and flushes it. */
export async function fillVolume(volume: Volume): Promise<void> {
  const MiB = 1024 * 1024;
  const b = Buffer.alloc(4 * MiB);
  for (let at = 0; at < volume.size; at += 4 * MiB) {
    for (let i = 0; i < b.length; i += 4096) b.writeUInt32LE((at + i) >>> 0, i);
    await volume.write(at, b.subarray(0, Math.min(b.length, volume.size - at)));
  }
  await volume.flush();
}

/** Where the issue judges the ETA: from 10 % done to the end. */
const ETA_MARKS = [0.1, 0.25, 0.5, 0.75, 0.9];

/**
 * Watches the pool's next job: the ETA it announced at the first progress
 * past each mark. `errors(end)` (end: performance.now() when the job was
 * over) gives each as a percentage of the time that was really left, and
 * stops watching.
 */
export function watchEta(pool: Pool): { errors(end: number): string } {
  const marks = [...ETA_MARKS];
  const etas: Array<{ at: number; etaMs: number; when: number }> = [];
  const onProgress = (p: JobProgress): void => {
    const mark = marks[0];
    if (mark !== undefined && p.bytesDone >= p.bytesTotal * mark && p.etaMs !== undefined) {
      marks.shift();
      etas.push({ at: mark, etaMs: p.etaMs, when: performance.now() });
    }
  };
  pool.jobs.on('job-progress', onProgress);
  return {
    errors(end) {
      pool.jobs.off('job-progress', onProgress);
      const text = etas.map((e) => `${(e.at * 100).toFixed(0)}%: ${(((e.etaMs - (end - e.when)) / (end - e.when)) * 100).toFixed(0)}%`).join(', ');
      return text || 'not measured (too short)';
    },
  };
}

/** Closes what a benchmark opened (whatever of it there is) and removes its folder. */
export async function tearDown(opened: { server?: NbdServer; pool?: Pool; devices: readonly MemberSource[]; dir: string }): Promise<void> {
  await opened.server?.close().catch(() => {});
  await opened.pool?.close().catch(() => {});
  await Promise.all(opened.devices.map((d) => d.device.close().catch(() => {})));
  await rm(opened.dir, { recursive: true, force: true });
}
