/**
 * Engine benchmark.
 *
 *   npm run bench -- engine [--only import|throughput] [--runtime S] [--rounds N] [--image-mib N]
 *       [--layouts passthrough,raid1,raid10,raid5,raid6] [--patterns read,write,randread,randwrite]
 *       [--profile LAYOUT:PATTERN[,...]] [--profile-dir DIR]
 *   npm run bench -- engine --only compare --against REV [--layouts ...] [--patterns ...] [--rounds N] [--runtime S]
 *
 * Both sections (import, throughput) run by default (~5-6 minutes on 2 cores).
 *
 * compare (only when asked): the working tree's engine against git revision
 * REV's, both up at once and their read runs alternating, so a busy shared
 * machine weighs on both alike; medians of rate, engine CPU and context
 * switches per MiB / per I/O (see _engine-compare.ts).
 *
 * import: a simulated pool of 24 members of ~16 TiB each (sparse image files;
 * ext4 caps a file just under 16 TiB), 256 MiB slabs, 90 % of it in one raid6
 * volume (≈150,000 chunks): the time to import it and the RSS of the process
 * that did. Targets: < 2 s and < 300 MiB.
 *
 * throughput: our volume over NBD (fio nbd engine) against the ceiling of its
 * nbdkit `file` members driven directly in the same run, for a 1-member
 * passthrough, raid1 ×2, raid10 ×4, raid5 ×4 and raid6 ×5; sequential
 * MiB/s and 4 KiB random IOPS, ratio to ceiling, targets (passthrough ≥ 0.95,
 * sequential ≥ 0.85, random ≥ 0.7). The cost model is in
 * _engine-throughput.ts and printed with the table. --profile takes a CPU
 * profile of the engine child during the named runs (e.g. raid5:randwrite)
 * and prints its top self-time functions.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareBench } from './_engine-compare.js';
import { throughputBench } from './_engine-throughput.js';

const MEMBERS = 24;
const MEMBER_BYTES = 16 * 1024 ** 4 - 64 * 1024 ** 2;
const child = fileURLToPath(new URL('./_engine-pool.ts', import.meta.url));

function node(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', child, ...args], { maxBuffer: 1 << 20, timeout: 600_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${args[0]} failed: ${stderr || error.message}`));
      else resolve(stdout.trim().split('\n').pop()!);
    });
  });
}

async function importBench(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'spindle-bench-import-'));
  try {
    for (let i = 0; i < MEMBERS; i++) {
      const file = await open(join(dir, `m${i}.img`), 'w');
      await file.truncate(MEMBER_BYTES);
      await file.close();
    }
    const created = JSON.parse(await node(['create', dir, String(MEMBERS)]));
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(JSON.parse(await node(['import', dir, String(MEMBERS)])));
    const best = runs.reduce((a, b) => (a.seconds < b.seconds ? a : b));
    const rssMiB = Math.max(...runs.map((r) => r.rssBytes)) / 1024 ** 2;
    console.log(`import: ${MEMBERS} members of ${(MEMBER_BYTES / 1024 ** 4).toFixed(3)} TiB, ${created.chunks.toLocaleString('en-US')} chunks in a ${(created.volumeBytes / 1024 ** 4).toFixed(1)} TiB raid6 volume`);
    console.log(`  import time  ${best.seconds.toFixed(2)} s (best of ${runs.length}; target < 2 s)  ratio to target ${(best.seconds / 2).toFixed(2)}`);
    console.log(`  import RSS   ${rssMiB.toFixed(0)} MiB (target < 300 MiB)  ratio to target ${(rssMiB / 300).toFixed(2)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const arg = (name: string): string | undefined => (process.argv.includes(`--${name}`) ? process.argv[process.argv.indexOf(`--${name}`) + 1] : undefined);
const list = (name: string): string[] | undefined => arg(name)?.split(',').filter(Boolean);
const only = arg('only');
if (only && only !== 'import' && only !== 'throughput' && only !== 'compare') {
  console.error(`unknown section "${only}": use --only import, --only throughput or --only compare --against REV`);
  process.exit(2);
}
if (only === 'compare') {
  const against = arg('against');
  if (!against) {
    console.error('--only compare needs --against REV (a git revision whose engine to compare with the working tree)');
    process.exit(2);
  }
  await compareBench({
    against,
    layouts: list('layouts'),
    patterns: list('patterns'),
    rounds: Number(arg('rounds') ?? '5'),
    runtime: Number(arg('runtime') ?? '3'),
    imageBytes: Number(arg('image-mib') ?? '512') * 1024 * 1024,
  });
}
if (!only || only === 'import') await importBench();
if (!only || only === 'throughput') {
  if (!only) console.log('');
  await throughputBench({
    runtime: Number(arg('runtime') ?? '4'),
    rounds: Number(arg('rounds') ?? '1'),
    imageBytes: Number(arg('image-mib') ?? '512') * 1024 * 1024,
    layouts: list('layouts'),
    patterns: list('patterns'),
    profile: list('profile'),
    profileDir: arg('profile-dir'),
  });
}
