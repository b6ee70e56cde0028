/**
 * NBD benchmark: our server against nbdkit (file plugin) and qemu-nbd, all
 * serving the same pre-written 1 GiB image on Unix sockets, measured with
 * fio's nbd engine; and our client reading a whole nbdkit memory export
 * against nbdcopy doing the same. Prints every figure and our ratio to
 * nbdkit (target ≥ 0.9). Runs about 2.5 minutes.
 *
 *   npm run bench -- nbd [--runtime SECONDS] [--rounds N] [--only NAME] [--pool-threads N]
 *
 * Each fio case runs `rounds` times per server, interleaving the servers so
 * that machine noise hits them alike; the best run of each counts.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NbdClient } from '../main/nbd/client.js';

const MiB = 1024 * 1024;
const IMAGE_SIZE = 1024 * MiB;
const args = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const RUNTIME = Number(opt('runtime', '3'));
const POOL_THREADS = opt('pool-threads', '2');
const ROUNDS = Number(opt('rounds', '3'));
const ONLY = opt('only', '');
const here = path.dirname(fileURLToPath(import.meta.url));

const children = new Set<ChildProcess>();
function cleanup(): void {
  for (const c of children) c.kill('SIGKILL');
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function sh(cmd: string, argv: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: timeoutMs, maxBuffer: 64 * MiB }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${argv.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(String(stdout));
    });
  });
}

// Client flags (FIXED_NEWSTYLE) then IHAVEOPT, NBD_OPT_ABORT, length 0.
const ABORT_PROBE = Buffer.from('00000001' + '49484156454f5054' + '00000002' + '00000000', 'hex');

async function waitSocket(sock: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before listening on ${sock}`);
    // Probe politely (greeting, then NBD_OPT_ABORT) so servers log no errors.
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(sock);
      let got = 0;
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= 18 && got - d.length < 18) s.write(ABORT_PROBE);
      });
      s.once('close', () => resolve(got >= 18));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${sock}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startServer(cmd: string, argv: string[], sock: string, env: NodeJS.ProcessEnv = process.env): Promise<ChildProcess> {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'], env });
  children.add(child);
  child.once('exit', () => children.delete(child));
  await waitSocket(sock, child);
  return child;
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

interface FioCase {
  readonly name: string;
  readonly rw: string;
  readonly bs: string;
  readonly iodepth: number;
  readonly metric: 'MiB/s' | 'IOPS';
}

const FIO_CASES: FioCase[] = [
  { name: 'seq read 1M QD8', rw: 'read', bs: '1M', iodepth: 8, metric: 'MiB/s' },
  { name: 'seq write 1M QD8', rw: 'write', bs: '1M', iodepth: 8, metric: 'MiB/s' },
  { name: 'rand read 4K QD16', rw: 'randread', bs: '4k', iodepth: 16, metric: 'IOPS' },
  { name: 'rand write 4K QD16', rw: 'randwrite', bs: '4k', iodepth: 16, metric: 'IOPS' },
];

async function fio(sock: string, c: FioCase): Promise<number> {
  const out = await sh('fio', [
    '--name=bench',
    '--ioengine=nbd',
    `--uri=nbd+unix:///?socket=${sock}`,
    `--rw=${c.rw}`,
    `--bs=${c.bs}`,
    `--iodepth=${c.iodepth}`,
    `--size=${IMAGE_SIZE}`,
    `--runtime=${RUNTIME}`,
    '--time_based',
    '--output-format=json',
  ]);
  // fio prints "connected to NBD server" and such before its JSON.
  const job = JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
  const side = c.rw.includes('read') ? job.read : job.write;
  return c.metric === 'IOPS' ? side.iops : side.bw / 1024;
}

function fmt(v: number, metric: string): string {
  return metric === 'IOPS' ? `${Math.round(v).toLocaleString('en-US')} IOPS` : `${v.toFixed(0)} MiB/s`;
}

/** Our client reads the whole export: `connections` clients, `depth` reads of `chunk` bytes each in flight. */
async function clientRead(uri: string, connections: number, depth: number, chunk: number): Promise<{ seconds: number; bytes: number }> {
  const t0 = performance.now();
  const first = await NbdClient.connect(uri);
  const size = first.size;
  const n = first.capabilities.canMultiConn ? connections : 1;
  const clients = [first, ...(await Promise.all(Array.from({ length: n - 1 }, () => NbdClient.connect(uri))))];
  let next = 0;
  let bytes = 0;
  // Each reader reuses one buffer (readInto), as nbdcopy reuses its own.
  const worker = async (c: NbdClient): Promise<void> => {
    const buf = Buffer.allocUnsafe(chunk);
    while (next < size) {
      const off = next;
      next += chunk;
      const len = Math.min(chunk, size - off);
      await c.readInto(off, len === chunk ? buf : buf.subarray(0, len));
      bytes += len;
    }
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: depth }, () => worker(c))));
  await Promise.all(clients.map((c) => c.close()));
  return { seconds: (performance.now() - t0) / 1000, bytes };
}

