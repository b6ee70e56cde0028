/**
 * bench/engine.ts --only compare --against REV: the engine of the working
 * tree against the engine of git revision REV, on the same machine at the
 * same time, for reads (sequential 1 MiB and random 4 KiB, iodepth 16) and,
 * with --patterns, writes too (write, randwrite).
 *
 * On a shared, busy 2-core machine one bench run against another says
 * little: the load moves rates and even CPU per operation by ±30 %. Here
 * both engines are up at once, each on its own nbdkit members, and their
 * fio runs alternate (A B, then B A, …), so both meet the same load; the
 * medians over `rounds` pairs are printed, with the engine's CPU per MiB or
 * per I/O (user + system, from /proc) and its context switches per MiB or
 * per I/O (voluntary + involuntary), which on this VM cost more than most
 * of what the engine does itself.
 *
 * REV is exported with `git archive` into a temporary directory, which
 * borrows this tree's node_modules through a symlink; only its
 * bench/_engine-serve.ts and main/ are used.
 */
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { STRIPE_UNIT } from '../main/engine/layout.js';
import { children, cleanUpOnExit, cpuSeconds, fio, killAll, sh, spawnServer, stopServer, waitLine, waitSocket, type FioPattern, type Started } from './_engine-fio.js';

const MiB = 1024 * 1024;
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

const LAYOUTS: Record<string, { layout: string; width: number; copies: number; dataUnits: number }> = {
  passthrough: { layout: 'raid0', width: 1, copies: 1, dataUnits: 1 },
  raid1: { layout: 'raid1', width: 2, copies: 2, dataUnits: 1 },
  raid10: { layout: 'raid10', width: 4, copies: 2, dataUnits: 2 },
  raid5: { layout: 'raid5', width: 4, copies: 1, dataUnits: 3 },
  raid6: { layout: 'raid6', width: 5, copies: 1, dataUnits: 3 },
};

const PATTERNS: Array<FioPattern & { key: string }> = [
  { key: 'read', name: 'seq read 1M', rw: 'read', bs: '1M', iodepth: 16, metric: 'MiB/s' },
  { key: 'randread', name: 'rand read 4K', rw: 'randread', bs: '4k', iodepth: 16, metric: 'IOPS' },
  { key: 'write', name: 'seq write 1M', rw: 'write', bs: '1M', iodepth: 16, metric: 'MiB/s' },
  { key: 'randwrite', name: 'rand write 4K', rw: 'randwrite', bs: '4k', iodepth: 16, metric: 'IOPS' },
];
const DEFAULT_PATTERNS = ['read', 'randread'];

export interface CompareOptions {
  /** Git revision whose engine is compared with the working tree's. */
  readonly against: string;
  readonly layouts?: readonly string[];
  /** Of read, randread, write, randwrite (default: the reads). */
  readonly patterns?: readonly string[];
  /** Pairs of runs per pattern (medians are printed). */
  readonly rounds: number;
  readonly runtime: number;
  readonly imageBytes: number;
}

function contextSwitches(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const n = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    return n('voluntary_ctxt_switches') + n('nonvoluntary_ctxt_switches');
  } catch {
    return 0;
  }
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

interface Engine {
  readonly who: string;
  readonly child: Started;
  readonly uri: string;
  readonly size: number;
}

