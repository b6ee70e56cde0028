/**
 * bench/engine.ts --only throughput: our volume over NBD against the
 * ceiling its members allow, measured in the same run.
 *
 * Members are image files (512 MiB by default, --image-mib) on the same
 * disk, pre-written once (so reads move real bytes and writes overwrite used
 * blocks), each served by `nbdkit -f -U SOCK file IMG`. Two identical sets:
 * c* images for the ceiling runs, m* images for the pools, so a ceiling
 * write never lands on a pool and the two can be measured back to back. For
 * each layout (1-member passthrough, raid1 ×2, raid10 ×4, raid5 ×4, raid6 ×5):
 *
 *   1. a child process (_engine-serve.ts) creates the pool on the layout's
 *      m* members (64 MiB + 64 KiB slabs: 64 MiB of data each), one volume
 *      filling the free space, and exports it over NBD;
 *   2. the volume is filled once with a sequential write of whole rows (then
 *      flushed), so reads hit written data (unwritten blocks read as zeroes
 *      without touching a member, which would flatter us);
 *   3. for each pattern: the ceiling (fio on the layout's c* members
 *      directly, one job per member socket, all at once, same pattern,
 *      block size and iodepth) and our volume (fio, one job, one
 *      connection) back to back, `rounds` times alternating; best counts.
 *
 * The ceiling is the members' aggregate rate times the layout's share of
 * user data (ceilingOf / COST_MODEL, printed with the table). Passthrough
 * also takes turns with a peer of the same shape as ours, one hop between
 * fio and nbdkit file: nbdkit's own nbd plugin, in C. On a machine whose
 * cores fio and the nbdkits already fill, any hop that copies the bytes
 * costs about as much CPU as the whole ceiling, and the peer shows how
 * much. Targets:
 * passthrough ≥ 0.95 of nbdkit on its one image; layouts ≥ 0.85
 * (sequential) and ≥ 0.7 (random) of their ceiling.
 */
import { randomFillSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { STRIPE_UNIT } from '../main/engine/layout.js';
import { children, cleanUpOnExit, cpuSeconds, fio, fmt, killAll, sh, spawnServer, stopServer, waitLine, waitSocket, type FioPattern, type Started } from './_engine-fio.js';
import { printSummary } from './_engine-profile.js';

const MiB = 1024 * 1024;
const here = path.dirname(fileURLToPath(import.meta.url));

interface LayoutCase {
  readonly key: string;
  readonly label: string;
  readonly layout: 'raid0' | 'raid1' | 'raid10' | 'raid5' | 'raid6';
  readonly width: number;
  readonly copies: number;
  /** Data units per row (user data share of a full-stripe write). */
  readonly dataUnits: number;
  /** Parity units per row (0 for mirrors and raid0). */
  readonly parity: number;
  readonly passthrough?: boolean;
}

const LAYOUTS: LayoutCase[] = [
  { key: 'passthrough', label: 'passthrough ×1', layout: 'raid0', width: 1, copies: 1, dataUnits: 1, parity: 0, passthrough: true },
  { key: 'raid1', label: 'raid1 ×2', layout: 'raid1', width: 2, copies: 2, dataUnits: 1, parity: 0 },
  { key: 'raid10', label: 'raid10 ×4', layout: 'raid10', width: 4, copies: 2, dataUnits: 2, parity: 0 },
  { key: 'raid5', label: 'raid5 ×4', layout: 'raid5', width: 4, copies: 1, dataUnits: 3, parity: 1 },
  { key: 'raid6', label: 'raid6 ×5', layout: 'raid6', width: 5, copies: 1, dataUnits: 3, parity: 2 },
];

type PatternKey = 'read' | 'write' | 'randread' | 'randwrite';

const PATTERNS: Array<FioPattern & { key: PatternKey; sequential: boolean }> = [
  { key: 'read', name: 'seq read 1M', rw: 'read', bs: '1M', iodepth: 16, metric: 'MiB/s', sequential: true },
  { key: 'write', name: 'seq write 1M', rw: 'write', bs: '1M', iodepth: 16, metric: 'MiB/s', sequential: true },
  { key: 'randread', name: 'rand read 4K', rw: 'randread', bs: '4k', iodepth: 16, metric: 'IOPS', sequential: false },
  { key: 'randwrite', name: 'rand write 4K', rw: 'randwrite', bs: '4k', iodepth: 16, metric: 'IOPS', sequential: false },
];

type Rates = Record<PatternKey, number>;

/**
 * The layout's best possible rate given the members' aggregate rates `m`
 * (all members driven at once). See COST_MODEL.
 */
function ceilingOf(l: LayoutCase, p: PatternKey, m: Rates): number {
  switch (p) {
    case 'read':
    case 'randread':
      // A healthy read moves only user bytes, once: mirrors spread reads over
      // their copies, parity layouts skip parity units. Share ×1.
      return m[p];
    case 'write':
      // Every user byte is written copies× (mirrors) or with parity: share = data units / width.
      return (m.write * l.dataUnits) / l.width;
    case 'randwrite': {
      if (l.parity === 0) return m.randwrite / l.copies;
      // Reconstruct-write of one 4 KiB block: read the same block of the
      // other data units, write the data block and each parity block.
      const reads = l.dataUnits - 1;
      const writes = 1 + l.parity;
      return 1 / (reads / m.randread + writes / m.randwrite);
    }
  }
}

export const COST_MODEL = [
  'Cost model (M_x = the members\' aggregate rate for pattern x, all members driven at once by fio, one job per member, same bs and iodepth):',
  '  seq read, rand read: M_x × 1 for every layout (a healthy read moves only user data: mirrors spread reads over copies, parity layouts skip P/Q)',
  '  seq write: M_write × data units / width (passthrough 1, raid1 ×2: 1/2, raid10 ×4: 2/4, raid5 ×4: 3/4, raid6 ×5: 3/5)',
  '  rand write, mirrors: M_randwrite / copies (raid1 ×2, raid10 ×4: 1/2)',
  '  rand write, parity (reconstruct-write of one 4 KiB block: read that block of the other data units, write data + P (+ Q)):',
  '    raid5 ×4: 2 reads + 2 writes → 1 / (2/M_randread + 2/M_randwrite)',
  '    raid6 ×5: 2 reads + 3 writes → 1 / (2/M_randread + 3/M_randwrite)',
  '  Not in the ceiling (our overheads): checksum-table write-back, write-intent records (write + flush on every member per newly dirtied 64-row region).',
  '  Ours: one fio job, one NBD connection, the same iodepth in total (so a w-member ceiling has w× the requests in flight).',
];

function target(l: LayoutCase, p: (typeof PATTERNS)[number]): number {
  if (l.passthrough) return 0.95;
  return p.sequential ? 0.85 : 0.7;
}

export interface ThroughputOptions {
  readonly runtime: number;
  /** Bytes of each member image. */
  readonly imageBytes: number;
  /** Runs of each pattern (ceiling and ours alternating); the best counts. */
  readonly rounds: number;
  /** Layout keys to run (default all). */
  readonly layouts?: readonly string[];
  /** Pattern keys to run (default all). */
  readonly patterns?: readonly string[];
  /** "LAYOUT:PATTERN" cases to CPU-profile in the engine child. */
  readonly profile?: readonly string[];
  /** Where profiles go (kept after the run). */
  readonly profileDir?: string;
}

interface Row {
  layout: string;
  metric: string;
  unit: string;
  ours: number;
  ceiling: number;
  ratio: number;
  target: number;
  cpu?: { engine: number; members: number };
  /** Passthrough: nbdkit's nbd plugin forwarding to nbdkit file, the same hop as ours. */
  peer?: number;
}

async function writeImage(file: string, bytes: number, block: Buffer): Promise<void> {
  const fh = await fsp.open(file, 'w');
  try {
    for (let off = 0; off < bytes; off += block.length) await fh.write(block, 0, Math.min(block.length, bytes - off), off);
  } finally {
    await fh.close();
  }
}

/**
 * Reads files whole, so their pages are in the page cache. This VM pages out
 * cache that has not been touched for about a minute (DAMON "pageout"), so
 * ceiling images idle since the previous layout would be read from disk
 * while the pool's, just filled, come from memory.
 */
async function warm(files: readonly string[], buffer: Buffer): Promise<void> {
  for (const file of files) {
    const fh = await fsp.open(file, 'r');
    try {
      while ((await fh.read(buffer, 0, buffer.length)).bytesRead > 0);
    } finally {
      await fh.close();
    }
  }
}

function loadavg(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
}

function send(child: Started, line: string): void {
  child.child.stdin!.write(`${line}\n`);
}

export async function throughputBench(options: ThroughputOptions): Promise<void> {
  for (const tool of ['fio', 'nbdkit']) {
    await sh('which', [tool]).catch(() => {
      throw new Error(`${tool} is not installed`);
    });
  }
  const layouts = LAYOUTS.filter((l) => !options.layouts?.length || options.layouts.includes(l.key));
  const patterns = PATTERNS.filter((p) => !options.patterns?.length || options.patterns.includes(p.key));
  const memberCount = Math.max(...layouts.map((l) => l.width));
  const started = performance.now();
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'spindle-bench-engine-'));
  const detach = cleanUpOnExit(dir);
  const rows: Row[] = [];
  const profiles: Array<{ file: string; label: string }> = [];
  try {
    console.log(
      `throughput: ${os.cpus().length} CPUs, node ${process.version}; members are ${options.imageBytes / MiB} MiB pre-written images served by nbdkit file; fio nbd engine, ${options.runtime} s per run, best of ${options.rounds}, iodepth 16 (seq 1 MiB, random 4 KiB)`,
    );
    // Pre-written with incompressible bytes, so reads are real and writes overwrite used blocks.
    // Two sets on the same disk: c* for the ceiling runs, m* for the pool, so
    // ceiling writes never touch the pool and the two can run back to back.
    const block = randomFillSync(Buffer.allocUnsafe(16 * MiB));
    const ceilingImages = Array.from({ length: memberCount }, (_, i) => path.join(dir, `c${i}.img`));
    const poolImages = Array.from({ length: memberCount }, (_, i) => path.join(dir, `m${i}.img`));
    const t0 = performance.now();
    for (const image of [...ceilingImages, ...poolImages]) await writeImage(image, options.imageBytes, block);
    await sh('sync', []);
    console.log(`  wrote ${2 * memberCount} images (${memberCount} for ceilings, ${memberCount} for pools) in ${((performance.now() - t0) / 1000).toFixed(1)} s; load average ${loadavg()}`);
    console.log('');

    for (const l of layouts) {
      const tl = performance.now();
      // Fresh socket names per layout (a server killed hard leaves its socket file behind).
      const ceilingSocks = ceilingImages.slice(0, l.width).map((_, i) => path.join(dir, `${l.key}-c${i}.sock`));
      const poolSocks = poolImages.slice(0, l.width).map((_, i) => path.join(dir, `${l.key}-m${i}.sock`));
      const nbdkits: Started[] = [];
      let engine: Started | undefined;
      try {
        for (let i = 0; i < l.width; i++) {
          nbdkits.push(spawnServer('nbdkit', ['-f', '-U', ceilingSocks[i]!, 'file', ceilingImages[i]!]));
          nbdkits.push(spawnServer('nbdkit', ['-f', '-U', poolSocks[i]!, 'file', poolImages[i]!]));
        }
        await Promise.all(nbdkits.map((s, i) => waitSocket(i % 2 === 0 ? ceilingSocks[i >> 1]! : poolSocks[i >> 1]!, s.child)));
        // Passthrough also gets a peer with the same topology as ours: one hop in
        // between, nbdkit's nbd plugin (C) forwarding to the first ceiling member.
        let proxy: { uri: string; size: number } | undefined;
        if (l.passthrough) {
          const proxySock = path.join(dir, `${l.key}-proxy.sock`);
          const kit = spawnServer('nbdkit', ['-f', '-U', proxySock, 'nbd', `socket=${ceilingSocks[0]!}`]);
          nbdkits.push(kit);
          await waitSocket(proxySock, kit.child);
          proxy = { uri: `nbd+unix:///?socket=${proxySock}`, size: options.imageBytes };
        }

        // The engine, in its own process, on its nbdkit members.
        const sock = path.join(dir, `${l.key}-vol.sock`);
        // The fill writes whole rows only (a multiple of the row's data bytes,
        // at most 1 MiB), and the volume is a whole number of fill blocks:
        // the engine does not initialise a new slab's checksum table, so on
        // pre-written members a never-written block reads as EIO, and so does
        // a partial-row parity write (it reads the rest of the row) until the
        // row has been written whole once.
        const rowBytes = l.dataUnits * STRIPE_UNIT;
        const fillBs = Math.floor(MiB / rowBytes) * rowBytes;
        engine = spawnServer(process.execPath, [
          '--import',
          'tsx',
          path.join(here, '_engine-serve.ts'),
          l.layout,
          String(l.width),
          String(l.copies),
          String(fillBs),
          sock,
          ...poolSocks,
        ]);
        const ready = JSON.parse((await waitLine(engine, /^ready /)).slice('ready '.length)) as { size: number };
        await waitSocket(sock, engine.child);
        const volume = { uri: `nbd+unix:///vol?socket=${sock}`, size: ready.size };

        // Fill the volume once (then flush), so every read hits written data.
        const tf = performance.now();
        await fio([volume], { ...PATTERNS[1]!, bs: String(fillBs) }, { endFsync: true });
        const fillSeconds = (performance.now() - tf) / 1000;
        await sh('sync', []);

        // Each pattern: the ceiling (members directly, all at once) and our
        // volume back to back, `rounds` times in alternating order; best counts.
        const members = ceilingSocks.map((s) => ({ uri: `nbd+unix:///?socket=${s}`, size: options.imageBytes }));
        await warm(ceilingImages.slice(0, l.width), block);
        const m: Rates = { read: 0, write: 0, randread: 0, randwrite: 0 };
        const ours: Rates = { read: 0, write: 0, randread: 0, randwrite: 0 };
        /** CPU the engine child and the pool's nbdkits used during our best run, in cores. */
        const cpu: Partial<Record<PatternKey, { engine: number; members: number }>> = {};
        const poolKits = nbdkits.filter((_, i) => i % 2 === 1 && i < 2 * l.width);
        const peer: Rates = { read: 0, write: 0, randread: 0, randwrite: 0 };
        const wanted = new Set<PatternKey>(patterns.map((p) => p.key));
        // Parity random writes are modelled with the members' random reads too.
        const needed = new Set(wanted);
        if (wanted.has('randwrite') && l.parity > 0) needed.add('randread');
        for (const p of PATTERNS.filter((x) => needed.has(x.key))) {
          for (let round = 0; round < options.rounds; round++) {
            const turns: Array<'ceiling' | 'ours' | 'peer'> = proxy ? ['ceiling', 'ours', 'peer'] : ['ceiling', 'ours'];
            const order = round % 2 === 0 ? turns : [...turns].reverse();
            for (const who of order) {
              if (who === 'ceiling') m[p.key] = Math.max(m[p.key], (await fio(members, p, { runtime: options.runtime })).total);
              else if (who === 'peer') {
                if (proxy && wanted.has(p.key)) peer[p.key] = Math.max(peer[p.key], (await fio([proxy], p, { runtime: options.runtime })).total);
              } else if (wanted.has(p.key)) {
                const pids = [engine.child.pid, ...poolKits.map((k) => k.child.pid)];
                const before = pids.map(cpuSeconds);
                const t = performance.now();
                const rate = (await fio([volume], p, { runtime: options.runtime })).total;
                const wall = (performance.now() - t) / 1000;
                if (rate > ours[p.key]) {
                  ours[p.key] = rate;
                  const used = pids.map((pid, i) => cpuSeconds(pid) - before[i]!);
                  cpu[p.key] = { engine: used[0]! / wall, members: used.slice(1).reduce((a, b) => a + b, 0) / wall };
                }
              }
            }
          }
          // A profile is taken in an extra run, so it does not slow the measured ones.
          if (wanted.has(p.key) && options.profile?.includes(`${l.key}:${p.key}`)) {
            const file = path.join(options.profileDir ?? dir, `engine-${l.key}-${p.key}.cpuprofile`);
            let mark = engine.stdout().length;
            send(engine, 'profile-start');
            await waitLine(engine, /^profiling$/, 30_000, mark);
            const rate = (await fio([volume], p, { runtime: options.runtime })).total;
            mark = engine.stdout().length;
            send(engine, `profile-stop ${file}`);
            await waitLine(engine, /^profiled /, 60_000, mark);
            profiles.push({ file, label: `${l.label} ${p.name}: ${fmt(rate, p.metric)} ${p.metric} while profiled` });
          }
        }
        await stopServer(engine.child);
        engine = undefined;

        const ceil = Object.fromEntries(patterns.map((p) => [p.key, ceilingOf(l, p.key, m)])) as Rates;
        console.log(
          `${l.label}: volume ${(ready.size / MiB).toFixed(0)} MiB, filled in ${fillSeconds.toFixed(1)} s (${(ready.size / MiB / fillSeconds).toFixed(0)} MiB/s incl. flush); ` +
            `members all at once: ${PATTERNS.filter((p) => needed.has(p.key))
              .map((p) => `${p.key} ${fmt(m[p.key], p.metric)} ${p.metric}`)
              .join(', ')}; ${((performance.now() - tl) / 1000).toFixed(0)} s; load average ${loadavg()}`,
        );
        for (const p of patterns) {
          const ratio = ours[p.key] / ceil[p.key];
          rows.push({ layout: l.label, metric: p.name, unit: p.metric, ours: ours[p.key], ceiling: ceil[p.key], ratio, target: target(l, p), cpu: cpu[p.key], ...(proxy ? { peer: peer[p.key] } : {}) });
        }
      } finally {
        if (engine) await stopServer(engine.child, 10_000).catch(() => {});
        await Promise.all(nbdkits.map((s) => stopServer(s.child, 5_000)));
      }
    }

    console.log('');
    const header = `${'layout'.padEnd(16)}${'metric'.padEnd(16)}${'unit'.padEnd(7)}${'ours'.padStart(10)}${'ceiling'.padStart(10)}${'ratio'.padStart(8)}${'target'.padStart(9)}      ${'engine CPU'.padStart(11)}${'per op'.padStart(10)}${'members CPU'.padStart(13)}`;
    console.log(header);
    console.log('-'.repeat(header.length));
    for (const r of rows) {
      const below = r.ratio < r.target;
      const cores = (x: number | undefined): string => (x === undefined ? '' : `${x.toFixed(2)} core`);
      // CPU per MiB (sequential) or per I/O (random): a figure the machine's other load barely moves.
      const perOp = r.cpu === undefined ? '' : r.unit === 'IOPS' ? `${((r.cpu.engine / r.ours) * 1e6).toFixed(0)} µs` : `${((r.cpu.engine / r.ours) * 1e3).toFixed(1)} ms/MiB`;
      console.log(
        `${r.layout.padEnd(16)}${r.metric.padEnd(16)}${r.unit.padEnd(7)}${fmt(r.ours, r.unit).padStart(10)}${fmt(r.ceiling, r.unit).padStart(10)}${r.ratio.toFixed(2).padStart(8)}${`≥ ${r.target.toFixed(2)}`.padStart(9)}${below ? '  ✗ ' : '  ok'}${cores(r.cpu?.engine).padStart(11)}${perOp.padStart(12)}${cores(r.cpu?.members).padStart(11)}`,
      );
    }
    console.log(
      "(✗: below target. engine CPU: cores the engine child used during our run (of 2, shared with fio, nbdkit and anything else running), and that per MiB or per I/O; members CPU: the pool's nbdkits.)",
    );
    const peers = rows.filter((r) => r.peer !== undefined && r.peer > 0);
    if (peers.length > 0) {
      console.log('');
      console.log('passthrough against a peer with the same hop (fio → nbdkit nbd plugin → nbdkit file, in C, measured in the same turns):');
      for (const r of peers) {
        console.log(
          `  ${r.metric.padEnd(16)}ours ${fmt(r.ours, r.unit)} ${r.unit}, peer ${fmt(r.peer!, r.unit)} ${r.unit}: ours/peer ${(r.ours / r.peer!).toFixed(2)}; peer/ceiling ${(r.peer! / r.ceiling).toFixed(2)}`,
        );
      }
    }
    console.log('');
    for (const line of COST_MODEL) console.log(line);
    const missed = rows.filter((r) => r.ratio < r.target).length;
    console.log(`\n${rows.length - missed} of ${rows.length} at or above target; bench took ${((performance.now() - started) / 1000).toFixed(0)} s`);

    for (const { file, label } of profiles) {
      console.log(`\n${label}`);
      printSummary(file, 25);
    }
  } finally {
    killAll();
    if (children.size > 0) await new Promise((r) => setTimeout(r, 200));
    detach();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