async function main(): Promise<void> {
  for (const tool of ['fio', 'nbdkit', 'qemu-nbd', 'nbdcopy']) await sh('which', [tool]).catch(() => {
    throw new Error(`${tool} is not installed`);
  });
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'spindle-nbd-bench-'));
  try {
    const image = path.join(dir, 'image.raw');
    // Pre-written with incompressible data so every read moves real bytes.
    const block = randomFillSync(Buffer.allocUnsafe(16 * MiB));
    const fh = await fsp.open(image, 'w');
    for (let off = 0; off < IMAGE_SIZE; off += block.length) await fh.write(block, 0, block.length, off);
    await fh.close();
    // Other work on the machine disturbs a single-threaded server more than
    // nbdkit's 16 threads, so raise our priority (inherited by every server
    // and fio) where allowed; all three servers get the same.
    let priority = 'normal priority';
    try {
      os.setPriority(-10);
      priority = 'nice -10';
    } catch {
      // not permitted: run as is
    }
    console.log(
      `NBD benchmark: ${os.cpus().length} CPUs, node ${process.version}, ${priority}, spindle UV_THREADPOOL_SIZE=${POOL_THREADS}, fio runtime ${RUNTIME}s x ${ROUNDS} rounds (best counts)\n`,
    );

    const servers: { name: string; sock: string; cmd: string; argv: string[] }[] = [
      { name: 'spindle', sock: path.join(dir, 'spindle.sock'), cmd: process.execPath, argv: [] },
      { name: 'nbdkit', sock: path.join(dir, 'nbdkit.sock'), cmd: 'nbdkit', argv: [] },
      { name: 'qemu-nbd', sock: path.join(dir, 'qemu.sock'), cmd: 'qemu-nbd', argv: [] },
    ];
    servers[0].argv = ['--import', 'tsx', path.join(here, '_nbd-serve.ts'), image, servers[0].sock];
    servers[1].argv = ['-f', '-U', servers[1].sock, 'file', image];
    servers[2].argv = ['-k', servers[2].sock, '-f', 'raw', '--cache=writeback', '-t', '-e', '4', image];
    // Our server gets 2 libuv pool threads: on 2 CPUs, 4 threads contend for
    // the pool's one queue lock and cost ~1.5x the CPU per 4 KiB read (measured).
    const procs = await Promise.all(
      servers.map((s) => startServer(s.cmd, s.argv, s.sock, s.name === 'spindle' ? { ...process.env, UV_THREADPOOL_SIZE: POOL_THREADS } : process.env)),
    );

    const results: Record<string, Record<string, number>> = {};
    const cases = FIO_CASES.filter((c) => !ONLY || c.name.includes(ONLY));
    for (const c of cases) {
      results[c.name] = {};
      for (let round = 0; round < ROUNDS; round++) {
        for (const s of round % 2 === 0 ? servers : [...servers].reverse()) {
          const v = await fio(s.sock, c);
          results[c.name][s.name] = Math.max(results[c.name][s.name] ?? 0, v);
        }
      }
      const r = results[c.name];
      console.log(
        `${c.name.padEnd(20)} spindle ${fmt(r.spindle, c.metric).padStart(13)}   nbdkit ${fmt(r.nbdkit, c.metric).padStart(13)}   qemu-nbd ${fmt(r['qemu-nbd'], c.metric).padStart(13)}   ratio ${(r.spindle / r.nbdkit).toFixed(2)}`,
      );
    }
    await Promise.all(procs.map(stopServer));

    if (!ONLY || 'client'.includes(ONLY)) {
      // Client: read a whole 1 GiB nbdkit memory export (filled from the image, so no holes).
      const memSock = path.join(dir, 'mem.sock');
      const mem = await startServer('nbdkit', ['-f', '-U', memSock, 'memory', `${IMAGE_SIZE}`], memSock);
      const uri = `nbd+unix:///?socket=${memSock}`;
      await sh('nbdcopy', [image, uri]);
      let ours = 0;
      let theirs = 0;
      for (let round = 0; round < Math.min(ROUNDS, 2); round++) {
        const t0 = performance.now();
        await sh('nbdcopy', ['--no-extents', uri, 'null:']);
        theirs = Math.max(theirs, IMAGE_SIZE / MiB / ((performance.now() - t0) / 1000));
        // One connection: our client is single-threaded, and more connections only add overhead.
        const r = await clientRead(uri, 1, 8, 2 * MiB);
        if (r.bytes !== IMAGE_SIZE) throw new Error(`client read ${r.bytes} bytes`);
        ours = Math.max(ours, r.bytes / MiB / r.seconds);
      }
      console.log(
        `${'client read 1 GiB'.padEnd(20)} spindle ${fmt(ours, 'MiB/s').padStart(13)}   nbdcopy ${fmt(theirs, 'MiB/s').padStart(12)}   ${''.padStart(24)}ratio ${(ours / theirs).toFixed(2)}`,
      );
      await stopServer(mem);
    }
  } finally {
    cleanup();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

await main();