export async function compareBench(options: CompareOptions): Promise<void> {
  const layouts = Object.keys(LAYOUTS).filter((k) => !options.layouts?.length || options.layouts.includes(k));
  const wanted = options.patterns?.length ? options.patterns : DEFAULT_PATTERNS;
  const unknown = wanted.filter((k) => !PATTERNS.some((p) => p.key === k));
  if (unknown.length > 0) throw new Error(`unknown pattern ${unknown.join(', ')}: use ${PATTERNS.map((p) => p.key).join(', ')}`);
  const patterns = PATTERNS.filter((p) => wanted.includes(p.key));
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'spindle-bench-compare-'));
  const detach = cleanUpOnExit(dir);
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', options.against], { cwd: root, encoding: 'utf8' }).trim();
    const other = path.join(dir, `rev-${rev}`);
    await fsp.mkdir(other);
    execFileSync('sh', ['-c', `git archive ${rev} | tar -x -C "${other}"`], { cwd: root });
    await fsp.symlink(path.join(root, 'node_modules'), path.join(other, 'node_modules'));
    const trees = [
      { who: rev, root: other },
      { who: 'working tree', root },
    ];
    console.log(
      `compare: engine at ${rev} against the working tree, runs alternating, ${options.runtime} s each, medians of ${options.rounds}; ${os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`,
    );
    const block = randomFillSync(Buffer.allocUnsafe(16 * MiB));
    for (const key of layouts) {
      const l = LAYOUTS[key]!;
      const engines: Engine[] = [];
      try {
        for (const [t, tree] of trees.entries()) {
          const socks: string[] = [];
          for (let i = 0; i < l.width; i++) {
            const image = path.join(dir, `${key}-t${t}-m${i}.img`);
            const fh = await fsp.open(image, 'w');
            for (let at = 0; at < options.imageBytes; at += block.length) await fh.write(block, 0, Math.min(block.length, options.imageBytes - at), at);
            await fh.close();
            const sock = path.join(dir, `${key}-t${t}-m${i}.sock`);
            const kit = spawnServer('nbdkit', ['-f', '-U', sock, 'file', image]);
            await waitSocket(sock, kit.child);
            socks.push(sock);
          }
          const rowBytes = l.dataUnits * STRIPE_UNIT;
          const fillBs = Math.floor(MiB / rowBytes) * rowBytes;
          const sock = path.join(dir, `${key}-t${t}-vol.sock`);
          const child = spawnServer(process.execPath, ['--import', 'tsx', path.join(tree.root, 'bench', '_engine-serve.ts'), l.layout, String(l.width), String(l.copies), String(fillBs), sock, ...socks]);
          const ready = JSON.parse((await waitLine(child, /^ready /)).slice('ready '.length)) as { size: number };
          await waitSocket(sock, child.child);
          const uri = `nbd+unix:///vol?socket=${sock}`;
          await fio([{ uri, size: ready.size }], { name: 'fill', rw: 'write', bs: String(fillBs), iodepth: 16, metric: 'MiB/s' }, { endFsync: true });
          engines.push({ who: tree.who, child, uri, size: ready.size });
        }
        await sh('sync', []);
        const results = new Map<string, Array<{ rate: number; cpu: number; switches: number }>>();
        for (let round = 0; round < options.rounds; round++) {
          for (const p of patterns) {
            for (const e of round % 2 === 0 ? engines : [...engines].reverse()) {
              const pid = e.child.child.pid!;
              const cpu0 = cpuSeconds(pid);
              const cs0 = contextSwitches(pid);
              const rate = (await fio([{ uri: e.uri, size: e.size }], p, { runtime: options.runtime })).total;
              // Units moved (MiB or I/Os) over the run, from the rate.
              const units = rate * options.runtime;
              const list = results.get(`${p.key} ${e.who}`) ?? [];
              list.push({ rate, cpu: (cpuSeconds(pid) - cpu0) / units, switches: (contextSwitches(pid) - cs0) / units });
              results.set(`${p.key} ${e.who}`, list);
            }
          }
        }
        console.log(`\n${key} (${l.layout} ×${l.width}); load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
        for (const p of patterns) {
          const seq = p.metric === 'MiB/s';
          for (const e of engines) {
            const r = results.get(`${p.key} ${e.who}`)!;
            const cpu = median(r.map((x) => x.cpu));
            console.log(
              `  ${p.name.padEnd(14)}${e.who.padEnd(14)}${median(r.map((x) => x.rate)).toFixed(0).padStart(8)} ${p.metric.padEnd(6)}` +
                `${(seq ? `${(cpu * 1e3).toFixed(2)} ms/MiB` : `${(cpu * 1e6).toFixed(1)} µs/IO`).padStart(14)}` +
                `${median(r.map((x) => x.switches)).toFixed(2).padStart(8)} switches/${seq ? 'MiB' : 'IO'}`,
            );
          }
        }
      } finally {
        await Promise.all(engines.map((e) => stopServer(e.child.child, 10_000).catch(() => {})));
        killAll();
        if (children.size > 0) await new Promise((r) => setTimeout(r, 200));
        for (const f of await fsp.readdir(dir)) if (f.startsWith(`${key}-`)) await fsp.rm(path.join(dir, f), { force: true });
      }
    }
  } finally {
    killAll();
    detach();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
